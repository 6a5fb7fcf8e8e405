"""A development corpus of realistic music with exact beat, downbeat and tempo truth.

Every track is arranged in code from a score in music21's bundled corpus (Bach chorales, Essen
folk songs, Ryan's Mammoth Collection, Haydn and Mozart quartets): the score gives the melody
and, through a chord chosen per half bar (per bar in 3/4) from the key's diatonic triads, the
harmony that the bass line and the comping follow. Drum parts are General MIDI percussion
(channel 10) written per style, with fills, crashes on section starts, breaks, ghost notes,
velocity variation and timing humanisation. The MIDI file is rendered by the ``fluidsynth``
program with the FluidR3 General MIDI SoundFont (Debian's ``fluid-soundfont-gm``).

Truth is exact, not estimated: the MIDI file's tempo map (integer microseconds per quarter,
as MIDI stores it) and bar lengths give the second of every beat and downbeat. Beats are
quarter notes; a track has one meter (3 or 4 beats per bar) and one or more sections of
constant tempo (step changes at bar lines). The truth is the un-humanised grid; played notes
are jittered around it by a few milliseconds, as a drummer would.

fluidsynth's audio lags the MIDI clock: a hit's first audible sample comes 3.6 to 5.1 ms after
its event time (a constant delay plus up to one 64-sample block: fluidsynth handles events at
block boundaries). ``FLUIDSYNTH_LATENCY_SAMPLES`` (4.3 ms) is cut from the start of every
render, so onsets sit on the MIDI grid's times within about +-0.8 ms; the test
``tests/integration/test_dev_corpus.py`` measures it.

truth.csv, one row per track: ``path`` (relative to OUT_DIR), ``style``, ``bpm`` and ``meter``
of the first section (``bpm_end``: the last section's; ``beats_per_bar`` = ``meter``, as in
``pipeline.data.synth``), ``downbeats`` and ``beats`` (space-separated seconds, from the first
beat that sounds, pickup included, to the closing downbeat after the last bar), ``sections``
(``start:bpm:meter`` per constant-tempo section joined by ``;``, the first starting at the first
downbeat; bpm is the MIDI tempo's exact value 60e6 / microseconds-per-quarter),
``tempo_change``, ``drums``, ``duration``, ``source`` (the music21 corpus work), ``title``,
``seed`` and ``licence``.

    python bench/dev_corpus.py OUT_DIR [--seed N] [--scale X]

writes ``OUT_DIR/<name>.wav`` (44.1 kHz, 16-bit, stereo), ``OUT_DIR/truth.csv`` and
``OUT_DIR/SOURCES.md``. The build is a pure function of the seed and the scale.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SOUNDFONT_LICENCE = (
    "FluidR3_GM.sf2 (Debian package fluid-soundfont-gm), by Frank Wen and others, "
    "released under the MIT licence"
)
SAMPLE_RATE = 44100
PPQ = 960
FLUIDSYNTH_LATENCY_SAMPLES = 190  # 4.3 ms, cut from the start of every render (see above)
GAIN = 0.3

TRUTH_COLUMNS: tuple[str, ...] = (
    "path",
    "style",
    "bpm",
    "bpm_end",
    "meter",
    "beats_per_bar",
    "first_downbeat",
    "n_bars",
    "downbeats",
    "beats",
    "sections",
    "tempo_change",
    "drums",
    "duration",
    "source",
    "title",
    "seed",
    "licence",
)

# General MIDI percussion keys
KICK, RIM, SNARE, CLAP, HH, PEDAL, OPEN = 36, 37, 38, 39, 42, 44, 46
CRASH, RIDE, BELL, TAMB, COWBELL, CLAVES, SHAKER = 49, 51, 53, 54, 56, 75, 70
TOM_HI, TOM_MID, TOM_LO, TOM_FLOOR = 50, 47, 45, 41
CONGA_HI, CONGA_LO = 63, 64


@dataclass(frozen=True)
class Plan:
    """One track: a style, a score, a meter and the nominal tempo of each section."""

    name: str
    style: str
    source: str  # music21 corpus path; "path#n" for the n-th tune of an opus
    meter: int
    tempi: tuple[float, ...]
    seconds: float = 85.0
    lead: str = "silence"  # silence | pickup | intro (no drums for the first bars)


# Styles: drum pattern, bass pattern, comping, instruments (GM programs, 0-based) and swing.
STYLES: dict[str, dict] = {
    "rock": dict(lead=(29, 30, 81, 65), comp=(29, 30, 27), bass=(33, 34), swing=0.0),
    "punk": dict(lead=(30, 29, 81), comp=(30, 29), bass=(34, 33), swing=0.0),
    "edm": dict(lead=(81, 80, 84), comp=(89, 90, 94), bass=(38, 39), swing=0.0),
    "funk": dict(lead=(61, 65, 66), comp=(7, 4), bass=(36, 37), swing=0.1),
    "breakbeat": dict(lead=(80, 81, 82), comp=(91, 88, 89), bass=(39, 38), swing=0.05),
    "hiphop": dict(lead=(11, 73, 4), comp=(4, 5, 0), bass=(33, 38), swing=0.3),
    "halftime": dict(lead=(80, 81, 87), comp=(89, 91), bass=(38, 39), swing=0.0),
    "dnb": dict(lead=(82, 81, 11), comp=(88, 89, 91), bass=(38, 39), swing=0.0),
    "jazz": dict(lead=(66, 65, 56, 64), comp=(0, 4), bass=(32,), swing=1 / 3),
    "waltz": dict(lead=(40, 73, 21, 22), comp=(21, 0, 48), bass=(58, 32), swing=0.0),
    "latin": dict(lead=(73, 66, 11), comp=(24, 0), bass=(32, 33), swing=0.0),
    "folk": dict(lead=(40, 22, 109, 73), comp=(25, 24), bass=(32,), swing=0.0),
    "chorale": dict(lead=(19, 52, 48), comp=(19, 52, 48), bass=(19, 52, 48), swing=0.0),
    "strings": dict(lead=(40, 48, 49), comp=(41, 49), bass=(42, 43), swing=0.0),
}
NO_DRUMS = ("chorale", "strings")

_CH = "bach/bwv"
_RY = "ryansMammoth/"
_ES = "essenFolksong/altdeu10#"
PLANS: tuple[Plan, ...] = (
    Plan("rock_a", "rock", _RY + "AcrobatsHornpipe.abc", 4, (118.0, 139.5), lead="pickup"),
    Plan("rock_b", "rock", _CH + "66.6", 4, (104.0,), lead="intro"),
    Plan("rock_c", "rock", _RY + "AcaciaReel.abc", 4, (132.0,)),
    Plan("rock_d", "rock", _CH + "267", 4, (92.0,)),
    Plan("rock_e", "rock", _ES + "8", 4, (146.0,), lead="pickup"),
    Plan("punk_a", "punk", _RY + "AdmiralsHornpipe.abc", 4, (188.0,)),
    Plan("punk_b", "punk", _RY + "ArkansasTravellerReel.abc", 4, (196.0,), lead="pickup"),
    Plan("punk_c", "punk", _CH + "253", 4, (160.0, 192.0)),
    Plan("edm_a", "edm", _CH + "255", 4, (124.0,), lead="intro"),
    Plan("edm_b", "edm", _CH + "244.3", 4, (128.0,), seconds=100.0),
    Plan("edm_c", "edm", _RY + "AllAboardReel.abc", 4, (120.0, 126.0), lead="intro"),
    Plan("edm_d", "edm", _CH + "40.8", 4, (132.0,)),
    Plan("funk_a", "funk", _RY + "AlbemarleHornpipe.abc", 4, (104.0,)),
    Plan("funk_b", "funk", _ES + "32", 4, (96.0,), lead="pickup"),
    Plan("funk_c", "funk", _CH + "26.6", 4, (112.0,)),
    Plan("breakbeat_a", "breakbeat", _RY + "AlhambraReel.abc", 4, (136.0,)),
    Plan("breakbeat_b", "breakbeat", _CH + "1.6", 4, (126.0, 140.0), lead="intro"),
    Plan("breakbeat_c", "breakbeat", _RY + "AllTheRageReel.abc", 4, (130.0,)),
    Plan("hiphop_a", "hiphop", _CH + "10.7", 4, (86.0,), lead="intro"),
    Plan("hiphop_b", "hiphop", _RY + "AldridgesHornpipe.abc", 4, (74.0,)),
    Plan("hiphop_c", "hiphop", _CH + "101.7", 4, (92.0,), lead="pickup"),
    Plan("hiphop_d", "hiphop", _RY + "AmateurHornpipe.abc", 4, (96.0, 128.0)),
    Plan("halftime_a", "halftime", _CH + "102.7", 4, (140.0,)),
    Plan("halftime_b", "halftime", _CH + "103.6", 4, (150.0,), lead="intro"),
    Plan("dnb_a", "dnb", _RY + "AmazonHornpipe.abc", 4, (174.0,), lead="intro"),
    Plan("dnb_b", "dnb", _CH + "104.6", 4, (172.0,)),
    Plan("dnb_c", "dnb", _RY + "AmericanHornpipe.abc", 4, (176.0,), seconds=95.0),
    Plan("jazz_a", "jazz", _ES + "36", 4, (126.0,), lead="pickup"),
    Plan("jazz_b", "jazz", _RY + "ApolloClubHornpipe.abc", 4, (196.0,), seconds=90.0),
    Plan("jazz_c", "jazz", _CH + "108.6", 4, (100.0,)),
    Plan("jazz_waltz", "jazz", _CH + "269", 3, (150.0,)),
    Plan("waltz_a", "waltz", _CH + "57.8", 3, (168.0,), lead="pickup"),
    Plan("waltz_b", "waltz", _ES + "6", 3, (180.0, 150.0)),
    Plan("waltz_c", "waltz", _ES + "27", 3, (138.0,), lead="pickup"),
    Plan("waltz_d", "waltz", _ES + "9", 3, (96.0,)),
    Plan("waltz_e", "waltz", "haydn/opus74no1/movement3", 3, (152.0,), lead="intro"),
    Plan("latin_a", "latin", _RY + "ArbanaReel.abc", 4, (132.0,), lead="intro"),
    Plan("latin_b", "latin", _RY + "ArielHornpipe.abc", 4, (140.0,), lead="pickup"),
    Plan("latin_c", "latin", _RY + "AroundTheWorldReel.abc", 4, (122.0, 144.0)),
    Plan(
        "folk_a", "folk", _RY + "AllTheWayToGalwayReel.abc", 4, (112.0, 124.0, 112.0), lead="pickup"
    ),
    Plan("folk_b", "folk", _ES + "20", 3, (120.0,), lead="pickup"),
    Plan("folk_c", "folk", _RY + "AllTheGoReel.abc", 4, (100.0,)),
    Plan("folk_d", "folk", _CH + "187.7", 3, (84.0,)),
    Plan("chorale_a", "chorale", _CH + "248.12-2", 4, (76.0,), seconds=70.0),
    Plan("chorale_b", "chorale", _CH + "269", 3, (84.0,), seconds=70.0),
    Plan("chorale_c", "chorale", _CH + "11.6", 3, (70.0,), seconds=75.0),
    Plan("strings_a", "strings", "haydn/opus74no1/movement3", 3, (138.0,), seconds=80.0),
    Plan("strings_b", "strings", "mozart/k155/movement2", 3, (92.0,), seconds=80.0),
)


# --------------------------------------------------------------------------- scores


@dataclass
class Score:
    """A score reduced to what an arrangement needs, in quarter-note beats from the first
    downbeat (pickup notes have negative beats)."""

    source: str
    title: str
    meter: int
    pickup: float
    n_bars: int
    parts: list[list[tuple[float, float, int]]]  # per part: (beat, duration, MIDI pitch)
    tonic: int
    minor: bool
    chords: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # per segment


def load_score(source: str, meter: int, max_bars: int = 48) -> Score:
    """Parse ``source`` from music21's corpus; 2/4 and 2/2 bars are counted in quarter beats
    (two 2/4 bars make one 4-beat bar). Raises ValueError if the score's meter is not ``meter``."""
    from music21 import corpus, harmony, stream
    from music21 import meter as m21meter

    name, _, number = source.partition("#")
    score = corpus.parse(name, number=int(number)) if number else corpus.parse(name)
    signatures = list(score.recurse().getElementsByClass(m21meter.TimeSignature))
    bar_ql = {float(ts.barDuration.quarterLength) for ts in signatures}
    if len(bar_ql) != 1:
        raise ValueError(f"{source}: not one time signature ({bar_ql})")
    bar = bar_ql.pop()
    if bar == 2.0 and meter == 4:
        bar_beats = 4.0
    elif bar == meter:
        bar_beats = float(meter)
    else:
        raise ValueError(f"{source}: bars of {bar} quarters, wanted meter {meter}")
    parts = list(score.parts) if score.parts else [score]
    measures = list(parts[0].getElementsByClass(stream.Measure))
    pickup = float(measures[0].quarterLength) if measures[0].quarterLength < bar - 1e-6 else 0.0
    out_parts = []
    for part in parts:
        notes = []
        for element in part.stripTies().flatten().notes:
            if isinstance(element, harmony.Harmony) or element.quarterLength <= 0:
                continue
            beat = float(element.offset) - pickup
            if beat >= max_bars * bar_beats:
                continue
            for pitch in element.pitches:
                notes.append((beat, float(element.quarterLength), int(pitch.midi)))
        if notes:
            out_parts.append(sorted(notes))
    out_parts.sort(key=lambda ns: -np.mean([p for _, _, p in ns]))  # highest part first
    end = max(b + d for ns in out_parts for b, d, _ in ns)
    n_bars = max(1, min(max_bars, math.ceil((end - 1e-6) / bar_beats)))
    key = score.analyze("key")
    title = (score.metadata.title if score.metadata and score.metadata.title else name) or name
    result = Score(
        source,
        str(title),
        meter,
        pickup,
        n_bars,
        out_parts,
        key.tonic.pitchClass,
        key.mode == "minor",
    )
    result.chords = harmonise(result)
    return result


_MAJOR = (
    (0, (0, 4, 7)),
    (2, (0, 3, 7)),
    (4, (0, 3, 7)),
    (5, (0, 4, 7)),
    (7, (0, 4, 7)),
    (9, (0, 3, 7)),
)
_MINOR = (
    (0, (0, 3, 7)),
    (3, (0, 4, 7)),
    (5, (0, 3, 7)),
    (7, (0, 4, 7)),
    (8, (0, 4, 7)),
    (10, (0, 4, 7)),
)
_PRIOR = {0: 0.3, 5: 0.15, 7: 0.2}


def segment_beats(meter: int) -> int:
    return 3 if meter == 3 else 2


def harmonise(score: Score) -> list[tuple[int, tuple[int, ...]]]:
    """One chord (root pitch class, intervals) per segment: the key's diatonic triad whose
    tones cover most of the sounding notes' duration (bass notes count double)."""
    seg = segment_beats(score.meter)
    n_seg = score.n_bars * score.meter // seg
    weights = np.zeros((n_seg, 12))
    for index, part in enumerate(score.parts):
        bass = 2.0 if index == len(score.parts) - 1 and len(score.parts) > 1 else 1.0
        for beat, dur, pitch in part:
            for s in range(max(0, int(beat // seg)), min(n_seg, int((beat + dur) // seg) + 1)):
                overlap = min(beat + dur, (s + 1) * seg) - max(beat, s * seg)
                if overlap > 0:
                    weights[s, pitch % 12] += (
                        overlap
                        * bass
                        * (1.5 if beat >= s * seg - 1e-9 and beat < s * seg + 0.01 else 1)
                    )
    chords, previous = [], (score.tonic, (0, 3, 7) if score.minor else (0, 4, 7))
    for s in range(n_seg):
        if weights[s].sum() == 0:
            chords.append(previous)
            continue
        best, best_score = previous, -1e9
        for degree, intervals in _MINOR if score.minor else _MAJOR:
            root = (score.tonic + degree) % 12
            tones = {(root + i) % 12 for i in intervals}
            inside = sum(weights[s, pc] for pc in tones)
            value = inside - 0.6 * (weights[s].sum() - inside) + _PRIOR.get(degree, 0.0)
            value += 0.1 if (root, intervals) == previous else 0.0
            if value > best_score:
                best, best_score = (root, intervals), value
        chords.append(best)
        previous = best
    return chords


# --------------------------------------------------------------------------- arrangement


@dataclass
class Ev:
    beat: float  # grid position (beats from the first downbeat), before humanisation
    channel: int
    note: int
    velocity: int
    dur: float  # beats
    jitter: bool = True


@dataclass
class Arrangement:
    events: list[Ev]
    programs: dict[int, int]
    n_bars: int
    meter: int
    first_beat: int  # first beat (<= 0) that carries sound
    section_bars: list[int]  # bar index where each tempo section starts


def _chord_at(score: Score, score_beat: float) -> tuple[int, tuple[int, ...]]:
    seg = segment_beats(score.meter)
    index = int(score_beat // seg) % len(score.chords)
    return score.chords[index]


def _voicing(root: int, intervals: Sequence[int], low: int) -> list[int]:
    """Chord tones from the first root at or above ``low``."""
    base = low + (root - low) % 12
    return [base + i for i in intervals]


def _fit_range(notes: list[tuple[float, float, int]], centre: int) -> int:
    """Octave shift that moves the notes' mean pitch nearest ``centre``."""
    if not notes:
        return 0
    mean = float(np.mean([p for _, _, p in notes]))
    return int(12 * round((centre - mean) / 12))


def drum_bar(style: str, meter: int, bar: int, rng: np.random.Generator, role: str) -> list[Ev]:
    """One bar of the style's groove (beats within the bar), with variation and ghost notes."""
    ev: list[Ev] = []

    def hit(beat: float, note: int, vel: float, dur: float = 0.25) -> None:
        vel = int(np.clip(vel + rng.normal(0, 6), 1, 127))
        ev.append(Ev(beat, 9, note, vel, dur))

    sixteenths = [i / 4 for i in range(meter * 4)]
    eighths = [i / 2 for i in range(meter * 2)]
    if meter == 3:
        if style == "jazz":
            for b in range(3):
                hit(b, RIDE, 88 if b == 0 else 74)
            hit(1 + 2 / 3, RIDE, 60)
            hit(2 + 2 / 3, RIDE, 62)
            hit(0, KICK, 78)
            for b in (1, 2):
                hit(b, PEDAL, 55)
            if rng.random() < 0.3:
                hit(2 + 2 / 3, SNARE, 40)
        elif style == "waltz":
            hit(0, KICK, 105)
            for b in (1, 2):
                hit(b, SNARE if role != "soft" else RIM, 70)
                hit(b, HH, 65)
            hit(0, HH, 75)
            if rng.random() < 0.4:
                hit(2.5, HH, 45)
        else:  # folk in 3/4
            hit(0, KICK, 100)
            hit(2, KICK, 60) if rng.random() < 0.3 else None
            for b in eighths:
                hit(b, TAMB if b % 1 else HH, 70 if b % 1 == 0 else 50)
            hit(1, SNARE, 80)
            hit(2, SNARE, 72)
        return ev
    if style in ("rock", "punk"):
        kicks = [0, 2, 2.5] if style == "rock" else [0, 1.5, 2, 3.5]
        if style == "rock" and rng.random() < 0.35:
            kicks.append(3.5 if rng.random() < 0.5 else 0.5)
        for b in kicks:
            hit(b, KICK, 108 if b in (0, 2) else 90)
        for b in (1, 3):
            hit(b, SNARE, 112)
        for b in eighths:
            hit(b, OPEN if (style == "punk" and b % 1 == 0) else HH, 90 if b % 1 == 0 else 64)
        if rng.random() < 0.2:
            hit(3.75, SNARE, 38)
    elif style == "edm":
        for b in range(4):
            hit(b, KICK, 118)
            hit(b + 0.5, OPEN, 80)
        for b in (1, 3):
            hit(b, CLAP, 100)
        for b in sixteenths:
            if b % 0.5:
                hit(b, HH, 50)
        if role == "build":
            for b in sixteenths[8:]:
                hit(b, SNARE, 50 + 40 * b / 4)
    elif style == "funk":
        for b in (0, 0.75, 2.25, 2.5) if bar % 2 == 0 else (0, 1.5, 2.5, 3.25):
            hit(b, KICK, 104 if b == 0 else 88)
        for b in (1, 3):
            hit(b, SNARE, 110)
        for b in (0.75, 1.75, 2.25, 3.5):
            if rng.random() < 0.6:
                hit(b, SNARE, 34)
        for b in sixteenths:
            hit(b, OPEN if b == 3.5 and bar % 2 else HH, 84 if b % 0.5 == 0 else 52)
    elif style == "breakbeat":
        kicks = (0, 0.5, 2.25, 2.5) if bar % 2 == 0 else (0, 0.5, 2.5, 3.25)
        for b in kicks:
            hit(b, KICK, 106 if b == 0 else 90)
        for b in (1, 3):
            hit(b, SNARE, 112)
        for b in (1.75, 3.5):
            if rng.random() < 0.5:
                hit(b, SNARE, 52)
        for b in eighths:
            hit(b, RIDE if bar % 4 == 3 else HH, 80 if b % 1 == 0 else 60)
    elif style == "hiphop":
        for b in (0, 0.75, 2.5) if bar % 2 == 0 else (0, 1.75, 2.25):
            hit(b, KICK, 110 if b == 0 else 92)
        for b in (1, 3):
            hit(b, SNARE, 108)
            hit(b, CLAP, 60)
        for b in sixteenths:
            if b % 0.5 == 0 or rng.random() < 0.2:
                hit(b, HH, 74 if b % 1 == 0 else 50)
    elif style == "halftime":
        hit(0, KICK, 112)
        hit(1.75 if bar % 2 else 2.5, KICK, 88)
        hit(2, SNARE, 115)
        hit(2, CLAP, 70)
        for b in sixteenths:
            if b % 0.5 == 0 or (bar % 2 and b >= 3):
                hit(b, HH, 72 if b % 1 == 0 else 48)
    elif style == "dnb":
        for b in (0, 2.5) if bar % 2 == 0 else (0, 1.75, 2.5):
            hit(b, KICK, 112 if b == 0 else 96)
        for b in (1, 3):
            hit(b, SNARE, 114)
        for b in (1.75, 3.75):
            if rng.random() < 0.4:
                hit(b, SNARE, 40)
        for b in eighths:
            hit(b, RIDE if role == "full" and bar % 2 else HH, 78 if b % 1 == 0 else 58)
    elif style == "jazz":
        for b in range(4):
            hit(b, RIDE, 90 if b % 2 == 0 else 80)
            hit(b, KICK, 42)
        for b in (1, 3):
            hit(b + 2 / 3, RIDE, 62)
            hit(b, PEDAL, 64)
        for b in (1 + 2 / 3, 2 + 2 / 3, 3 + 2 / 3):
            if rng.random() < 0.25:
                hit(b, SNARE, 46)
    elif style == "latin":
        for b in (0, 1.5, 2, 3.5):
            hit(b, KICK, 96 if b in (0, 2) else 80)
        for b in (0, 0.75, 1.5, 2.5, 3.25) if bar % 2 == 0 else (0.5, 1.5, 2.25, 3, 3.75):
            hit(b, RIM, 80)
        for b in sixteenths:
            hit(b, SHAKER, 64 if b % 0.5 == 0 else 42)
        if bar % 4 == 1:
            hit(1, CONGA_HI, 70)
            hit(3, CONGA_LO, 70)
    else:  # folk in 4/4
        for b in (0, 2):
            hit(b, KICK, 100)
        for b in (1, 3):
            hit(b, SNARE, 92)
        for b in eighths:
            hit(b, TAMB, 70 if b % 1 == 0 else 48)
    return ev


def drum_fill(meter: int, beats: int, rng: np.random.Generator) -> list[Ev]:
    """A 16th-note snare/tom fill over the bar's last ``beats`` beats, growing louder."""
    start = meter - beats
    voices = (SNARE, SNARE, TOM_HI, TOM_MID, TOM_LO, TOM_FLOOR)
    out = []
    steps = beats * 4
    for i in range(steps):
        if rng.random() < 0.15 and i != steps - 1:
            continue
        voice = voices[min(len(voices) - 1, int(i / steps * len(voices) + rng.integers(0, 2)))]
        out.append(Ev(start + i / 4, 9, voice, int(70 + 45 * i / steps), 0.25))
    out.append(Ev(meter - 0.25, 9, KICK, 90, 0.25))
    return out


def bass_bar(style: str, meter: int, chord_at, rng: np.random.Generator) -> list[Ev]:
    """Bass notes of one bar; ``chord_at(beat)`` gives the (root, intervals) at a bar beat."""
    ev: list[Ev] = []

    def note(beat: float, dur: float, interval: int = 0, vel: int = 96, octave: int = 0):
        root, _ = chord_at(beat)
        pitch = 28 + (root - 28) % 12 + interval + 12 * octave
        ev.append(Ev(beat, 2, pitch, int(np.clip(vel + rng.normal(0, 5), 1, 127)), dur))

    if meter == 3:
        if style == "jazz":
            for b in range(3):
                note(b, 0.95, (0, 7, 4)[b], 88)
        else:
            note(0, 0.9, 0, 100)
            if style == "folk":
                note(2, 0.9, 7, 80)
        return ev
    if style in ("rock", "punk"):
        for b in (i / 2 for i in range(8)):
            note(b, 0.45, 0, 100 if b % 1 == 0 else 84)
    elif style == "edm":
        for b in range(4):
            note(b + 0.5, 0.4, 0, 100, octave=int(b % 2))
    elif style == "funk":
        for b, iv, o in (
            (0, 0, 0),
            (0.75, 0, 1),
            (1.5, 7, 0),
            (2.5, 10, 0),
            (3, 0, 1),
            (3.5, 7, 0),
        ):
            note(b, 0.22, iv, 102 if b == 0 else 84, octave=o)
    elif style in ("breakbeat", "hiphop"):
        for b, d in ((0, 0.7), (0.75, 0.5), (2.5, 1.2)):
            note(b, d, 0, 100)
    elif style == "halftime":
        note(0, 1.4, 0, 104)
        note(2.5, 1.2, 0, 90)
    elif style == "dnb":
        note(0, 2.2, 0, 104)
        note(2.5, 1.3, 7 if rng.random() < 0.3 else 0, 92)
    elif style == "jazz":
        root0, intervals0 = chord_at(0)
        root1, _ = chord_at(2)
        for b, iv in ((0, 0), (1, intervals0[1]), (2, (root1 - root0) % 12), (3, 7)):
            note(b, 0.9, iv, 90 if b % 2 == 0 else 80)
    elif style == "latin":
        for b, d, iv in ((0, 1.4, 0), (1.5, 0.45, 7), (2, 1.4, 0), (3.5, 0.45, 7)):
            note(b, d, iv, 94)
    else:  # folk
        note(0, 1.8, 0, 96)
        note(2, 1.8, 7, 84)
    return ev


def comp_bar(style: str, meter: int, chord_at, rng: np.random.Generator) -> list[Ev]:
    """Comping (chords) of one bar on channel 1."""
    ev: list[Ev] = []

    def chord(
        beat: float, dur: float, vel: int, low: int = 55, spread: float = 0.0, power: bool = False
    ) -> None:
        root, intervals = chord_at(beat)
        tones = [0, 7, 12] if power else [*list(intervals), 12]
        for k, p in enumerate(_voicing(root, tones, low)):
            ev.append(
                Ev(
                    beat + k * spread,
                    1,
                    p,
                    int(np.clip(vel + rng.normal(0, 5), 1, 127)),
                    dur,
                    jitter=False,
                )
            )

    if meter == 3:
        if style == "jazz":
            chord(0, 0.6, 64)
            chord(1 + 2 / 3, 0.3, 58)
        else:
            for b in (1, 2):
                chord(b, 0.6, 66 if style == "waltz" else 70, spread=0.02 if style == "folk" else 0)
        return ev
    if style in ("rock", "punk"):
        for b in (i / 2 for i in range(8)):
            chord(b, 0.45, 86 if b % 1 == 0 else 74, low=40, power=True)
    elif style in ("edm", "breakbeat", "halftime", "dnb"):
        for seg in range(0, 4, 2):
            chord(seg, 1.95, 60)
        if style == "edm":
            for b in (0.5, 1.5, 2.5, 3.5):
                chord(b, 0.2, 56, low=60)
    elif style == "funk":
        for b in (0.25, 0.75, 1.5, 2.25, 2.75, 3.5):
            chord(b, 0.15, 78, low=60)
    elif style == "hiphop":
        for seg in (0, 2):
            chord(seg, 1.7, 62)
        chord(3.5, 0.4, 50)
    elif style == "jazz":
        for b, d in (
            ((0, 0.6), (1 + 2 / 3, 0.3)) if rng.random() < 0.5 else ((0.5 + 1 / 6, 0.3), (2, 0.6))
        ):
            chord(b, d, 62)
    elif style == "latin":
        for b in (0, 1.5, 2.5, 3.5) if rng.random() < 0.5 else (0, 1, 1.5, 2.5, 3):
            chord(b, 0.45, 66)
    else:  # folk strum
        for b in range(4):
            chord(b, 0.9, 72 if b % 2 == 0 else 62, low=48, spread=0.015)
    return ev


def arrange(plan: Plan, score: Score, n_bars: int, rng: np.random.Generator) -> Arrangement:
    """The events of a whole track: intro, passes through the score, a break, an ending."""
    meter = plan.meter
    cfg = STYLES[plan.style]
    drums = plan.style not in NO_DRUMS
    programs = {
        0: int(rng.choice(cfg["lead"])),
        1: int(rng.choice(cfg["comp"])),
        2: int(rng.choice(cfg["bass"])),
    }
    events: list[Ev] = []
    intro_bars = min(n_bars - 1, 4 if plan.lead == "intro" else int(rng.integers(1, 3)))
    intro_bars = max(intro_bars, 0) if drums else 0
    pass_bars = score.n_bars
    break_start = -1
    if drums and n_bars >= intro_bars + 12:
        break_start = intro_bars + pass_bars * max(1, (n_bars - intro_bars) // pass_bars // 2)
        break_start = min(break_start, n_bars - 6)
    swing = float(cfg["swing"])
    first_beat = 0

    def swung(b: float) -> float:
        frac = b % 1
        if swing and abs(frac - 0.5) < 1e-9:
            return b - 0.5 + 0.5 + swing * 0.5 if swing < 0.3 else b - 0.5 + 2 / 3
        return b

    def score_beat(bar: int, within: float) -> float:
        return ((bar - intro_bars) % pass_bars) * meter + within

    def bar_role(bar: int) -> str:
        if bar < intro_bars:
            return "intro"
        if break_start <= bar < break_start + 4:
            return "break"
        return "full"

    dyn = 1.0
    for bar in range(n_bars):
        role = bar_role(bar)
        start = bar * meter
        if (bar - intro_bars) % 8 == 0:
            dyn = float(rng.uniform(0.82, 1.0))

        def chord_at(b: float, bar=bar) -> tuple[int, tuple[int, ...]]:
            return _chord_at(score, score_beat(bar, b))

        def add(items: list[Ev], scale: float = 1.0, start=start, dyn=dyn) -> None:
            for e in items:
                e.beat = start + swung(e.beat)
                e.velocity = int(np.clip(e.velocity * dyn * scale, 1, 127))
                events.append(e)

        if drums:
            phrase_end = (
                (bar - intro_bars) % 8 == 7
                or bar == intro_bars - 1
                or (bar == break_start - 1)
                or (bar == break_start + 3)
            )
            if role == "intro" and plan.lead == "intro":
                pass  # no drums: chords only
            elif role == "break":
                if bar % 2 == 0:
                    add([Ev(0, 9, KICK, 90, 0.25)])
                add([Ev(b, 9, HH, 50, 0.25) for b in range(meter)])
            else:
                groove = drum_bar(plan.style, meter, bar, rng, "full" if role == "full" else "soft")
                if phrase_end and bar < n_bars - 1 and role != "intro":
                    fill_beats = 1 if rng.random() < 0.6 else 2
                    groove = [
                        e for e in groove if e.beat < meter - fill_beats or e.note in (KICK, RIDE)
                    ]
                    groove = [e for e in groove if e.beat < meter - fill_beats] + drum_fill(
                        meter, fill_beats, rng
                    )
                add(groove, 0.85 if role == "intro" else 1.0)
            if (
                bar == intro_bars
                or bar == break_start + 4
                or (bar > intro_bars and (bar - intro_bars) % 8 == 0)
            ):
                add([Ev(0, 9, CRASH, 104, 1.0)])
            if role != "intro":
                add(bass_bar(plan.style, meter, chord_at, rng), 0.8 if role == "break" else 1.0)
            if role != "break" or plan.style in ("edm", "dnb", "halftime"):
                add(comp_bar(plan.style, meter, chord_at, rng), 0.9)
    # Melody (or all voices without drums) from the score, pass by pass.
    passes = range(intro_bars, n_bars, pass_bars)
    if drums:
        melody = score.parts[0]
        shift = _fit_range(melody, 72 if plan.style not in ("jazz", "hiphop") else 67)
        voice_parts = [(0, melody, shift, 92)]
    else:
        voice_parts = []
        channels = (0, 1, 2, 3)
        for index, part in enumerate(score.parts[:4]):
            voice_parts.append((channels[index], part, 0, 84 if index == 0 else 72))
        programs[3] = programs[2]
    for n_pass, pass_start in enumerate(passes):
        for channel, part, shift, vel in voice_parts:
            if not drums:
                layer = n_pass % 2
                programs[channel] = (
                    int(cfg["lead"][layer % len(cfg["lead"])])
                    if channel == 0
                    else programs[channel]
                )
            for beat, dur, pitch in part:
                if beat < 0 and (n_pass > 0 or plan.lead != "pickup"):
                    continue
                if beat < 0 and pass_start > 0:
                    continue
                at = pass_start * meter + beat
                if at + min(dur, 0.1) > n_bars * meter or (
                    drums and break_start <= at / meter < break_start + 2
                ):
                    continue
                dur_ = min(dur * 0.95, n_bars * meter - at)
                velocity = int(
                    np.clip(vel + rng.normal(0, 6) + (6 if beat % meter == 0 else 0), 1, 127)
                )
                events.append(
                    Ev(
                        at
                        if not swing
                        else pass_start * meter
                        + (math.floor(beat) + swung(beat % 1) if beat >= 0 else beat),
                        channel,
                        pitch + shift,
                        velocity,
                        dur_,
                    )
                )
                if at < 0:
                    first_beat = min(first_beat, math.floor(at))
    if drums and plan.lead == "pickup" and first_beat == 0:
        events.extend(Ev(-1 + i / 4, 9, SNARE, 70 + 10 * i, 0.25) for i in range(4))
        first_beat = -1
    # Ending: a closing hit on the downbeat after the last bar.
    end = n_bars * meter
    root, intervals = _chord_at(score, 0)
    events.append(Ev(end, 2, 28 + (root - 28) % 12, 100, 3.0, jitter=False))
    for p in _voicing(root, [*list(intervals), 12], 55):
        events.append(Ev(end, 1, p, 80, 3.0, jitter=False))
    if drums:
        events.append(Ev(end, 9, KICK, 115, 0.5, jitter=False))
        events.append(Ev(end, 9, CRASH, 110, 2.0, jitter=False))
    return Arrangement(events, programs, n_bars, meter, first_beat, [])


# --------------------------------------------------------------------------- MIDI and truth


def tempo_us(bpm: float) -> int:
    return round(60_000_000 / bpm)


def tick_seconds(ticks: np.ndarray, changes: Sequence[tuple[int, int]]) -> np.ndarray:
    """Seconds of ``ticks`` under a tempo map of (tick, microseconds per quarter) steps, the
    first at tick 0; exact up to float rounding."""
    ticks = np.asarray(ticks, dtype=np.float64)
    out = np.zeros_like(ticks)
    elapsed = 0.0
    for i, (tick, us) in enumerate(changes):
        nxt = changes[i + 1][0] if i + 1 < len(changes) else np.inf
        inside = (ticks >= tick) & (ticks < nxt)
        out[inside] = elapsed + (ticks[inside] - tick) * us / PPQ / 1e6
        if np.isfinite(nxt):
            elapsed += (nxt - tick) * us / PPQ / 1e6
    return out


def write_midi(
    path: Path,
    arrangement: Arrangement,
    tempo_map: list[tuple[int, int]],
    origin: int,
    humanize_ms: float,
    rng: np.random.Generator,
    bpm_at,
) -> None:
    """Write the events as a type-0 MIDI file; beat ``b`` is tick ``origin + b * PPQ``
    before humanisation (Gaussian, clipped at 2.5 sigma)."""
    import mido

    messages: list[tuple[int, int, mido.Message]] = []
    for tick, us in tempo_map:
        messages.append((tick, 0, mido.MetaMessage("set_tempo", tempo=us)))
    messages.append(
        (origin, 0, mido.MetaMessage("time_signature", numerator=arrangement.meter, denominator=4))
    )
    for channel, program in sorted(arrangement.programs.items()):
        messages.append((0, 1, mido.Message("program_change", channel=channel, program=program)))
        messages.append(
            (
                0,
                1,
                mido.Message(
                    "control_change",
                    channel=channel,
                    control=10,
                    value=int((32, 64, 58, 80)[channel % 4]),
                ),
            )
        )
        messages.append(
            (
                0,
                1,
                mido.Message(
                    "control_change",
                    channel=channel,
                    control=7,
                    value=(96, 80, 108, 80)[channel % 4],
                ),
            )
        )
    messages.append((0, 1, mido.Message("control_change", channel=9, control=7, value=118)))
    for e in sorted(arrangement.events, key=lambda e: (e.beat, e.channel, e.note)):
        shift = 0.0
        if e.jitter and humanize_ms > 0:
            ms = float(np.clip(rng.normal(0, humanize_ms), -2.5 * humanize_ms, 2.5 * humanize_ms))
            shift = ms / 1000 * bpm_at(e.beat) / 60
        on = max(0, round(origin + (e.beat + shift) * PPQ))
        off = max(on + 1, round(origin + (e.beat + shift + e.dur) * PPQ))
        messages.append(
            (
                on,
                3,
                mido.Message(
                    "note_on", channel=e.channel, note=e.note, velocity=max(1, min(127, e.velocity))
                ),
            )
        )
        messages.append(
            (off, 2, mido.Message("note_off", channel=e.channel, note=e.note, velocity=0))
        )
    messages.sort(key=lambda m: (m[0], m[1]))
    track = mido.MidiTrack()
    now = 0
    for tick, _, message in messages:
        track.append(message.copy(time=tick - now))
        now = tick
    end = origin + (arrangement.n_bars * arrangement.meter + 6) * PPQ
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    midi = mido.MidiFile(type=0, ticks_per_beat=PPQ)
    midi.tracks.append(track)
    midi.save(str(path))


def render(midi: Path, wav: Path, peak_db: float = -1.0, soundfont: Path = SOUNDFONT) -> None:
    """Render ``midi`` with fluidsynth (32-bit float), cut its latency so that onsets sit on
    the MIDI times, trim the trailing silence, scale to a peak of ``peak_db`` dBFS and write
    16-bit PCM."""
    raw = wav.with_suffix(".raw.wav")
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-q",
            "-g",
            str(GAIN),
            "-r",
            str(SAMPLE_RATE),
            "-T",
            "wav",
            "-O",
            "float",
            "-F",
            str(raw),
            str(soundfont),
            str(midi),
        ],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    audio, rate = sf.read(raw, dtype="float64", always_2d=True)
    raw.unlink()
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, not {SAMPLE_RATE}")
    audio = audio[FLUIDSYNTH_LATENCY_SAMPLES:]
    loud = np.flatnonzero(np.abs(audio).max(axis=1) > 1e-4)
    end = min(len(audio), (loud[-1] + SAMPLE_RATE // 10) if len(loud) else len(audio))
    audio = audio[:end]
    peak = float(np.abs(audio).max()) or 1.0
    pcm = np.round(audio * (10 ** (peak_db / 20) / peak) * 32767).astype(np.int16)
    sf.write(wav, pcm, SAMPLE_RATE, subtype="PCM_16")


def _fmt(times: np.ndarray) -> str:
    return " ".join(f"{t:.6f}" for t in times)


def prepare_track(
    plan: Plan, score: Score, out_dir: Path, work: Path, seed: int, scale: float
) -> tuple[dict, Path, Path, float]:
    """MIDI file and truth row of one track (its audio is rendered later)."""
    rng = np.random.default_rng([seed, *plan.name.encode()])
    meter = plan.meter
    jitter = 1.5 if len(plan.tempi) == 1 else 1.0
    tempi = [round(2 * (t + rng.uniform(-jitter, jitter))) / 2 for t in plan.tempi]
    seconds = plan.seconds * float(rng.uniform(0.9, 1.15)) * scale
    mean_bpm = float(np.mean(tempi))
    n_bars = max(4 * len(tempi), round(seconds * mean_bpm / 60 / meter))
    arrangement = arrange(plan, score, n_bars, rng)
    # Sections: equal shares of the bars, changes on bar lines.
    k = len(tempi)
    section_bars = [0] + [round(n_bars * (i / k + rng.uniform(-0.05, 0.05))) for i in range(1, k)]
    lead_seconds = (
        float(rng.uniform(0.05, 1.2)) if plan.lead != "intro" else float(rng.uniform(0.0, 0.5))
    )
    us = [tempo_us(t) for t in tempi]
    origin = round((lead_seconds * tempi[0] / 60 - arrangement.first_beat) * PPQ)
    tempo_map = [(0, us[0])] + [
        (origin + b * meter * PPQ, u) for b, u in zip(section_bars[1:], us[1:], strict=True)
    ]

    def bpm_at(beat: float) -> float:
        index = int(np.searchsorted(np.array(section_bars) * meter, beat, side="right")) - 1
        return tempi[max(0, index)]

    humanize_ms = float(rng.uniform(2.0, 5.0)) if plan.style not in NO_DRUMS else 6.0
    midi = work / f"{plan.name}.mid"
    write_midi(midi, arrangement, tempo_map, origin, humanize_ms, rng, bpm_at)
    beat_ticks = origin + np.arange(arrangement.first_beat, n_bars * meter + 1) * PPQ
    beats = tick_seconds(beat_ticks, tempo_map)
    downbeats = tick_seconds(origin + np.arange(n_bars + 1) * meter * PPQ, tempo_map)
    starts = tick_seconds(np.array([origin + b * meter * PPQ for b in section_bars]), tempo_map)
    exact = [60e6 / u for u in us]
    sections = ";".join(f"{s:.3f}:{b:.2f}:{meter}" for s, b in zip(starts, exact, strict=True))
    row = {
        "path": f"{plan.name}.wav",
        "style": plan.style,
        "bpm": round(exact[0], 4),
        "bpm_end": round(exact[-1], 4),
        "meter": meter,
        "beats_per_bar": meter,
        "first_downbeat": round(float(downbeats[0]), 6),
        "n_bars": n_bars,
        "downbeats": _fmt(downbeats),
        "beats": _fmt(beats),
        "sections": sections,
        "tempo_change": k > 1,
        "drums": plan.style not in NO_DRUMS,
        "source": f"music21 corpus: {plan.source}",
        "title": score.title,
        "seed": seed,
        "licence": "arrangement CC0-1.0 (generated by bargan); score public domain; SoundFont MIT",
    }
    return row, midi, out_dir / row["path"], float(rng.uniform(-3.0, -1.0))


def build_dev_corpus(
    out_dir: Path,
    *,
    seed: int = 2026,
    scale: float = 1.0,
    tracks: Sequence[str] | None = None,
    jobs: int | None = None,
) -> pd.DataFrame:
    """Write the corpus (or the named ``tracks`` of it) into ``out_dir``; returns the truth."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        raise RuntimeError(
            "needs fluidsynth and fluid-soundfont-gm: scripts/ensure_system_deps.sh --test"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = [p for p in PLANS if tracks is None or p.name in tracks]
    if tracks is not None and len(plans) != len(set(tracks)):
        raise ValueError(f"unknown track(s): {set(tracks) - {p.name for p in plans}}")
    scores: dict[tuple[str, int], Score] = {}
    rows, jobs_ = [], []
    with tempfile.TemporaryDirectory(prefix="dev_corpus_") as tmp:
        for plan in plans:
            key = (plan.source, plan.meter)
            if key not in scores:
                scores[key] = load_score(plan.source, plan.meter)
            row, *job = prepare_track(plan, scores[key], out_dir, Path(tmp), seed, scale)
            rows.append(row)
            jobs_.append(job)
        with ThreadPoolExecutor(jobs or min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda job: render(*job), jobs_))
    for row in rows:
        row["duration"] = round(sf.info(out_dir / row["path"]).duration, 6)
    truth = pd.DataFrame(rows)[list(TRUTH_COLUMNS)]
    truth.to_csv(out_dir / "truth.csv", index=False)
    write_sources(out_dir, plans, scores)
    return truth


def write_sources(out_dir: Path, plans: Sequence[Plan], scores: dict) -> None:
    lines = [
        "# Sources of the development corpus",
        "",
        "Every track is arranged and rendered by `bench/dev_corpus.py` (bargan); the arrangement",
        "(drum parts, bass lines, comping, instrumentation) is generated code, CC0-1.0.",
        "",
        "* Scores: the music21 package's bundled corpus (https://github.com/cuthbertLab/music21,",
        "  corpus files distributed with music21 under its BSD-3-Clause licence; the works are",
        "  in the public domain: J. S. Bach chorales, the Essen folk song collection, Ryan's",
        "  Mammoth Collection (1883), Haydn and Mozart string quartets).",
        f"* Sound: {SOUNDFONT_LICENCE};",
        "  rendered by FluidSynth (LGPL-2.1).",
        "",
        "| track | style | score (music21 corpus) | title |",
        "|---|---|---|---|",
    ]
    for plan in plans:
        score = scores[(plan.source, plan.meter)]
        lines.append(f"| {plan.name}.wav | {plan.style} | {score.source} | {score.title} |")
    (out_dir / "SOURCES.md").write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--tracks", nargs="*", help="only these tracks (names in PLANS)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    truth = build_dev_corpus(args.out_dir, seed=args.seed, scale=args.scale, tracks=args.tracks)
    print(
        f"{len(truth)} tracks, {truth['duration'].sum() / 60:.1f} min, "
        f"{truth['style'].nunique()} styles, {truth['bpm'].min():.1f}-"
        f"{truth[['bpm', 'bpm_end']].max().max():.1f} BPM, "
        f"{int(truth['tempo_change'].sum())} with tempo changes, "
        f"{int((truth['meter'] == 3).sum())} in 3/4, built in "
        f"{time.perf_counter() - started:.0f} s -> {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
