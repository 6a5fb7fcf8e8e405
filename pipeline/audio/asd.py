"""Reader for Ableton Live ``.asd`` clip-analysis files (warp markers and clip settings).

The file carries its own schema (class definitions with field names and type codes) followed
by the values packed in schema order.  :func:`parse_asd` walks that schema instead of reading
fixed offsets, then cross-checks the warp markers with a signature scan
(:func:`scan_warp_markers`).  Format notes: ``docs/asd-format.md``.

Every malformed input raises :class:`AsdError` (a ``ValueError``) whose message names the file
and the reason.  Reads are bounds-checked, counts are checked against the remaining bytes before
anything is allocated or looped over, class nesting depth and total decoding work are bounded.

Big-endian (``'M'``, PowerPC-era) files are refused with an :class:`AsdError`: no such file was
available to verify the layout, and silently wrong warp markers are worse than none.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from pipeline.audio.asd_schema import (
    MAX_DEPTH,
    MAX_INLINE_STRUCTS,
    AsdArray,
    AsdError,
    AsdList,
    Decoder,
    Reader,
    read_schema,
)
from pipeline.audio.warp import MAX_BEATS, MAX_BPM, MAX_SECONDS, MIN_BPM, piecewise_linear

__all__ = [
    "MAX_DEPTH",
    "MAX_INLINE_STRUCTS",
    "WARP_MODE_NAMES",
    "AppleDoubleStub",
    "AsdArray",
    "AsdClip",
    "AsdDocument",
    "AsdError",
    "AsdList",
    "AufTakt",
    "OverView",
    "WarpMarker",
    "bar_beats",
    "bar_start_seconds",
    "check_frame_count",
    "parse_asd",
    "read_asd",
    "scan_warp_markers",
    "validate_markers",
    "warp_points",
]

DOC_MAGIC = b"\xab\x1e\x56\x78"
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07"
MAX_FILE_BYTES = 512 * 1024 * 1024  # read_asd refuses anything larger
KNOWN_DOC_VERSIONS = (4, 5)  # Live 8: 4; Live 10/11/12: 5
MAX_BARS = 1_000_000  # bar_start_seconds refuses to list more bar lines
# Time signatures Live offers: numerator 1..99, denominator a power of two up to 16.
MAX_NUMERATOR = 99
DENOMINATORS = (1.0, 2.0, 4.0, 8.0, 16.0)

WARP_MODE_NAMES: Mapping[int, str] = MappingProxyType(
    {0: "Beats", 1: "Tones", 2: "Texture", 3: "Re-Pitch", 4: "Complex", 5: "REX", 6: "Complex Pro"}
)

_WM_SIGNATURE = b"\x00\x0aWarpMarker"
_WM_CLASSDEF_TAIL = b"\x02\x00\x00\x00\x07\x00\x00\x00" + "SecTime".encode("utf-16-le")
_WM_RECORD = struct.Struct("<Idd")


# --------------------------------------------------------------------------------------------
# Public value types


class AppleDoubleStub(AsdError):
    """A macOS AppleDouble ``._name`` stub, not an analysis file: callers should skip it."""


@dataclass(frozen=True)
class WarpMarker:
    """One warp marker: ``seconds`` into the audio file maps to ``beats`` on the clip grid."""

    id: int
    seconds: float
    beats: float


class AsdDocument(NamedTuple):
    """Header of one document inside the file."""

    root: str
    version: int
    id: int
    n_classes: int


@dataclass(frozen=True)
class OverView:
    """Summary of the waveform overview (``SampleOverView``)."""

    samples_per_bin_log2: int
    channel_count: int
    version: int
    level_lengths: tuple[int, ...]  # element count of each level's InterleavedBinData


@dataclass(frozen=True)
class AufTakt:
    """Live 12 ``AufTaktData`` summary (not a warp tempo; do not use it as one)."""

    is_set: bool
    unbiased_tempo_estimate: float
    chunk_bytes: int


@dataclass(frozen=True)
class AsdClip:
    """Decoded ``.asd`` file. Beats are quarter-note beats; ``total_frames`` is per channel."""

    path: str
    byte_order: str
    grid_entries: int
    total_frames: int
    legacy_block_length: int
    saved: bool
    documents: tuple[AsdDocument, ...]
    warp_markers: tuple[WarpMarker, ...]
    warp_marker_next_id: int
    loop_start: float
    loop_end: float
    sample_offset: float
    hidden_loop_start: float
    hidden_loop_end: float
    out_marker: float
    is_warped: bool
    warp_mode: int
    loop_on: bool
    markers_generated: bool
    time_signature: tuple[float, float]
    time_signature_time: float
    name: str | None = None
    color_index: int | None = None
    launch_mode: int | None = None
    launch_quantisation: int | None = None
    extra_length: int | None = None
    original_file_size: int | None = None
    estimated_down_beat_location: int | None = None
    estimated_bar_length: int | None = None
    overview: OverView | None = None
    onsets_count: int | None = None
    onsets_initial_bpm: float | None = None
    auftakt: AufTakt | None = None
    sample_data: Mapping[str, Any] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )  # raw SampleData tree: wrappers kept as {"Value": x}; arrays are views of the file bytes

    @property
    def warp_mode_name(self) -> str:
        """Human name of :attr:`warp_mode`."""
        return WARP_MODE_NAMES.get(self.warp_mode, f"Unknown({self.warp_mode})")

    @property
    def beats_per_bar(self) -> float:
        """Quarter-note beats per bar: ``4 * numerator / denominator``."""
        num, den = self.time_signature
        return 4.0 * num / den

    @property
    def has_markers(self) -> bool:
        """True when the file holds warp markers (it was saved with a warp grid)."""
        return len(self.warp_markers) > 0

    @property
    def segment_bpm(self) -> list[float]:
        """Tempo of each segment between consecutive markers (hidden marker included)."""
        m = self.warp_markers
        return [
            60.0 * (b.beats - a.beats) / (b.seconds - a.seconds) for a, b in itertools.pairwise(m)
        ]

    @property
    def clip_start_beats(self) -> float:
        """Clip start on the beat grid: ``LoopStart + SampleOffset``."""
        return self.loop_start + self.sample_offset


# --------------------------------------------------------------------------------------------
# Field extraction from the decoded SampleData tree


def _unwrap(v: Any) -> Any:
    """``{"Value": x}`` wrapper classes (RemoteableDouble etc.) -> ``x``."""
    while isinstance(v, dict) and len(v) == 1 and "Value" in v:
        v = v["Value"]
    return v


class _Fields:
    """Typed access to one decoded struct; missing/mistyped required fields raise AsdError."""

    def __init__(self, tree: Mapping[str, Any], name: str, where: str) -> None:
        self.tree = tree
        self.name = name
        self.where = where

    def _get(self, key: str, kind: type | tuple[type, ...], label: str, required: bool) -> Any:
        if key not in self.tree:
            if required:
                raise AsdError(self.name, f"{self.where} has no field {key!r}")
            return None
        v = _unwrap(self.tree[key])
        if not isinstance(v, kind):
            raise AsdError(self.name, f"{self.where}.{key} is not {label}")
        return v

    def req_float(self, key: str) -> float:
        return float(self._get(key, float, "a number", True))

    def opt_float(self, key: str) -> float | None:
        return self._get(key, float, "a number", False)

    def req_int(self, key: str) -> int:
        return int(self._get(key, int, "an integer", True))

    def opt_int(self, key: str) -> int | None:
        return self._get(key, int, "an integer", False)

    def opt_str(self, key: str) -> str | None:
        return self._get(key, str, "a string", False)

    def req_sub(self, key: str) -> _Fields:
        sub = self.opt_sub(key)
        if sub is None:
            raise AsdError(self.name, f"{self.where}.{key} is missing or not a struct")
        return sub

    def opt_sub(self, key: str) -> _Fields | None:
        v = self.tree.get(key)
        return _Fields(v, self.name, f"{self.where}.{key}") if isinstance(v, dict) else None


def _extract_markers(tree: Mapping[str, Any], name: str) -> tuple[int, tuple[WarpMarker, ...]]:
    wm = tree.get("WarpMarkers")
    if not isinstance(wm, AsdList):
        raise AsdError(name, "SampleData.WarpMarkers is missing or not a list")
    markers = []
    for ename, eid, fields in wm.items:
        if ename != "WarpMarker":
            raise AsdError(name, f"unexpected {ename!r} element in warp marker list")
        sec, beat = fields.get("SecTime"), fields.get("BeatTime")
        if not isinstance(sec, float) or not isinstance(beat, float):
            raise AsdError(name, "WarpMarker class lacks f64 SecTime/BeatTime fields")
        markers.append(WarpMarker(eid, sec, beat))
    return wm.next_id, tuple(markers)


def _extract_overview(f: _Fields) -> OverView | None:
    ov = f.opt_sub("OverView")
    if ov is None:
        return None
    levels = ov.tree.get("OverViewLevels")
    lengths: list[int] = []
    if isinstance(levels, AsdList):
        for _, _, lv in levels.items:
            data = lv.get("InterleavedBinData")
            lengths.append(len(data) if isinstance(data, np.ndarray) else 0)
    return OverView(
        samples_per_bin_log2=ov.opt_int("SamplesPerBinLog2") or 0,
        channel_count=ov.opt_int("ChannelCount") or 0,
        version=ov.opt_int("Version") or 0,
        level_lengths=tuple(lengths),
    )


def _extract_auftakt(tree: Mapping[str, Any] | None, name: str) -> AufTakt | None:
    if not isinstance(tree, dict):
        return None
    f = _Fields(tree, name, "AufTaktData")
    chunk = tree.get("PreprocessedDataChunk")
    return AufTakt(
        is_set=bool(f.opt_int("IsSet")),
        unbiased_tempo_estimate=f.opt_float("UnbiasedTempoEstimate") or 0.0,
        chunk_bytes=len(chunk) if isinstance(chunk, np.ndarray) else 0,
    )


# --------------------------------------------------------------------------------------------
# Public functions


def _check_appledouble(data: bytes, name: str) -> None:
    if data[:4] == APPLEDOUBLE_MAGIC or Path(name).name.startswith("._"):
        raise AppleDoubleStub(
            name, "macOS AppleDouble metadata stub ('._' file), not Ableton analysis; skip it"
        )


def parse_asd(data: bytes, name: str = "<bytes>") -> AsdClip:
    """Decode an ``.asd`` file's bytes by walking its embedded schema.

    Markers are validated (:func:`validate_markers`) and must agree with
    :func:`scan_warp_markers`.  Big-endian (``'M'``) files are refused with :class:`AsdError`.
    AppleDouble stubs raise :class:`AppleDoubleStub`.  ``name`` labels error messages.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    _check_appledouble(data, name)
    r = Reader(data, name)

    # ---- head
    if r.u8("head magic") != 0x06:
        raise r.error("not an .asd file (first byte is not 0x06)")
    order = r.u8("byte-order mark")
    if order == 0x4D:
        raise r.error("big-endian ('M', PowerPC-era) .asd files are not supported")
    if order != 0x49:
        raise r.error(f"not an .asd file (byte-order mark {order:#04x}, expected 'I')")
    n_grid = r.count(4, "frame grid", "entries")
    if n_grid == 0:
        raise r.error("empty frame grid (no frame count)")
    grid_at = r.need(4 * n_grid, "frame grid")
    grid = np.frombuffer(data, dtype="<u4", count=n_grid, offset=grid_at)
    if n_grid > 1 and bool(np.any(grid[1:] < grid[:-1])):
        raise r.error("frame grid is not rising")
    total_frames = int(grid[-1])
    r.need(12, "head constants")
    m = r.count(1, "legacy overview block", "bytes")
    r.need(m, "legacy overview block")
    saved = r.u8("saved flag") != 0
    if data[r.pos : r.pos + 4] != DOC_MAGIC:
        raise r.error(f"expected document magic AB 1E 56 78 at byte {r.pos}")

    # ---- documents
    documents: list[AsdDocument] = []
    roots: dict[str, dict[str, Any]] = {}
    while r.pos < r.size:
        at = r.pos
        if data[at : at + 4] != DOC_MAGIC:
            raise r.error(f"expected document magic AB 1E 56 78 at byte {at}")
        r.need(4, "document magic")
        version = r.u8("document version")
        if version not in KNOWN_DOC_VERSIONS:
            raise r.error(f"unsupported document version {version} at byte {at + 4}")
        doc_id = r.u32("document id")
        root = r.name_str("document root class name")
        n_classes = r.i32("class definition count")
        value = Decoder(r, read_schema(r, n_classes)).root(root)
        documents.append(AsdDocument(root, version, doc_id, n_classes))
        roots.setdefault(root, value)
    sd = roots.get("SampleData")
    if sd is None:
        raise r.error("no SampleData document")

    # ---- clip fields
    f = _Fields(sd, name, "SampleData")
    ts = f.req_sub("TimeSignature")
    num, den = ts.req_float("Numerator"), ts.req_float("Denominator")
    if not (math.isfinite(num) and math.isfinite(den) and num > 0 and den > 0):
        raise r.error(f"invalid time signature {num}/{den}")
    next_id, markers = _extract_markers(sd, name)
    onsets = f.opt_sub("OnSets")
    positions = onsets.tree.get("Positions") if onsets else None
    auftakt_tree = sd.get("AufTaktData")
    if not isinstance(auftakt_tree, dict):
        auftakt_tree = roots.get("AufTaktData")

    clip = AsdClip(
        path=name,
        byte_order="little",
        grid_entries=n_grid,
        total_frames=total_frames,
        legacy_block_length=m,
        saved=saved,
        documents=tuple(documents),
        warp_markers=markers,
        warp_marker_next_id=next_id,
        loop_start=f.req_float("LoopStart"),
        loop_end=f.req_float("LoopEnd"),
        sample_offset=f.req_float("SampleOffset"),
        hidden_loop_start=f.req_float("HiddenLoopStart"),
        hidden_loop_end=f.req_float("HiddenLoopEnd"),
        out_marker=f.req_float("OutMarker"),
        is_warped=bool(f.req_int("IsWarped")),
        warp_mode=f.req_int("WarpMode"),
        loop_on=bool(f.req_int("LoopOn")),
        markers_generated=bool(f.req_int("MarkersGenerated")),
        time_signature=(num, den),
        time_signature_time=ts.opt_float("Time") or 0.0,
        name=f.opt_str("Name"),
        color_index=f.opt_int("ColorIndex"),
        launch_mode=f.opt_int("LaunchMode"),
        launch_quantisation=f.opt_int("LaunchQuantisation"),
        extra_length=f.opt_int("ExtraLength"),
        original_file_size=f.opt_int("OriginalFileSize"),
        estimated_down_beat_location=f.opt_int("EstimatedDownBeatLocation"),
        estimated_bar_length=f.opt_int("EstimatedBarLength"),
        overview=_extract_overview(f),
        onsets_count=len(positions) if isinstance(positions, np.ndarray) else None,
        onsets_initial_bpm=onsets.opt_float("InitialBPM") if onsets else None,
        auftakt=_extract_auftakt(auftakt_tree, name),
        sample_data=MappingProxyType(sd),
    )
    validate_markers(clip)
    scanned = scan_warp_markers(data, name)
    if tuple(scanned) != markers:
        raise r.error(
            f"warp marker cross-check failed: schema walk found {len(markers)} marker(s), "
            f"signature scan found {len(scanned)} (or their values differ)"
        )
    return clip


def read_asd(path: str | Path) -> AsdClip:
    """Read and decode an ``.asd`` file (see :func:`parse_asd`).

    ``._*`` names raise :class:`AppleDoubleStub` without reading.  OS errors propagate.
    """
    label = str(path)
    _check_appledouble(b"", label)
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise AsdError(label, f"file is {size} bytes, larger than any plausible .asd")
    return parse_asd(p.read_bytes(), label)


def scan_warp_markers(data: bytes, name: str = "<bytes>") -> list[WarpMarker]:
    """Find warp-marker records by their ``00 0A "WarpMarker"`` signature (cross-check).

    Skips the class definition, reads ``u32 id, f64 seconds, f64 beats`` after every other hit
    and requires finite values, seconds >= 0 and both seconds and beats increasing.
    """
    out: list[WarpMarker] = []
    i = data.find(_WM_SIGNATURE)
    sig = len(_WM_SIGNATURE)
    while i >= 0:
        body = i + sig
        if data[body : body + len(_WM_CLASSDEF_TAIL)] != _WM_CLASSDEF_TAIL:
            if body + _WM_RECORD.size > len(data):
                raise AsdError(
                    name, f"truncated at byte {len(data)} while reading warp marker at byte {i}"
                )
            mid, sec, beat = _WM_RECORD.unpack_from(data, body)
            out.append(WarpMarker(mid, sec, beat))
        i = data.find(_WM_SIGNATURE, body)
    _validate_marker_seq(out, name)
    return out


def _validate_marker_seq(markers: Sequence[WarpMarker], name: str) -> None:
    prev: WarpMarker | None = None
    for k, mk in enumerate(markers):
        if not (math.isfinite(mk.seconds) and math.isfinite(mk.beats)):
            raise AsdError(
                name, f"warp marker {k} (id {mk.id}) is not finite: {mk.seconds} s, beat {mk.beats}"
            )
        if mk.seconds < 0:
            raise AsdError(name, f"warp marker {k} (id {mk.id}) has negative time {mk.seconds} s")
        if prev is not None and not (mk.seconds > prev.seconds and mk.beats > prev.beats):
            raise AsdError(
                name,
                f"warp markers {k - 1} and {k} are not strictly increasing "
                f"({prev.seconds} s/beat {prev.beats} -> {mk.seconds} s/beat {mk.beats})",
            )
        prev = mk


def validate_markers(clip: AsdClip) -> None:
    """Require finite markers, seconds >= 0, seconds and beats strictly increasing."""
    _validate_marker_seq(clip.warp_markers, clip.path)


def check_frame_count(clip: AsdClip, audio_frames: int) -> None:
    """Raise :class:`AsdError` unless the ``.asd`` grid's frame count equals ``audio_frames``."""
    if int(audio_frames) != clip.total_frames:
        raise AsdError(
            clip.path,
            f"belongs to different audio: .asd says {clip.total_frames} frames, "
            f"audio has {int(audio_frames)}",
        )


def warp_points(clip: AsdClip) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, beats) float64 arrays of all markers, hidden one included; validated.

    Raises :class:`AsdError` when there are fewer than two markers (no tempo information), when
    a marker lies beyond ``MAX_SECONDS`` or ``±MAX_BEATS`` and when a segment's tempo is outside
    Live's ``MIN_BPM..MAX_BPM`` (a corrupt or crafted marker, e.g. at beat 1e300).
    """
    validate_markers(clip)
    markers = clip.warp_markers
    if len(markers) < 2:
        raise AsdError(
            clip.path,
            f"{len(markers)} warp marker(s): no warp grid (saved flag "
            f"{int(clip.saved)}); fall back to beat tracking",
        )
    for k, mk in enumerate(markers):
        if mk.seconds > MAX_SECONDS:
            raise AsdError(
                clip.path,
                f"warp marker {k} (id {mk.id}) SecTime {mk.seconds:g} s is beyond "
                f"{MAX_SECONDS:g} s",
            )
        if abs(mk.beats) > MAX_BEATS:
            raise AsdError(
                clip.path,
                f"warp marker {k} (id {mk.id}) BeatTime {mk.beats:g} is beyond "
                f"±{MAX_BEATS:g} beats",
            )
    for k, (a, b) in enumerate(itertools.pairwise(markers)):
        bpm = 60.0 * (b.beats - a.beats) / (b.seconds - a.seconds)
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise AsdError(
                clip.path,
                f"warp markers {k} and {k + 1} (SecTime {a.seconds:g} -> {b.seconds:g} s, "
                f"BeatTime {a.beats:g} -> {b.beats:g}) give {bpm:.6g} BPM, outside "
                f"{MIN_BPM:g}..{MAX_BPM:g}",
            )
    sec = np.array([mk.seconds for mk in markers], dtype=np.float64)
    beat = np.array([mk.beats for mk in markers], dtype=np.float64)
    return sec, beat


def bar_beats(clip: AsdClip) -> float:
    """Quarter-note beats per bar of the clip's time signature, one that Live can write
    (numerator a whole number 1..99, denominator 1, 2, 4, 8 or 16); else :class:`AsdError`."""
    num, den = clip.time_signature
    if not (float(num).is_integer() and 1 <= num <= MAX_NUMERATOR and den in DENOMINATORS):
        raise AsdError(
            clip.path,
            f"TimeSignature {num:g}/{den:g} is not one Live writes (numerator a whole number "
            f"1..{MAX_NUMERATOR}, denominator 1, 2, 4, 8 or 16)",
        )
    return clip.beats_per_bar


def bar_start_seconds(
    clip: AsdClip, n_bars: int | None = None, *, until_seconds: float | None = None
) -> np.ndarray:
    """Bar-line times in seconds (bar k starts at beat ``k * beats_per_bar``).

    Give either ``n_bars`` (bars 0 .. n_bars-1) or ``until_seconds`` (every bar k, negative k
    included, whose start lies in ``[0, until_seconds]``).  Times follow the warp map through
    the markers, as :class:`pipeline.audio.warp.WarpMap` does (first/last segment extrapolated).
    Implausible markers or meters raise :class:`AsdError` (:func:`warp_points`,
    :func:`bar_beats`); more than ``MAX_BARS`` bar lines raise ValueError.
    """
    if (n_bars is None) == (until_seconds is None):
        raise TypeError("give exactly one of n_bars or until_seconds")
    sec, beat = warp_points(clip)
    bpb = bar_beats(clip)
    if until_seconds is None:
        first, stop = 0, max(int(n_bars or 0), 0)
        if stop > MAX_BARS:
            raise ValueError(f"n_bars must be at most {MAX_BARS}, got {n_bars}")
    else:
        if not abs(until_seconds) <= MAX_SECONDS:  # also refuses nan
            raise ValueError(f"until_seconds must be within ±{MAX_SECONDS:g}, got {until_seconds}")
        b0, b1 = piecewise_linear(np.array([0.0, float(until_seconds)]), sec, beat)
        eps = 1e-9
        first, stop = math.ceil(b0 / bpb - eps), math.floor(b1 / bpb + eps) + 1
        if stop - first > MAX_BARS:
            raise AsdError(
                clip.path, f"implausible tempo: {stop - first} bars in {until_seconds} s"
            )
    return piecewise_linear(np.arange(first, stop, dtype=np.float64) * bpb, beat, sec)
