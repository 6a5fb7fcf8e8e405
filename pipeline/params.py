"""Loading and validating params.yaml. Stages call this; library code never reads params."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema

from pipeline.schema import first_violation
from pipeline.yamlio import YAMLError, parse_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"
FETCHED_DIR = "data/raw/fetched"  # the fetch stage's outputs (dvc.yaml, workflow/rules/data.smk)
PRETRAINED_DIR = "data/pretrained"  # fetch.models, each at <PRETRAINED_DIR>/<entry>/<filename>


class ParamsError(ValueError):
    """A bad params file; the message names the file, the key and the reason."""


def load_params(path: str | Path) -> dict[str, Any]:
    """Read and validate a params file; raises ParamsError naming the first bad key."""
    path = Path(path)
    try:
        params = parse_yaml(path.read_text())
    except FileNotFoundError as err:
        raise ParamsError(f"{path}: file not found") from err
    except YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML ({err})") from err
    validate_params(params, source=str(path))
    return params


def validate_params(params: Any, source: str = "params") -> None:
    violation = first_violation(SCHEMA_PATH, params)
    if violation:
        key, error = violation
        raise ParamsError(f"{source}: {key}: {_describe(error)}")
    for key, reason in _cross_field_problems(params):
        raise ParamsError(f"{source}: {key}: {reason}")


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return f"unknown key ({error.message})"
    if error.validator == "required":
        return f"missing key ({error.message})"
    if error.validator == "pattern" and "description" in error.schema:
        return f"{error.instance!r} is not allowed: {error.schema['description']}"
    return error.message


def _cross_field_problems(params: dict[str, Any]):
    demo, analyze, bars, split = params["demo"], params["analyze"], params["bars"], params["split"]
    if demo["bpm_range"][0] > demo["bpm_range"][1]:
        yield "demo.bpm_range", f"{demo['bpm_range']} is not [low, high]"
    if analyze["min_bpm"] >= analyze["max_bpm"]:
        yield "analyze.min_bpm", f"{analyze['min_bpm']} must be below max_bpm {analyze['max_bpm']}"
    if bars["min_stretch"] >= bars["max_stretch"]:
        yield "bars.min_stretch", f"{bars['min_stretch']} must be below max_stretch"
    if split["valid_fraction"] == 0:
        yield (
            "split.valid_fraction",
            (
                "0 holds no bars out, and evaluate measures generated bars against held-out real "
                "ones (its reference numbers would all be missing); use at least 0.1"
            ),
        )
    if split["valid_fraction"] + split["test_fraction"] >= 1:
        yield "split.valid_fraction", "valid_fraction + test_fraction must be below 1"
    fetched = Path(params["data"]["audio_dir"]) == Path(FETCHED_DIR)
    if fetched and params["fetch"]["dataset"] == "none":
        yield (
            "fetch.dataset",
            f"none, but data.audio_dir is {FETCHED_DIR}, where the fetch stage puts the "
            "dataset it names: name a registry entry (datasets/<name>.yaml)",
        )
    weights = params["evaluate"]["vggish_weights"]
    entry = fetched_entry(weights) if weights else None
    if entry is not None and entry not in params["fetch"]["models"]:
        yield (
            "evaluate.vggish_weights",
            f"{weights} is under {PRETRAINED_DIR}, where the fetch stage puts only the entries "
            f"fetch.models names: add {entry} to fetch.models",
        )


def fetched_entry(path: str | Path) -> str | None:
    """The registry entry whose weights the fetch stage puts at ``path``, or None when ``path``
    is not under PRETRAINED_DIR/<entry>/."""
    parts = Path(path).parts
    top = Path(PRETRAINED_DIR).parts
    if len(parts) > len(top) + 1 and parts[: len(top)] == top:
        return parts[len(top)]
    return None


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr_g": 1e-4}}`` -> ``{"train.lr_g": 1e-4}`` (lists kept as values)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated in place with ``overlay``: nested mappings merged, other values replaced."""
    for key, value in overlay.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            deep_merge(current, value)
        else:
            base[key] = copy.deepcopy(value)
    return base
