"""Atomic writes for every output file: write beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas costs 90 MB resident; bargan generate has no table to write
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


# atomic_write's temporary names: ".<name>." + mkstemp's 8 random characters + ".tmp[suffix]"
TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left in ``folder`` (not below it) when
    its process was killed (SIGKILL, a power cut); returns them. Only for a folder whose
    writer the caller excludes (e.g. by holding its lock): a live writer's file would go too."""
    removed = []
    for path in Path(folder).iterdir():
        if TEMPORARY_NAME.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


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


def staging_dir(out_dir: str | os.PathLike) -> Path:
    """A new empty folder beside ``out_dir`` to build it in, then :func:`replace_dir`."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))


def replace_dir(staging: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Put the finished ``staging`` folder at ``out_dir`` (two renames; an old ``out_dir`` is
    put back if the second fails, and removed only after it succeeded)."""
    staging, out_dir = Path(staging), Path(out_dir)
    os.chmod(staging, 0o755)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        if old is not None:
            with contextlib.suppress(OSError):
                os.replace(old / out_dir.name, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def in_place_of(err: OSError, staging: str | os.PathLike, out_dir: str | os.PathLike) -> OSError:
    """``err`` naming the file where it would have been in ``out_dir``, not in the staging
    folder (whose name means nothing to the user and is gone after the failure)."""
    name = err.filename
    if name is None or err.errno is None:
        return err
    try:
        relative = Path(name).relative_to(staging)
    except ValueError:
        return err
    return type(err)(err.errno, err.strerror, str(Path(out_dir) / relative))
