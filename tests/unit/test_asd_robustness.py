"""Corrupted and hostile ``.asd`` inputs: a valid clip or an AsdError, fast, bounded memory."""

from __future__ import annotations

import random
import struct
import time
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.audio.asd import (
    MAX_DEPTH,
    AsdClip,
    AsdError,
    WarpMarker,
    bar_start_seconds,
    parse_asd,
    validate_markers,
    warp_points,
)
from pipeline.audio.warp import MAX_BPM, MIN_BPM
from tests.conftest import ASD_FIXTURES, requires_asd_fixtures

FIXTURES = ASD_FIXTURES

MIN_VARIANTS = 3000
MAX_SECONDS_PER_PARSE = 1.0
MAX_PEAK_BYTES = 64 * 1024 * 1024
INFLATE = (b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80")
WM_SIG = b"\x00\x0aWarpMarker"


def _fixtures() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(FIXTURES.glob("*.asd"))}


def _hot_spots(data: bytes) -> list[int]:
    """Offsets where length/count fields live: head, document header, warp-marker list."""
    spots = list(range(0, 48))
    doc = data.find(b"\xab\x1e\x56\x78")
    spots += range(max(doc - 8, 0), doc + 40)
    i = data.find(WM_SIG)
    while i >= 0:
        spots += range(max(i - 12, 0), i + 36)
        i = data.find(WM_SIG, i + 1)
    return sorted({s for s in spots if s <= len(data) - 4})


def _variants(name: str, data: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    n = len(data)
    # truncation: evenly spread, random, the head/schema region and the last bytes
    cuts = {k * n // 40 for k in range(40)}
    cuts |= {rng.randrange(n) for _ in range(25)}
    cuts |= set(range(0, min(n, 300), 10))
    cuts |= set(range(max(n - 10, 0), n))
    for cut in sorted(cuts):
        yield f"truncate@{cut}", data[:cut]
    # random byte flips anywhere, and concentrated in the first 6 kB (head + schema + markers)
    for k in range(190):
        buf = bytearray(data)
        span = n if k % 2 else min(n, 6000)
        picks = [rng.randrange(span) for _ in range(rng.randint(1, 4))]
        for pos in picks:
            buf[pos] ^= rng.randrange(1, 256)
        yield f"flip@{picks}", bytes(buf)
    # u32 length/count fields inflated to huge values
    spots = _hot_spots(data)
    positions = rng.sample(spots, min(len(spots), 56)) + [rng.randrange(n - 4) for _ in range(14)]
    for pos in positions:
        for val in INFLATE:
            buf = bytearray(data)
            buf[pos : pos + 4] = val
            yield f"inflate@{pos}={val.hex()}", bytes(buf)


def _check_clip(clip: AsdClip) -> None:
    assert isinstance(clip, AsdClip)
    assert all(isinstance(m, WarpMarker) for m in clip.warp_markers)
    validate_markers(clip)
    assert clip.beats_per_bar > 0
    if len(clip.warp_markers) >= 2:
        try:
            sec, beat = warp_points(clip)
        except AsdError as exc:  # decodes, but no plausible warp grid (tempo, magnitude)
            assert str(exc).startswith(f"{clip.path}: "), str(exc)
        else:
            bpm = 60 * np.diff(beat) / np.diff(sec)
            assert np.all((bpm >= MIN_BPM) & (bpm <= MAX_BPM)), bpm


@requires_asd_fixtures
def test_corrupted_fixtures_decode_or_raise_asd_error() -> None:
    fixtures = _fixtures()
    assert len(fixtures) >= 7
    for name, data in fixtures.items():  # sanity: the originals decode
        _check_clip(parse_asd(data, name))

    rng = random.Random(20240611)
    outcomes = {"ok": 0, "AsdError": 0}
    failures: list[str] = []
    slowest = (0.0, "")
    tracemalloc.start()
    try:
        for name, data in fixtures.items():
            for label, variant in _variants(name, data, rng):
                t0 = time.perf_counter()
                try:
                    clip = parse_asd(variant, name)
                except AsdError as exc:
                    outcomes["AsdError"] += 1
                    assert str(exc).startswith(f"{name}: "), str(exc)
                except Exception as exc:  # anything else is a bug
                    failures.append(f"{name} {label}: {type(exc).__name__}: {exc}")
                else:
                    outcomes["ok"] += 1
                    _check_clip(clip)
                dt = time.perf_counter() - t0
                if dt > slowest[0]:
                    slowest = (dt, f"{name} {label}")
                del variant
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert not failures, "\n".join(failures[:20])
    total = sum(outcomes.values())
    print(f"{total} variants {outcomes}, slowest {slowest}, peak {peak / 2**20:.1f} MiB")
    assert total >= MIN_VARIANTS, outcomes
    assert outcomes["AsdError"] > total // 2, outcomes
    assert slowest[0] < MAX_SECONDS_PER_PARSE, slowest
    assert peak < MAX_PEAK_BYTES, f"tracemalloc peak {peak / 2**20:.1f} MiB"


# ---------------------------------------------------------------------------------------------
# Hand-built files: a tiny writer for the format, used for valid and hostile schemas.


def _name(s: str) -> bytes:
    return b"\x00" + bytes([len(s)]) + s.encode("ascii")


def _fname(s: str) -> bytes:
    return struct.pack("<I", len(s)) + s.encode("utf-16-le")


def _cdef(cname: str, fields: list[tuple[str, int | str]] | int) -> bytes:
    """Class definition; ``fields`` an int is a raw field count (-1 list, -3 array)."""
    if isinstance(fields, int):
        return _name(cname) + struct.pack("<i", fields)
    out = _name(cname) + struct.pack("<i", len(fields))
    for fname, ftype in fields:
        out += _fname(fname) + (_name(ftype) if isinstance(ftype, str) else bytes([ftype]))
    return out


def _head(grid: tuple[int, ...] = (0, 1000, 2000), m: int = 4, saved: int = 1) -> bytes:
    out = b"\x06I" + struct.pack("<I", len(grid)) + struct.pack(f"<{len(grid)}I", *grid)
    return out + struct.pack("<4I", 0, 0, 100, m) + bytes(min(m, 64)) + bytes([saved])


def _doc(root: str, classes: list[bytes], value: bytes, version: int = 5) -> bytes:
    n = struct.pack("<i", len(classes))
    return (
        b"\xab\x1e\x56\x78"
        + bytes([version])
        + struct.pack("<I", 365)
        + _name(root)
        + n
        + (b"".join(classes) + value)
    )


F64, I32, F32, BOOL = 0x17, 0x11, 0x12, 0x10
SAMPLE_FIELDS: list[tuple[str, int | str]] = [
    *[(k, F64) for k in ("LoopStart", "LoopEnd", "SampleOffset")],
    *[(k, F64) for k in ("HiddenLoopStart", "HiddenLoopEnd", "OutMarker")],
    ("IsWarped", BOOL),
    ("WarpMode", I32),
    ("TimeSignature", "Sig"),
    ("WarpMarkers", "RemoteableList"),
    ("MarkersGenerated", BOOL),
    ("LoopOn", BOOL),
    ("Extra", "Extra"),
]
SAMPLE_CLASSES = [
    _cdef("Sig", [("Numerator", F32), ("Denominator", F32), ("Time", F64)]),
    _cdef("RemoteableList", -1),
    _cdef("WarpMarker", [("SecTime", F64), ("BeatTime", F64)]),
    _cdef("SampleData", SAMPLE_FIELDS),
]


def _sample_value(markers: list[tuple[int, float, float]], num: float = 9.0) -> bytes:
    out = struct.pack("<6d", 0.0, 8.0, 0.0, 0.0, 8.0, 8.0) + b"\x01" + struct.pack("<i", 4)
    out += struct.pack("<ffd", num, 4.0, 0.0) + struct.pack("<I", 99)
    for mid, sec, beat in markers:
        out += _name("WarpMarker") + struct.pack("<Idd", mid, sec, beat)
    return out + b"\x00\x00" + b"\x00\x00"  # list terminator, MarkersGenerated, LoopOn


def _synthetic(extra_classes: list[bytes], extra_value: bytes, **head: int) -> bytes:
    markers = [(5, 0.5, -1.0), (1, 1.5, 1.0), (7, 1.5 + 1 / 64, 1.03125)]
    classes = [*SAMPLE_CLASSES, *extra_classes]
    return _head(**head) + _doc("SampleData", classes, _sample_value(markers) + extra_value)


EMPTY_EXTRA = [_cdef("Extra", [])]


def test_synthetic_file_decodes() -> None:
    clip = parse_asd(_synthetic(EMPTY_EXTRA, b""), "synthetic.asd")
    assert clip.total_frames == 2000 and clip.saved and clip.loop_on is False
    assert [(m.id, m.seconds, m.beats) for m in clip.warp_markers] == [
        (5, 0.5, -1.0),
        (1, 1.5, 1.0),
        (7, 1.5 + 1 / 64, 1.03125),
    ]
    assert clip.warp_marker_next_id == 99
    assert clip.time_signature == (9.0, 4.0) and clip.beats_per_bar == 9.0
    assert clip.segment_bpm == pytest.approx([120.0, 120.0])
    assert clip.name is None and clip.overview is None
    # 9/4 bars through the map: beat 0 at 1.0 s, 9 beats later 4.5 s; bar -1 extrapolated
    np.testing.assert_allclose(bar_start_seconds(clip, 2), [1.0, 5.5])
    np.testing.assert_allclose(bar_start_seconds(clip, until_seconds=10.0), [1.0, 5.5, 10.0])


HOSTILE = {
    "self-inlining class": ([_cdef("Extra", [("me", "Extra")])], b"", "contains itself"),
    "duplicate field": ([_cdef("Extra", [("x", I32), ("x", F32)])], b"", "'x' appears twice"),
    "mutually inlining classes": (
        [_cdef("Extra", [("b", "B")]), _cdef("B", [("a", "Extra")])],
        b"",
        "contains itself",
    ),
    "exponential fan-out": (
        [_cdef("Extra", [("a", "C0"), ("b", "C0")])]
        + [_cdef(f"C{i}", [("a", f"C{i + 1}"), ("b", f"C{i + 1}")]) for i in range(24)]
        + [_cdef("C24", [])],
        b"",
        "inline structs",
    ),
    "huge array of empty elements": (
        [_cdef("Extra", [("arr", "Arr")]), _cdef("Arr", -3), _cdef("E", [])],
        struct.pack("<I", 0xFFFFFFFF) + _name("E"),
        "declares 4294967295",
    ),
    "nested lists deeper than the limit": (
        [_cdef("Extra", [("l", "L")]), _cdef("L", -1), _cdef("N", [("l", "L")])],
        struct.pack("<I", 0)
        + (_name("N") + struct.pack("<II", 0, 0)) * (MAX_DEPTH + 5)
        + b"\x00\x00" * (MAX_DEPTH + 6),
        "deeper than",
    ),
    "field count 0x7fffffff": ([_name("Extra") + b"\xff\xff\xff\x7f"], b"", "claims"),
    "bad class kind": ([_name("Extra") + struct.pack("<i", -2)], b"", "invalid field count"),
    "unknown type code": ([_cdef("Extra", [("x", 0x99)])], b"", "unknown type code 0x99"),
    "undefined class": ([_cdef("Extra", [("x", "Nope")])], b"", "undefined class 'Nope'"),
    "list of arrays": (
        [_cdef("Extra", [("l", "L")]), _cdef("L", -1), _cdef("A", -3)],
        struct.pack("<I", 0) + _name("A") + struct.pack("<I", 0),
        "not a struct",
    ),
    "duplicate class": (EMPTY_EXTRA + EMPTY_EXTRA, b"", "defined twice"),
    "huge f32 array": (
        [_cdef("Extra", [("x", 0x40)])],
        struct.pack("<I", 0x7FFFFFFF),
        "declares 2147483647",
    ),
    "huge string": ([_cdef("Extra", [("x", 0x14)])], b"\xff\xff\xff\xff", "declares"),
    "lone surrogate in field name": (
        [_name("Extra") + struct.pack("<iI", 1, 1) + b"\x00\xd8" + bytes([F32])],
        b"",
        "invalid UTF-16",
    ),
    "trailing bytes": (EMPTY_EXTRA, b"junk", "document magic"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_schema_raises_asd_error(case: str) -> None:
    classes, value, reason = HOSTILE[case]
    data = _synthetic(classes, value)
    t0 = time.perf_counter()
    with pytest.raises(AsdError, match=reason) as ei:
        parse_asd(data, "hostile.asd")
    assert time.perf_counter() - t0 < MAX_SECONDS_PER_PARSE
    assert str(ei.value).startswith("hostile.asd: ")


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        ({"grid": ()}, "empty frame grid"),
        ({"grid": (0, 500, 400)}, "not rising"),
        ({"m": 0xFFFFFFFF}, "legacy overview block"),
    ],
)
def test_bad_head_raises_asd_error(head: dict, reason: str) -> None:
    with pytest.raises(AsdError, match=reason):
        parse_asd(_synthetic(EMPTY_EXTRA, b"", **head), "head.asd")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated at byte 0"),
        (b"\x06", "truncated at byte 1"),
        (b"PK\x03\x04", "not an .asd file"),
        (b"\x06Ix", "truncated"),
    ],
)
def test_garbage_raises_asd_error(data: bytes, reason: str) -> None:
    with pytest.raises(AsdError, match=reason):
        parse_asd(data)


def test_unknown_document_version_and_missing_sample_data() -> None:
    good = _synthetic(EMPTY_EXTRA, b"")
    doc = good.index(b"\xab\x1e\x56\x78")
    with pytest.raises(AsdError, match="unsupported document version 9"):
        parse_asd(good[: doc + 4] + b"\x09" + good[doc + 5 :])
    other = _head() + _doc("Other", [_cdef("Other", [("x", I32)])], b"\x00" * 4)
    with pytest.raises(AsdError, match="no SampleData document"):
        parse_asd(other)


def test_unordered_markers_are_rejected() -> None:
    markers = [(0, 1.0, 0.0), (1, 0.5, 1.0)]
    data = _head() + _doc("SampleData", [*SAMPLE_CLASSES, *EMPTY_EXTRA], _sample_value(markers))
    with pytest.raises(AsdError, match="not strictly increasing"):
        parse_asd(data, "bad.asd")
