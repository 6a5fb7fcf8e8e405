"""Training checkpoints: the full, resumable training state, written atomically.

Files are written and read as the generator file is (:mod:`pipeline.models.generator_file`:
``torch.load(weights_only=True)``, only tensors, numbers, strings, lists, tuples and dicts, RNG
states included); a file holding other pickled objects is refused.

A run folder keeps the newest ``KEEP_CHECKPOINTS`` training checkpoints: ``checkpoint.pt``
(newest), ``checkpoint.1.pt``, ``checkpoint.2.pt`` ... (older), rotated on every save.
:func:`find_resumable` returns the newest one that loads and is complete, with the reasons
the newer ones were skipped. A file that cannot be used raises :class:`CheckpointError`,
whose message names the file and the reason. The run folder's lock is
:mod:`pipeline.train.run_lock`.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.models.generator_file import (
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    atomic_save,
    load,
    read_file,
)
from pipeline.train.config import TrainConfig

KEEP_CHECKPOINTS = 3  # checkpoint.pt plus this many minus one older ones
CHECKPOINT_KEYS = (
    "config",
    "step",
    "generator",
    "discriminator",
    "ema_generator",
    "opt_g",
    "opt_d",
    "rng",
    "losses",
)


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
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``); a file
    that cannot be used raises :class:`CheckpointError` (see :func:`read_file`), including a
    checkpoint without one of ``CHECKPOINT_KEYS``."""
    ckpt = read_file(path, CHECKPOINT_FORMAT, map_location)
    missing = [key for key in CHECKPOINT_KEYS if key not in ckpt]
    if missing:
        raise CheckpointError(path, f"incomplete checkpoint (no {', '.join(missing)})")
    return ckpt


def checkpoint_files(path: str | os.PathLike, keep: int = KEEP_CHECKPOINTS) -> list[Path]:
    """The checkpoint slots of ``path``, newest first: ``checkpoint.pt``, ``checkpoint.1.pt``,
    ... ``checkpoint.<keep-1>.pt`` (whether or not they exist)."""
    path = Path(path)
    return [path] + [path.with_name(f"{path.stem}.{i}{path.suffix}") for i in range(1, keep)]


def rotate_checkpoints(path: str | os.PathLike, keep: int = KEEP_CHECKPOINTS) -> None:
    """Shift every existing slot one older (the oldest is dropped), freeing ``path``."""
    slots = checkpoint_files(path, keep)
    if len(slots) < 2:
        return  # one slot: the save replaces it atomically
    slots[-1].unlink(missing_ok=True)
    for newer, older in zip(reversed(slots[:-1]), reversed(slots[1:]), strict=True):
        if newer.exists():
            os.replace(newer, older)


@dataclass
class Resumable:
    """What :func:`find_resumable` found: the newest usable checkpoint (``None`` if none is)
    and the ``(file, reason)`` of every newer one that could not be used."""

    path: Path | None
    checkpoint: dict[str, Any] | None
    skipped: list[tuple[Path, str]]


def find_resumable(path: str | os.PathLike, keep: int = KEEP_CHECKPOINTS) -> Resumable:
    """The newest of :func:`checkpoint_files` that loads and is complete (CPU tensors).
    Unusable files are skipped with their reason; a file that vanishes meanwhile is passed
    over; other ``OSError`` (e.g. permission denied) propagate."""
    skipped: list[tuple[Path, str]] = []
    for slot in checkpoint_files(path, keep):
        if not slot.exists():
            continue
        try:
            return Resumable(slot, load_checkpoint(slot), skipped)
        except FileNotFoundError:
            continue
        except CheckpointError as err:
            skipped.append((slot, err.reason))
    return Resumable(None, None, skipped)


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, TrainConfig]:
    """A generator file's model (:func:`pipeline.models.generator_file.load`) with the
    training config it was written with."""
    loaded = load(path, device)
    return loaded.generator, TrainConfig.from_dict(loaded.config)
