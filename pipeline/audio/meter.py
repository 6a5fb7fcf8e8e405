"""Meter and downbeat phase from evidence over whole sections, not from a first guess.

Every beat gets one downbeat score: madmom's downbeat activation, low-frequency onset energy
(kicks and bass notes land on downbeats) and harmonic change (chords change at bar lines), each
standardised over the track. A Viterbi pass over the beats chooses, for every beat, a state
(meter, phase): staying in a state keeps the bars going, changing it costs a penalty worth
several bars of evidence, so the phase is decided by the section as a whole and changes only
where the music does (a meter change, a dropped beat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.audio.beats import evidence_at

WEIGHTS = {"downbeat": 1.0, "low_onset": 0.5, "harmony": 0.5}
SWITCH_PENALTY = (
    24.0  # standardised evidence units, about nine bars: a steady track keeps its phase
)


@dataclass(frozen=True)
class MeterRun:
    """A run of beats with one meter and one downbeat phase."""

    first: int  # index of the first beat of the run
    stop: int  # one past the last beat
    meter: int
    phase: int  # beats ``i`` with ``(i - phase) % meter == 0`` are downbeats


def standardise(values: np.ndarray) -> np.ndarray:
    """Median 0, robust spread 1 (interquartile range / 1.35)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return values
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    spread = (q3 - q1) / 1.35
    if spread <= 1e-9:
        spread = float(np.std(values)) or 1.0
    return (values - median) / spread


def harmonic_change(chroma: np.ndarray, times: np.ndarray, fps: float, span: int = 2) -> np.ndarray:
    """Per beat: 1 - cosine similarity of the mean chroma over the ``span`` beats before and
    the ``span`` beats after it."""
    frames = np.clip(np.round(times * fps).astype(np.int64), 0, len(chroma))
    cumulative = np.vstack([np.zeros((1, chroma.shape[1])), np.cumsum(chroma, axis=0)])
    out = np.zeros(len(times))
    for i in range(len(times)):
        lo = frames[max(0, i - span)]
        hi = frames[min(len(frames) - 1, i + span)]
        here = frames[i]
        if here - lo < 1 or hi - here < 1:
            continue
        before = (cumulative[here] - cumulative[lo]) / (here - lo)
        after = (cumulative[hi] - cumulative[here]) / (hi - here)
        norm = np.linalg.norm(before) * np.linalg.norm(after)
        out[i] = 1.0 - float(before @ after) / norm if norm > 1e-9 else 0.0
    return out


def downbeat_evidence(
    times: np.ndarray,
    fps: float,
    downbeat: np.ndarray,
    low_onset: np.ndarray | None = None,
    chroma: np.ndarray | None = None,
) -> np.ndarray:
    """One standardised downbeat score per beat."""
    score = WEIGHTS["downbeat"] * standardise(evidence_at(downbeat, times, fps))
    if low_onset is not None:
        score += WEIGHTS["low_onset"] * standardise(evidence_at(low_onset, times, fps, reach=3))
    if chroma is not None:
        score += WEIGHTS["harmony"] * standardise(harmonic_change(chroma, times, fps))
    return score


def meter_runs(score: np.ndarray, meters: tuple[int, ...]) -> list[MeterRun]:
    """Viterbi over beats: the best sequence of (meter, phase) states for the scores."""
    states = [(m, p) for m in meters for p in range(m)]
    n, k = len(score), len(states)
    if n == 0:
        return []
    index = np.arange(n)
    emission = np.zeros((n, k))
    for j, (m, p) in enumerate(states):
        emission[:, j] = np.where((index - p) % m == 0, score, 0.0)
    total = emission[0].copy()
    back = np.zeros((n, k), dtype=np.int64)
    for i in range(1, n):
        best_other = int(np.argmax(total))
        stay = total
        switch = total[best_other] - SWITCH_PENALTY
        take_switch = switch > stay
        back[i] = np.where(take_switch, best_other, np.arange(k))
        total = np.where(take_switch, switch, stay) + emission[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(total))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    runs = []
    start = 0
    for i in range(1, n + 1):
        if i == n or path[i] != path[start]:
            m, p = states[path[start]]
            runs.append(MeterRun(start, i, m, p))
            start = i
    return runs


def phase_margin(score: np.ndarray, meter: int, phase: int) -> float:
    """How much more downbeat evidence the chosen phase's beats carry, on average, than those
    of the best other phase of the same meter (standardised units; <= 0: another phase is
    as likely). Decided over a whole section, so it says whether the bar lines are right
    rather than whether one bar looks like a downbeat."""
    if meter < 2:
        return float("inf")
    index = np.arange(len(score))
    means = [
        float(score[(index - p) % meter == 0].mean()) if p < len(score) else 0.0
        for p in range(meter)
    ]
    return means[phase] - max(m for p, m in enumerate(means) if p != phase)
