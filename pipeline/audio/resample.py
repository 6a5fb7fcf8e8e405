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
