"""Tempo from periodicity: a local tempo curve, its octave from metrical evidence, its steps.

All functions take a beat activation (madmom's P(beat) + P(downbeat) per frame) at ``fps``.
The tempo range of the settings is a soft prior, not a hard limit: the beat level is the
fastest pulse whose every grid point carries beat evidence, and the prior only decides between
levels the evidence cannot tell apart. A step (a sudden tempo change) splits the track into
sections; a gradual change (a ramp) stays one section whose tempo curve follows it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from pipeline.audio.beats import evidence_at, parabolic_peak

# Outside these no pulse is searched at all: slower is a bar, faster is a subdivision.
SEARCH_MIN_BPM, SEARCH_MAX_BPM = 40.0, 250.0
WINDOW_SECONDS = 12.0
PRIOR_WIDTH = 1.5  # sigma of the tempo prior, in half the log-range of the settings
HOP_SECONDS = 3.0
TWO_BEAT_BARS = 0.75  # downbeat evidence every 2 beats over every 3 or 4 beats
TRIPLE_HALF_BEATS = 1.5  # downbeat evidence every 3 half-beats over every 2 or 4
CONFIDENT_BEATS = 0.3  # madmom's median beat activation at the beats: its downbeats count
OCTAVE_SLACK = 1.1  # the octave prior is flat over the tempo settings widened by this factor
OCTAVE_FALLOFF = 0.05  # and falls off outside as a log-normal of this width
STEP_MIN_RATIO = 1.04  # tempo steps smaller than 4 % are drift, not a new section
STEP_CONTEXT_WINDOWS = 4  # windows compared on each side of a candidate step
MIN_SECTION_SECONDS = 16.0
SIMPLE_RATIOS = (4 / 3, 3 / 2, 3 / 4, 2 / 3)
COMB = ((1, 1.0), (2, 1.0))  # (multiple of the period, weight)


@dataclass(frozen=True)
class TempoCurve:
    times: np.ndarray  # window centres, seconds
    bpm: np.ndarray  # tempo at each centre, one octave throughout

    def at(self, seconds: np.ndarray) -> np.ndarray:
        return np.interp(seconds, self.times, self.bpm)


def prior_weight(bpm: np.ndarray | float, min_bpm: float, max_bpm: float) -> np.ndarray:
    """Log-normal prior centred between the settings' bounds, two thirds of a sigma at each:
    the bounds say where tempi usually are, not where they must be."""
    centre = np.sqrt(min_bpm * max_bpm)
    sigma = np.log(max_bpm / min_bpm) / 2 * PRIOR_WIDTH
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
    ac = autocorrelation(activation, min(COMB[-1][0] * max_lag + 1, len(activation) - 1))
    lags = np.arange(len(ac))
    valid = (lags >= min_lag) & (lags <= max_lag)
    if valid.sum() < 3:
        return float("nan"), 0.0
    weights = np.where(valid, prior_weight(60 * fps / lags.clip(1), min_bpm, max_bpm), 0.0)
    # Only local maxima are periods; the rising edge near lag 0 is not.
    peaks = np.zeros_like(valid)
    peaks[1:-1] = (ac[1:-1] >= ac[:-2]) & (ac[1:-1] >= ac[2:])
    # A beat period repeats at two beats, three and a bar; a period in a 3:2 ratio to the
    # beat (a dotted rhythm, a triplet figure) does not: its multiples fall between beats.
    comb = sum(
        weight * np.interp(multiple * lags, lags, ac.clip(0), right=0.0)
        for multiple, weight in COMB
    ) / sum(weight for _, weight in COMB)
    score = np.where(peaks & valid, comb * weights, -np.inf)
    lag = int(np.argmax(score))
    if not np.isfinite(score[lag]):
        return float("nan"), 0.0
    return parabolic_peak(ac, lag), float(ac[lag])


def octave_prior(bpm: float, min_bpm: float, max_bpm: float) -> float:
    """Flat over the settings' range widened by OCTAVE_SLACK on each side (musically common
    tempi are equally likely), falling off as a log-normal outside it."""
    lo, hi = min_bpm / OCTAVE_SLACK, max_bpm * OCTAVE_SLACK
    outside = np.log(lo / bpm) if bpm < lo else np.log(bpm / hi) if bpm > hi else 0.0
    return float(np.exp(-0.5 * (outside / OCTAVE_FALLOFF) ** 2))


def octave_factor(
    beat_times: np.ndarray,
    activation: np.ndarray,
    downbeat: np.ndarray,
    onset: np.ndarray | None,
    fps: float,
    min_bpm: float,
    max_bpm: float,
) -> float:
    """2.0 when the tracked beats are every other true beat, else 1.0; from metrical evidence
    at the beats, so tempo drift does not blur it.

    The pulse twice as fast is the beat when the prior allows it and either
    * madmom is sure of its beats and its downbeat activation repeats every two tracked beats
      (a bar of two beats, which the meters asked for do not allow: the tracked beats are
      half notes) while the half-beat positions carry some beat evidence, or
    * downbeats fall on every third half-beat (a 3/4 bar is one and a half tracked beats)
      and the half-beat positions carry a good share of the beat evidence.
    """
    if len(beat_times) < 8:
        return 1.0
    period = float(np.median(np.diff(beat_times)))
    faster_bpm = 120.0 / period
    if octave_prior(faster_bpm, min_bpm, max_bpm) < 0.5:
        return 1.0
    mids = (beat_times[:-1] + beat_times[1:]) / 2
    on = beat_times[:-1]
    fills = [_share(activation, mids, on, fps)]
    if onset is not None:
        fills.append(_share(onset, mids, on, fps))
    fill = float(np.mean(fills))
    at_beats = evidence_at(downbeat, beat_times, fps)
    two_beat_bars = _bar_strength(at_beats, 2) / max(
        _bar_strength(at_beats, 3), _bar_strength(at_beats, 4), 1e-9
    )
    # On the grid of beats and half-beats, a 3/4 bar played at twice the tracked tempo puts
    # a downbeat on every third position.
    at_half_beats = evidence_at(downbeat, np.sort(np.concatenate([beat_times, mids])), fps)
    triple_half_beats = _bar_strength(at_half_beats, 3) / max(
        _bar_strength(at_half_beats, 2), _bar_strength(at_half_beats, 4), 1e-9
    )
    confident = float(np.median(evidence_at(activation, beat_times, fps))) >= CONFIDENT_BEATS
    if confident and two_beat_bars >= TWO_BEAT_BARS and fill >= 0.15:
        return 2.0
    if triple_half_beats >= TRIPLE_HALF_BEATS and fill >= 0.4:
        return 2.0
    return 1.0


def _bar_strength(at_beats: np.ndarray, meter: int) -> float:
    """Mean downbeat evidence on every ``meter``-th beat, at the best phase."""
    return max(float(at_beats[p::meter].mean()) for p in range(meter))


def _share(signal: np.ndarray, at: np.ndarray, reference: np.ndarray, fps: float) -> float:
    """Mean of ``signal`` at ``at`` over its mean at ``reference``."""
    base = float(np.mean(evidence_at(signal, reference, fps)))
    return float(np.mean(evidence_at(signal, at, fps))) / base if base > 1e-9 else 0.0


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


def without_pulse_switches(curve: TempoCurve, steps: list[float]) -> list[float]:
    """Steps minus those around a passage whose tempo stands in a simple ratio (3:2, 4:3) to
    equal tempi on both sides: that is the pulse estimate following triplets or a dotted
    figure for a while, not the music changing tempo."""
    steps = list(steps)
    changed = True
    while changed and len(steps) >= 2:
        changed = False
        bounds = [-np.inf, *steps, np.inf]
        medians = [
            float(np.median(curve.bpm[(curve.times >= lo) & (curve.times < hi)]))
            if ((curve.times >= lo) & (curve.times < hi)).any()
            else np.nan
            for lo, hi in itertools.pairwise(bounds)
        ]
        for k in range(1, len(medians) - 1):
            before, middle, after = medians[k - 1], medians[k], medians[k + 1]
            if abs(np.log(before / after)) > np.log(1.02):
                continue
            ratio = middle / before
            if any(abs(np.log(ratio / r)) < np.log(1.015) for r in SIMPLE_RATIOS):
                del steps[k - 1 : k + 1]
                changed = True
                break
    return steps
