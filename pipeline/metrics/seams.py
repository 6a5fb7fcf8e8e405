"""Click energy at the seam when a bar loops.

A bar that does not end where it starts clicks every time it loops. The bar is looped with hard
cuts (as a sampler plays it, no crossfade), high-passed (zero-phase Butterworth, ``highpass_hz``),
and the mean high-frequency energy within ``window_ms`` of the seam is compared with the mean over
the rest of the bar, in dB. About 0 dB: the seam is no louder in the highs than the bar itself;
real bars that start on a hit score above 0, so read the generated number beside the held-out
real bars' number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import butter, sosfiltfilt


def loop(bars: np.ndarray, repeats: int = 3) -> np.ndarray:
    """``[N, T]`` mono bars -> ``[N, repeats*T]`` hard-cut loops."""
    return np.tile(bars, (1, repeats))


def seam_click_db(
    bars: np.ndarray,
    sample_rate: int,
    window_ms: float = 2.0,
    highpass_hz: float = 4000.0,
    chunk_size: int = 64,
) -> np.ndarray:
    """Per bar of ``[N, C, T]``: seam high-pass energy over the rest of the bar, in dB."""
    mono = np.asarray(bars, dtype=np.float64).mean(axis=1)
    length = mono.shape[1]
    cutoff = min(highpass_hz, 0.4 * sample_rate)
    sos = butter(4, cutoff, "highpass", fs=sample_rate, output="sos")
    half = max(1, round(window_ms * sample_rate / 1000.0))
    if 4 * half >= length:
        raise ValueError(f"click window of {window_ms} ms is too long for {length}-sample bars")
    out = np.empty(len(mono))
    for start in range(0, len(mono), chunk_size):
        energy = sosfiltfilt(sos, loop(mono[start : start + chunk_size]), axis=1) ** 2
        seam = energy[:, length - half : length + half].mean(1)
        rest = energy[:, length + half : 2 * length - half].mean(1)
        out[start : start + chunk_size] = 10.0 * np.log10((seam + 1e-20) / (rest + 1e-20))
    return out


def seam_click_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """Seam click energy of looped generated bars beside looped held-out real bars."""
    window_ms = float(options.get("click_window_ms", 2.0))
    highpass_hz = float(options.get("click_highpass_hz", 4000.0))
    threshold_db = float(options.get("click_threshold_db", 10.0))
    result: dict[str, float] = {
        "window_ms": window_ms,
        "highpass_hz": min(highpass_hz, 0.4 * int(options["sample_rate"])),
        "threshold_db": threshold_db,
    }
    sets = {"generated": generated}
    if valid is not None and len(valid):
        sets["valid"] = valid
    for name, bars in sets.items():
        clicks = seam_click_db(bars, int(options["sample_rate"]), window_ms, highpass_hz)
        result[f"{name}.click_db_median"] = float(np.median(clicks))
        result[f"{name}.click_db_mean"] = float(np.mean(clicks))
        result[f"{name}.fraction_clicks"] = float(np.mean(clicks > threshold_db))
        result[f"{name}.count"] = len(bars)
    return result
