"""Ellis's dynamic-programming beat tracker, as librosa implements it, in vectorised numpy.

librosa.beat compiles numba kernels when it is imported (about 4 CPU-seconds in every process
that analyses a track, more than the analysis of a one-minute track costs); this gives the
same beats without them (tests/unit/test_beat_dp.py compares the two). A beat at frame ``i``
continues the best earlier beat at ``i - d`` with ``round(P/2) <= d <= 2P`` (``P`` the expected
period in frames), penalised by ``tightness * log(d / P)^2``. Frames closer together than the
shortest allowed step do not depend on each other, so they are solved as one block.
"""

from __future__ import annotations

import numpy as np


def beat_frames(
    onset: np.ndarray, fps: float, bpm: np.ndarray | float, tightness: float = 100.0
) -> np.ndarray:
    """Beat frames for an onset (or beat activation) envelope at ``fps`` frames per second,
    with the expected tempo ``bpm`` (one value, or one per frame)."""
    onset = np.asarray(onset, dtype=np.float64)
    n = len(onset)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bpm = np.broadcast_to(np.asarray(bpm, dtype=np.float64), (n,))
    if np.any(bpm <= 0) or tightness <= 0:
        raise ValueError("bpm and tightness must be positive")
    period = np.maximum(np.round(fps * 60.0 / bpm), 1.0)
    spread = onset.std(ddof=1) if n > 1 else 0.0
    local = _local_score(onset / (spread + np.finfo(np.float64).tiny), period)
    backlink, cumulative = _dynamic_programme(local, period, tightness)
    beats = _backtrack(backlink, _last_beat(cumulative))
    positive = np.flatnonzero(local > 0)
    if len(positive) == 0:
        return np.zeros(0, dtype=np.int64)
    return beats[(beats >= positive[0]) & (beats <= positive[-1])]


def _local_score(onset: np.ndarray, period: np.ndarray) -> np.ndarray:
    """The envelope smoothed by a Gaussian of width period/32, per frame's own period."""
    out = np.empty_like(onset)
    for value in np.unique(period):
        half = int(value)
        window = np.exp(-0.5 * (np.arange(-half, half + 1) * 32.0 / value) ** 2)
        smoothed = np.convolve(onset, window, mode="full")[half : half + len(onset)]
        # librosa's kernel leaves out the first frame's term in the first half-window
        edge = np.arange(min(half + 1, len(onset)))
        smoothed[edge] -= window[edge + half] * onset[0]
        mask = period == value
        out[mask] = smoothed[mask]
    return out


def _dynamic_programme(
    local: np.ndarray, period: np.ndarray, tightness: float
) -> tuple[np.ndarray, np.ndarray]:
    n = len(local)
    cumulative = np.empty(n)
    backlink = np.full(n, -1, dtype=np.int64)
    shortest = np.round(period / 2).astype(np.int64)
    i = 0
    while i < n:
        # a block no longer than the shortest step any frame in it may take
        block = max(1, int(shortest[i : i + int(shortest[i]) + 1].min()))
        index = np.arange(i, min(i + block, n))
        expected = period[index]
        steps = np.arange(int(shortest[index].min()), int(2 * expected.max()) + 1)
        steps = steps[steps >= 1]
        origin = index[:, None] - steps[None, :]
        allowed = (
            (origin >= 0)
            & (steps[None, :] >= shortest[index][:, None])
            & (steps[None, :] <= 2 * expected[:, None])
        )
        penalty = -tightness * (np.log(steps)[None, :] - np.log(expected)[:, None]) ** 2
        candidate = np.where(allowed, cumulative[origin.clip(0)] + penalty, -np.inf)
        best = np.argmax(candidate, axis=1)  # the smallest step wins a tie, as in librosa
        best_score = candidate[np.arange(len(index)), best]
        found = np.isfinite(best_score)
        cumulative[index] = local[index] + np.where(found, best_score, 0.0)
        backlink[index] = np.where(found, origin[np.arange(len(index)), best], -1)
        i += len(index)
    # Before the first frame that carries a beat-sized score there is nothing to link back to.
    start = np.flatnonzero(local >= 0.01 * local.max())
    if len(start):
        backlink[: start[0]] = -1
    return backlink, cumulative


def _last_beat(cumulative: np.ndarray) -> int:
    """The last local maximum of the cumulative score above half their median."""
    n = len(cumulative)
    peak = np.zeros(n, dtype=bool)
    if n == 1:
        return 0
    # librosa.util.localmax pads with the edge value: the first frame is never a maximum
    peak[1:-1] = (cumulative[1:-1] > cumulative[:-2]) & (cumulative[1:-1] >= cumulative[2:])
    peak[-1] = cumulative[-1] > cumulative[-2]
    if not peak.any():
        return n - 1
    threshold = 0.5 * float(np.median(cumulative[peak]))
    above = np.flatnonzero(peak & (cumulative >= threshold))
    return int(above[-1]) if len(above) else n - 1


def _backtrack(backlink: np.ndarray, tail: int) -> np.ndarray:
    beats = []
    while tail >= 0:
        beats.append(tail)
        tail = int(backlink[tail])
    return np.asarray(beats[::-1], dtype=np.int64)
