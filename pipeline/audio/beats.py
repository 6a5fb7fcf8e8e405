"""Beat times from a beat activation and a tempo curve: dynamic programming, then sub-frame
peak positions, an off-beat check, and a smoothed (or exactly steady) beat grid."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import savgol_filter

from pipeline.audio import beat_dp

# Beats this close to a straight line are a steady tempo: madmom's 10 ms frames and a few ms of
# playing jitter, not tempo changes (a loop tiled in a sampler is exactly steady).
STEADY_RMS_SECONDS = 0.012
STEADY_MAX_SECONDS = 0.035
STEADY_SHARE = 0.9  # of the beats within STEADY_MAX_SECONDS of one line: a steady section
SMOOTH_BEATS = 9  # local quadratic fit over this many beats keeps ramps, removes frame jitter
OFFBEAT_MARGIN = 1.25  # the off-beats must carry this much more evidence to move the grid
TRIM_SHARE = 0.2  # end beats with less than this share of the median activation are dropped


def track(
    activation: np.ndarray, fps: float, bpm_per_frame: np.ndarray, tightness: float = 400
) -> np.ndarray:
    """Beat frames (integers) by dynamic programming over the whole activation, the expected
    period following ``bpm_per_frame`` (tempo steps and ramps included)."""
    return beat_dp.beat_frames(activation, fps, bpm_per_frame, tightness)


def refine(frames: np.ndarray, activation: np.ndarray, fps: float) -> np.ndarray:
    """Seconds of each beat: the activation peak within two frames, interpolated between frames
    by a parabola; a beat without a clear peak keeps its frame."""
    times = frames.astype(np.float64)
    n = len(activation)
    for i, frame in enumerate(frames):
        lo, hi = max(0, frame - 2), min(n, frame + 3)
        if hi - lo < 3:
            continue
        peak = lo + int(np.argmax(activation[lo:hi]))
        if 0 < peak < n - 1 and activation[peak] > 0.05:
            times[i] = float(np.clip(parabolic_peak(activation, peak), peak - 0.5, peak + 0.5))
    return times / fps


def parabolic_peak(values: np.ndarray, index: int) -> float:
    """Sub-sample position of the peak at ``index`` (a parabola through it and its neighbours);
    ``index`` itself at either end or where the three do not bend down."""
    if index <= 0 or index >= len(values) - 1:
        return float(index)
    left, centre, right = (float(v) for v in values[index - 1 : index + 2])
    denominator = left - 2 * centre + right
    if denominator >= 0:
        return float(index)
    return index + 0.5 * (left - right) / denominator


def trim_silent_ends(times: np.ndarray, activation: np.ndarray, fps: float) -> np.ndarray:
    """Drop leading and trailing beats with no activation under them: the dynamic programme
    keeps stepping through a silent lead-in or a ring-out, where there are no beats to find."""
    strength = evidence_at(activation, times, fps)
    floor = TRIM_SHARE * float(np.median(strength))
    present = np.flatnonzero(strength >= floor)
    if len(present) == 0:
        return times
    return times[present[0] : present[-1] + 1]


def evidence_at(signal: np.ndarray, seconds: np.ndarray, fps: float, reach: int = 2) -> np.ndarray:
    """The largest value of ``signal`` within ``reach`` frames of each time (0 where that
    window lies wholly outside the signal)."""
    frames = np.round(np.asarray(seconds) * fps).astype(np.int64)
    # padded with -inf, a window that reaches past either end sees only the frames inside
    padded = np.pad(np.asarray(signal, dtype=np.float64), reach, constant_values=-np.inf)
    peaks = maximum_filter1d(padded, 2 * reach + 1, mode="constant", cval=-np.inf)
    index = frames + reach
    inside = (index >= 0) & (index < len(padded))
    out = np.where(inside, peaks[index.clip(0, len(padded) - 1)], -np.inf)
    return np.where(np.isfinite(out), out, 0.0)


def offbeat_shift(
    times: np.ndarray, evidences: list[np.ndarray], fps: float
) -> tuple[np.ndarray, float]:
    """-> (beat times, on/off ratio). When the half-beat positions carry clearly more evidence
    (each signal scaled to its own mean) than the beats, the grid moved half a beat: the
    midpoints become the beats. The ratio is the beats' evidence over the midpoints'."""
    if len(times) < 4:
        return times, 1.0
    mids = (times[:-1] + times[1:]) / 2
    on = off = 0.0
    for signal in evidences:
        scale = float(np.mean(signal)) + 1e-9
        on += float(np.mean(evidence_at(signal, times[:-1], fps))) / scale
        off += float(np.mean(evidence_at(signal, mids, fps))) / scale
    ratio = on / max(off, 1e-9)
    if ratio * OFFBEAT_MARGIN < 1.0:
        period = times[-1] - times[-2]
        shifted = np.append(mids, times[-1] + period / 2)
        return shifted, ratio
    return times, ratio


def regularise(times: np.ndarray) -> tuple[np.ndarray, bool]:
    """-> (beat times, steady). A straight line when nearly all beats fit one (a steady
    tempo; the few that do not, in an intro of off-beat chords or a break, are put on the
    line too), else a local quadratic smoothing that keeps tempo changes and removes
    frame-grid jitter."""
    if len(times) < 4:
        return times, False
    index = np.arange(len(times))
    inliers = np.ones(len(times), dtype=bool)
    for _ in range(3):  # refit without the beats that sit off the line
        slope, intercept = np.polyfit(index[inliers], times[inliers], 1)
        line = intercept + slope * index
        residual = times - line
        inliers = np.abs(residual) <= STEADY_MAX_SECONDS
        if inliers.sum() < 4:
            break
    steady = (
        inliers.mean() >= STEADY_SHARE
        and np.sqrt(np.mean(residual[inliers] ** 2)) <= STEADY_RMS_SECONDS
    )
    if steady:
        return line, True
    if len(times) < SMOOTH_BEATS:
        return times, False
    smoothed = savgol_filter(times, SMOOTH_BEATS, 2)
    return np.maximum.accumulate(smoothed) + index * 1e-9, False
