"""Stand-ins for optional dependencies that a bare GPU image lacks, so the training benchmarks
run there without installing anything.

The pipeline's stages need librosa, soundfile and jsonschema; the benchmarks need only a sliver
of each: the metrics take librosa's mel filterbank (``librosa.filters.mel``), importing the
metric registry imports ``pipeline.params`` (which imports jsonschema to validate params files)
and the demo renderer imports ``pipeline.data.synth`` (which imports soundfile to write wav
files the benchmarks never write). :func:`install_fallbacks` puts a stand-in module in
``sys.modules`` for each of these that is missing, and returns one line per stand-in for the
caller to print:

* ``librosa``: ``filters.mel`` only, the same formula as librosa's (Slaney mel scale and area
  normalisation by default, HTK optional); tests/integration/test_bench_scripts.py checks it
  against librosa.
* ``jsonschema``: params files are read without schema validation.
* ``soundfile``: any read or write raises; rendering bars in memory works.

Nothing is stubbed when the real package imports.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _hz_to_mel(frequencies: np.ndarray, htk: bool) -> np.ndarray:
    f = np.asanyarray(frequencies, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(
        f >= min_log_hz,
        min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
        mels,
    )


def _mel_to_hz(mels: np.ndarray, htk: bool) -> np.ndarray:
    m = np.asanyarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    *,
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    dtype: Any = np.float32,
) -> np.ndarray:
    """``[n_mels, 1 + n_fft // 2]`` triangular mel filters, as ``librosa.filters.mel``."""
    if fmax is None:
        fmax = float(sr) / 2
    n_mels = int(n_mels)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    low, high = _hz_to_mel(np.asarray(fmin), htk), _hz_to_mel(np.asarray(fmax), htk)
    mel_f = _mel_to_hz(np.linspace(low, high, n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=dtype)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    elif norm is not None:
        raise NotImplementedError(f"the librosa stand-in takes norm 'slaney' or None, not {norm}")
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn(
            "Empty filters detected in mel frequency basis. Some channels will produce empty "
            "responses. Try increasing your sampling rate (and fmax) or reducing n_mels.",
            UserWarning,
            stacklevel=2,
        )
    return weights


def _librosa_stand_in() -> types.ModuleType:
    module = types.ModuleType("librosa")
    filters = types.ModuleType("librosa.filters")
    filters.mel = mel_filterbank  # type: ignore[attr-defined]
    module.filters = filters  # type: ignore[attr-defined]
    module.__bargan_stand_in__ = True  # type: ignore[attr-defined]
    sys.modules["librosa.filters"] = filters
    return module


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
    "librosa": (_librosa_stand_in, "mel filterbank from bench/compat.py (librosa's formula)"),
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
