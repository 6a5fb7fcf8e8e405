"""Click energy at the seam when a bar loops.

A bar that does not end where it starts clicks every time it loops. The bar is looped with hard
cuts (as a sampler plays it, no crossfade), high-passed (zero-phase Butterworth, ``highpass_hz``),
and the mean high-frequency energy within ``window_ms`` of the seam is compared, in dB, with the
larger of its mean over the rest of the bar and its mean around the bar's other beats. Real bars
start on a hit, so the reference includes where hits are too (against the whole bar alone they
scored several dB, as loud as a mis-cut loop); the whole bar keeps a steady reference where
there are no hits. About 0 dB: the seam is no louder in the highs than the bar or a beat; a bar
cut at the wrong tempo scores about 10 dB. Noise, silence and a tone with whole cycles have no
seam to hear and score about 0 dB or less: this is a loop-defect detector, not a measure of music.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import butter, sosfiltfilt

from pipeline.grid import DEFAULT_BEATS_PER_BAR
from pipeline.metrics.features import array_key, cached
from pipeline.metrics.spec import DEFECT_DETECTOR, NOT_COMPARABLE, Headline, MetricSpec

OPTIONS: dict[str, Any] = {
    "click_window_ms": 2.0,
    "click_highpass_hz": 4000.0,
    "click_threshold_db": 10.0,
}


def loop(bars: np.ndarray, repeats: int = 3) -> np.ndarray:
    """``[N, T]`` mono bars -> ``[N, repeats*T]`` hard-cut loops."""
    return np.tile(bars, (1, repeats))


def seam_click_db(
    bars: np.ndarray,
    sample_rate: int,
    window_ms: float = 2.0,
    highpass_hz: float = 4000.0,
    beats_per_bar: int = DEFAULT_BEATS_PER_BAR,
    chunk_size: int = 64,
) -> np.ndarray:
    """Per bar of ``[N, C, T]``: high-pass energy around the seam over the larger of its mean
    over the rest of the bar and around the other beats, in dB."""
    mono = np.asarray(bars, dtype=np.float64).mean(axis=1)
    length = mono.shape[1]
    cutoff = min(highpass_hz, 0.4 * sample_rate)
    sos = butter(4, cutoff, "highpass", fs=sample_rate, output="sos")
    half = max(1, round(window_ms * sample_rate / 1000.0))
    if beats_per_bar < 2 or 2 * beats_per_bar * half >= length:
        raise ValueError(
            f"need at least two beats of more than {2 * half} samples per bar, got "
            f"{beats_per_bar} beats in {length} samples"
        )
    beats = [length + round(k * length / beats_per_bar) for k in range(1, beats_per_bar)]
    out = np.empty(len(mono))
    for start in range(0, len(mono), chunk_size):
        energy = sosfiltfilt(sos, loop(mono[start : start + chunk_size]), axis=1) ** 2
        seam = energy[:, length - half : length + half].mean(1)
        rest = energy[:, length + half : 2 * length - half].mean(1)
        on_beats = np.mean([energy[:, b - half : b + half].mean(1) for b in beats], axis=0)
        reference = np.maximum(rest, on_beats)
        out[start : start + chunk_size] = 10.0 * np.log10((seam + 1e-20) / (reference + 1e-20))
    return out


def seam_click_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """Seam click energy of looped generated bars beside looped held-out real bars."""
    window_ms = float(options.get("click_window_ms", OPTIONS["click_window_ms"]))
    highpass_hz = float(options.get("click_highpass_hz", OPTIONS["click_highpass_hz"]))
    threshold_db = float(options.get("click_threshold_db", OPTIONS["click_threshold_db"]))
    result: dict[str, float] = {
        "window_ms": window_ms,
        "highpass_hz": min(highpass_hz, 0.4 * int(options["sample_rate"])),
        "threshold_db": threshold_db,
    }
    sets = {"generated": generated}
    if valid is not None and len(valid):
        sets["valid"] = valid
    beats_per_bar = int(options.get("beats_per_bar", DEFAULT_BEATS_PER_BAR))
    settings = (int(options["sample_rate"]), window_ms, highpass_hz, beats_per_bar)
    for name, bars in sets.items():
        clicks = cached(
            options,
            ("seam_clicks", *array_key(bars), *settings),
            lambda bars=bars: seam_click_db(bars, *settings),
        )
        result[f"{name}.click_db_median"] = float(np.median(clicks))
        result[f"{name}.click_db_mean"] = float(np.mean(clicks))
        result[f"{name}.fraction_clicks"] = float(np.mean(clicks > threshold_db))
        result[f"{name}.count"] = len(bars)
    return result


SPEC = MetricSpec(
    name="seam_clicks",
    function=seam_click_scores,
    options=OPTIONS,
    protocol=f"ours: high-passed energy at the loop seam; {NOT_COMPARABLE}",
    role=DEFECT_DETECTOR,
    headlines=(Headline("click_db_median", "lower", band=3.0),),
)
