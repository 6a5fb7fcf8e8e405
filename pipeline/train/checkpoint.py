"""Checkpoints: full training state and a small sampling-only generator file, written atomically.

Files are written with :func:`torch.save` and are loadable with ``torch.load(weights_only=True)``
(only tensors, numbers, strings, lists, tuples and dicts are stored -- RNG states included).
Nothing is ever loaded otherwise: a file holding other pickled objects is refused.

A run folder keeps the newest ``KEEP_CHECKPOINTS`` training checkpoints: ``checkpoint.pt``
(newest), ``checkpoint.1.pt``, ``checkpoint.2.pt`` ... (older), rotated on every save.
:func:`find_resumable` returns the newest one that loads and is complete, with the reasons
the newer ones were skipped. A file that cannot be used raises :class:`CheckpointError`,
whose message names the file and the reason.

One trainer writes a run folder's checkpoints: :func:`run_lock` holds an exclusive ``flock``
on ``<run folder>/train.lock`` (which records the holder's PID) while it trains. The operating
system releases it when the process ends, however it ends, so it is never stale. A second
trainer on the same folder gets :class:`RunFolderBusy` at once, naming the folder and the PID
of the holder. Without ``fcntl`` (Windows) the lock is a no-op.
"""

from __future__ import annotations

import os
import pickle
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.fileio import atomic_write
from pipeline.models.registry import build_models_for
from pipeline.train.config import TrainConfig

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

CHECKPOINT_FORMAT = "bargan-checkpoint"
GENERATOR_FORMAT = "bargan-generator"
FORMAT_VERSION = 1
KEEP_CHECKPOINTS = 3  # checkpoint.pt plus this many minus one older ones
LOCK_NAME = "train.lock"
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
    obj = read_file(src, GENERATOR_FORMAT)
    obj["metadata"] = {**obj.get("metadata", {}), **metadata}
    return atomic_save(obj, dst)


def generator_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata stored with a generator (empty for files written without it)."""
    return dict(read_file(path, GENERATOR_FORMAT).get("metadata", {}))


def read_generator(path: str | os.PathLike) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """``(generator, config, metadata)`` from a file written by :func:`save_generator`: on the
    CPU, in eval mode, without gradients. Unusable files raise :class:`CheckpointError`."""
    obj = read_file(path, GENERATOR_FORMAT)
    try:
        config = TrainConfig.from_dict(obj["config"])
        generator = build_generator(config)
        generator.load_state_dict(obj["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(path, f"cannot rebuild the generator from it ({detail})") from err
    generator.eval().requires_grad_(False)
    return generator, config, dict(obj.get("metadata", {}))


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, TrainConfig]:
    """Rebuild the generator saved by :func:`save_generator` (eval mode, on ``device``)."""
    generator, config, _ = read_generator(path)
    return generator.to(device), config


def build_generator(config: TrainConfig) -> nn.Module:
    generator, _ = build_models_for(config)
    return generator


# --- one trainer per run folder ------------------------------------------------------------
class RunFolderBusy(RuntimeError):
    """Another process trains in this run folder; the message names the folder and its PID."""

    def __init__(self, run_dir: Path, pid: int | None):
        holder = f"PID {pid}" if pid else "PID unknown"
        super().__init__(
            f"{run_dir}: another training ({holder}) is using this run folder; wait for it to "
            "finish or stop it, then run again"
        )
        self.run_dir = run_dir
        self.pid = pid


@dataclass
class _Held:
    fd: int
    pid: int
    thread: int


_held: dict[str, _Held] = {}
_guard = threading.Lock()


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the run folder's lock for the block; re-entrant within one thread of one process
    (the train stage holds it around MLflow and :func:`~pipeline.train.loop.train_gan`, which
    takes it too). Raises :class:`RunFolderBusy` when another process or thread holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = str(run_dir.resolve())
    with _guard:
        held = _held.get(key)
        if held is not None and held.pid == os.getpid():  # not one inherited through fork()
            if held.thread != threading.get_ident():
                raise RunFolderBusy(run_dir, os.getpid())
            acquired = False
        else:
            held = _Held(_acquire(run_dir), os.getpid(), threading.get_ident())
            _held[key] = held
            acquired = True
    try:
        yield run_dir / LOCK_NAME
    finally:
        if acquired:
            with _guard:
                _held.pop(key, None)
                _release(held.fd)


def _acquire(run_dir: Path) -> int:
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _recorded_pid(fd)
        os.close(fd)
        raise RunFolderBusy(run_dir, pid) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # the file stays (removing it would race with a waiting trainer)
    finally:
        os.close(fd)  # closing releases the flock


def _recorded_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
