"""Checkpoints: full training state and a small sampling-only generator file, written atomically.

Files are written with :func:`torch.save` and are loadable with ``torch.load(weights_only=True)``
(only tensors, numbers, strings, lists, tuples and dicts are stored -- RNG states included).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.fileio import atomic_write
from pipeline.models.registry import build_models_for
from pipeline.train.config import TrainConfig

CHECKPOINT_FORMAT = "bargan-checkpoint"
GENERATOR_FORMAT = "bargan-generator"
FORMAT_VERSION = 1


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically and durably (:func:`atomic_write`)."""

    def write(tmp: str) -> None:
        # Through a file object: torch names the archive inside after a path it is given,
        # and the temporary name is random, so the bytes would differ run to run.
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    return atomic_write(path, write, durable=True)


# --- RNG state ---------------------------------------------------------------------------------
def capture_rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Global torch (CPU + every CUDA device, if CUDA is initialised), numpy and python RNG
    states, plus the states of the given named ``torch.Generator`` objects."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else [],
        "numpy": (
            np_state[0],
            [int(v) for v in np_state[1]],
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ),
        "python": random.getstate(),
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    return state


def restore_rng_state(
    state: dict[str, Any], generators: dict[str, torch.Generator] | None = None
) -> None:
    """Inverse of :func:`capture_rng_state`.  CUDA states are restored when the device count
    matches; named generators must all be present in ``state``."""
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    saved = state.get("generators", {})
    for gname, g in (generators or {}).items():
        if gname not in saved:
            raise KeyError(f"checkpoint has no state for RNG {gname!r}")
        g.set_state(saved[gname].cpu())


# --- full training checkpoint --------------------------------------------------------------------
def save_checkpoint(
    path: str | os.PathLike,
    *,
    config: TrainConfig,
    step: int,
    generator: nn.Module,
    discriminator: nn.Module,
    ema_generator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    losses: list[dict[str, float]],
    rng_generators: dict[str, torch.Generator] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Atomically write the full training state (see module docstring)."""
    obj = {
        "format": CHECKPOINT_FORMAT,
        "version": FORMAT_VERSION,
        "config": config.to_dict(),
        "step": int(step),
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "ema_generator": ema_generator.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "rng": capture_rng_state(rng_generators),
        "losses": [dict(r) for r in losses],
        "extra": dict(extra or {}),
    }
    return atomic_save(obj, path)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a bargan training checkpoint")
    return ckpt


# --- sampling-only generator file ----------------------------------------------------------------
def save_generator(
    path: str | os.PathLike,
    ema_generator: nn.Module,
    config: TrainConfig,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write the (EMA) generator weights, the config needed to rebuild it, and metadata about
    the bars it makes (tempo, beats per bar, class names) for people using it outside the
    pipeline."""
    state = {k: v.detach().cpu() for k, v in ema_generator.state_dict().items()}
    obj = {
        "format": GENERATOR_FORMAT,
        "version": FORMAT_VERSION,
        "config": config.to_dict(),
        "state_dict": state,
        "metadata": dict(metadata or {}),
    }
    return atomic_save(obj, path)


def copy_generator(
    src: str | os.PathLike, dst: str | os.PathLike, metadata: dict[str, Any]
) -> Path:
    """Copy a generator file, adding ``metadata`` (e.g. the bar grid and class names)."""
    obj = torch.load(Path(src), map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != GENERATOR_FORMAT:
        raise ValueError(f"{src} is not a bargan generator file")
    obj["metadata"] = {**obj.get("metadata", {}), **metadata}
    return atomic_save(obj, dst)


def generator_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata stored with a generator (empty for files written without it)."""
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != GENERATOR_FORMAT:
        raise ValueError(f"{path} is not a bargan generator file")
    return dict(obj.get("metadata", {}))


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, TrainConfig]:
    """Rebuild the generator saved by :func:`save_generator` (eval mode, on ``device``)."""
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != GENERATOR_FORMAT:
        raise ValueError(f"{path} is not a bargan generator file")
    config = TrainConfig.from_dict(obj["config"])
    generator = build_generator(config)
    generator.load_state_dict(obj["state_dict"])
    generator.to(device).eval()
    generator.requires_grad_(False)
    return generator, config


def build_generator(config: TrainConfig) -> nn.Module:
    generator, _ = build_models_for(config)
    return generator
