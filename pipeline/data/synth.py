"""Procedurally synthesised demo corpus with exact downbeat/beat ground truth.

Tracks are rendered from per-style drum and bass patterns on a 16th-note grid.
Every event is placed at a *beat position* ``b`` (beats since the first
downbeat), mapped to seconds through an exact tempo curve, then humanised.
The ground truth is the un-humanised grid:

* tempo is ``bpm`` at ``b = 0`` and changes linearly in beat position to
  ``bpm_end`` at the end of the last bar (``b = N = n_bars * beats_per_bar``),
  so ``t(b) = lead_in + 60 N / (bpm_end - bpm) * ln(1 + (bpm_end - bpm) b / (N bpm))``
  (``lead_in + 60 b / bpm`` for a constant tempo); before ``b = 0`` the tempo is ``bpm``;
* downbeats are ``t(k * beats_per_bar)`` for ``k = 0 .. n_bars``: ``n_bars`` full
  bars delimited by ``n_bars + 1`` downbeats, the last one being a closing hit
  (kick + crash + root) that rings out for ~1.2 s; the first one is exactly
  ``lead_in_seconds``;
* beats are every integer ``b`` from the first audible lead-in beat to ``N``;
* the lead-in never contains a downbeat: it is either the tail of a bar of the
  pattern or silence followed by a one/two-beat pickup fill.

Rendering is a pure function of the spec: all randomness comes from ``SynthTrackSpec.seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from pipeline.data import drums
from pipeline.fileio import atomic_write
from pipeline.grid import DEFAULT_BEATS_PER_BAR

__all__ = [
    "LICENCE",
    "STYLES",
    "STYLE_BPM_RANGES",
    "TRUTH_COLUMNS",
    "SynthTrackSpec",
    "beat_to_seconds",
    "make_corpus",
    "random_specs",
    "render_track",
]

STYLES: tuple[str, ...] = ("techno", "house", "breakbeat", "halftime", "metal")
"""Style names; the class label of a style is its index in this tuple."""

STYLE_BPM_RANGES: dict[str, tuple[float, float]] = {
    "techno": (124.0, 140.0),
    "house": (118.0, 128.0),
    "breakbeat": (120.0, 140.0),
    "halftime": (130.0, 150.0),
    "metal": (110.0, 175.0),
}
_SWING_RANGES: dict[str, tuple[float, float]] = {
    "techno": (0.0, 0.08),
    "house": (0.1, 0.3),
    "breakbeat": (0.0, 0.2),
    "halftime": (0.0, 0.15),
    "metal": (0.0, 0.0),
}
_HUMANIZE_RANGE_MS: tuple[float, float] = (0.0, 8.0)
_LEAD_IN_RANGE_S: tuple[float, float] = (0.3, 1.5)
_TAIL_SECONDS = 1.2  # ring-out after the closing downbeat
_PEAK = 10.0 ** (-1.0 / 20.0)  # -1 dBFS

LICENCE = "CC0-1.0 (synthesised by bargan)"
TRUTH_COLUMNS: tuple[str, ...] = (
    "path",
    "style",
    "label",
    "bpm",
    "bpm_end",
    "beats_per_bar",
    "first_downbeat",
    "downbeats",
    "duration",
    "swing",
    "humanize_ms",
    "seed",
    "licence",
    "n_bars",
    "beats",
)


@dataclass(frozen=True)
class SynthTrackSpec:
    """Parameters of one synthesised track.

    ``swing`` delays odd 16th notes by ``swing`` of a 16th (0..0.5; 1/3 is
    triplet swing); ``humanize_ms`` is the std of Gaussian onset jitter;
    ``lead_in_seconds`` is the time of the first downbeat; ``bpm_end`` (if set)
    is the tempo at the end of the last bar, reached linearly in beat position.
    """

    style: str
    bpm: float
    n_bars: int
    beats_per_bar: int = DEFAULT_BEATS_PER_BAR
    swing: float = 0.0
    humanize_ms: float = 0.0
    lead_in_seconds: float = 0.5
    bpm_end: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown style {self.style!r}; expected one of {STYLES}")
        if not self.bpm > 0 or (self.bpm_end is not None and not self.bpm_end > 0):
            raise ValueError("bpm and bpm_end must be positive")
        if self.n_bars < 1:
            raise ValueError("n_bars must be >= 1")
        if not 2 <= self.beats_per_bar <= 7:
            raise ValueError("beats_per_bar must be in 2..7")
        if not 0.0 <= self.swing <= 0.5:
            raise ValueError("swing must be in [0, 0.5]")
        if self.humanize_ms < 0 or self.lead_in_seconds < 0:
            raise ValueError("humanize_ms and lead_in_seconds must be >= 0")

    @property
    def label(self) -> int:
        """Class label (index of the style in :data:`STYLES`)."""
        return STYLES.index(self.style)

    @property
    def end_bpm(self) -> float:
        """Tempo at the end of the last bar."""
        return float(self.bpm if self.bpm_end is None else self.bpm_end)


# --------------------------------------------------------------------------- tempo map


def beat_to_seconds(spec: SynthTrackSpec, beats: np.ndarray | float) -> np.ndarray:
    """Exact time (s) of beat position(s) ``beats`` (0 = first downbeat) for ``spec``."""
    b = np.asarray(beats, dtype=np.float64)
    bpm0, bpm1 = float(spec.bpm), spec.end_bpm
    n = float(spec.n_bars * spec.beats_per_bar)
    inside = np.clip(b, 0.0, n)
    if bpm1 == bpm0:
        t = 60.0 * inside / bpm0
    else:
        k = (bpm1 - bpm0) / (n * bpm0)
        t = 60.0 / (bpm0 * k) * np.log1p(k * inside)
    t = t + np.where(b < 0, 60.0 * b / bpm0, 0.0) + np.where(b > n, 60.0 * (b - n) / bpm1, 0.0)
    return spec.lead_in_seconds + t


# --------------------------------------------------------------------------- patterns
# A bar pattern is a list of drum hits (voice, step, velocity) and bass notes
# (step, length_in_steps, semitones_above_chord_root, velocity), steps being
# 16th notes from the bar's downbeat (fractional steps are never swung).

_DrumHit = tuple[str, float, float]
_BassNote = tuple[float, float, int, float]


@dataclass
class _BarCtx:
    steps: int  # 16ths in the bar
    phrase_pos: int  # 0..3 within a 4-bar phrase
    rng: np.random.Generator
    variant: int  # per-track pattern variant
    fill: bool  # last bar of a phrase gets a fill
    bpm: float  # local tempo (patterns thin out at slow tempi)


def _grid(pattern: str, steps: int) -> list[int]:
    """Indices of non-'.' characters of a 16-step pattern tiled to ``steps``."""
    return [i for i in range(steps) if pattern[i % len(pattern)] != "."]


def _snare_fill(ctx: _BarCtx, voice: str = "snare", beats: int = 1) -> list[_DrumHit]:
    start = ctx.steps - 4 * beats
    n = 4 * beats
    return [(voice, float(start + i), 0.45 + 0.5 * i / max(n - 1, 1)) for i in range(n)]


def _techno(ctx: _BarCtx) -> tuple[list[_DrumHit], list[_BassNote]]:
    s = ctx.steps
    d: list[_DrumHit] = [("kick", float(i), 1.0 if i == 0 else 0.88) for i in range(0, s, 4)]
    d += [("hat_open", float(i), 0.55) for i in range(2, s, 4)]
    d += [("hat_closed", float(i), 0.38 if i % 4 == 0 else 0.22) for i in range(s) if i % 4 != 2]
    if ctx.variant % 2 == 1:
        d += [("clap", float(i), 0.7) for i in range(4, s, 8)]
    if ctx.fill:
        d = [h for h in d if not (h[0] == "kick" and h[1] >= s - 4)]
        d += _snare_fill(ctx, "clap" if ctx.variant % 2 else "snare")
    bass = [(0.0, 3.0, 0, 1.0)]
    offs = [(3, 0), (6, 0), (7, 12), (10, 0), (11, 7), (14, 0), (15, 12)]
    bass += [(float(st), 1.0, semi, 0.6) for st, semi in offs if st < s]
    return d, bass


def _house(ctx: _BarCtx) -> tuple[list[_DrumHit], list[_BassNote]]:
    s = ctx.steps
    d: list[_DrumHit] = [("kick", float(i), 1.0 if i == 0 else 0.9) for i in range(0, s, 4)]
    d += [("clap", float(i), 0.8) for i in range(4, s, 8)]
    d += [("hat_closed", float(i), 0.5 if i % 4 == 2 else 0.2) for i in range(s) if i % 4 != 0]
    if ctx.phrase_pos % 2 == 1:
        d.append(("hat_open", float(s - 2), 0.5))
    if ctx.fill:
        d += _snare_fill(ctx)
    bass = [(0.0, 2.0, 0, 1.0)]
    offs = [(3, 12), (6, 0), (8, 0), (10, 7), (11, 12), (14, 10)]
    if ctx.variant % 2:
        offs = [(3, 0), (7, 12), (8, 0), (11, 7), (14, 10)]
    bass += [(float(st), 1.5, semi, 0.65) for st, semi in offs if st < s]
    return d, bass


def _breakbeat(ctx: _BarCtx) -> tuple[list[_DrumHit], list[_BassNote]]:
    s = ctx.steps
    if ctx.phrase_pos % 2 == 0:
        kicks, snares, ghosts = "x.x.......x.....", "....x.......x...", ".......x.x.....x"
    else:
        kicks, snares, ghosts = "x.....x...x.x...", "....x.......x...", ".......x......x."
    d: list[_DrumHit] = [("kick", float(i), 1.0 if i == 0 else 0.8) for i in _grid(kicks, s)]
    d += [("snare", float(i), 0.85) for i in _grid(snares, s)]
    d += [("snare", float(i), 0.28) for i in _grid(ghosts, s)]
    d += [("hat_closed", float(i), 0.45 if i % 4 == 0 else 0.3) for i in range(0, s, 2)]
    if ctx.fill:
        d = [h for h in d if h[1] < s - 4] + _snare_fill(ctx, beats=1)
        d.append(("kick", float(s - 4), 0.7))
    bass = [
        (0.0, 3.0, 0, 1.0),
        (3.0, 1.0, 0, 0.6),
        (6.0, 2.0, 7, 0.65),
        (10.0, 1.0, 0, 0.7),
        (11.0, 2.0, 12, 0.6),
    ]
    bass = [n for n in bass if n[0] < s]
    return d, bass


def _halftime(ctx: _BarCtx) -> tuple[list[_DrumHit], list[_BassNote]]:
    s = ctx.steps
    kicks = ("x......x..x.....", "x.....x..x......", "x..x.....x.x....")[ctx.variant % 3]
    d: list[_DrumHit] = [
        ("kick", float(i), 1.0 if i == 0 else 0.75) for i in _grid(kicks, s) if i != 8
    ]
    d.append(("snare", 8.0, 1.0))
    d.append(("clap", 8.0, 0.5))
    # rolling hats: 16ths with accents on 8ths, one beat of 32nds or triplets per bar
    roll_beat = int(ctx.rng.integers(1, s // 4))
    hat_every = 1 if ctx.bpm >= 110.0 else 2  # slow: 8ths, or the 16ths read as the beat
    for i in range(0, s, hat_every):
        if i // 4 == roll_beat:
            continue
        d.append(("hat_closed", float(i), (0.62, 0.25, 0.42, 0.25)[i % 4]))
    if ctx.rng.random() < 0.5:
        rolls = [roll_beat * 4 + k * 0.5 for k in range(8)]  # 32nds
    else:
        rolls = [roll_beat * 4 + k * 4.0 / 6.0 for k in range(6)]  # 16th triplets
    d += [("hat_closed", st, 0.25 + 0.03 * k) for k, st in enumerate(rolls)]
    if ctx.bpm >= 140.0:  # fast: open hats on the even beats keep the quarter pulse audible
        d += [("hat_open", float(i), 0.45) for i in range(4, s, 8)]
    if ctx.fill and s >= 16:
        d += [("snare", float(s - 2), 0.45), ("snare", float(s - 1), 0.6)]
    bass = [(0.0, 6.0, 0, 1.0)]
    if s > 10:
        bass.append((10.0, 4.0, (0, -2, 3)[ctx.variant % 3], 0.75))
    return d, bass


def _metal(ctx: _BarCtx) -> tuple[list[_DrumHit], list[_BassNote]]:
    s = ctx.steps
    if ctx.bpm >= 130.0:
        chug = ("x.xx.xx.x.xx.x.x", "x..xx..xx.x.xx..", "x.x.xx.x.xx.x.xx")[ctx.variant % 3]
    else:  # slow: 8th-note chug so the 16ths are not heard as the beat
        chug = ("x.x...x.x.x...x.", "x...x.x.x...x.x.", "x.x.x...x.x.x...")[ctx.variant % 3]
    blast = ctx.phrase_pos in (1, 3) and ctx.variant % 2 == 0 and ctx.bpm >= 130.0
    kick_steps = list(range(s)) if blast else _grid(chug, s)
    kick_steps = [i for i in kick_steps if i != s - 1]  # a 16th of air before the downbeat
    d: list[_DrumHit] = [("kick", float(i), 1.0 if i == 0 else 0.65) for i in kick_steps]
    d += [("snare", float(i), 0.95) for i in range(4, s, 8)]
    ride_step = 2 if ctx.bpm >= 130.0 else 4
    d += [("hat_open" if i == 0 else "hat_closed", float(i), 0.4) for i in range(0, s, ride_step)]
    if ctx.fill:
        d = [h for h in d if h[1] < s - 4] + _snare_fill(ctx, beats=1)
    bass: list[_BassNote] = [(0.0, 2.0, 0, 1.0)]
    for i in _grid(chug, s):
        if i == 0:
            continue
        semi = 0 if (i % 8) else (1 if ctx.phrase_pos == 3 else 0)
        bass.append((float(i), 0.6, semi, 0.62))
    return d, bass


@dataclass(frozen=True)
class _StyleDef:
    bars: Callable[[_BarCtx], tuple[list[_DrumHit], list[_BassNote]]]
    progressions: tuple[tuple[int, int, int, int], ...]
    bass_octave: int  # MIDI note of the key's root in the bass register
    bass_wave: str
    bass_cutoff: float
    bass_env: float
    bass_drive: float
    bass_decay: float
    crash_every: int  # crash on the downbeat of every n-th bar (phrase start = 4)
    gains: dict[str, float]


_BASE_GAINS = {
    "kick": 1.0,
    "snare": 0.55,
    "clap": 0.45,
    "hat_closed": 0.18,
    "hat_open": 0.16,
    "crash": 0.22,
    "bass": 0.5,
}

_STYLE_DEFS: dict[str, _StyleDef] = {
    "techno": _StyleDef(
        _techno,
        ((0, 0, 5, 3), (0, 3, 0, -2), (0, 0, -2, -4)),
        33,
        "saw",
        260.0,
        3.0,
        1.0,
        0.12,
        4,
        {},
    ),
    "house": _StyleDef(
        _house,
        ((0, -4, 3, -2), (0, 5, 3, -2), (0, -2, -4, -5)),
        36,
        "square",
        380.0,
        2.5,
        1.0,
        0.2,
        4,
        {},
    ),
    "breakbeat": _StyleDef(
        _breakbeat,
        ((0, 0, 3, 5), (0, -2, 3, -5)),
        33,
        "saw",
        420.0,
        2.0,
        1.5,
        0.25,
        4,
        {"hat_closed": 0.22},
    ),
    "halftime": _StyleDef(
        _halftime,
        ((0, -4, -2, -5), (0, 3, -2, -4)),
        31,
        "sine",
        180.0,
        1.0,
        2.0,
        0.6,
        4,
        {"bass": 0.7},
    ),
    "metal": _StyleDef(
        _metal,
        ((0, 0, 1, -2), (0, 1, 0, 3), (0, 0, 5, 6)),
        28,
        "square",
        900.0,
        1.5,
        5.0,
        0.08,
        1,
        {"bass": 0.45, "kick": 0.9, "crash": 0.28, "hat_open": 0.12},
    ),
}

_PANS = {
    "kick": 0.0,
    "snare": -0.05,
    "clap": 0.1,
    "hat_closed": 0.3,
    "hat_open": 0.35,
    "bass": -0.15,
}


def _pan_gains(pan: float) -> tuple[float, float]:
    theta = (pan + 1.0) * np.pi / 4.0
    return float(np.cos(theta) * np.sqrt(2.0)), float(np.sin(theta) * np.sqrt(2.0))


# --------------------------------------------------------------------------- rendering


def _swing_beats(step: float, swing: float) -> float:
    """Beat offset of a 16th step inside a bar, with swing on odd integer steps."""
    pos = step / 4.0
    if float(step).is_integer() and int(step) % 2 == 1:
        pos += swing * 0.25
    return pos


def _bar_events(
    spec: SynthTrackSpec,
    sdef: _StyleDef,
    bar: int,
    ctx: _BarCtx,
    key: int,
    progression: tuple[int, ...],
) -> tuple[list[tuple[str, float, float]], list[tuple[float, float, int, float]]]:
    """Drum hits and bass notes of one bar, in absolute beat positions."""
    drum_hits, bass_notes = sdef.bars(ctx)
    origin = bar * spec.beats_per_bar
    hits = [(v, origin + _swing_beats(st, spec.swing), vel) for v, st, vel in drum_hits]
    if bar >= 0 and (ctx.phrase_pos % sdef.crash_every == 0):
        hits.append(("crash", float(origin), 1.0 if ctx.phrase_pos == 0 else 0.75))
    root = key + progression[ctx.phrase_pos % len(progression)]
    # bass notes release half a 16th before the next downbeat so it stays articulated
    notes = [
        (
            origin + _swing_beats(st, spec.swing),
            min(ln, ctx.steps - st - 0.5) / 4.0,
            root + semi,
            vel,
        )
        for st, ln, semi, vel in bass_notes
    ]
    return hits, notes


def render_track(
    spec: SynthTrackSpec, sample_rate: int = 44100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``spec`` -> (audio float32 [2, frames], downbeat_seconds, beat_seconds).

    Audio is peak-normalised to -1 dBFS.  ``downbeat_seconds`` has
    ``n_bars + 1`` entries (bar starts plus the closing downbeat), the first
    being ``spec.lead_in_seconds``; ``beat_seconds`` holds every beat of the
    bars plus the audible beats of the lead-in (which contains no downbeat).
    """
    sr = int(sample_rate)
    rng = np.random.default_rng([spec.seed, spec.label, 0x5EED])
    sdef = _STYLE_DEFS[spec.style]
    bpb = spec.beats_per_bar
    n_beats = spec.n_bars * bpb
    steps = 4 * bpb

    # --- one-shots (timbre fixed per track, a few variants for hats/snare)
    shots: dict[str, list[np.ndarray]] = {
        "kick": [drums.kick(sr, rng)],
        "snare": [drums.snare(sr, rng) for _ in range(2)],
        "clap": [drums.clap(sr, rng) for _ in range(2)],
        "hat_closed": [drums.hat_closed(sr, rng) for _ in range(4)],
        "hat_open": [drums.hat_open(sr, rng) for _ in range(2)],
    }
    crash_shot = drums.crash(sr, rng)
    gains = {**_BASE_GAINS, **sdef.gains}
    pans = {v: float(np.clip(p + rng.normal(0.0, 0.05), -0.6, 0.6)) for v, p in _PANS.items()}

    # --- score
    variant = int(rng.integers(0, 6))
    progression = sdef.progressions[int(rng.integers(0, len(sdef.progressions)))]
    key = sdef.bass_octave + int(rng.integers(0, 6))
    hits: list[tuple[str, float, float]] = []
    notes: list[tuple[float, float, int, float]] = []
    for bar in range(spec.n_bars):
        pp = bar % 4
        fill = pp == 3 or bar == spec.n_bars - 1
        local_bpm = spec.bpm + (spec.end_bpm - spec.bpm) * bar / spec.n_bars
        ctx = _BarCtx(steps, pp, rng, variant, fill, float(local_bpm))
        h, n = _bar_events(spec, sdef, bar, ctx, key, progression)
        hits += h
        notes += n
    # closing hit on the downbeat that ends the last bar
    hits += [("kick", float(n_beats), 1.0), ("crash", float(n_beats), 1.0)]
    notes.append((float(n_beats), 2.0, key + progression[0], 1.0))

    # --- lead-in (never containing a downbeat)
    lead_beats = spec.lead_in_seconds * spec.bpm / 60.0
    lead_mode = "partial" if rng.random() < 0.5 else "pickup"
    earliest = -lead_beats - 1e-9
    if lead_mode == "partial":
        ctx = _BarCtx(steps, 3, rng, variant, True, float(spec.bpm))
        h, n = _bar_events(spec, sdef, -1, ctx, key, progression)
        hits += [e for e in h if -bpb < e[1] and e[1] >= earliest]
        notes += [e for e in n if -bpb < e[0] and e[0] >= earliest]
        first_beat = max(-bpb + 1, int(np.ceil(earliest)))
    else:
        pick = min(int(rng.integers(1, 3)), bpb - 1, int(np.floor(lead_beats + 1e-9)))
        if pick >= 1:
            n16 = 4 * pick
            voice = "snare" if spec.style != "house" else "clap"
            hits += [(voice, -pick + k / 4.0, 0.35 + 0.6 * k / max(n16 - 1, 1)) for k in range(n16)]
            hits += [("hat_closed", -pick + k / 2.0, 0.3) for k in range(2 * pick)]
            notes.append((-0.5, 0.45, key + 12, 0.6))
            first_beat = -pick
        else:
            if lead_beats >= 0.25:
                hits.append(("hat_closed", -0.25, 0.4))
            first_beat = 0

    # --- timing: beat positions -> seconds, humanised
    duration = float(beat_to_seconds(spec, n_beats)) + _TAIL_SECONDS
    n_frames = int(np.ceil(duration * sr))
    out = np.zeros((2, n_frames), dtype=np.float64)
    jit_sd = spec.humanize_ms / 1000.0

    def onset(times: np.ndarray) -> np.ndarray:
        if jit_sd > 0:
            times = times + np.clip(
                rng.normal(0.0, jit_sd, times.size), -2.5 * jit_sd, 2.5 * jit_sd
            )
        return np.maximum(np.round(times * sr).astype(np.int64), 0)

    def add(x: np.ndarray, start: int, gl: float, gr: float) -> None:
        if start >= n_frames:
            return
        m = min(x.shape[-1], n_frames - start)
        if x.ndim == 1:
            out[0, start : start + m] += gl * x[:m]
            out[1, start : start + m] += gr * x[:m]
        else:
            out[0, start : start + m] += gl * x[0, :m]
            out[1, start : start + m] += gr * x[1, :m]

    if hits:
        hit_pos = np.array([h[1] for h in hits])
        hit_on = onset(beat_to_seconds(spec, hit_pos))
        vel_var = np.exp(rng.normal(0.0, 0.1, len(hits)))
        pick_idx = rng.integers(0, 4, len(hits))
        for (voice, _pos, vel), start, vv, pi in zip(hits, hit_on, vel_var, pick_idx, strict=True):
            amp = gains[voice] * float(np.clip(vel * vv, 0.05, 1.25))
            if voice == "crash":
                add(crash_shot, int(start), amp, amp)
                continue
            variants = shots[voice]
            gl, gr = _pan_gains(pans[voice])
            add(variants[int(pi) % len(variants)], int(start), amp * gl, amp * gr)

    if notes:
        notes.sort(key=lambda e: e[0])
        pos = np.array([e[0] for e in notes])
        ends = np.array([e[0] + e[1] for e in notes])
        ends = np.minimum(ends, np.append(pos[1:], np.inf))  # monophonic
        t_on = beat_to_seconds(spec, pos)
        t_off = beat_to_seconds(spec, ends)
        starts = onset(t_on)
        vel_var = np.exp(rng.normal(0.0, 0.08, len(notes)))
        gl, gr = _pan_gains(pans["bass"])
        prev_f: float | None = None
        for (_p, _ln, midi, vel), st, on, off, vv in zip(
            notes, starts, t_on, t_off, vel_var, strict=True
        ):
            f = drums.midi_to_hz(midi)
            glide = (
                prev_f
                if (spec.style == "halftime" and prev_f is not None and prev_f != f)
                else None
            )
            x = drums.bass_note(
                sr,
                f,
                max(float(off - on) - 0.004, 0.02),
                wave=sdef.bass_wave,
                cutoff=sdef.bass_cutoff * (0.7 + 0.6 * vel),
                env_amount=sdef.bass_env,
                drive=sdef.bass_drive,
                decay=sdef.bass_decay,
                glide_from=glide,
            )
            amp = gains["bass"] * float(np.clip(vel * vv, 0.05, 1.25))
            add(x, int(st), amp * gl, amp * gr)
            prev_f = f

    # --- master: gentle fade-out in the tail, peak normalise to -1 dBFS
    fade = int(0.3 * sr)
    out[:, -fade:] *= np.linspace(1.0, 0.0, fade)
    peak = float(np.max(np.abs(out)))
    if peak > 0:
        out *= _PEAK / peak
    audio = out.astype(np.float32)

    downbeats = beat_to_seconds(spec, np.arange(spec.n_bars + 1) * bpb)
    beats = beat_to_seconds(spec, np.arange(first_beat, n_beats + 1))
    beats = beats[beats >= 0.0]
    return audio, downbeats, beats


# --------------------------------------------------------------------------- corpus


def random_specs(
    n_per_style: int,
    styles: Sequence[str],
    bpm_range: tuple[float, float],
    n_bars: int,
    seed: int,
) -> list[SynthTrackSpec]:
    """Draw ``n_per_style`` 4/4 constant-tempo specs per style, deterministically from ``seed``.

    bpm is uniform in the intersection of ``bpm_range`` and the style's range
    (or in ``bpm_range`` when they do not overlap); swing (style range),
    humanisation (0-8 ms), lead-in (0.3-1.5 s) and per-track seeds are drawn too.
    """
    lo, hi = sorted(float(x) for x in bpm_range)
    rng = np.random.default_rng(seed)
    specs: list[SynthTrackSpec] = []
    for style in styles:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}")
        s_lo, s_hi = STYLE_BPM_RANGES[style]
        b_lo, b_hi = max(lo, s_lo), min(hi, s_hi)
        if b_lo > b_hi:
            b_lo, b_hi = lo, hi
        w_lo, w_hi = _SWING_RANGES[style]
        for _ in range(n_per_style):
            specs.append(
                SynthTrackSpec(
                    style=style,
                    bpm=float(np.clip(round(rng.uniform(b_lo, b_hi), 2), b_lo, b_hi)),
                    n_bars=n_bars,
                    swing=round(float(rng.uniform(w_lo, w_hi)), 3),
                    humanize_ms=round(float(rng.uniform(*_HUMANIZE_RANGE_MS)), 2),
                    lead_in_seconds=round(float(rng.uniform(*_LEAD_IN_RANGE_S)), 3),
                    seed=int(rng.integers(0, 2**31 - 1)),
                )
            )
    return specs


def _fmt_times(t: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in t)


def make_corpus(
    out_dir: Path, specs: Sequence[SynthTrackSpec], sample_rate: int = 44100
) -> pd.DataFrame:
    """Writes out_dir/<style>/<style>_<idx:03d>.wav (16-bit PCM via soundfile, written atomically:
    tmp file then os.replace) and out_dir/truth.csv; returns the truth table.

    ``idx`` counts tracks of the same style in ``specs`` order.  ``bpm_end``
    equals ``bpm`` for constant-tempo tracks; ``beats`` and ``n_bars`` are
    extra columns (all beat times, space separated).
    """
    out_dir = Path(out_dir)
    counters: dict[str, int] = {}
    rows = []
    for spec in specs:
        idx = counters.get(spec.style, 0)
        counters[spec.style] = idx + 1
        rel = Path(spec.style) / f"{spec.style}_{idx:03d}.wav"
        audio, downbeats, beats = render_track(spec, sample_rate)
        atomic_write(
            out_dir / rel,
            lambda p, a=audio: sf.write(p, a.T, sample_rate, subtype="PCM_16", format="WAV"),
        )
        rows.append(
            {
                "path": rel.as_posix(),
                "style": spec.style,
                "label": spec.label,
                "bpm": float(spec.bpm),
                "bpm_end": spec.end_bpm,
                "beats_per_bar": spec.beats_per_bar,
                "first_downbeat": float(downbeats[0]),
                "downbeats": _fmt_times(downbeats),
                "duration": audio.shape[1] / sample_rate,
                "swing": float(spec.swing),
                "humanize_ms": float(spec.humanize_ms),
                "seed": spec.seed,
                "licence": LICENCE,
                "n_bars": spec.n_bars,
                "beats": _fmt_times(beats),
            }
        )
    table = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    atomic_write(out_dir / "truth.csv", lambda p: table.to_csv(p, index=False))
    return table
