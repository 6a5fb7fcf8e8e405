"""Presets: params.yaml overlays that reproduce published setups (``presets/*.yaml``).

    python -m pipeline.presets list
    python -m pipeline.presets apply NAME [--params params.yaml] [--dry-run]

A preset file is a partial params.yaml plus two metadata keys, ``source`` (the paper / repository
it reproduces) and ``description``.  ``apply`` deep-merges the rest into the params file
(mappings are merged key by key, everything else -- lists included -- is replaced), records the
name in ``train.preset`` (MLflow tags the training run with it), validates the result with
:func:`pipeline.params.validate_params` and only then rewrites the file atomically.  Comments
and key order of the params file are kept (ruamel.yaml round trip, a dependency of DVC); without
ruamel.yaml the file is rewritten by PyYAML, without comments.
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.fileio import atomic_write
from pipeline.params import REPO_ROOT, ParamsError, validate_params

PRESETS_DIR = REPO_ROOT / "presets"
META_KEYS = ("source", "description")


def preset_names(presets_dir: Path = PRESETS_DIR) -> list[str]:
    return sorted(p.stem for p in Path(presets_dir).glob("*.yaml"))


def load_preset(
    name: str, presets_dir: Path = PRESETS_DIR
) -> tuple[dict[str, Any], dict[str, Any]]:
    """-> ``(overlay, metadata)`` of preset ``name``."""
    path = Path(presets_dir) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names(presets_dir)) or "none"
        raise ValueError(f"unknown preset {name!r}; known presets: {known}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError(f"{path}: a preset is a mapping with a 'source' key")
    meta = {k: data.pop(k) for k in META_KEYS if k in data}
    return data, meta


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated in place with ``overlay``: nested mappings merged, other values replaced."""
    for key, value in overlay.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            deep_merge(current, value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def apply_preset(
    params: dict[str, Any], name: str, presets_dir: Path = PRESETS_DIR
) -> dict[str, Any]:
    """A validated copy of ``params`` with preset ``name`` applied (``params`` is unchanged)."""
    overlay, _meta = load_preset(name, presets_dir)
    merged = deep_merge(copy.deepcopy(params), _with_name(overlay, name))
    validate_params(merged, source=f"params with preset {name}")
    return merged


def apply_to_file(
    name: str, params_path: Path, presets_dir: Path = PRESETS_DIR, dry_run: bool = False
) -> str:
    """Apply preset ``name`` to the params file; returns the new text (written unless dry run)."""
    overlay, _meta = load_preset(name, presets_dir)
    overlay = _with_name(overlay, name)
    params_path = Path(params_path)
    text = params_path.read_text()
    try:
        new_text = _merge_keeping_comments(text, overlay)
    except ImportError:
        new_text = yaml.safe_dump(
            deep_merge(yaml.safe_load(text), overlay), sort_keys=False, default_flow_style=None
        )
    validate_params(yaml.safe_load(new_text), source=f"{params_path} with preset {name}")
    if not dry_run:
        atomic_write(params_path, lambda tmp: Path(tmp).write_text(new_text))
    return new_text


def _with_name(overlay: dict[str, Any], name: str) -> dict[str, Any]:
    overlay = copy.deepcopy(overlay)
    overlay.setdefault("train", {})["preset"] = name
    return overlay


def _merge_keeping_comments(text: str, overlay: dict[str, Any]) -> str:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    def to_ruamel(value: Any) -> Any:
        if isinstance(value, dict):
            out = CommentedMap()
            for k, v in value.items():
                out[k] = to_ruamel(v)
            return out
        if isinstance(value, list):
            seq = CommentedSeq(to_ruamel(v) for v in value)
            if not any(isinstance(v, (dict, list)) for v in value):
                seq.fa.set_flow_style()
            return seq
        return value

    def merge(target: Any, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = to_ruamel(value)

    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 100
    rt.representer.add_representer(  # "key: null" stays "key: null", not "key:"
        type(None), lambda rep, _data: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    doc = rt.load(text)
    merge(doc, overlay)
    buf = io.StringIO()
    rt.dump(doc, buf)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.presets", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list presets and their sources")
    apply = sub.add_parser("apply", help="deep-merge a preset into a params file")
    apply.add_argument("name")
    apply.add_argument("--params", type=Path, default=Path("params.yaml"))
    apply.add_argument("--dry-run", action="store_true", help="print the result, write nothing")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in preset_names():
            _overlay, meta = load_preset(name)
            print(f"{name}\n  {meta.get('description', '').strip()}")
            print(f"  source: {' '.join(str(meta['source']).split())}")
        return 0
    try:
        text = apply_to_file(args.name, args.params, dry_run=args.dry_run)
    except (ValueError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(text, end="")
    else:
        print(f"applied preset {args.name} to {args.params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
