"""Loops as loops: a short recording that lasts a whole number of bars, or that repeats, has
its bar line at the file start.

Sample packs ship loops cut on the bar: the first sample is the downbeat and the length is a
whole number of bars. A beat tracker knows neither fact and, on one or two bars, often locks to
the off-beats or puts the bar line on beat 3. Here the tracked tempo only proposes how many
beats the file holds; the grid is then the file itself (bar lines at ``0, D/B, 2D/B, ..., D``),
exact in tempo and phase.

A recording is taken as a loop when all of these hold:

* it is short (at most ``MAX_LOOP_BARS`` bars at the tracked tempo) or it repeats (its onset
  envelope shifted by ``D / k`` for some ``k`` in 2..``MAX_TILES`` matches itself);
* ``B`` bars of ``m`` beats fill it at the tracked tempo (or twice or half of it, or 3:2),
  within what the number of tracked beats allows (``LENGTH_TOLERANCE_BEATS``);
* it starts with a sound: its first 50 ms are at most ``HEAD_BELOW_DB`` quieter than the
  whole file (a silent lead-in says the file was not cut on a bar line).

Strong evidence against the grid, tracked beats that fall between the grid's beats and
half-beats throughout, makes it not a loop (:func:`phase_offset`). A file too short for the
tracker to find bars in (a bar or two) is read as the likeliest loop its length allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_LOOP_BARS = 8  # a single loop; tiled copies of one are found by repetition
MAX_TILES = 8
# A file this close to B bars at the tracked tempo holds B bars. The tracked tempo is a line
# fitted through the beats, as precise as there are beats: LENGTH_TOLERANCE_BEATS / beats,
# within the bounds (2 % for a one-bar loop, 0.5 % from 16 beats: a 5-bar excerpt with a
# lead-in, 2 % away from 6 whole bars, is not a loop).
LENGTH_TOLERANCE_BEATS = 0.08
LENGTH_TOLERANCE_BOUNDS = (0.005, 0.02)
SHORT_SLACK = 1.04  # "at most MAX_LOOP_BARS bars" allows this much over
REPEAT_CORRELATION = 0.8  # onset envelope against itself one tile later
HEAD_BELOW_DB = 20.0
RANGE_SLACK = 1.15  # the tempo settings are a soft prior: a loop's exact tempo may lie this far out
# The loop's tempo over the tracked one, in order of preference: the tracker's own pulse, then
# its octaves, then a 3:2 pulse (a dotted-quarter lock); each still has to put the tracked beats
# on the loop's beats or half-beats.
TEMPO_FACTORS = ((1.0, 0), (2.0, 1), (0.5, 1), (1.5, 2), (2 / 3, 2))
MAX_PHASE_OFFSET = 0.12  # beats: tracked beats further than this from the grid disagree
UNTRACKED_MAX_SECONDS = 6.0
# What a sample-pack loop too short to track most likely is, in order: (bars, beats per bar)
UNTRACKED_PRIOR = ((1, 4), (2, 4), (1, 3), (2, 3), (4, 4), (1, 2))
BAR_COUNTS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # whole loops, single or tiled


@dataclass(frozen=True)
class LoopFit:
    bars: int
    meter: int
    bpm: float  # exact: 60 * bars * meter / duration
    reason: str


def repeats(onset: np.ndarray, fps: float, duration: float) -> int:
    """The largest number of tiles ``k`` (2..MAX_TILES) for which the recording is ``k``
    copies of one piece, judged on its smoothed onset envelope; 1 when it does not repeat."""
    envelope = np.convolve(onset, np.ones(3) / 3, mode="same")
    best = 1
    for tiles in range(2, MAX_TILES + 1):
        lag = round(duration / tiles * fps)
        if lag < fps or len(envelope) - lag < fps:
            continue
        a, b = envelope[:-lag], envelope[lag:]
        if np.std(a) < 1e-9 or np.std(b) < 1e-9:
            continue
        if float(np.corrcoef(a, b)[0, 1]) >= REPEAT_CORRELATION:
            best = tiles
    return best


def starts_with_sound(head_dbfs: float, rms_dbfs: float) -> bool:
    """The file's first moments (``head_dbfs``) are not far below its level (``rms_dbfs``)."""
    return head_dbfs >= rms_dbfs - HEAD_BELOW_DB


def phase_offset(beat_times: np.ndarray, beat_seconds: float) -> float:
    """Median distance (in beats) of tracked beats from the grid's beats or its half-beats:
    near 0 when the tracker followed the grid, or locked to its off-beats, or to twice or half
    its tempo; near 0.25 when the grid is not the music's."""
    phase = np.mod(np.asarray(beat_times) / beat_seconds, 1.0)
    distance = np.minimum.reduce([phase, np.abs(phase - 0.5), 1.0 - phase])
    return float(np.median(distance)) if len(distance) else 1.0


def fit_loop(
    duration: float,
    tracked_beats: np.ndarray | None,
    tracked_meter: int | None,
    onset: np.ndarray,
    fps: float,
    level: tuple[float, float],
    meters: tuple[int, ...],
    min_bpm: float,
    max_bpm: float,
) -> LoopFit | None:
    """The loop reading of a recording, or None when it is not a loop (see the module text).
    ``tracked_beats`` None: the tracker found no bars (a loop of a bar or two often gives it
    too little to go on), and a file short enough is read as the likeliest loop.
    ``level``: (the first 50 ms's, the whole file's) RMS level in dBFS."""
    if duration <= 0 or not starts_with_sound(*level):
        return None
    min_bpm, max_bpm = min_bpm / RANGE_SLACK, max_bpm * RANGE_SLACK
    if tracked_beats is None or tracked_meter is None or len(tracked_beats) < 2:
        return _untracked_loop(duration, meters, min_bpm, max_bpm)
    beats = np.asarray(tracked_beats, dtype=np.float64)
    tracked_bpm = 60.0 / float(np.polyfit(np.arange(len(beats)), beats, 1)[0])
    tolerance = float(np.clip(LENGTH_TOLERANCE_BEATS / len(beats), *LENGTH_TOLERANCE_BOUNDS))
    tracked_bars = duration * tracked_bpm / 60.0 / tracked_meter
    tiles = repeats(onset, fps, duration)
    short = tracked_bars <= MAX_LOOP_BARS * SHORT_SLACK
    if not short and tiles == 1:
        return None
    candidates = []
    for meter in meters:
        for bars in BAR_COUNTS:
            bpm = 60.0 * bars * meter / duration
            if not min_bpm <= bpm <= max_bpm:
                continue
            for factor, rank in TEMPO_FACTORS:
                off = abs(np.log(bpm / (tracked_bpm * factor)))
                if off <= np.log1p(tolerance):
                    candidates.append(
                        (rank, bars % tiles != 0, meter != tracked_meter, off, bars, meter)
                    )
    if not candidates:
        return None
    *_, bars, meter = min(candidates)
    bpm = 60.0 * bars * meter / duration
    if phase_offset(tracked_beats, 60.0 / bpm) > MAX_PHASE_OFFSET:
        return None
    why = f"repeats {tiles} times" if tiles > 1 else f"short ({tracked_bars:.1f} tracked bars)"
    reason = (
        f"{why}; {bars} bar(s) of {meter} beats fill its {duration:.3f} s at {bpm:.2f} BPM "
        f"(tracked {tracked_bpm:.2f} BPM, beats on the grid); starts with a sound"
    )
    return LoopFit(bars, meter, bpm, reason)


def _untracked_loop(
    duration: float, meters: tuple[int, ...], min_bpm: float, max_bpm: float
) -> LoopFit | None:
    if duration > UNTRACKED_MAX_SECONDS:
        return None
    for bars, meter in UNTRACKED_PRIOR:
        bpm = 60.0 * bars * meter / duration
        if meter in meters and min_bpm <= bpm <= max_bpm:
            reason = (
                f"short ({duration:.3f} s, too short to track); read as {bars} bar(s) of "
                f"{meter} beats at {bpm:.2f} BPM, the likeliest loop; starts with a sound"
            )
            return LoopFit(bars, meter, bpm, reason)
    return None
