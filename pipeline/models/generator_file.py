"""The generator file, ``generator.pt``: written and read here and nowhere else.

One file holds what using a trained model needs: the (EMA) generator weights, the settings that
rebuild it (the training config it was written with, of which :class:`GeneratorSettings` are the
model's part) and metadata, including the bar grid (sample rate, tempo, beats per bar) and class
names. :func:`load` returns the model and its grid in one read; sampling, evaluation, the report
and ``bargan generate`` / ``export`` / ``serve`` read the file through this module, without
importing the trainer.

Files are written with :func:`torch.save` and read with ``torch.load(weights_only=True)`` (only
tensors, numbers, strings, lists, tuples and dicts): a file holding other pickled objects is
refused. A file that cannot be used raises :class:`CheckpointError`, whose message names the file
and the reason; the training checkpoints (:mod:`pipeline.train.checkpoint`) are read the same
way, through :func:`read_file`.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.fileio import atomic_write
from pipeline.grid import BarGrid
from pipeline.models.clusters import as_class_generator
from pipeline.models.registry import build_models_for

CHECKPOINT_FORMAT = "bargan-checkpoint"
GENERATOR_FORMAT = "bargan-generator"
FORMAT_VERSION = 1
FORMAT_NAMES = {
    CHECKPOINT_FORMAT: "bargan training checkpoint",
    GENERATOR_FORMAT: "bargan generator",
}


class CheckpointError(ValueError):
    """A checkpoint or generator file that cannot be used: ``str()`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class WrongFileKind(CheckpointError):
    """A readable file that is not the kind asked for; ``found_format`` is its ``format``
    record (e.g. ``CHECKPOINT_FORMAT`` where a generator file was expected) or None."""

    def __init__(self, path: str | os.PathLike, reason: str, found_format: str | None):
        super().__init__(path, reason)
        self.found_format = found_format


def read_file(
    path: str | os.PathLike, expected_format: str, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``, checked to be a dict whose ``format`` is
    ``expected_format``. A missing or unreadable file raises ``OSError``; any
    other failure (truncated, corrupt, not a torch file, unsafe pickle, wrong kind of file)
    raises :class:`CheckpointError` naming the file and the reason."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise CheckpointError(path, "empty file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(path, _load_failure(err)) from err
    found = obj.get("format") if isinstance(obj, dict) else None
    found = found if isinstance(found, str) else None
    if found != expected_format:
        kind = f"a {FORMAT_NAMES[found]} file" if found in FORMAT_NAMES else "something else"
        reason = f"not a {FORMAT_NAMES[expected_format]} file (it holds {kind})"
        raise WrongFileKind(path, reason, found)
    return obj


def _load_failure(err: BaseException) -> str:
    text = str(err).strip()
    if isinstance(err, pickle.UnpicklingError) and text.startswith("Weights only load failed"):
        return (
            "refused: it holds pickled Python objects, not only tensors and plain data "
            "(bargan loads files with torch.load(weights_only=True))"
        )
    first = text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(err).__name__
    return f"truncated or corrupt file ({first})"


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically and durably (:func:`atomic_write`)."""

    def write(tmp: str) -> None:
        # Through a file object: torch names the archive inside after a path it is given,
        # and the temporary name is random, so the bytes would differ run to run.
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    return atomic_write(path, write, durable=True)


# --- the generator file ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorSettings:
    """What rebuilds the generator (a :class:`pipeline.models.registry.ModelSettings`): the
    model's part of the config stored with it."""

    arch: str
    sample_rate: int
    length: int
    channels: int
    latent_dim: int
    model_dim: int
    num_classes: int
    extra: dict[str, Any] = field(default_factory=dict)
    # self-conditioning: each cluster's class and training bars (empty: conditioned on classes)
    cluster_classes: list[int] = field(default_factory=list)
    cluster_counts: list[int] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GeneratorSettings:
        """The model settings of a stored config (a training config's dict)."""
        return cls(
            arch=str(config["arch"]),
            sample_rate=int(config["sample_rate"]),
            length=int(config["length"]),
            channels=int(config.get("channels", 1)),
            latent_dim=int(config.get("latent_dim", 100)),
            model_dim=int(config.get("model_dim", 64)),
            num_classes=int(config.get("num_classes", 0)),
            extra=dict(config.get("extra") or {}),
            cluster_classes=[int(c) for c in config.get("cluster_classes") or []],
            cluster_counts=[int(n) for n in config.get("cluster_counts") or []],
        )


@dataclass(frozen=True)
class GeneratorFile:
    """One read of a generator file: the model (eval mode, no gradients), its settings, the bar
    grid it makes, the full config it was written with, and its metadata."""

    generator: nn.Module
    settings: GeneratorSettings
    grid: BarGrid
    config: dict[str, Any]
    metadata: dict[str, Any]

    @property
    def class_counts(self) -> list[int] | None:
        """Training bars per class, the mix a conditional generator learned (the train stage
        records them); None where the file has none: unconditional, or written before."""
        return list(self.metadata.get("class_counts") or []) or None


def save_generator(
    path: str | os.PathLike,
    generator: nn.Module,
    config: Any,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the generator weights, the config that rebuilds it (a dict, or an object with
    ``to_dict()`` such as the training config) and ``metadata`` (the bar grid, class names) for
    people using it outside the pipeline."""
    state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    obj = {
        "format": GENERATOR_FORMAT,
        "version": FORMAT_VERSION,
        "config": config.to_dict() if hasattr(config, "to_dict") else dict(config),
        "state_dict": state,
        "metadata": dict(metadata or {}),
    }
    return atomic_save(obj, path)


def copy_generator(
    src: str | os.PathLike, dst: str | os.PathLike, metadata: dict[str, Any]
) -> Path:
    """Copy a generator file, adding ``metadata`` (e.g. the bar grid and class names)."""
    obj = read_file(src, GENERATOR_FORMAT)
    obj["metadata"] = {**obj.get("metadata", {}), **metadata}
    return atomic_save(obj, dst)


def generator_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata stored with a generator (empty for files written without it)."""
    return dict(read_file(path, GENERATOR_FORMAT).get("metadata", {}))


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> GeneratorFile:
    """The generator of a file written by :func:`save_generator` (on ``device``, eval mode,
    without gradients) with its settings and bar grid. Unusable files raise
    :class:`CheckpointError`."""
    obj = read_file(path, GENERATOR_FORMAT)
    try:
        config = dict(obj["config"])
        settings = GeneratorSettings.from_config(config)
        generator = build_generator(settings)
        generator.load_state_dict(obj["state_dict"])
        generator = as_class_generator(generator, settings)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(path, f"cannot rebuild the generator from it ({detail})") from err
    generator.eval().requires_grad_(False)
    metadata = dict(obj.get("metadata", {}))
    grid = BarGrid.from_generator(
        metadata, settings.sample_rate, settings.length, settings.channels
    )
    return GeneratorFile(generator.to(device), settings, grid, config, metadata)


def read_generator(
    path: str | os.PathLike,
) -> tuple[nn.Module, GeneratorSettings, dict[str, Any]]:
    """``(generator, settings, metadata)`` of :func:`load`, on the CPU."""
    loaded = load(path)
    return loaded.generator, loaded.settings, loaded.metadata


def build_generator(settings: Any) -> nn.Module:
    """A fresh generator for ``settings`` (:class:`GeneratorSettings`, or a training config);
    under self-conditioning, the one conditioned on clusters that :func:`load` wraps."""
    generator, _ = build_models_for(settings)
    return generator
