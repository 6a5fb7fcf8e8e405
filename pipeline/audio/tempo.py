"""Tempo from periodicity: a local tempo curve, its octave from metrical evidence, its steps.

All functions take a beat activation (madmom's P(beat) + P(downbeat) per frame) at ``fps``.
The tempo range of the settings is a soft prior, not a hard limit: the beat level is the
fastest pulse whose every grid point carries beat evidence, and the prior only decides between
levels the evidence cannot tell apart. A step (a sudden tempo change) splits the track into
sections; a gradual change (a ramp) stays one section whose tempo curve follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Outside these no pulse is searched at all: slower is a bar, faster is a subdivision.
SEARCH_MIN_BPM, SEARCH_MAX_BPM = 40.0, 250.0
WINDOW_SECONDS = 12.0
HOP_SECONDS = 3.0
# A pulse level is filled when its weakest grid phase carries at least this share of the
# activation of its strongest (madmom fires on every beat, weakly on off-beats).
FILLED = 0.5
STEP_MIN_RATIO = 1.04  # tempo steps smaller than 4 % are drift, not a new section
STEP_CONTEXT_WINDOWS = 4  # windows compared on each side of a candidate step
MIN_SECTION_SECONDS = 16.0


@dataclass(frozen=True)
class TempoCurve:
    times: np.ndarray  # window centres, seconds
    bpm: np.ndarray  # tempo at each centre, one octave throughout

    def at(self, seconds: np.ndarray) -> np.ndarray:
        return np.interp(seconds, self.times, self.bpm)


def prior_weight(bpm: np.ndarray | float, min_bpm: float, max_bpm: float) -> np.ndarray:
    """Log-normal prior centred between the settings' bounds, one sigma at each bound."""
    centre = np.sqrt(min_bpm * max_bpm)
    sigma = np.log(max_bpm / min_bpm) / 2
    return np.exp(-0.5 * (np.log(np.asarray(bpm, dtype=np.float64) / centre) / sigma) ** 2)


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation of the mean-removed ``x`` at lags 0..max_lag, 1 at lag 0."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(x)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    ac /= np.arange(n, n - max_lag - 1, -1).clip(1)  # unbiased: each lag's mean product
    return ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)


def best_period(
    activation: np.ndarray, fps: float, min_bpm: float, max_bpm: float
) -> tuple[float, float]:
    """-> (period in frames, autocorrelation there) of the strongest pulse, weighted by the
    prior; refined between lags by a parabola through the peak."""
    min_lag = int(np.floor(60 * fps / SEARCH_MAX_BPM))
    max_lag = int(np.ceil(60 * fps / SEARCH_MIN_BPM))
    ac = autocorrelation(activation, min(max_lag + 1, len(activation) - 1))
    lags = np.arange(len(ac))
    valid = (lags >= min_lag) & (lags <= max_lag)
    if valid.sum() < 3:
        return float("nan"), 0.0
    weights = np.where(valid, prior_weight(60 * fps / lags.clip(1), min_bpm, max_bpm), 0.0)
    # Only local maxima are periods; the rising edge near lag 0 is not.
    peaks = np.zeros_like(valid)
    peaks[1:-1] = (ac[1:-1] >= ac[:-2]) & (ac[1:-1] >= ac[2:])
    score = np.where(peaks & valid, ac.clip(0) * weights, -np.inf)
    lag = int(np.argmax(score))
    if not np.isfinite(score[lag]):
        return float("nan"), 0.0
    return _parabolic(ac, lag), float(ac[lag])


def fold(activation: np.ndarray, period: float, start: float = 0.0) -> np.ndarray:
    """Mean activation by phase of ``period`` (in frames), ``round(period)`` bins."""
    bins = max(2, round(period))
    phase = ((np.arange(len(activation)) - start) % period) / period
    index = np.minimum((phase * bins).astype(int), bins - 1)
    total = np.bincount(index, weights=activation, minlength=bins)
    count = np.bincount(index, minlength=bins).clip(1)
    return total / count


def filled_ratio(activation: np.ndarray, period: float, parts: int = 2) -> float:
    """How evenly a pulse of ``period / parts`` is carried: the activation at the weakest of
    the ``parts`` sub-positions of the strongest phase of ``period``, over the strongest."""
    folded = fold(activation, period)
    bins = len(folded)
    peak = int(np.argmax(folded))
    spread = max(1, bins // 40)  # tolerate a frame or two of phase error

    def around(centre: int) -> float:
        return float(max(folded[(centre + k) % bins] for k in range(-spread, spread + 1)))

    strongest = around(peak)
    if strongest <= 0:
        return 0.0
    others = [around(peak + round(k * bins / parts)) for k in range(1, parts)]
    return min(others) / strongest


def choose_octave(
    activation: np.ndarray, period: float, fps: float, min_bpm: float, max_bpm: float
) -> float:
    """The beat period among ``period``'s octaves (and thirds): halve while the faster pulse
    is filled, double while every other beat is empty; the prior decides only close calls."""
    min_period = 60 * fps / SEARCH_MAX_BPM
    max_period = 60 * fps / SEARCH_MIN_BPM

    def prior_ratio(faster: float, slower: float) -> float:
        fast_w = prior_weight(60 * fps / faster, min_bpm, max_bpm)
        slow_w = prior_weight(60 * fps / slower, min_bpm, max_bpm)
        return float(np.sqrt(slow_w / max(fast_w, 1e-9)))

    for _ in range(3):
        changed = False
        if period / 2 >= min_period:
            threshold = np.clip(FILLED * prior_ratio(period / 2, period), 0.3, 0.8)
            if filled_ratio(activation, period, 2) >= threshold:
                period, changed = period / 2, True
        if not changed and period * 2 <= max_period:
            threshold = np.clip(FILLED * prior_ratio(period, period * 2), 0.3, 0.8)
            if filled_ratio(activation, period * 2, 2) < threshold * 0.6:
                period, changed = period * 2, True
        if not changed:
            break
    return period


def tempo_curve(activation: np.ndarray, fps: float, min_bpm: float, max_bpm: float) -> TempoCurve:
    """Tempo per window, every window brought to the octave of the whole track's median."""
    window = round(WINDOW_SECONDS * fps)
    hop = round(HOP_SECONDS * fps)
    if len(activation) <= window:
        starts = [0]
        window = len(activation)
    else:
        starts = list(range(0, len(activation) - window + 1, hop))
    times, periods = [], []
    for start in starts:
        period, strength = best_period(activation[start : start + window], fps, min_bpm, max_bpm)
        if np.isfinite(period) and strength > 0.05:
            times.append((start + window / 2) / fps)
            periods.append(period)
    if not periods:
        raise ValueError("no periodic beat activation found")
    periods = np.asarray(periods)
    reference = np.median(periods)
    octave = np.round(np.log2(periods / reference))  # a window that locked to a double or half
    periods = periods / 2.0**octave
    return TempoCurve(np.asarray(times), 60 * fps / periods)


def smoothed(curve: TempoCurve, windows: int = 5) -> TempoCurve:
    """A running median over ``windows`` windows: a window or two locked to another pulse (a
    fill, a triplet passage) is outvoted by its neighbours, a step stays a step."""
    from scipy.signal import medfilt

    if len(curve.bpm) < windows:
        return curve
    return TempoCurve(curve.times, medfilt(curve.bpm, windows))


def tempo_steps(curve: TempoCurve) -> list[float]:
    """Seconds where the tempo jumps by at least STEP_MIN_RATIO between the windows before and
    after; at least MIN_SECTION_SECONDS apart and from either end."""
    log_bpm = np.log(curve.bpm)
    k = STEP_CONTEXT_WINDOWS
    n = len(log_bpm)
    jumps = np.zeros(n)
    for i in range(k, n - k + 1):
        jumps[i] = abs(np.median(log_bpm[i : i + k]) - np.median(log_bpm[i - k : i]))
    steps: list[float] = []
    order = np.argsort(-jumps)
    for i in order:
        if jumps[i] < np.log(STEP_MIN_RATIO):
            break
        # between the last window before and the first window after
        at = float((curve.times[i - 1] + curve.times[i]) / 2)
        ends = (curve.times[0] - WINDOW_SECONDS / 2, curve.times[-1] + WINDOW_SECONDS / 2)
        near_end = min(at - ends[0], ends[1] - at) < MIN_SECTION_SECONDS
        if near_end or any(abs(at - s) < MIN_SECTION_SECONDS for s in steps):
            continue
        steps.append(at)
    return sorted(steps)


def _parabolic(values: np.ndarray, index: int) -> float:
    """Sub-sample position of the peak at ``index`` (a parabola through it and its neighbours)."""
    if index <= 0 or index >= len(values) - 1:
        return float(index)
    left, centre, right = values[index - 1], values[index], values[index + 1]
    denominator = left - 2 * centre + right
    if denominator >= 0:
        return float(index)
    return float(index + 0.5 * (left - right) / denominator)
