"""A development corpus of third-party music with exact bar truth from the sources' own timing.

Origins (Debian packages; each licence read from ``/usr/share/doc/<package>/copyright``):

* ``openmsx``: OpenMSX, OpenTTD's music set (``openttd-openmsx``, GPL-2.0): 31 General MIDI
  files by Jim Redfarn, Tistou Blomberg, imuh3, mimm, Kyle Timmerman and -lucas-.
* ``freedoom``: the music lumps of Freedoom's two WADs (``freedoom``, BSD-3-Clause style
  "freedoom-license"): Standard MIDI files (``MThd``), by the Freedoom contributors.
* ``pingus``: Pingus's tracker modules (``pingus-data``, GPL-2.0+), Impulse Tracker (IT) and
  one Scream Tracker 3 (S3M) module, by Joseph Toscano and other Pingus musicians.
* ``tecnoballz``: TecnoballZ's ProTracker modules (``tecnoballz-data``, GPL-3.0+), TLK Games.
* ``circuslinux``: Circus Linux!'s ProTracker modules (``circuslinux-data``, GPL-2.0+), by
  Jarkko Rotsten.
* ``rili``: Ri-li's FastTracker 2 (XM) and ProTracker modules (``ri-li-data``, GPL-2/3),
  by Dominique Roux-Serret's Ri-li project.
* ``music21``: a subset of ``bench/dev_corpus.py``'s tracks (music21 scores arranged in code).

Forbidden sources, kept aside for independent checks, are refused by :func:`check_allowed`:
LMMS, Hydrogen, Planet Blupi, Frets on Fire and Nexuiz.

Truth, per kind of source:

* MIDI (``truth_basis`` ``midi-tempo-map``): the file's tempo map (microseconds per quarter at
  ticks) and time-signature events (4/4 where a file has none, as the MIDI standard says)
  give every bar line: bars are counted from tick 0 in the file's PPQ, a time-signature change
  starts a new bar. The beat is the quarter for x/4, the half for x/2, the dotted quarter for
  compound x/8 (6/8, 9/8, 12/8: ``bpm`` then counts dotted quarters) and the eighth for other
  x/8. That the grid is the music's own is checked from the notes (:func:`midi_phase_check`):
  the note weight (long notes, bass notes, crashes and kicks count more) must peak on the bar's
  first beat against every other beat phase, and on beats against the half-beat off-beats; a
  file that fails is left out (listed in SOURCES.md). Rendered by FluidSynth with one of four
  sound sets (FluidR3 GM, TimGM6mb, MuseScore General Lite, OPL-3 FM), its latency cut as in
  ``bench/dev_corpus.py`` (``FLUIDSYNTH_LATENCY_SAMPLES``).
* Tracker modules: libopenmpt (through ctypes on ``libopenmpt.so.0``) renders the module with
  its own samples; two instances play in lockstep so that the sample where every row starts
  is known exactly (:func:`render_module`; libopenmpt's ``set_position_order_row`` clock
  drifts from the render by tens of ms over a song when a tick is not a whole number of
  samples, so it is not used). IT modules carry the composer's row highlights (rows per
  beat, rows per measure; ``it-highlight``); for MOD, XM and S3M the convention of 4 rows per
  beat and 16 per bar is used only where the notes confirm it (``row-convention-verified``):
  most note weight (low notes and drum-named instruments count more) on rows 0 mod
  rows-per-beat, and the most on the bar's first beat. Bars count from each pattern's first
  row; a bar that a pattern break or an odd pattern length cuts short, or one far slower or
  faster than the song's usual bar (a speed-255 stop), ends the truth there (the audio is cut
  on the last whole bar). Speed/tempo changes become sections. ``drums`` is left empty where
  no instrument is named like a drum (MOD files without sample names).
* Every file whose beat tempo leaves ``BPM_RANGE`` anywhere is left out (a highlight of 4
  rows per beat at speed 3 gives a 250 BPM "beat" that is a subdivision).
* ``music21``: the dev corpus's own exact truth (``generated-midi``).

Loops (``kind`` = ``loop``) are drum-only renders (MIDI channel 10 only) cut on bar lines:
1, 2, 4 or 8 bars from a stretch of constant tempo, tiled 1-4 times; the file starts exactly
on a downbeat and lasts a whole number of bars. Full tracks are cut to at most ``CAP_SECONDS``
on a bar line and start at a short silence before their first note.

    python bench/thirdparty_corpus.py OUT_DIR [--jobs 2] [--limit N] [--origins a b ...]

writes ``OUT_DIR/<origin>/<name>.wav`` (44.1 kHz, 16-bit, stereo), ``OUT_DIR/truth.csv``
(rewritten atomically after every origin, with the rows of every file rendered so far) and
``OUT_DIR/SOURCES.md`` (every file's origin, package, composer, licence; the files left out
and why, also in ``OUT_DIR/left_out.csv``). The build is deterministic. Columns beyond
bench/dev_corpus.py's: ``origin``, ``package``, ``composer``, ``licence``, ``source_file``,
``kind`` (track | loop), ``loop_bars`` and ``tiles`` (loops), ``time_signature`` (one or more,
space-separated), ``beat_unit`` (quarter, dotted-quarter, ... or ``N-rows`` for modules),
``offbeat_share`` (share of drum hits halfway between beats: evidence for off-beat-heavy
styles; ``style`` is only tagged where a title says it, else ``unknown``), ``sound_set``,
``truth_basis`` and ``verify`` (the numbers of the grid check).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import io
import os
import re
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import dev_corpus as dc

SAMPLE_RATE = 44100
CAP_SECONDS = 180.0
BPM_RANGE = (55.0, 215.0)  # a beat outside it is likely a subdivision or a double beat
LEAD_SECONDS = (0.3, 1.2)  # silence before a full track's first note (chosen per file)
CHUNK = 256  # libopenmpt lookahead block (frames), see render_module
FORBIDDEN = ("lmms", "hydrogen", "blupi", "fretsonfire", "frets-on-fire", "fof", "nexuiz")

SOUND_SETS: dict[str, tuple[Path, str]] = {
    "FluidR3_GM": (
        Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
        "fluid-soundfont-gm, Frank Wen, MIT",
    ),
    "TimGM6mb": (
        Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
        "timgm6mb-soundfont, Tim Brechbill, GPL-2",
    ),
    "MuseScore_General_Lite": (
        Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"),
        "musescore-general-soundfont-small, S. Christian Collins et al., MIT",
    ),
    "OPL3_FM": (
        Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2"),
        "opl3-soundfont, Zandro Reveille, CC-BY-SA-4.0",
    ),
}

# Onset delay of each sound set beyond fluidsynth's own latency (which dev_corpus's render
# cuts), in samples: the median over kick, snare and claves hits at known MIDI times, measured
# by tests/integration/test_thirdparty_corpus.py. TimGM6mb's drums sound 1.8 ms earlier than
# FluidR3's, the OPL-3 FM bank's notes 4.5 ms later (its envelopes' delay); cut (or padded)
# so that every sound set's hits sit on the MIDI times.
SOUND_SET_DELAY_SAMPLES: dict[str, int] = {
    "FluidR3_GM.sf2": 0,
    "TimGM6mb.sf2": -80,
    "MuseScore_General_Lite.sf3": 0,
    "OPL-3_FM_128M.sf2": 200,
}

TRUTH_COLUMNS: tuple[str, ...] = (
    "path",
    "origin",
    "package",
    "composer",
    "licence",
    "title",
    "source_file",
    "style",
    "kind",
    "loop_bars",
    "tiles",
    "bpm",
    "bpm_end",
    "meter",
    "beats_per_bar",
    "time_signature",
    "beat_unit",
    "first_downbeat",
    "n_bars",
    "downbeats",
    "beats",
    "sections",
    "tempo_change",
    "drums",
    "offbeat_share",
    "sound_set",
    "duration",
    "truth_basis",
    "verify",
)


def check_allowed(*names: str) -> None:
    """Raise ValueError if any name (a package, path or origin) is one of the forbidden
    sources (LMMS, Hydrogen, Planet Blupi, Frets on Fire, Nexuiz)."""
    for name in names:
        flat = re.sub(r"[^a-z0-9-]", "", str(name).lower())
        for bad in FORBIDDEN:
            if bad == "fof":
                if re.search(r"(^|[^a-z])fof([^a-z]|$)", str(name).lower()):
                    raise ValueError(f"{name}: Frets on Fire is a forbidden source")
            elif bad in flat:
                raise ValueError(f"{name}: {bad} is a forbidden source (kept for checks)")


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def _fmt(times: Iterable[float]) -> str:
    return " ".join(f"{t:.6f}" for t in times)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Item:
    """One source file: MIDI bytes or a module's bytes."""

    origin: str
    name: str
    kind: str  # midi | module
    data: bytes = field(repr=False)
    title: str
    composer: str
    package: str
    licence: str
    source_file: str


OPENMSX_DIR = Path("/usr/share/games/openttd/baseset/openmsx")
OPENMSX_COMPOSERS = {
    "ttsong_iv_imuh3": "imuh3",
    "ttsong_iii_imuh3": "imuh3",
    "train_filled_with_cash": "imuh3",
    "flying_scotsman": "imuh3",
    "chuggachugga": "imuh3",
    "busy_schedule": "mimm",
    "the_fast_route": "mimm",
    "modern_motion": "Kyle Timmerman (Mr.Ksoft)",
    "keep_on_rolling": "-lucas-",
    "tttheme2": "-lucas-",
}
FREEDOOM_WADS = (
    Path("/usr/share/games/doom/freedoom1.wad"),
    Path("/usr/share/games/doom/freedoom2.wad"),
)
MODULE_DIRS: dict[str, tuple[str, Path, str, str]] = {
    "pingus": (
        "pingus-data",
        Path("/usr/share/games/pingus/data/music"),
        "Pingus musicians (Joseph Toscano and others)",
        "GPL-2.0-or-later",
    ),
    "tecnoballz": (
        "tecnoballz-data",
        Path("/usr/share/games/tecnoballz/musics"),
        "TLK Games",
        "GPL-3.0-or-later",
    ),
    "circuslinux": (
        "circuslinux-data",
        Path("/usr/share/games/circuslinux/data/music"),
        "Jarkko Rotsten",
        "GPL-2.0-or-later",
    ),
    "rili": (
        "ri-li-data",
        Path("/usr/share/games/ri-li/Ri-li/Sounds"),
        "Ri-li project (Dominique Roux-Serret)",
        "GPL-2.0 or GPL-3.0",
    ),
}
ORIGINS = ("openmsx", "freedoom", "pingus", "tecnoballz", "circuslinux", "rili", "music21")


def openmsx_titles() -> dict[str, str]:
    titles = {}
    obm = OPENMSX_DIR / "openmsx.obm"
    if obm.is_file():
        for line in obm.read_text(errors="replace").splitlines():
            m = re.match(r"^(\S+)\.mid\s*=\s*(.+)$", line)
            if m:
                titles[m.group(1)] = m.group(2).strip()
    return titles


def wad_music(path: Path) -> list[tuple[str, bytes]]:
    """The ``D_*`` music lumps of a Doom WAD: (lump name, bytes)."""
    data = path.read_bytes()
    _, count, offset = struct.unpack("<4sii", data[:12])
    out = []
    for i in range(count):
        pos, size, raw = struct.unpack("<ii8s", data[offset + 16 * i : offset + 16 * i + 16])
        name = raw.rstrip(b"\0").decode("ascii", "replace")
        if name.startswith("D_") and size > 0:
            out.append((name, data[pos : pos + size]))
    return out


MODULE_COMPOSERS: tuple[tuple[bytes, str], ...] = (
    (b"Joseph Toscano", "Joseph Toscano"),
    (b"H. Matthew Smith", "H. Matthew Smith"),
    (b"Yuri R. Sucupira", "Yuri R. Sucupira"),
    (b"Matt Simmonds", "Matt Simmonds (arr.), Craig Timpany"),
    (b"Beno", "Benoit Charcosset (MAF)"),
    (b"jarkko rotsten", "Jarkko Rotsten"),
    (b"REG & ZBB", "Regis Parret (Reg) and ZBB, TLK Games"),
    (b"regis parret", "Regis Parret (Reg), TLK Games"),
    (b"reg from tlk", "Regis Parret (Reg), TLK Games"),
    (b"music from reg", "Regis Parret (Reg), TLK Games"),
)


def module_composer(data: bytes, default: str) -> str:
    """The composer named in a module's sample/instrument names or message, else ``default``."""
    lower = data.lower()
    for needle, name in MODULE_COMPOSERS:
        if needle.lower() in lower:
            return name
    return default


def discover(origin: str) -> list[Item]:
    """The source files of ``origin`` (empty if its package is not installed)."""
    check_allowed(origin)
    items: list[Item] = []
    if origin == "openmsx":
        titles = openmsx_titles()
        for path in sorted(OPENMSX_DIR.glob("*.mid")):
            stem = path.stem
            composer = (
                "Jim Redfarn"
                if stem.endswith("_redfarn")
                else OPENMSX_COMPOSERS.get(stem, "Tistou Blomberg")
            )
            items.append(
                Item(
                    origin,
                    stem,
                    "midi",
                    path.read_bytes(),
                    titles.get(stem, stem),
                    composer,
                    "openttd-openmsx",
                    "GPL-2.0",
                    str(path),
                )
            )
    elif origin == "freedoom":
        seen: set[bytes] = set()
        for wad in FREEDOOM_WADS:
            if not wad.is_file():
                continue
            for lump, data in wad_music(wad):
                if not data.startswith(b"MThd") or data in seen:
                    continue
                seen.add(data)
                items.append(
                    Item(
                        origin,
                        f"{wad.stem}_{lump.lower()}",
                        "midi",
                        data,
                        f"{wad.stem} {lump}",
                        "Freedoom contributors",
                        "freedoom",
                        "BSD-3-Clause (freedoom-license)",
                        f"{wad}:{lump}",
                    )
                )
    elif origin in MODULE_DIRS:
        package, folder, composer, licence = MODULE_DIRS[origin]
        for path in sorted(folder.glob("*")):
            if (
                path.suffix.lower() not in (".mod", ".xm", ".s3m", ".it")
                or path.name == "language.It"
            ):
                continue
            data = path.read_bytes()
            items.append(
                Item(
                    origin,
                    re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()),
                    "module",
                    data,
                    module_title(data, path.stem),
                    module_composer(data, composer),
                    package,
                    licence,
                    str(path),
                )
            )
    for item in items:
        check_allowed(item.source_file, item.package)
    return items


# --------------------------------------------------------------------------- MIDI truth


@dataclass
class MidiGrid:
    ppq: int
    tempo: list[tuple[int, int]]  # (tick, microseconds per quarter), first at tick 0
    bars: list[tuple[int, int, int, int]]  # (start tick, numerator, denominator, beat ticks)
    notes: list[tuple[int, int, int, int, int]]  # (tick, end tick, channel, note, velocity)
    end_tick: int

    def seconds(self, ticks: Sequence[float] | np.ndarray) -> np.ndarray:
        ticks = np.asarray(ticks, dtype=np.float64)
        out = np.zeros_like(ticks)
        elapsed = 0.0
        for i, (tick, us) in enumerate(self.tempo):
            nxt = self.tempo[i + 1][0] if i + 1 < len(self.tempo) else np.inf
            inside = (ticks >= tick) & (ticks < nxt)
            out[inside] = elapsed + (ticks[inside] - tick) * us / self.ppq / 1e6
            if np.isfinite(nxt):
                elapsed += (nxt - tick) * us / self.ppq / 1e6
        return out

    def us_at(self, tick: int) -> int:
        us = self.tempo[0][1]
        for t, u in self.tempo:
            if t <= tick:
                us = u
        return us


def beat_of(numerator: int, denominator: int, ppq: int) -> tuple[int, int]:
    """(beats per bar, ticks per beat) for a time signature."""
    whole = 4 * ppq
    if denominator == 8 and numerator % 3 == 0 and numerator > 3:
        return numerator // 3, 3 * whole // 8
    return numerator, whole // denominator


def midi_grid(data: bytes) -> MidiGrid:
    """Parse a Standard MIDI file's tempo map, bar lines and notes (all tracks merged)."""
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    if midi.type == 2:
        raise ValueError("type-2 MIDI (independent sequences)")
    ppq = midi.ticks_per_beat
    tempo: dict[int, int] = {}
    sigs: dict[int, tuple[int, int]] = {}
    notes: list[tuple[int, int, int, int, int]] = []
    end = 0
    for track in midi.tracks:
        now = 0
        open_: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for msg in track:
            now += msg.time
            if msg.type == "set_tempo":
                tempo[now] = msg.tempo
            elif msg.type == "time_signature":
                sigs[now] = (msg.numerator, msg.denominator)
            elif msg.type == "note_on" and msg.velocity > 0:
                open_.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                started = open_.get((msg.channel, msg.note))
                if started:
                    tick, vel = started.pop(0)
                    notes.append((tick, now, msg.channel, msg.note, vel))
        for (channel, note), rest in open_.items():
            notes.extend((tick, now, channel, note, vel) for tick, vel in rest)
        end = max(end, now)
    if not notes:
        raise ValueError("no notes")
    tempo_map = sorted(tempo.items())
    if not tempo_map or tempo_map[0][0] > 0:
        tempo_map.insert(0, (0, 500_000))
    sig_map = sorted(sigs.items())
    if not sig_map or sig_map[0][0] > 0:
        sig_map.insert(0, (0, (4, 4)))
    last = max(n[0] for n in notes)
    bars: list[tuple[int, int, int, int]] = []
    tick = 0
    index = 0
    while tick <= last:
        while index + 1 < len(sig_map) and sig_map[index + 1][0] <= tick:
            index += 1
        num, den = sig_map[index][1]
        _, beat = beat_of(num, den, ppq)
        bars.append((tick, num, den, beat))
        length = num * 4 * ppq // den
        nxt = tick + length
        if index + 1 < len(sig_map) and tick < sig_map[index + 1][0] < nxt:
            nxt = sig_map[index + 1][0]  # a time signature mid-bar starts a new bar
        tick = nxt
    bars.append((tick, *bars[-1][1:]))  # the closing bar line
    # Merge duplicate tempo events at one tick (the last wins) and drop repeats.
    merged: list[tuple[int, int]] = []
    for t, us in tempo_map:
        if merged and merged[-1][0] == t:
            merged[-1] = (t, us)
        elif not merged or merged[-1][1] != us:
            merged.append((t, us))
    return MidiGrid(ppq, merged, bars, sorted(notes), max(end, tick))


GM_CRASH = {49, 57, 55, 52}
GM_KICK = {35, 36}


def midi_phase_check(grid: MidiGrid) -> tuple[bool, str]:
    """Is tick 0's bar grid the music's own? Note weight per beat phase in the bar (long notes,
    low notes, crashes and kicks weigh more) must peak on beat 1, and on-beat weight must beat
    the half-beat off-beats. Returns (ok, summary)."""
    ppq = grid.ppq
    starts = np.array([b[0] for b in grid.bars])
    phase_w: dict[int, np.ndarray] = {}
    on, off = 0.0, 0.0
    tol = max(1, ppq // 24)
    for tick, end, channel, note, vel in grid.notes:
        i = int(np.searchsorted(starts, tick, side="right")) - 1
        if i < 0 or i >= len(grid.bars) - 1:
            continue
        bar_tick, _, _, beat = grid.bars[i]
        per_bar = (starts[i + 1] - bar_tick) // beat if beat else 0
        rel = tick - bar_tick
        q, r = divmod(rel, beat)
        if channel == 9:
            w = 3.0 if note in GM_CRASH else 1.5 if note in GM_KICK else 0.3
        else:
            w = min(end - tick, 4 * ppq) / ppq * (1.5 if note < 52 else 1.0)
        w *= vel / 100
        steady = channel != 9 or note in GM_KICK or note in GM_CRASH or note in (38, 40)
        if r <= tol or beat - r <= tol:
            on += w if steady else 0.0
            if per_bar >= 2:
                k = (q + (1 if beat - r <= tol else 0)) % per_bar
                phase_w.setdefault(int(per_bar), np.zeros(int(per_bar)))[k] += w
        elif abs(r - beat / 2) <= tol:
            off += w if steady else 0.0
    if not phase_w:
        return False, "no bars of 2+ beats"
    per_bar, weights = max(phase_w.items(), key=lambda kv: kv[1].sum())
    best = int(np.argmax(weights))
    margin = weights[0] / max(1e-9, max(np.delete(weights, 0)))
    beat_ratio = on / max(off, 1e-9)
    ok = best == 0 and margin >= 1.05 and beat_ratio >= 1.1
    return ok, f"bar-phase margin {margin:.2f}, on/off-beat {beat_ratio:.1f}"


def drum_offbeat_share(grid: MidiGrid) -> float:
    """Share of drum (channel 10) hits on the eighth off-beats (halfway between beats)."""
    starts = np.array([b[0] for b in grid.bars])
    total, off = 0.0, 0.0
    for tick, _, channel, _, vel in grid.notes:
        if channel != 9:
            continue
        i = int(np.searchsorted(starts, tick, side="right")) - 1
        if i < 0:
            continue
        beat = grid.bars[i][3]
        r = (tick - starts[i]) % beat
        total += vel
        if abs(r - beat / 2) <= max(1, grid.ppq // 24):
            off += vel
    return round(off / total, 3) if total else float("nan")


def write_midi_bytes(data: bytes, path: Path, drums_only: bool = False) -> None:
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    if drums_only:
        for track in midi.tracks:
            kept, carry = [], 0
            for msg in track:
                if not msg.is_meta and hasattr(msg, "channel") and msg.channel != 9:
                    carry += msg.time
                    continue
                kept.append(msg.copy(time=msg.time + carry))
                carry = 0
            track[:] = kept
    midi.save(str(path))


def render_fluidsynth(
    data: bytes, soundfont: Path, work: Path, drums_only: bool = False
) -> np.ndarray:
    """Render MIDI bytes to float stereo at 44.1 kHz, sample 0 = tick 0 (fluidsynth's latency
    and the sound set's onset delay, ``SOUND_SET_DELAY_SAMPLES``, cut)."""
    midi_path = work / f"{_seed(data, drums_only, soundfont):x}.mid"
    write_midi_bytes(data, midi_path, drums_only)
    wav = midi_path.with_suffix(".wav")
    dc.render(midi_path, wav, soundfont=soundfont)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    midi_path.unlink()
    wav.unlink()
    assert rate == SAMPLE_RATE
    delay = SOUND_SET_DELAY_SAMPLES.get(soundfont.name, 0)
    if delay > 0:
        audio = audio[delay:]
    elif delay < 0:
        audio = np.concatenate([np.zeros((-delay, audio.shape[1]), audio.dtype), audio])
    return audio


# --------------------------------------------------------------------------- modules (libopenmpt)


class OpenMPT:
    """Just enough of libopenmpt's C API, through ctypes."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libopenmpt.so.0")
        vp, i32 = ctypes.c_void_p, ctypes.c_int32
        lib.openmpt_module_create_from_memory2.restype = vp
        lib.openmpt_module_create_from_memory2.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            vp,
            vp,
            vp,
            vp,
            ctypes.POINTER(ctypes.c_int),
            vp,
            vp,
        ]
        lib.openmpt_module_destroy.argtypes = [vp]
        for name in (
            "get_current_order",
            "get_current_row",
            "get_current_pattern",
            "get_current_speed",
            "get_current_tempo",
            "get_num_orders",
            "get_num_channels",
            "get_num_instruments",
            "get_num_samples",
        ):
            fn = getattr(lib, f"openmpt_module_{name}")
            fn.argtypes, fn.restype = [vp], i32
        lib.openmpt_module_set_position_order_row.restype = ctypes.c_double
        lib.openmpt_module_set_position_order_row.argtypes = [vp, i32, i32]
        lib.openmpt_module_get_duration_seconds.restype = ctypes.c_double
        lib.openmpt_module_get_duration_seconds.argtypes = [vp]
        lib.openmpt_module_read_interleaved_float_stereo.argtypes = [vp, i32, ctypes.c_size_t, vp]
        lib.openmpt_module_read_interleaved_float_stereo.restype = ctypes.c_size_t
        lib.openmpt_module_get_pattern_num_rows.argtypes = [vp, i32]
        lib.openmpt_module_get_pattern_num_rows.restype = i32
        lib.openmpt_module_get_pattern_row_channel_command.argtypes = [
            vp,
            i32,
            i32,
            i32,
            ctypes.c_int,
        ]
        lib.openmpt_module_get_pattern_row_channel_command.restype = ctypes.c_uint8
        for name in ("get_metadata",):
            fn = getattr(lib, f"openmpt_module_{name}")
            fn.argtypes, fn.restype = [vp, ctypes.c_char_p], vp
        for name in ("get_sample_name", "get_instrument_name"):
            fn = getattr(lib, f"openmpt_module_{name}")
            fn.argtypes, fn.restype = [vp, i32], vp
        lib.openmpt_free_string.argtypes = [vp]
        lib.openmpt_module_set_repeat_count.argtypes = [vp, i32]
        lib.openmpt_module_ext_create_from_memory.restype = vp
        lib.openmpt_module_ext_create_from_memory.argtypes = (
            lib.openmpt_module_create_from_memory2.argtypes
        )
        lib.openmpt_module_ext_get_module.argtypes = [vp]
        lib.openmpt_module_ext_get_module.restype = vp
        lib.openmpt_module_ext_get_interface.argtypes = [vp, ctypes.c_char_p, vp, ctypes.c_size_t]
        lib.openmpt_module_ext_get_interface.restype = ctypes.c_int
        lib.openmpt_module_ext_destroy.argtypes = [vp]
        self.lib = lib

    def load(self, data: bytes) -> int:
        error = ctypes.c_int(0)
        mod = self.lib.openmpt_module_create_from_memory2(
            data, len(data), None, None, None, None, ctypes.byref(error), None, None
        )
        if not mod:
            raise ValueError(f"libopenmpt cannot load the module (error {error.value})")
        return mod

    def load_muted(self, data: bytes, keep: set[int]) -> tuple[int, int]:
        """(module_ext, module) with every instrument (or sample) but ``keep`` (1-based, as
        patterns number them) muted through libopenmpt's "interactive" extension."""
        error = ctypes.c_int(0)
        ext = self.lib.openmpt_module_ext_create_from_memory(
            data, len(data), None, None, None, None, ctypes.byref(error), None, None
        )
        if not ext:
            raise ValueError(f"libopenmpt cannot load the module (error {error.value})")
        iface = _Interactive()
        if (
            self.lib.openmpt_module_ext_get_interface(
                ext, b"interactive", ctypes.byref(iface), ctypes.sizeof(iface)
            )
            == 0
        ):
            raise RuntimeError("libopenmpt has no interactive extension")
        mute = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int)(
            iface.set_instrument_mute_status
        )
        mod = self.lib.openmpt_module_ext_get_module(ext)
        count = self.lib.openmpt_module_get_num_instruments(mod) or (
            self.lib.openmpt_module_get_num_samples(mod)
        )
        for index in range(count):
            mute(ext, index, int(index + 1 not in keep))
        return ext, mod

    def string(self, pointer: int | None) -> str:
        if not pointer:
            return ""
        text = ctypes.string_at(pointer).decode("utf-8", "replace")
        self.lib.openmpt_free_string(pointer)
        return text

    def metadata(self, mod: int, key: str) -> str:
        return self.string(self.lib.openmpt_module_get_metadata(mod, key.encode()))


class _Interactive(ctypes.Structure):
    """libopenmpt_ext.h's openmpt_module_ext_interface_interactive (function pointers)."""

    _fields_ = [
        (name, ctypes.c_void_p)
        for name in (
            "set_current_speed",
            "set_current_tempo",
            "set_tempo_factor",
            "get_tempo_factor",
            "set_pitch_factor",
            "get_pitch_factor",
            "set_global_volume",
            "get_global_volume",
            "set_channel_volume",
            "get_channel_volume",
            "set_channel_mute_status",
            "get_channel_mute_status",
            "set_instrument_mute_status",
            "get_instrument_mute_status",
            "play_note",
            "stop_note",
        )
    ]


_MPT: OpenMPT | None = None


def mpt() -> OpenMPT:
    global _MPT
    if _MPT is None:
        _MPT = OpenMPT()
    return _MPT


def module_title(data: bytes, default: str) -> str:
    try:
        api = mpt()
        mod = api.load(data)
        title = api.metadata(mod, "title").strip()
        api.lib.openmpt_module_destroy(mod)
        return title or default
    except (OSError, ValueError):
        return default


DRUM_WORDS = re.compile(
    r"kick|bd|bass ?drum|snare|sn\b|hat|hh|hihat|drum|perc|tom|crash|cymb|clap|ride|rim|break",
    re.I,
)


@dataclass
class ModuleRender:
    audio: np.ndarray
    rows: list[tuple[float, int, int, int]]  # (seconds, order, pattern, row) in play order
    mod_type: str
    speed_tempo: list[tuple[int, int]]  # per visited row


def render_module(data: bytes, max_seconds: float, keep: set[int] | None = None) -> ModuleRender:
    """Render with libopenmpt (no repeat) and find the sample where every row starts.

    Two instances play in lockstep: a leader reads ``CHUNK`` frames ahead; where its
    order/row changed within the chunk, the follower (whose audio is kept) steps through that
    chunk frame by frame. After reading ``n`` frames libopenmpt reports the row of frame
    ``n - 1``, so a row first reported after ``n`` frames starts at frame ``n - 1``: row times
    are exact to the sample of the rendered audio (libopenmpt's own position clock,
    ``openmpt_module_set_position_order_row``, drifts from the render by up to tens of ms
    over a song at tempos whose tick is not a whole number of samples). ``keep``: render only
    these instruments (1-based), e.g. the drums for a drum loop."""
    api = mpt()
    lib = api.lib
    lead = api.load(data)
    ext = None
    if keep is None:
        follow = api.load(data)
    else:  # only the instruments in ``keep`` sound; timing is the unmuted module's
        ext, follow = api.load_muted(data, keep)
    read = lib.openmpt_module_read_interleaved_float_stereo

    def position(mod: int) -> tuple[int, int]:
        return lib.openmpt_module_get_current_order(mod), lib.openmpt_module_get_current_row(mod)

    try:
        for mod in (lead, follow):
            lib.openmpt_module_set_repeat_count(mod, 0)
        mod_type = api.metadata(follow, "type")
        big = np.zeros(2 * CHUNK, np.float32)
        one = np.zeros(2, np.float32)
        chunks: list[np.ndarray] = []
        rows: list[tuple[float, int, int, int]] = []
        speed_tempo: list[tuple[int, int]] = []

        def mark(frame: int) -> None:
            order, row = position(follow)
            rows.append(
                (frame / SAMPLE_RATE, order, lib.openmpt_module_get_current_pattern(follow), row)
            )
            speed_tempo.append(
                (
                    lib.openmpt_module_get_current_speed(follow),
                    lib.openmpt_module_get_current_tempo(follow),
                )
            )

        mark(0)
        current = position(follow)
        n = 0
        limit = int(max_seconds * SAMPLE_RATE)
        while n < limit:
            got = read(lead, SAMPLE_RATE, CHUNK, big.ctypes.data)
            if got == 0:
                break
            if position(lead) == current:
                done = read(follow, SAMPLE_RATE, got, big.ctypes.data)
                chunks.append(big[: 2 * done].copy())
                n += done
                continue
            for _ in range(got):
                if read(follow, SAMPLE_RATE, 1, one.ctypes.data) == 0:
                    break
                chunks.append(one.copy())
                n += 1
                if position(follow) != current:
                    current = position(follow)
                    mark(n - 1)
        audio = np.concatenate(chunks).reshape(-1, 2) if chunks else np.zeros((0, 2), np.float32)
        return ModuleRender(audio, rows, mod_type, speed_tempo)
    finally:
        lib.openmpt_module_destroy(lead)
        if ext is None:
            lib.openmpt_module_destroy(follow)
        else:
            lib.openmpt_module_ext_destroy(ext)


def it_highlight(data: bytes) -> tuple[int, int] | None:
    """(rows per beat, rows per measure) from an IT/MPTM header, None if unset."""
    if data[:4] == b"IMPM" and len(data) > 0x20:
        beat, measure = data[0x1E], data[0x1F]
        if beat > 0 and measure > 0 and measure % beat == 0:
            return beat, measure
    return None


def module_notes(data: bytes) -> tuple[dict[int, list[tuple[int, int, int]]], set[int]]:
    """Per pattern: (row, note, instrument) of every note; and the drum-named instruments."""
    api = mpt()
    lib = api.lib
    mod = api.load(data)
    try:
        channels = lib.openmpt_module_get_num_channels(mod)
        n_inst = lib.openmpt_module_get_num_instruments(mod)
        names = []
        if n_inst > 0:
            names = [
                api.string(lib.openmpt_module_get_instrument_name(mod, i)) for i in range(n_inst)
            ]
        else:
            n_smp = lib.openmpt_module_get_num_samples(mod)
            names = [api.string(lib.openmpt_module_get_sample_name(mod, i)) for i in range(n_smp)]
        drums = {i + 1 for i, name in enumerate(names) if DRUM_WORDS.search(name or "")}
        patterns: dict[int, list[tuple[int, int, int]]] = {}
        n_orders = lib.openmpt_module_get_num_orders(mod)
        lib.openmpt_module_get_order_pattern.argtypes = [ctypes.c_void_p, ctypes.c_int32]
        lib.openmpt_module_get_order_pattern.restype = ctypes.c_int32
        for order in range(n_orders):
            pattern = lib.openmpt_module_get_order_pattern(mod, order)
            if pattern in patterns or pattern < 0:
                continue
            rows = lib.openmpt_module_get_pattern_num_rows(mod, pattern)
            notes = []
            for row in range(rows):
                for ch in range(channels):
                    note = lib.openmpt_module_get_pattern_row_channel_command(
                        mod, pattern, row, ch, 0
                    )
                    if 1 <= note <= 120:
                        inst = lib.openmpt_module_get_pattern_row_channel_command(
                            mod, pattern, row, ch, 1
                        )
                        notes.append((row, note, inst))
            patterns[pattern] = notes
        return patterns, drums
    finally:
        lib.openmpt_module_destroy(mod)


def module_phase_check(
    rows: list[tuple[float, int, int, int]],
    patterns: dict[int, list[tuple[int, int, int]]],
    drums: set[int],
    rows_per_beat: int,
    rows_per_bar: int,
    min_margin: float = 1.05,
) -> tuple[bool, str]:
    """Note weight by row phase over the rows that play: beats (row % rows_per_beat == 0) must
    carry the most weight among beat phases, and the bar's first beat at least as much as
    any other beat of the bar (low notes and drum-named instruments weigh more)."""
    beat_w = np.zeros(rows_per_beat)
    bar_w = np.zeros(rows_per_bar // rows_per_beat)
    by_row: dict[tuple[int, int], float] = {}
    for pattern, notes in patterns.items():
        for row, note, inst in notes:
            w = (2.0 if inst in drums else 1.0) * (1.5 if note < 49 else 1.0)
            by_row[(pattern, row)] = by_row.get((pattern, row), 0.0) + w
    for _, _, pattern, row in rows:
        w = by_row.get((pattern, row), 0.0)
        beat_w[row % rows_per_beat] += w
        if row % rows_per_beat == 0:
            bar_w[(row % rows_per_bar) // rows_per_beat] += w
    if beat_w.sum() == 0:
        return False, "no notes"
    beat_ok = rows_per_beat == 1 or int(np.argmax(beat_w)) == 0
    others = np.delete(bar_w, 0)
    margin = bar_w[0] / max(1e-9, others.max()) if len(others) else 1.0
    ok = beat_ok and margin >= min_margin
    share = beat_w[0] / beat_w.sum()
    return ok, f"on-beat row share {share:.2f}, bar-phase margin {margin:.2f}"


# --------------------------------------------------------------------------- truth assembly


@dataclass
class Timeline:
    """Bar lines (seconds, source time) with their beats, meter and tempo."""

    downbeats: list[float]
    beats: list[list[float]]  # per bar: its beat times (starting with the downbeat)
    signature: list[str]  # per bar
    beat_unit: str
    basis: str
    verify: str


def sections_of(
    timeline: Timeline, first: int, last: int, offset: float
) -> tuple[str, list[float]]:
    """Sections string over bars [first, last) and the per-bar bpm list."""
    secs: list[tuple[float, float, int]] = []
    bpms = []
    for i in range(first, last):
        beats = timeline.beats[i]
        bar_end = timeline.downbeats[i + 1]
        edges = [*beats, bar_end]
        durations = np.diff(edges)
        for b, d in zip(beats, durations, strict=True):
            bpm = 60.0 / d
            meter = len(beats)
            if not secs or abs(secs[-1][1] - bpm) > 0.005 or secs[-1][2] != meter:
                secs.append((b - offset, bpm, meter))
        bpms.append(60.0 * len(beats) / (bar_end - timeline.downbeats[i]))
    return ";".join(f"{s:.4f}:{b:.3f}:{m}" for s, b, m in secs), bpms


def truth_row(
    item: Item,
    timeline: Timeline,
    first: int,
    last: int,
    offset: float,
    **extra: object,
) -> dict:
    """Truth over bars [first, last) of ``timeline``; file time = source time - offset."""
    downbeats = [timeline.downbeats[i] - offset for i in range(first, last + 1)]
    beats = [b - offset for i in range(first, last) for b in timeline.beats[i]] + [downbeats[-1]]
    sections, _ = sections_of(timeline, first, last, offset)
    meters = [len(timeline.beats[i]) for i in range(first, last)]
    sigs = sorted(set(timeline.signature[first:last]), key=timeline.signature.index)
    first_sec = sections.split(";")[0].split(":")
    last_sec = sections.split(";")[-1].split(":")
    row = {
        "origin": item.origin,
        "package": item.package,
        "composer": item.composer,
        "licence": item.licence,
        "title": item.title,
        "source_file": item.source_file,
        "bpm": round(float(first_sec[1]), 4),
        "bpm_end": round(float(last_sec[1]), 4),
        "meter": meters[0],
        "beats_per_bar": meters[0],
        "time_signature": " ".join(sigs),
        "beat_unit": timeline.beat_unit,
        "first_downbeat": round(downbeats[0], 6),
        "n_bars": last - first,
        "downbeats": _fmt(downbeats),
        "beats": _fmt(beats),
        "sections": sections,
        "tempo_change": ";" in sections,
        "truth_basis": timeline.basis,
        "verify": timeline.verify,
    }
    row.update(extra)
    return row


def midi_timeline(grid: MidiGrid, basis: str, verify: str) -> Timeline:
    downbeat_ticks = [b[0] for b in grid.bars]
    seconds = grid.seconds(downbeat_ticks)
    beats, sigs = [], []
    units = set()
    for i in range(len(grid.bars) - 1):
        tick, num, den, beat = grid.bars[i]
        nxt = grid.bars[i + 1][0]
        ticks = np.arange(tick, nxt, beat)
        beats.append(list(grid.seconds(ticks)))
        sigs.append(f"{num}/{den}")
        units.add(
            "dotted-quarter"
            if beat == 3 * grid.ppq // 2
            else {grid.ppq: "quarter", 2 * grid.ppq: "half", grid.ppq // 2: "eighth"}.get(
                beat, "other"
            )
        )
    return Timeline(list(seconds), beats, sigs, "+".join(sorted(units)), basis, verify)


def _write_wav(path: Path, audio: np.ndarray, peak_db: float = -1.0) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    scale = 10 ** (peak_db / 20) / peak if peak > 0 else 1.0
    pcm = np.round(np.clip(audio * scale, -1, 1) * 32767).astype(np.int16)
    tmp = path.with_suffix(".tmp.wav")
    sf.write(tmp, pcm, SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, path)
    return len(pcm) / SAMPLE_RATE


def cut_track(
    audio: np.ndarray,
    timeline: Timeline,
    first_onset: float,
    last_onset: float,
    lead: float,
    cap: float = CAP_SECONDS,
    limit_bar: int | None = None,
) -> tuple[np.ndarray, int, int, float]:
    """Cut a full track: from ``lead`` seconds before the first onset to the bar line after the
    last onset (or the last bar line within ``cap``). Returns (audio, first bar, last bar
    (exclusive), offset in seconds (source time of the file's sample 0))."""
    db = np.asarray(timeline.downbeats)
    first = int(np.searchsorted(db, first_onset - 0.05))
    n = len(db) - 1 if limit_bar is None else min(limit_bar, len(db) - 1)
    last_bar = int(np.searchsorted(db, last_onset, side="right"))  # closing bar line index
    last = max(first + 1, min(n, last_bar))
    start_sample = round((min(first_onset, db[first]) - lead) * SAMPLE_RATE)
    offset = start_sample / SAMPLE_RATE
    capped = False
    while last > first + 1 and db[last] - offset > cap:
        last -= 1
        capped = True
    tail = 1.0 if capped or last < last_bar else 4.0
    end_sample = round((db[last] + tail) * SAMPLE_RATE)
    seg = np.zeros((end_sample - start_sample, 2), np.float32)
    lo, hi = max(0, start_sample), min(len(audio), end_sample)
    if hi > lo:
        seg[lo - start_sample : hi - start_sample] = audio[lo:hi]
    if capped or last < last_bar:
        fade = int(0.5 * SAMPLE_RATE)
        seg[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)[:, None]
    else:  # trim silence after a natural ending, keep the closing bar line inside
        loud = np.flatnonzero(np.abs(seg).max(axis=1) > 1e-4)
        keep = max(
            round((db[last] - offset) * SAMPLE_RATE) + SAMPLE_RATE // 4,
            (loud[-1] + 4410) if len(loud) else 0,
        )
        seg = seg[: min(len(seg), keep)]
    return seg, first, last, offset


def loop_cut(
    audio: np.ndarray, timeline: Timeline, first: int, bars: int, tiles: int
) -> tuple[np.ndarray, float]:
    """Bars [first, first + bars) cut on their bar lines, tiled; returns (audio, source offset)."""
    s0 = round(timeline.downbeats[first] * SAMPLE_RATE)
    s1 = round(timeline.downbeats[first + bars] * SAMPLE_RATE)
    one = np.zeros((s1 - s0, 2), np.float32)
    hi = min(len(audio), s1)
    if hi > s0:
        one[: hi - s0] = audio[s0:hi]
    return np.tile(one, (tiles, 1)), s0 / SAMPLE_RATE


def tiled_truth(
    item: Item,
    timeline: Timeline,
    first: int,
    bars: int,
    tiles: int,
    offset: float,
    length: int,
    **extra: object,
) -> dict:
    """Truth of a tiled loop: tile k repeats the bars' truth shifted by k loop lengths
    (``length`` samples per tile, the loop's exact sample length)."""
    one_down = [timeline.downbeats[i] - offset for i in range(first, first + bars)]
    one_beats = [b - offset for i in range(first, first + bars) for b in timeline.beats[i]]
    # on the sample grid (the cut is): within half a sample of the source's times
    one_down = [round(d * SAMPLE_RATE) / SAMPLE_RATE for d in one_down]
    one_beats = [round(b * SAMPLE_RATE) / SAMPLE_RATE for b in one_beats]
    span = length / SAMPLE_RATE
    down = [d + k * span for k in range(tiles) for d in one_down] + [tiles * span]
    beats = [b + k * span for k in range(tiles) for b in one_beats] + [tiles * span]
    row = truth_row(item, timeline, first, first + bars, offset, **extra)
    meter = row["meter"]
    row.update(
        downbeats=_fmt(down),
        beats=_fmt(beats),
        n_bars=bars * tiles,
        first_downbeat=0.0,
        loop_bars=bars,
        tiles=tiles,
        sections=f"0.0000:{60 * bars * meter / span:.3f}:{meter}",
        bpm=round(60 * bars * meter / span, 4),
        bpm_end=round(60 * bars * meter / span, 4),
        tempo_change=False,
    )
    return row


# --------------------------------------------------------------------------- per-source builds

STYLE_WORDS = (
    ("boogi", "boogie"),
    ("blues", "blues"),
    ("march", "march"),
    ("cancan", "cancan"),
    ("waltz", "waltz"),
    ("relax", "ballad"),
)


def style_of(title: str, name: str) -> str:
    text = f"{title} {name}".lower()
    for word, style in STYLE_WORDS:
        if word in text:
            return style
    return "unknown"


def build_midi(
    item: Item, out_dir: Path, work: Path, sound_sets: Sequence[str], loops: int
) -> tuple[list[dict], str]:
    """Full-track render(s) of a MIDI item with each of ``sound_sets`` and ``loops`` drum loops.
    Returns (truth rows, rejection reason or "")."""
    grid = midi_grid(item.data)
    ok, verify = midi_phase_check(grid)
    if not ok:
        return [], f"bar grid not confirmed by the notes ({verify})"
    timeline = midi_timeline(grid, "midi-tempo-map", verify)
    onsets = grid.seconds([n[0] for n in grid.notes])
    first_onset, last_onset = float(onsets.min()), float(onsets.max())
    drums = any(n[2] == 9 for n in grid.notes)
    share = drum_offbeat_share(grid)
    rng = np.random.default_rng(_seed(item.origin, item.name))
    lead = float(rng.uniform(*LEAD_SECONDS))
    style = style_of(item.title, item.name)
    rows = []
    for sound in sound_sets:
        soundfont = SOUND_SETS[sound][0]
        audio = render_fluidsynth(item.data, soundfont, work)
        seg, first, last, offset = cut_track(audio, timeline, first_onset, last_onset, lead)
        rel = f"{item.origin}/{item.name}__{sound}.wav"
        duration = _write_wav(out_dir / rel, seg)
        rows.append(
            truth_row(
                item,
                timeline,
                first,
                last,
                offset,
                path=rel,
                style=style,
                kind="track",
                loop_bars=0,
                tiles=1,
                drums=drums,
                offbeat_share=share,
                sound_set=sound,
                duration=round(duration, 6),
            )
        )
    if loops and drums:
        rows.extend(
            midi_loops(item, grid, timeline, out_dir, work, sound_sets, loops, style, share)
        )
    return rows, ""


def loop_lengths(wanted: int) -> list[int]:
    """Loop lengths to try: the one drawn, then shorter ones."""
    return [n for n in (8, 4, 2, 1) if n <= wanted]


def midi_loops(
    item: Item,
    grid: MidiGrid,
    timeline: Timeline,
    out_dir: Path,
    work: Path,
    sound_sets: Sequence[str],
    count: int,
    style: str,
    share: float,
) -> list[dict]:
    """Drum-only loops: bar stretches of constant tempo and meter whose every bar has drum
    hits on its downbeat and at least 4 drum hits per beat... picked deterministically."""
    starts = np.array([b[0] for b in grid.bars])
    n_bars = len(grid.bars) - 1
    hits = np.zeros(n_bars)
    on_down = np.zeros(n_bars, bool)
    for tick, _, channel, _, _ in grid.notes:
        if channel != 9:
            continue
        i = int(np.searchsorted(starts, tick, side="right")) - 1
        if 0 <= i < n_bars:
            hits[i] += 1
            if tick - starts[i] <= grid.ppq // 24:
                on_down[i] = True
    tempo_ticks = [t for t, _ in grid.tempo[1:]]
    rng = np.random.default_rng(_seed("loops", item.origin, item.name))
    rows: list[dict] = []
    used: set[int] = set()
    for k in range(count):
        wanted = int(rng.choice([1, 2, 4, 8], p=[0.2, 0.35, 0.35, 0.1]))
        tiles = int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.1, 0.2]))
        good: list[int] = []
        for bars in loop_lengths(wanted):
            for i in range(n_bars - bars + 1):
                span = range(i, i + bars)
                if any(j in used for j in span):
                    continue
                a, b = starts[i], starts[i + bars]
                if not all(on_down[j] and hits[j] >= 2 * len(timeline.beats[j]) for j in span):
                    continue
                if any(a < t < b for t in tempo_ticks):
                    continue
                if len({timeline.signature[j] for j in span}) != 1:
                    continue
                good.append(i)
            if good:
                break
        if not good:
            continue
        first = int(good[int(rng.integers(len(good)))])
        used.update(range(first, first + bars))
        sound = sound_sets[k % len(sound_sets)]
        audio = render_fluidsynth(item.data, SOUND_SETS[sound][0], work, drums_only=True)
        seg, offset = loop_cut(audio, timeline, first, bars, tiles)
        length = len(seg) // tiles
        rel = f"{item.origin}/loop_{item.name}__b{first}_{bars}x{tiles}__{sound}.wav"
        duration = _write_wav(out_dir / rel, seg)
        rows.append(
            tiled_truth(
                item,
                timeline,
                first,
                bars,
                tiles,
                offset,
                length,
                path=rel,
                style=style,
                kind="loop",
                drums=True,
                offbeat_share=share,
                sound_set=sound,
                duration=round(duration, 6),
            )
        )
    return rows


def module_timeline(item: Item, render: ModuleRender) -> tuple[Timeline | None, int | None, str]:
    """Bar lines from the played rows; returns (timeline, index of the last whole bar's
    closing line, rejection reason)."""
    hl = it_highlight(item.data)
    if hl:
        rpb, rpm = hl
        basis = "it-highlight"
    else:
        rpb, rpm = 4, 16
        basis = "row-convention-verified"
    patterns, drums = module_notes(item.data)
    ok, verify = module_phase_check(render.rows, patterns, drums, rpb, rpm, 1.0 if hl else 1.05)
    if not ok:
        return None, None, f"row grid {rpb}/{rpm} not confirmed by the notes ({verify})"
    rows = render.rows
    downbeats: list[float] = []
    beats: list[list[float]] = []
    i = 0
    # first bar: the first played row that starts a bar
    while i < len(rows) and rows[i][3] % rpm != 0:
        i += 1
    irregular = ""
    while i + rpm <= len(rows):
        block = rows[i : i + rpm]
        _, order, pattern, row = block[0]
        consecutive = all(
            (b[1], b[2], b[3]) == (order, pattern, row + k) for k, b in enumerate(block)
        )
        if not consecutive:
            irregular = f"bar at order {order} row {row} is cut short (pattern break/length)"
            break
        downbeats.append(block[0][0])
        beats.append([block[k][0] for k in range(0, rpm, rpb)])
        i += rpm
    if i < len(rows):
        closing = rows[i][0]
    elif beats:
        # the song ended after the last bar: its closing line is the end of its last row,
        # one row step (the bar's previous step) after that row's start
        last_rows = rows[i - rpm : i]
        step = last_rows[-1][0] - last_rows[-2][0] if rpm > 1 else 0.0
        closing = last_rows[-1][0] + step
    else:
        closing = 0.0
    # a bar whose beat tempo leaves BPM_RANGE (e.g. a speed-255 "stop" at the end) ends the
    # truth before it; tempo changes within the range are sections
    if beats:
        lengths = np.diff([*downbeats, closing])
        bpms = np.array([60 * len(b) for b in beats]) / lengths
        odd = np.flatnonzero((bpms < BPM_RANGE[0]) | (bpms > BPM_RANGE[1]))
        if len(odd):
            cut = int(odd[0])
            irregular = irregular or f"bar {cut} at {bpms[cut]:.1f} BPM (outside the range)"
            closing = downbeats[cut]
            del downbeats[cut:]
            del beats[cut:]
    if len(beats) < 4:
        return None, None, f"fewer than 4 whole bars ({irregular or 'short'})"
    downbeats.append(float(closing))
    # a module's meter: rows_per_bar / rows_per_beat beats of rows_per_beat rows
    meter = rpm // rpb
    sig = f"{meter}/4"
    timeline = Timeline(
        downbeats,
        beats,
        [sig] * len(beats),
        f"{rpb}-rows",
        basis,
        verify + (f"; {irregular}" if irregular else ""),
    )
    return timeline, len(beats), ""


def build_module(item: Item, out_dir: Path, loops: int) -> tuple[list[dict], str]:
    """The full-track render of a module and ``loops`` drum loops (drum-only renders: every
    instrument but the drum-named ones muted). Returns (truth rows, rejection reason)."""
    render = render_module(item.data, CAP_SECONDS + 30)
    timeline, n_bars, why = module_timeline(item, render)
    if timeline is None or n_bars is None:
        return [], why
    level = np.abs(render.audio).max(axis=1) if len(render.audio) else np.zeros(1)
    loud = np.flatnonzero(level > 1e-3)
    if not len(loud):
        return [], "silent"
    first_onset, last_onset = loud[0] / SAMPLE_RATE, loud[-1] / SAMPLE_RATE
    rng = np.random.default_rng(_seed(item.origin, item.name))
    lead = float(rng.uniform(*LEAD_SECONDS))
    seg, first, last, offset = cut_track(
        render.audio,
        timeline,
        first_onset,
        min(last_onset, timeline.downbeats[-1] - 1e-3),
        lead,
        limit_bar=n_bars,
    )
    patterns, drums_named = module_notes(item.data)
    by_row: dict[tuple[int, int], list[int]] = {}
    for pattern, notes in patterns.items():
        for row_, _, inst in notes:
            by_row.setdefault((pattern, row_), []).append(inst)
    used = {inst for insts in by_row.values() for inst in insts}
    drum_insts = drums_named & used
    index_of = {r[0]: k for k, r in enumerate(render.rows)}
    rpb = int(timeline.beat_unit.split("-")[0])
    rpm = rpb * len(timeline.beats[0])
    bar_hits, bar_down, off_hits, all_hits = [], [], 0, 0
    for bar in range(n_bars):
        k0 = index_of[timeline.downbeats[bar]]
        hits = 0
        for k in range(k0, k0 + rpm):
            _, _, pattern, row_ = render.rows[k]
            n = sum(inst in drum_insts for inst in by_row.get((pattern, row_), []))
            hits += n
            all_hits += n
            if rpb % 2 == 0 and row_ % rpb == rpb // 2:
                off_hits += n
        bar_hits.append(hits)
        k0_p, k0_r = render.rows[k0][2], render.rows[k0][3]
        bar_down.append(any(inst in drum_insts for inst in by_row.get((k0_p, k0_r), [])))
    share = round(off_hits / all_hits, 3) if all_hits else float("nan")
    rel = f"{item.origin}/{item.name}__module.wav"
    duration = _write_wav(out_dir / rel, seg)
    style = style_of(item.title, item.name)
    drums: object = bool(drum_insts) if drum_insts else ("" if not drums_named else False)
    rows = [
        truth_row(
            item,
            timeline,
            first,
            last,
            offset,
            path=rel,
            style=style,
            kind="track",
            loop_bars=0,
            tiles=1,
            drums=drums,
            offbeat_share=share,
            sound_set="module",
            duration=round(duration, 6),
        )
    ]
    if loops and drum_insts:
        beats_per_bar = len(timeline.beats[0])
        good = [b for b in range(n_bars) if bar_down[b] and bar_hits[b] >= 2 * beats_per_bar]
        drum_render = None
        loop_rng = np.random.default_rng(_seed("loops", item.origin, item.name))
        taken: set[int] = set()
        for _ in range(loops):
            wanted = int(loop_rng.choice([1, 2, 4, 8], p=[0.2, 0.35, 0.35, 0.1]))
            tiles = int(loop_rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.1, 0.2]))
            bar_s = np.diff(timeline.downbeats[: n_bars + 1])
            starts: list[int] = []
            for bars in loop_lengths(wanted):
                starts = [
                    b
                    for b in good
                    if b + bars <= n_bars
                    and all(j in good and j not in taken for j in range(b, b + bars))
                    and np.ptp(bar_s[b : b + bars]) < 1e-3
                ]
                if starts:
                    break
            if not starts:
                continue
            b0 = int(starts[int(loop_rng.integers(len(starts)))])
            taken.update(range(b0, b0 + bars))
            if drum_render is None:
                drum_render = render_module(item.data, CAP_SECONDS + 30, keep=drum_insts)
                if [r[0] for r in drum_render.rows[: len(render.rows)]] != [
                    r[0] for r in render.rows[: len(drum_render.rows)]
                ]:
                    raise RuntimeError("muted render's rows differ from the full render's")
            loop, loop_offset = loop_cut(drum_render.audio, timeline, b0, bars, tiles)
            rel = f"{item.origin}/loop_{item.name}__b{b0}_{bars}x{tiles}__module.wav"
            duration = _write_wav(out_dir / rel, loop)
            rows.append(
                tiled_truth(
                    item,
                    timeline,
                    b0,
                    bars,
                    tiles,
                    loop_offset,
                    len(loop) // tiles,
                    path=rel,
                    style=style,
                    kind="loop",
                    drums=True,
                    offbeat_share=share,
                    sound_set="module",
                    duration=round(duration, 6),
                )
            )
    return rows, ""


def music21_rows(out_dir: Path, tracks: Sequence[str], jobs: int) -> list[dict]:
    """A subset of the dev corpus, built by bench/dev_corpus.py into OUT_DIR/music21."""
    truth = dc.build_dev_corpus(out_dir / "music21", tracks=tracks, jobs=jobs)
    rows = []
    for r in truth.to_dict("records"):
        meter = int(r["meter"])
        rows.append(
            {
                "path": f"music21/{r['path']}",
                "origin": "music21",
                "package": "music21 (PyPI) + bench/dev_corpus.py",
                "composer": r["source"],
                "licence": r["licence"],
                "title": r["title"],
                "source_file": r["source"],
                "style": r["style"],
                "kind": "track",
                "loop_bars": 0,
                "tiles": 1,
                "bpm": r["bpm"],
                "bpm_end": r["bpm_end"],
                "meter": meter,
                "beats_per_bar": meter,
                "time_signature": f"{meter}/4",
                "beat_unit": "quarter",
                "first_downbeat": r["first_downbeat"],
                "n_bars": r["n_bars"],
                "downbeats": r["downbeats"],
                "beats": r["beats"],
                "sections": r["sections"],
                "tempo_change": r["tempo_change"],
                "drums": r["drums"],
                "offbeat_share": float("nan"),
                "sound_set": "FluidR3_GM",
                "duration": r["duration"],
                "truth_basis": "generated-midi",
                "verify": "dev_corpus tests",
            }
        )
    (out_dir / "music21" / "truth.csv").unlink(missing_ok=True)
    return rows


MUSIC21_TRACKS = (
    "edm_a",
    "dnb_a",
    "breakbeat_b",
    "hiphop_a",
    "latin_a",
    "waltz_b",
    "jazz_waltz",
    "chorale_b",
    "strings_b",
    "funk_b",
)


# --------------------------------------------------------------------------- build


def write_truth(out_dir: Path, rows: list[dict]) -> pd.DataFrame:
    """Write truth.csv atomically (rows sorted by path)."""
    truth = pd.DataFrame(rows)
    for column in TRUTH_COLUMNS:
        if column not in truth:
            truth[column] = ""
    truth = truth[list(TRUTH_COLUMNS)].sort_values("path").reset_index(drop=True)
    tmp = out_dir / "truth.csv.tmp"
    truth.to_csv(tmp, index=False)
    os.replace(tmp, out_dir / "truth.csv")
    return truth


def out_of_range(rows: list[dict]) -> str:
    """Why the rows' tempo is outside BPM_RANGE (every section), or ""."""
    for row in rows:
        for part in row["sections"].split(";"):
            bpm = float(part.split(":")[1])
            if not BPM_RANGE[0] <= bpm <= BPM_RANGE[1]:
                return (
                    f"beat tempo {bpm:.1f} BPM outside {BPM_RANGE[0]:.0f}-{BPM_RANGE[1]:.0f} "
                    f"({row['truth_basis']}: the notated beat is likely a subdivision)"
                )
    return ""


def write_sources(out_dir: Path, truth: pd.DataFrame, rejected: dict[str, str]) -> None:
    lines = [
        "# Sources of the third-party development corpus",
        "",
        "Built by `bench/thirdparty_corpus.py` (bargan). Every file's origin, package, composer",
        "and licence; the licences are those of the Debian packages' copyright files.",
        "",
        "Sound sets for MIDI (rendered by FluidSynth, LGPL-2.1):",
        "",
    ]
    lines += [f"* {name}: {path.name} ({desc})" for name, (path, desc) in SOUND_SETS.items()]
    lines += ["* module: the module's own samples, rendered by libopenmpt (BSD-3-Clause)", ""]
    lines += [
        "| file | origin | package | composer | licence | title | source | truth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in truth.itertuples():
        lines.append(
            f"| {r.path} | {r.origin} | {r.package} | {r.composer} | {r.licence} | {r.title} "
            f"| {r.source_file} | {r.truth_basis} |"
        )
    if rejected:
        lines += ["", "## Left out", ""]
        lines += [f"* {name}: {why}" for name, why in sorted(rejected.items())]
    tmp = out_dir / "SOURCES.md.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out_dir / "SOURCES.md")


SOUND_ROTATION = ("FluidR3_GM", "TimGM6mb", "MuseScore_General_Lite", "OPL3_FM")


def plan_sound_sets(origin: str, index: int, data: bytes | None = None) -> list[str]:
    """MIDI sound sets per file: rotate over the four; every tenth file, and every file not
    all in 4/4 (rarer meters), also in a second set (the same music in two sound sets)."""
    first = SOUND_ROTATION[(index + (1 if origin == "freedoom" else 0)) % len(SOUND_ROTATION)]
    sets = [first]
    other_meter = False
    if data is not None:
        try:
            other_meter = any((b[1], b[2]) != (4, 4) for b in midi_grid(data).bars)
        except (ValueError, OSError, EOFError):
            other_meter = False
    if index % 10 == 0 or other_meter:
        sets.append(SOUND_ROTATION[(SOUND_ROTATION.index(first) + 2) % len(SOUND_ROTATION)])
    return sets


def build(
    out_dir: Path,
    origins: Sequence[str] = ORIGINS,
    limit: int | None = None,
    jobs: int = 2,
    loops_per_file: int = 1,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Build the corpus (the named origins; existing rows of other origins are kept)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for origin in origins:
        check_allowed(origin)
        if origin not in ORIGINS:
            raise ValueError(f"unknown origin {origin}; known: {ORIGINS}")
    rows: list[dict] = []
    if (out_dir / "truth.csv").is_file():
        old = pd.read_csv(out_dir / "truth.csv", keep_default_na=False)
        rows = old.to_dict("records")  # an origin's old rows go when it is rebuilt
    rejected: dict[str, str] = {}
    if (out_dir / "left_out.csv").is_file():
        old_left = pd.read_csv(out_dir / "left_out.csv", keep_default_na=False)
        rejected = {
            r["file"]: r["reason"]
            for r in old_left.to_dict("records")
            if r["file"].split("/")[0] not in origins
        }
    for origin in origins:
        started = time.perf_counter()
        if origin == "music21":
            new = music21_rows(out_dir, MUSIC21_TRACKS[: limit or None], jobs)
        else:
            items = discover(origin)[: limit or None]
            new = []
            with (
                tempfile.TemporaryDirectory(prefix="thirdparty_") as tmp,
                ThreadPoolExecutor(jobs) as pool,
            ):

                def one(args: tuple[int, Item], origin: str = origin) -> tuple[list[dict], str]:
                    index, item = args
                    try:
                        if item.kind == "midi":
                            return build_midi(
                                item,
                                out_dir,
                                Path(tmp),
                                plan_sound_sets(origin, index, item.data),
                                loops_per_file,
                            )
                        return build_module(item, out_dir, loops_per_file)
                    except (ValueError, RuntimeError, OSError) as error:
                        return [], f"failed: {error}"

                for item, (got, why) in zip(items, pool.map(one, enumerate(items)), strict=True):
                    why = why or out_of_range(got)
                    if why:
                        rejected[f"{origin}/{item.name}"] = why
                        for row in got:
                            (out_dir / row["path"]).unlink(missing_ok=True)
                    else:
                        new.extend(got)
        rows = [r for r in rows if r["origin"] != origin] + new
        truth = write_truth(out_dir, rows)
        write_sources(out_dir, truth, rejected)
        left = pd.DataFrame(sorted(rejected.items()), columns=["file", "reason"], dtype=str)
        left.to_csv(out_dir / "left_out.csv.tmp", index=False)
        os.replace(out_dir / "left_out.csv.tmp", out_dir / "left_out.csv")
        log(
            f"{origin}: {len(new)} files, {sum(r['duration'] for r in new) / 60:.1f} min "
            f"({sum(1 for k in rejected if k.startswith(origin + '/'))} left out) in "
            f"{time.perf_counter() - started:.0f} s"
        )
    return write_truth(out_dir, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="at most N files per origin")
    parser.add_argument("--origins", nargs="*", default=list(ORIGINS))
    parser.add_argument("--loops", type=int, default=1, help="drum loops per source file")
    parser.add_argument(
        "--sources-only",
        action="store_true",
        help="only rewrite SOURCES.md from truth.csv and left_out.csv",
    )
    args = parser.parse_args(argv)
    if args.sources_only:
        left = pd.read_csv(args.out_dir / "left_out.csv", keep_default_na=False)
        truth = pd.read_csv(args.out_dir / "truth.csv", keep_default_na=False)
        write_sources(args.out_dir, truth, dict(zip(left["file"], left["reason"], strict=True)))
        return 0
    truth = build(args.out_dir, args.origins, args.limit, args.jobs, args.loops)
    print(
        f"{len(truth)} files, {truth['duration'].sum() / 60:.1f} min, "
        f"{truth['origin'].nunique()} origins -> {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
