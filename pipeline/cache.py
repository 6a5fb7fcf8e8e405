"""A content-addressed cache of per-track results, shared by DVC and Snakemake runs.

DVC deletes a stage's outputs before it runs and Snakemake does the same for directory
outputs, so incremental work cannot live in the outputs. A result is stored under a key made
of everything it depends on: the input files' bytes, the options, and the source code of the
modules that compute it. Adding a recording therefore processes only that recording; changing
an option or the code recomputes everything it touches.

:func:`cached_track` is the one pattern of the per-track stages (analyze, bars): look the track's
result up by its key, else compute and store it; DVC's stage maps it over every track with a
process pool, Snakemake's per-track jobs call it for one track to fill the cache
(``--only``, :func:`pipeline.stages.common.add_per_track_arguments`), and the aggregate job
then finds every result there.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.fileio import write_json_atomic, write_npz_atomic


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read in 1 MiB blocks (any ``hashlib`` algorithm)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ResultCache:
    """Files under ``root/<namespace>/<key[:2]>/<key>.<suffix>``; ``root=None`` disables it."""

    def __init__(self, root: Path | None, namespace: str) -> None:
        self.root = None if root is None else Path(root) / namespace

    def path(self, key: str, suffix: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / key[:2] / f"{key}.{suffix}"

    def get_json(self, key: str) -> Any | None:
        path = self.path(key, "json")
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # a damaged entry is recomputed

    def put_json(self, key: str, value: Any) -> None:
        path = self.path(key, "json")
        if path is not None:
            write_json_atomic(path, value)

    def get_arrays(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored beside a key's JSON, or None (a damaged file too: recomputed)."""
        path = self.path(key, "npz")
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as packed:
                return {name: packed[name] for name in packed.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return None

    def put_arrays(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        path = self.path(key, "npz")
        if path is not None:
            write_npz_atomic(path, **arrays)


Computed = tuple[Any, dict[str, np.ndarray] | None]


def cached_track(
    cache: ResultCache, key: str, compute: Callable[[], Computed], arrays: bool = False
) -> tuple[Any, dict[str, np.ndarray] | None, bool]:
    """``(result, arrays, from_cache)`` of one track: the cached entry under ``key`` (with its
    arrays when ``arrays``: an entry missing them is recomputed), else ``compute()`` -> (JSON
    result, arrays or None), stored (arrays first, so a stored JSON means a complete entry).
    An exception from ``compute`` stores nothing."""
    result = cache.get_json(key)
    stored = cache.get_arrays(key) if arrays and result is not None else None
    if result is not None and (stored is not None or not arrays):
        return result, stored, True
    result, computed = compute()
    if computed is not None:
        cache.put_arrays(key, computed)
    cache.put_json(key, result)
    return result, computed, False
