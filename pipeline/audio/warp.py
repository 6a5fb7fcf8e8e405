"""The warp map: a monotone, piecewise-linear map between source seconds and beat positions.

Every timing source (madmom downbeats, librosa beats, Ableton warp markers, manual overrides)
becomes a WarpMap; the renderer only ever sees WarpMaps. Beat 0 is the first downbeat; bar k
starts at beat ``k * beats_per_bar``. Outside the anchor points the first and last segments are
extrapolated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Ableton Live's tempo range: every segment between .asd warp markers must lie inside it
# (asd.warp_points). A map itself only has to stay below MAX_BPM on average (bar_starts), which
# bounds its bar lines by the audio's duration: a tracker's map may hold one degenerate segment
# (librosa snapping two beats to one onset leaves them 1 ns apart) and is still usable.
MIN_BPM, MAX_BPM = 20.0, 999.0
MAX_BEATS_PER_BAR = 32
MAX_SECONDS = 1e6  # 11.6 days: beyond any recording that fits in memory
MAX_BEATS = 1e9  # keeps bar indices exact in float64 and int64


@dataclass(frozen=True)
class WarpMap:
    seconds: np.ndarray  # strictly increasing source times, float64
    beats: np.ndarray  # strictly increasing beat positions, float64
    beats_per_bar: int

    def __post_init__(self) -> None:
        seconds = np.asarray(self.seconds, dtype=np.float64)
        beats = np.asarray(self.beats, dtype=np.float64)
        if seconds.ndim != 1 or seconds.shape != beats.shape or len(seconds) < 2:
            raise ValueError("a warp map needs at least two (seconds, beat) pairs of equal length")
        if not (np.isfinite(seconds).all() and np.isfinite(beats).all()):
            raise ValueError("warp map contains non-finite values")
        if (np.diff(seconds) <= 0).any() or (np.diff(beats) <= 0).any():
            raise ValueError("warp map seconds and beats must both be strictly increasing")
        bpb = self.beats_per_bar
        if (
            isinstance(bpb, bool)
            or not isinstance(bpb, int | np.integer)
            or not 1 <= bpb <= MAX_BEATS_PER_BAR
        ):
            raise ValueError(
                f"beats_per_bar must be a whole number in 1..{MAX_BEATS_PER_BAR}, got {bpb!r}"
            )
        object.__setattr__(self, "seconds", seconds)
        object.__setattr__(self, "beats", beats)
        object.__setattr__(self, "beats_per_bar", int(bpb))

    def beat_at(self, seconds: np.ndarray | float) -> np.ndarray:
        return piecewise_linear(seconds, self.seconds, self.beats)

    def seconds_at(self, beats: np.ndarray | float) -> np.ndarray:
        return piecewise_linear(beats, self.beats, self.seconds)

    def local_bpm(self, beats: np.ndarray | float) -> np.ndarray:
        """Tempo (BPM) of the segment containing each beat position."""
        slopes = np.diff(self.beats) / np.diff(self.seconds) * 60.0
        index = np.clip(np.searchsorted(self.beats, beats, side="right") - 1, 0, len(slopes) - 1)
        return slopes[index]

    def bar_starts(self, duration: float) -> np.ndarray:
        """Source seconds of every bar line whose bar lies fully inside ``[0, duration]``.

        Raises ValueError for a duration outside ``0..MAX_SECONDS`` and for a map that puts
        more bars there than ``MAX_BPM`` allows (or beats beyond ``±MAX_BEATS``): the count of
        bar lines stays bounded by the duration.
        """
        if not 0.0 <= duration <= MAX_SECONDS:  # also refuses nan
            raise ValueError(f"duration must be within 0..{MAX_SECONDS:g} s, got {duration}")
        bpb = self.beats_per_bar
        b0, b1 = (float(b) for b in self.beat_at(np.array([0.0, duration])))
        max_bars = duration * MAX_BPM / 60.0 / bpb + 1.0
        if not (abs(b0) <= MAX_BEATS and abs(b1) <= MAX_BEATS and (b1 - b0) / bpb <= max_bars):
            raise ValueError(
                f"warp map puts beats {b0:g}..{b1:g} in 0..{duration:g} s: more than "
                f"{MAX_BPM:g} BPM on average or beyond ±{MAX_BEATS:g} beats"
            )
        first_bar = math.ceil(b0 / bpb - 1e-9)
        last_bar = math.floor(b1 / bpb + 1e-9)
        bars = np.arange(first_bar, last_bar + 1, dtype=np.float64) * bpb
        return self.seconds_at(bars)

    def to_dict(self) -> dict:
        return {
            "seconds": self.seconds.tolist(),
            "beats": self.beats.tolist(),
            "beats_per_bar": self.beats_per_bar,
        }

    @classmethod
    def from_dict(cls, data: dict) -> WarpMap:
        return cls(
            np.asarray(data["seconds"]), np.asarray(data["beats"]), int(data["beats_per_bar"])
        )

    @classmethod
    def constant_tempo(
        cls, bpm: float, first_downbeat: float, beats_per_bar: int, duration: float
    ) -> WarpMap:
        """A map for a steady tempo, e.g. from a manual override."""
        end = max(duration, first_downbeat + 60.0 / bpm)
        return cls(
            np.array([first_downbeat, end]),
            np.array([0.0, (end - first_downbeat) * bpm / 60.0]),
            beats_per_bar,
        )


def piecewise_linear(x: np.ndarray | float, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """The piecewise-linear map through ``(xp, fp)`` (``xp`` increasing, at least two points)
    at ``x``, extrapolating the first and last segments."""
    x = np.asarray(x, dtype=np.float64)
    y = np.interp(x, xp, fp)
    left_slope = (fp[1] - fp[0]) / (xp[1] - xp[0])
    right_slope = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    y = np.where(x < xp[0], fp[0] + (x - xp[0]) * left_slope, y)
    return np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * right_slope, y)


@dataclass(frozen=True)
class Section:
    """A stretch of a track with one warp map: its bars are those lying inside [start, end]."""

    warp: WarpMap
    start: float = 0.0
    end: float = MAX_SECONDS

    def bar_starts(self, duration: float) -> np.ndarray:
        """Bar lines of this section's whole bars inside the recording and the section."""
        lines = self.warp.bar_starts(duration)
        tolerance = 1e-6
        inside = lines[(lines >= self.start - tolerance) & (lines <= self.end + tolerance)]
        return inside


@dataclass(frozen=True)
class Timing:
    """A track's sections in time order: one for a steady track, one per tempo or meter
    change otherwise. Every timing source produces one."""

    sections: tuple[Section, ...]

    def __post_init__(self) -> None:
        if not self.sections:
            raise ValueError("a timing needs at least one section")
        for before, after in zip(self.sections[:-1], self.sections[1:], strict=True):
            if after.start < before.end - 1e-6:
                raise ValueError("sections must be in time order and must not overlap")

    @classmethod
    def single(cls, warp: WarpMap) -> Timing:
        return cls((Section(warp),))

    @property
    def meters(self) -> list[int]:
        return [section.warp.beats_per_bar for section in self.sections]

    def bar_starts(self, duration: float) -> np.ndarray:
        """Every bar line of every section (a section's closing line included)."""
        lines = [section.bar_starts(duration) for section in self.sections]
        return np.concatenate(lines) if lines else np.zeros(0)

    def to_dict(self) -> dict:
        return {
            "sections": [
                {"start_s": s.start, "end_s": s.end, "warp_map": s.warp.to_dict()}
                for s in self.sections
            ]
        }

    @classmethod
    def from_dict(cls, data: dict) -> Timing:
        return cls(
            tuple(
                Section(WarpMap.from_dict(s["warp_map"]), float(s["start_s"]), float(s["end_s"]))
                for s in data["sections"]
            )
        )


def as_timing(timing: Timing | WarpMap) -> Timing:
    return timing if isinstance(timing, Timing) else Timing.single(timing)


def save_warp_map(path: Path, timing: Timing | WarpMap, info: dict) -> None:
    """Write a track's timing plus per-track analysis info as JSON, atomically."""
    from pipeline.fileio import write_json_atomic

    write_json_atomic(path, {**as_timing(timing).to_dict(), **info})


def load_warp_map(path: Path) -> tuple[Timing, dict]:
    data = json.loads(Path(path).read_text())
    timing = Timing.from_dict({"sections": data.pop("sections")})
    return timing, data
