"""Atomic writes for every output file: write beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[str], None],
    suffix: str = "",
    *,
    durable: bool = False,
) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto
    ``path``: no partial file survives a failure, and an existing ``path`` stays untouched.

    ``suffix`` ends the temporary name (for writers that infer the format from it).
    ``durable`` also flushes the file and the directory entry to disk before returning, for
    files a crash must not lose (training checkpoints).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
    except OSError as err:
        raise _naming(err, path) from err
    os.close(fd)
    try:
        write(tmp)
        if durable:
            _fsync(tmp)
        # mkstemp creates 0600; outputs get the mode any new file would (0666 less the umask)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(err, path) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        with contextlib.suppress(OSError):
            _fsync(path.parent)
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _naming(err: OSError, path: Path) -> OSError:
    """The same error naming the output being written (a write() on a full disk names none;
    the temporary file's name would mean nothing to the user)."""
    if err.errno is None:
        return err
    return type(err)(err.errno, err.strerror, str(path))


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default))

    atomic_write(path, write)


def write_csv_atomic(path: Path, table: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def write_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    # np.savez appends ".npz" unless the name already ends with it.
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
