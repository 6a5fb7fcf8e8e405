"""Rhythm of looped bars: tempo against the target, a hit on the downbeat, onsets on the 16th grid.

Every analysis is circular: a bar is heard as a loop, so windows that reach past its end wrap
around to its start, exactly as when it repeats. Onset strength is a SuperFlux-style spectral
flux: the rise of power in 24 mel bands over ~32 ms frames every millisecond, each band scaled by
its mean power (so a hi-hat counts beside a kick), against the previous frame's maximum over
neighbouring bands (so a kick's pitch sweep is not a second onset). A steady bar (a held tone,
silence) has no onsets: its strength is scaled by ``FLUX_FLOOR`` instead of its own round-off.
Onsets are its peaks at least 50 ms apart that stand out from the bar's background: above three
times its mean and ``ONSET_CONTRAST`` times its median (the peaks of stationary noise reach about
five times its median, a drum hit hundreds). Each is then moved to the sharpest 3 ms energy rise
within half a frame, because a short transient shows in a 32 ms frame before it happens.

- Tempo: autocorrelation of the (10 ms smoothed) onset strength around the loop, weighted by
  a log-normal prior one octave wide centred on the target tempo (as librosa's estimator), peak
  refined by parabolic interpolation; a bar without onsets has no tempo. ``fraction_tempo_ok``
  counts bars within ``tempo_tolerance`` of the target; ``fraction_tempo_ok_octave`` also
  accepts half/double.
- Downbeat: ``fraction_downbeat_onset`` is the share of bars with an onset within
  ``downbeat_tolerance_ms`` of the bar start (noise and silence have none);
  ``downbeat_strength_median`` compares the onset strength there with the mean over all beats
  (above 1: the downbeat is accented).
- Grid: ``grid_alignment`` is the share of onset strength (the whole detection function, every
  bar pooled) within ``grid_tolerance_ms`` of a 16th note, over the share of time that is
  (``chance_grid_share``): 1 for noise, a steady tone or silence (no onsets: chance by
  definition), up to ``1 / chance_grid_share`` when every rise of energy is on the grid. It
  replaces the mean distance of onsets to the grid, which a bar with a few random onsets could
  win by chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.signal import find_peaks

from pipeline.audio.mel import mel_filterbank
from pipeline.grid import DEFAULT_BEATS_PER_BAR, tempo_of
from pipeline.metrics.features import array_key, cached
from pipeline.metrics.spec import NOT_COMPARABLE, QUALITY, Headline, MetricSpec

WINDOW_MS = 32.0  # analysis window; rounded to a power of two in samples
HOP_MS = 1.0
N_BANDS = 24
SMOOTH_MS = 10.0
MIN_ONSET_GAP_MS = 50.0  # merges the parts of one hit (a clap's bursts and tail)
REFINE_MS = 3.0
ONSET_THRESHOLD = 3.0  # onset strength peaks at least this many times the bar's mean
ONSET_CONTRAST = 20.0  # ... and this many times its median
FLUX_FLOOR = 0.01  # mean strength (band-relative rises summed over bands) of a steady bar
GRID_TOLERANCE_MS = 15.0

OPTIONS: dict[str, Any] = {"tempo_tolerance": 0.04, "downbeat_tolerance_ms": 30.0}


def _fft_size(sample_rate: int) -> int:
    return int(2 ** round(np.log2(WINDOW_MS * sample_rate / 1000.0)))


def onset_detection(
    bars: np.ndarray, sample_rate: int, chunk_size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Onset strength of looped bars ``[N, C, T]`` -> (``[N, P]`` over one loop period, in units
    of its mean (at least ``FLUX_FLOOR``), and the time in samples within the bar of each of the
    ``P`` points)."""
    mono = torch.from_numpy(np.asarray(bars, dtype=np.float32).mean(axis=1))
    length = mono.shape[1]
    n_points = max(8, round(length / (HOP_MS * sample_rate / 1000.0)))
    centres = np.round(np.arange(n_points) * length / n_points).astype(np.int64)
    n_fft = _fft_size(sample_rate)
    index = torch.from_numpy((centres[:, None] + np.arange(n_fft) - n_fft // 2) % length)
    window = torch.hann_window(n_fft, periodic=True)
    bands = torch.from_numpy(mel_filterbank(sample_rate, n_fft, N_BANDS))  # some empty at low rates
    out = np.empty((len(mono), n_points))
    for start in range(0, len(mono), chunk_size):
        power = torch.fft.rfft(mono[start : start + chunk_size, index] * window).abs().square()
        band_power = (power @ bands.T).double()  # [n, P, bands]
        mean = band_power.mean(1, keepdim=True)
        scale = mean + 1e-3 * mean.mean(2, keepdim=True) + 1e-20
        # SuperFlux (Böck & Widmer 2013): compare with the previous frame's maximum over
        # neighbouring bands, so a pitch glide (a kick's sweep) is not a new onset.
        previous = band_power.roll(1, dims=1)
        previous = torch.nn.functional.max_pool1d(
            previous.reshape(-1, 1, previous.shape[2]), 3, stride=1, padding=1
        ).reshape(previous.shape)
        rise = (band_power - previous).clamp_min(0) / scale
        strength = rise.sum(2)
        strength = strength / strength.mean(1, keepdim=True).clamp_min(FLUX_FLOOR)
        out[start : start + chunk_size] = strength.numpy()
    # A rise between the frames centred at c - hop and c is centred half a hop before c.
    return out, centres - 0.5 * length / n_points


def _circular_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    n = values.shape[-1]
    lag = np.minimum(np.arange(n), n - np.arange(n))
    kernel = np.exp(-0.5 * (lag / max(sigma, 1e-6)) ** 2)
    kernel /= kernel.sum()
    return np.fft.irfft(np.fft.rfft(values) * np.fft.rfft(kernel), n=n)


def estimate_tempo(
    detection: np.ndarray, bar_seconds: float, target_bpm: float, smooth_points: float = 10.0
) -> np.ndarray:
    """Tempo (bpm) of each looped bar from its circular detection function ``[N, P]``."""
    n_points = detection.shape[1]
    envelope = _circular_smooth(np.maximum(detection, 0.0), smooth_points)
    envelope = envelope - envelope.mean(1, keepdims=True)
    autocorr = np.fft.irfft(np.abs(np.fft.rfft(envelope)) ** 2, n=n_points)
    lags = np.arange(1, n_points // 2 + 1)
    bpm = 60.0 * n_points / (lags * bar_seconds)
    prior = np.exp(-0.5 * np.log2(bpm / target_bpm) ** 2)
    score = autocorr[:, lags] * prior
    best = np.argmax(score, axis=1)
    tempo = np.full(len(detection), np.nan)
    for i, b in enumerate(best):
        if autocorr[i, 0] <= 1e-12 or score[i, b] <= 0:
            continue
        lag = float(lags[b])
        if 0 < b < len(lags) - 1:
            left, mid, right = autocorr[i, lags[b - 1 : b + 2]]
            curvature = left - 2 * mid + right
            if curvature < 0:
                lag += 0.5 * (left - right) / curvature
        tempo[i] = 60.0 * n_points / (lag * bar_seconds)
    return tempo


def detect_onsets(
    strength: np.ndarray, threshold: float, min_gap_points: int, contrast: float = ONSET_CONTRAST
) -> np.ndarray:
    """Onset points (indices into one loop period) of one bar's circular onset strength: peaks
    above ``threshold`` and above ``contrast`` times the median strength."""
    n = len(strength)
    threshold = max(threshold, contrast * float(np.median(strength)))
    peaks, _ = find_peaks(np.tile(strength, 3), height=threshold, distance=max(1, min_gap_points))
    return np.unique(peaks[(peaks >= n) & (peaks < 2 * n)] - n)


def refine_onsets(bar: np.ndarray, coarse: np.ndarray, sample_rate: int, search: int) -> np.ndarray:
    """Move each coarse onset (samples) of a looped mono ``bar`` to the sharpest rise of energy
    (next ``REFINE_MS`` over previous ``REFINE_MS``) within ``search`` samples: the onset strength
    frames are ``WINDOW_MS`` long and a short transient shows in them before it happens."""
    length = len(bar)
    window = max(2, round(REFINE_MS * sample_rate / 1000.0))
    energy = np.concatenate([[0.0], np.cumsum(np.tile(bar, 3) ** 2)])
    floor = 1e-4 * window * np.mean(bar**2) + 1e-20
    refined = np.empty(len(coarse), dtype=np.int64)
    for i, centre in enumerate(np.round(coarse).astype(np.int64)):
        at = length + centre + np.arange(-search, search + 1)
        future = energy[at + window] - energy[at]
        past = energy[at] - energy[at - window]
        refined[i] = (at[np.argmax((future + floor) / (past + floor))] - length) % length
    return refined


def grid_alignment(
    detection: np.ndarray, positions: np.ndarray, length: int, steps: int, tolerance: float
) -> tuple[float, float]:
    """(share of the positive onset strength ``[N, P]`` within ``tolerance`` samples of one of
    ``steps`` equally spaced grid points of a ``length``-sample bar, over the share of the
    ``P`` points that are; the latter, the chance share). Without onset strength: chance, 1."""
    step = length / steps
    near = np.abs(positions - np.round(positions / step) * step) <= tolerance
    chance = float(near.mean())
    strength = np.maximum(detection, 0.0)
    total = float(strength.sum())
    if total <= 0.0 or chance in (0.0, 1.0):
        return 1.0, chance
    return float(strength[:, near].sum()) / total / chance, chance


def _near(values: np.ndarray, centre: float, radius: int) -> float:
    n = len(values)
    index = (round(centre) + np.arange(-radius, radius + 1)) % n
    return float(values[index].max())


def rhythm_of(
    bars: np.ndarray,
    sample_rate: int,
    bpm: float,
    beats_per_bar: int = DEFAULT_BEATS_PER_BAR,
    tempo_tolerance: float = 0.04,
    downbeat_tolerance_ms: float = 30.0,
    onset_threshold: float = ONSET_THRESHOLD,
    grid_tolerance_ms: float = GRID_TOLERANCE_MS,
) -> dict[str, float]:
    """Rhythm summary of one set of bars (see the module docstring for the keys)."""
    length = bars.shape[2]
    bar_seconds = length / sample_rate
    detection, positions = onset_detection(bars, sample_rate)
    n_points = detection.shape[1]
    ms_per_point = 1000.0 * bar_seconds / n_points
    tempo = estimate_tempo(detection, bar_seconds, bpm, SMOOTH_MS / ms_per_point)

    radius = max(1, round(downbeat_tolerance_ms / ms_per_point))
    tolerance = downbeat_tolerance_ms * sample_rate / 1000.0
    mono = np.asarray(bars, dtype=np.float64).mean(axis=1)
    gap = round(MIN_ONSET_GAP_MS / ms_per_point)
    downbeat_onset, strength, onset_counts = [], [], []
    for bar, values in zip(mono, detection, strict=True):
        peaks = detect_onsets(values, onset_threshold, gap)
        onsets = refine_onsets(bar, positions[peaks], sample_rate, _fft_size(sample_rate) // 2)
        onset_counts.append(len(onsets))
        circular = np.minimum(onsets, length - onsets)
        downbeat_onset.append(bool(len(onsets)) and bool(np.min(circular) <= tolerance))
        positive = np.maximum(values, 0.0)
        beats = [
            _near(positive, k * n_points / beats_per_bar, radius) for k in range(beats_per_bar)
        ]
        strength.append(beats[0] / np.mean(beats) if np.mean(beats) > 0 else np.nan)
    tempo[np.asarray(onset_counts) == 0] = np.nan
    error = np.abs(tempo - bpm) / bpm
    octave_error = np.min([np.abs(tempo - f * bpm) / (f * bpm) for f in (0.5, 1.0, 2.0)], axis=0)
    alignment, _ = grid_alignment(
        detection,
        positions % length,
        length,
        4 * beats_per_bar,
        grid_tolerance_ms * sample_rate / 1000.0,
    )

    def nan_stat(function, values) -> float:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        return float(function(values)) if len(values) else float("nan")

    return {
        "tempo_bpm_median": nan_stat(np.median, tempo),
        "tempo_error_pct_median": nan_stat(np.median, 100.0 * error),
        "fraction_tempo_ok": float(np.mean(np.nan_to_num(error, nan=np.inf) <= tempo_tolerance)),
        "fraction_tempo_ok_octave": float(
            np.mean(np.nan_to_num(octave_error, nan=np.inf) <= tempo_tolerance)
        ),
        "fraction_downbeat_onset": float(np.mean(downbeat_onset)),
        "downbeat_strength_median": nan_stat(np.median, strength),
        "grid_alignment": alignment,
        "onsets_per_bar_mean": float(np.mean(onset_counts)),
        "count": len(bars),
    }


def rhythm_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """Rhythm of looped generated bars beside looped held-out real bars."""
    sample_rate = int(options["sample_rate"])
    beats_per_bar = int(options.get("beats_per_bar", DEFAULT_BEATS_PER_BAR))
    length = generated.shape[2]
    bpm = float(options.get("bpm") or tempo_of(length, sample_rate, beats_per_bar))
    kwargs = {
        "sample_rate": sample_rate,
        "bpm": bpm,
        "beats_per_bar": beats_per_bar,
        "tempo_tolerance": float(options.get("tempo_tolerance", OPTIONS["tempo_tolerance"])),
        "downbeat_tolerance_ms": float(
            options.get("downbeat_tolerance_ms", OPTIONS["downbeat_tolerance_ms"])
        ),
        "grid_tolerance_ms": GRID_TOLERANCE_MS,
    }
    sixteenth_ms = 1000.0 * length / sample_rate / (4 * beats_per_bar)
    result: dict[str, float] = {
        "target_bpm": bpm,
        "tempo_tolerance": kwargs["tempo_tolerance"],
        "sixteenth_ms": sixteenth_ms,
        "grid_tolerance_ms": kwargs["grid_tolerance_ms"],
        "chance_grid_share": min(1.0, 2.0 * kwargs["grid_tolerance_ms"] / sixteenth_ms),
    }
    sets = {"generated": generated}
    if valid is not None and len(valid):
        sets["valid"] = valid
    for name, bars in sets.items():
        key = ("rhythm", *array_key(bars), *sorted(kwargs.items()))
        values = cached(options, key, lambda bars=bars: rhythm_of(bars, **kwargs))
        result.update({f"{name}.{k}": v for k, v in values.items()})
    return result


SPEC = MetricSpec(
    name="rhythm",
    function=rhythm_scores,
    options=OPTIONS,
    protocol=f"ours: onset, tempo and 16th-grid statistics of looped bars; {NOT_COMPARABLE}",
    role=QUALITY,
    headlines=(
        Headline("fraction_downbeat_onset", "higher", band=0.2),
        Headline("grid_alignment", "higher", band=0.25, relative=True),
        Headline("fraction_tempo_ok_octave", "higher", band=0.25),
    ),
)
