"""Stand-ins for optional dependencies that a bare GPU image lacks, so the training benchmarks
run there without installing anything.

The pipeline's stages need soundfile and jsonschema; the benchmarks need only a sliver of each:
the metrics import ``pipeline.params`` (which imports jsonschema to validate params files) and
the demo renderer imports ``pipeline.data.synth`` (which imports soundfile to write wav files the
benchmarks never write). The metrics need no librosa: their mel filterbank is
:mod:`pipeline.audio.mel`. :func:`install_fallbacks` puts a stand-in module in
``sys.modules`` for each of these that is missing, and returns one line per stand-in for the
caller to print:

* ``jsonschema``: params files are read without schema validation.
* ``soundfile``: any read or write raises; rendering bars in memory works.

Nothing is stubbed when the real package imports.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


def _jsonschema_stand_in() -> types.ModuleType:
    module = types.ModuleType("jsonschema")

    class ValidationError(Exception):
        pass

    class Draft202012Validator:
        def __init__(self, schema: Any) -> None:
            self.schema = schema

        def iter_errors(self, instance: Any):
            return iter(())  # no validation without jsonschema

    module.ValidationError = ValidationError  # type: ignore[attr-defined]
    module.Draft202012Validator = Draft202012Validator  # type: ignore[attr-defined]
    module.__bargan_stand_in__ = True  # type: ignore[attr-defined]
    return module


def _soundfile_stand_in() -> types.ModuleType:
    module = types.ModuleType("soundfile")

    class LibsndfileError(RuntimeError):
        pass

    def _missing(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("soundfile is not installed: audio files cannot be read or written")

    module.LibsndfileError = LibsndfileError  # type: ignore[attr-defined]
    for name in ("read", "write", "info", "SoundFile"):
        setattr(module, name, _missing)
    module.__bargan_stand_in__ = True  # type: ignore[attr-defined]
    return module


STAND_INS = {
    "jsonschema": (_jsonschema_stand_in, "params files read without schema validation"),
    "soundfile": (_soundfile_stand_in, "no audio files read or written (bars stay in memory)"),
}


def available(name: str) -> bool:
    """Whether module ``name`` can be imported (a stand-in does not count)."""
    module = sys.modules.get(name)
    if module is not None:
        return not getattr(module, "__bargan_stand_in__", False)
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def importable(name: str) -> bool:
    """Whether module ``name`` imports (found but broken, or a stand-in, does not count)."""
    if not available(name):
        return False
    try:
        importlib.import_module(name)
    except Exception:  # ImportError, or an install that breaks on import (e.g. no libsndfile)
        return False
    return True


def install_fallbacks(names: tuple[str, ...] = tuple(STAND_INS)) -> list[str]:
    """A stand-in in ``sys.modules`` for each of ``names`` that does not import; one line per
    stand-in, saying what it replaces."""
    notes = []
    for name in names:
        if importable(name):
            continue
        build, what = STAND_INS[name]
        sys.modules[name] = build()
        notes.append(f"{name} is not installed: {what}")
    return notes


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
