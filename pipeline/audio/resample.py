"""Anti-aliased rational-ratio resampling (polyphase FIR), never sample dropping."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample ``[..., frames]`` audio from ``source_rate`` to ``target_rate`` Hz."""
    if source_rate == target_rate:
        return audio
    ratio = Fraction(target_rate, source_rate)
    out = resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32, copy=False)


def resample_loop(audio: np.ndarray, source_rate: int, target_rate: int, frames: int) -> np.ndarray:
    """Resample ``[..., T]`` audio that loops (its end runs on into its start) to exactly
    ``frames`` samples at ``target_rate``: filtered as a circle (three copies in a row, the
    middle one kept), so the filter adds no fade at either end; then cut or padded (by
    wrapping) to ``frames``, which may differ from ``T * target / source`` by a rounding."""
    if source_rate == target_rate and audio.shape[-1] == frames:
        return audio
    length = audio.shape[-1]
    tripled = resample(np.concatenate([audio, audio, audio], axis=-1), source_rate, target_rate)
    start = round(length * target_rate / source_rate)
    middle = tripled[..., start : start + frames]
    if middle.shape[-1] < frames:
        middle = np.concatenate([middle, middle[..., : frames - middle.shape[-1]]], axis=-1)
    return np.ascontiguousarray(middle, dtype=np.float32)
