"""Seam click energy: how much a bar seam sticks out in the high band compared with the rest.

A click at a seam is a burst of broadband energy (a jump or a kink in the waveform). It is
measured as the high-passed (``> cutoff_hz``, 4th-order Butterworth, zero phase) energy in a
``±half_window_ms`` window around the seam, divided by the median energy of same-sized windows
elsewhere in the signal (windows that touch a seam are left out). A seam that is as smooth as
the music around it scores about 1; a hard cut between bars that do not meet scores far higher.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, sosfiltfilt

DEFAULT_CUTOFF_HZ = 2000.0
DEFAULT_HALF_WINDOW_MS = 3.0


def click_energy(
    audio: np.ndarray,
    sample_rate: int,
    seams: Sequence[int] | np.ndarray,
    cutoff_hz: float = DEFAULT_CUTOFF_HZ,
    half_window_ms: float = DEFAULT_HALF_WINDOW_MS,
) -> np.ndarray:
    """Click energy of each seam (sample index) of ``audio`` (``[channels, frames]`` or 1-D).

    Returns one ratio per seam: seam-window high-band energy / median window energy elsewhere.
    """
    mono = np.atleast_2d(np.asarray(audio, dtype=np.float64)).mean(axis=0)
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz must be below Nyquist ({sample_rate / 2} Hz)")
    sos = butter(4, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    energy = np.square(sosfiltfilt(sos, mono))
    half = max(1, round(half_window_ms * sample_rate / 1000))
    width = 2 * half
    seams = np.asarray(seams, dtype=np.int64)

    n_windows = len(energy) // width
    starts = np.arange(n_windows) * width
    window_energy = energy[: n_windows * width].reshape(n_windows, width).mean(axis=1)
    touches_seam = np.zeros(n_windows, dtype=bool)
    for seam in seams:
        touches_seam |= (starts < seam + half) & (starts + width > seam - half)
    elsewhere = window_energy[~touches_seam]
    if len(elsewhere) == 0:
        raise ValueError("signal too short: no window away from the seams to compare with")
    reference = max(float(np.median(elsewhere)), 1e-20)

    ratios = []
    for seam in seams:
        lo, hi = max(0, int(seam) - half), min(len(energy), int(seam) + half)
        if hi <= lo:
            raise ValueError(f"seam {seam} is outside the signal ({len(energy)} samples)")
        ratios.append(float(energy[lo:hi].mean()) / reference)
    return np.asarray(ratios)


def bar_seams(n_bars: int, bar_samples: int) -> np.ndarray:
    """Sample positions of the seams between ``n_bars`` consecutive bars (``k * bar_samples``)."""
    return np.arange(1, n_bars, dtype=np.int64) * int(bar_samples)
