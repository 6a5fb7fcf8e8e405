"""A content-addressed cache of per-track results, shared by DVC and Snakemake runs.

DVC deletes a stage's outputs before it runs and Snakemake does the same for directory
outputs, so incremental work cannot live in the outputs. A result is stored under a key made
of everything it depends on: the input files' bytes, the options, and the source code of the
modules that compute it. Adding a recording therefore processes only that recording; changing
an option or the code recomputes everything it touches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.fileio import write_json_atomic


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
