"""From activations to sections of bars: tempo curve, beats, meter and downbeat phase.

A section is a stretch of the track with one meter and no tempo step; each has its own warp
map, so a tempo change or a meter change never averages two kinds of bars into one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from pipeline.audio import beats as beat_grid
from pipeline.audio import meter, tempo
from pipeline.audio.warp import Section, WarpMap

MIN_SECTION_BARS = 4  # shorter runs are a tracking accident (or too short to train on)
LOOSE = 50  # tightness of the pass that locates tempo steps: the activation leads
MAX_DRIFT = 1.08  # a section's tempo stays within this factor of its median
STEP_SEARCH_SECONDS = 8.0  # a step found between windows is placed at a beat within this


@dataclass(frozen=True)
class Evidence:
    """Frame-wise signals at ``fps`` (frame i at i / fps seconds)."""

    fps: float
    beat: np.ndarray  # P(beat that is not a downbeat)
    downbeat: np.ndarray  # P(downbeat)
    onset_low: np.ndarray | None = None  # low-frequency spectral flux
    chroma: np.ndarray | None = None  # [frames, 12]
    onset: np.ndarray | None = None  # full-band spectral flux

    @property
    def any_beat(self) -> np.ndarray:
        return self.beat + self.downbeat


@dataclass(frozen=True)
class TrackedSection:
    span: Section  # the section's warp map; its bars lie inside [span.start, span.end]
    steady: bool  # its beats are one straight line
    phase_margin: float = 0.0  # meter.phase_margin of its bar lines over the other phases

    @property
    def meter(self) -> int:
        return self.span.warp.beats_per_bar

    @property
    def bpm(self) -> float:
        return 60.0 / float(np.median(np.diff(self.span.warp.seconds)))


@dataclass(frozen=True)
class Tracking:
    sections: list[TrackedSection]
    beat_times: np.ndarray  # every beat, seconds
    offbeat_ratio: float  # beat evidence on the beats over on the half-beats (> 1: on the beat)
    octave_changed: bool  # the track's pulse was halved or doubled by metrical evidence


def track_sections(
    evidence: Evidence,
    duration: float,
    meters: tuple[int, ...],
    min_bpm: float,
    max_bpm: float,
) -> Tracking:
    """Track beats and bars; raise ValueError when no section of bars can be found."""
    fps = evidence.fps
    activation = evidence.any_beat
    curve = tempo.smoothed(tempo.tempo_curve(activation, fps, min_bpm, max_bpm))
    steps = tempo.without_pulse_switches(curve, tempo.tempo_steps(curve))
    # Pass 1 tracks at the curve's pulse. Its beats place each step at a beat and give the
    # metrical evidence for each section's octave; pass 2 tracks again with both, the tempo
    # switching exactly at the steps (a blend across a step would misplace beats).
    times = _beats(activation, _tempo_plan(curve, steps, len(activation), fps), fps)
    if steps:
        # where the tempo really changes: beats that follow the activation rather than the
        # planned tempo (a loose dynamic programme over the curve as measured, no switch)
        loose = _beats(activation, _tempo_plan(curve, [], len(activation), fps), fps, LOOSE)
        steps = [float(loose[_step_beat(loose, step)]) for step in steps]
    factors = []
    for lo, hi in itertools.pairwise([0.0, *steps, np.inf]):
        inside = times[(times >= lo) & (times < hi)]
        factors.append(
            tempo.octave_factor(
                inside, activation, evidence.downbeat, evidence.onset, fps, min_bpm, max_bpm
            )
        )
    octave_changed = any(f != 1.0 for f in factors)
    if steps or octave_changed:
        plan = _tempo_plan(curve, steps, len(activation), fps, factors)
        times = _beats(activation, plan, fps)
    signals = [activation] + ([evidence.onset_low] if evidence.onset_low is not None else [])
    times, offbeat_ratio = beat_grid.offbeat_shift(times, signals, fps)

    step_beats = [_step_beat(times, step) for step in steps]
    segments = _split(len(times), step_beats)
    regular = times.copy()
    steady_flags = np.zeros(len(times), dtype=bool)
    for first, stop in segments:
        regular[first:stop], steady = beat_grid.regularise(times[first:stop])
        steady_flags[first:stop] = steady
    regular = np.maximum.accumulate(regular) + np.arange(len(regular)) * 1e-9

    score = meter.downbeat_evidence(
        regular, fps, evidence.downbeat, evidence.onset_low, evidence.chroma
    )
    runs = meter.meter_runs(score, meters)
    pieces = [
        (max(first, run.first), min(stop, run.stop), run)
        for run in runs
        for first, stop in segments
        if min(stop, run.stop) > max(first, run.first)
    ]
    # A short file (a two-bar loop) is one short section; in a long one a short run is an
    # accident of tracking, not a section to train on.
    min_bars = (
        MIN_SECTION_BARS
        if any(hi - lo >= MIN_SECTION_BARS * run.meter for lo, hi, run in pieces)
        else 1
    )
    sections = []
    for lo, hi, run in pieces:
        if hi - lo >= min_bars * run.meter:
            section = _section(regular, lo, hi, run, steady_flags[lo], duration)
            if section is not None:
                margin = meter.phase_margin(score[lo:hi], run.meter, (run.phase - lo) % run.meter)
                sections.append(replace(section, phase_margin=margin))
    if not sections:
        raise ValueError("no section of at least one bar with a steady meter")
    return Tracking(sections, regular, offbeat_ratio, octave_changed)


def _tempo_plan(
    curve: tempo.TempoCurve,
    steps: list[float],
    frames: int,
    fps: float,
    factors: list[float] | None = None,
) -> np.ndarray:
    """Expected tempo per frame: each section between steps follows the curve within MAX_DRIFT
    of its own median, times its octave factor; at a step the tempo switches from one frame to
    the next (next to a step the curve is a blend of both sections: the median is used)."""
    frame_times = np.arange(frames) / fps
    bpm_per_frame = curve.at(frame_times)
    bounds = [0.0, *steps, np.inf]
    factors = factors or [1.0] * (len(bounds) - 1)
    for (lo, hi), factor in zip(itertools.pairwise(bounds), factors, strict=True):
        inside = (frame_times >= lo) & (frame_times < hi)
        if not inside.any():
            continue
        # windows that straddle a step measure a blend: the section's own windows decide
        own = (curve.times - tempo.WINDOW_SECONDS / 2 >= lo) & (
            curve.times + tempo.WINDOW_SECONDS / 2 <= hi
        )
        median_bpm = float(np.median(curve.bpm[own] if own.any() else bpm_per_frame[inside]))
        if steps:
            bpm_per_frame[inside] = median_bpm * factor
        else:  # a few windows locked to another pulse (a triplet) must not steer the beats
            local = np.clip(bpm_per_frame[inside], median_bpm / MAX_DRIFT, median_bpm * MAX_DRIFT)
            bpm_per_frame[inside] = local * factor
    return bpm_per_frame


def _beats(
    activation: np.ndarray, bpm_per_frame: np.ndarray, fps: float, tightness: float = 400
) -> np.ndarray:
    frames = beat_grid.track(activation, fps, bpm_per_frame, tightness)
    times = beat_grid.trim_silent_ends(beat_grid.refine(frames, activation, fps), activation, fps)
    if len(times) < 4:
        raise ValueError("fewer than four beats with beat activation under them")
    return times


def _step_beat(times: np.ndarray, step: float) -> int:
    """The beat where the tempo changes: the split of the inter-beat intervals near ``step``
    into two runs that leaves the least variance (a change point over one fixed stretch)."""
    intervals = np.diff(times)
    near = np.flatnonzero(np.abs(times[:-1] - step) <= STEP_SEARCH_SECONDS)
    if len(near) < 6:
        return int(np.searchsorted(times, step))
    region = intervals[near[0] : near[-1] + 1]
    costs = [
        np.var(region[:k]) * k + np.var(region[k:]) * (len(region) - k)
        for k in range(2, len(region) - 1)
    ]
    return int(near[0] + 2 + int(np.argmin(costs)))


def _split(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    edges = [0, *sorted(c for c in cuts if 0 < c < n), n]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def _section(
    times: np.ndarray, first: int, stop: int, run: meter.MeterRun, steady: bool, duration: float
) -> TrackedSection | None:
    index = np.arange(first, stop)
    downbeats = index[(index - run.phase) % run.meter == 0]
    if len(downbeats) < 2:
        return None
    # The next section's first beat closes this section's last bar.
    closing = min(stop + 1, len(times))
    seconds = times[first:closing]
    positions = np.arange(first, closing, dtype=np.float64) - downbeats[0]
    warp = WarpMap(seconds, positions, run.meter)
    # The first and last sections end half a beat beyond their outer beats: no bar lines are
    # extrapolated into a silent lead-in or a ring-out.
    half_beat = 0.5 * float(np.median(np.diff(seconds)))
    start = max(0.0, float(times[first]) - half_beat) if first == 0 else float(times[first])
    end = (
        min(duration, float(times[-1]) + half_beat)
        if closing == len(times)
        else float(times[closing - 1])
    )
    return TrackedSection(Section(warp, start, end), steady)
