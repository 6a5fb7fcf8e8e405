"""One trainer per run folder: an exclusive lock on ``<run folder>/train.lock``.

:func:`run_lock` holds an exclusive ``flock`` on the lock file (which records the holder's PID)
while a trainer trains. The operating system releases it when the process ends, however it
ends, so it is never stale. A second trainer on the same folder gets :class:`RunFolderBusy` at
once, naming the folder and the PID of the holder. Without ``fcntl`` (Windows) the lock is a
no-op.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "train.lock"


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
