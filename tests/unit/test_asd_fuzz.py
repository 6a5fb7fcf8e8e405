"""Crafted and mutated ``.asd`` files through the analyze stage's per-track path (issue 12).

Every case either gives a valid warp map from the markers or is set aside with a reason that
names the field and value (beat tracking takes over); nothing else is raised, no case is slow.
Mutants are made in code from the real fixtures; the trackers are replaced by a cheap stub so
that a thousand fallbacks stay fast (the trackers themselves are not under test here).
"""

from __future__ import annotations

import json
import random
import struct
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import analysis
from pipeline.audio.analysis import AnalyzeOptions, Override, analyze_track, asd_warp_map
from pipeline.audio.asd import AsdError, parse_asd
from pipeline.audio.io import AudioError, probe_audio
from pipeline.audio.warp import MAX_BEATS_PER_BAR, MAX_BPM, MIN_BPM, Timing, WarpMap
from pipeline.stages.analyze import AnalyzeJob, analyze_one
from tests.conftest import ASD_FIXTURES, requires_asd_fixtures

SEED = 20250112
MAX_SECONDS_PER_CASE = 2.0
MIN_CASES = 1000
WM_SIG = b"\x00\x0aWarpMarker"
WM_CLASSDEF = b"\x02\x00\x00\x00\x07\x00\x00\x00"  # what follows the signature in the schema
# fixture -> sample rate of the audio it was made for (frame count comes from the .asd)
MARKED = {
    "apache_live10_loop_on.asd": 44_100,
    "apache_live10_loop_off.asd": 44_100,
    "chasedurand_freeze_snare.wav.asd": 44_100,
    "dawdreamer_disco_drums_96kHz.wav.asd": 96_000,
}
F64_EXTREMES = (
    0.0,
    -0.0,
    -1.0,
    -1e-3,
    1e300,
    -1e300,
    float("nan"),
    float("inf"),
    float("-inf"),
    5e-324,  # smallest denormal
    1e-310,  # denormal
    2.2250738585072014e-308,  # smallest normal
    1e6,
    1e9,
    3e38,
    2.0**53,
    2.0**63,
    2.0**64,
    1e19,
    4294967295.0,
    -(2.0**31),
)
F32_EXTREMES = (
    0.0,
    -0.0,
    -4.0,
    3e38,
    -3e38,
    float("nan"),
    float("inf"),
    float("-inf"),
    1e-45,  # smallest f32 denormal
    1.1754944e-38,  # smallest f32 normal
    2.0**31,
    2.0**24 + 2,
    4.5,
    3.0,
    7.0,
    33.0,
    99.0,
    100.0,
    16.0,
    32.0,
)
# integer bit patterns written over the floats: u64/u32 all ones and the largest signed value
RAW = {"<d": (b"\xff" * 8, b"\xff" * 7 + b"\x7f"), "<f": (b"\xff" * 4, b"\xff" * 3 + b"\x7f")}


def stub_tracker(path: Path, options: AnalyzeOptions) -> tuple[Timing, dict]:
    header = probe_audio(path)
    warp = WarpMap.constant_tempo(120.0, 0.0, 4, header.frames / header.sample_rate)
    info = {"method": "stub", "bpm": 120.0, "meter": 4, "confidence": 1.0, "trust": 1.0}
    return Timing.single(warp), info


@pytest.fixture
def stub_trackers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(analysis.TRACKERS):
        monkeypatch.setitem(analysis.TRACKERS, name, stub_tracker)


@dataclass(frozen=True)
class Offsets:
    """Byte offsets of the values the fuzz writes extreme values into."""

    markers: tuple[tuple[int, int], ...]  # (SecTime, BeatTime) of each marker record
    numerator: int
    denominator: int
    signature_time: int


def offsets(data: bytes, name: str) -> Offsets:
    clip = parse_asd(data, name)
    markers = []
    i = data.find(WM_SIG)
    while i >= 0:
        body = i + len(WM_SIG)
        if data[body : body + len(WM_CLASSDEF)] != WM_CLASSDEF:
            markers.append((body + 4, body + 12))  # after the u32 id
        i = data.find(WM_SIG, body)
    # SampleData starts with six f64 clip values; TimeSignature follows 104 bytes in
    head = struct.pack(
        "<6d",
        clip.loop_start,
        clip.loop_end,
        clip.sample_offset,
        clip.hidden_loop_start,
        clip.hidden_loop_end,
        clip.out_marker,
    )
    assert data.count(head) == 1
    ts = data.index(head) + 104
    assert struct.unpack_from("<ffd", data, ts) == (*clip.time_signature, clip.time_signature_time)
    assert len(markers) == len(clip.warp_markers)
    return Offsets(tuple(markers), ts, ts + 4, ts + 8)


def pack(value: float | bytes, fmt: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if fmt == "<f":  # what a float32 field holds for it (inf beyond the f32 range)
        with np.errstate(over="ignore"):
            return np.array([value], dtype="<f4").tobytes()
    return struct.pack(fmt, value)


def patched(data: bytes, writes: list[tuple[int, str, float | bytes]]) -> bytes:
    buf = bytearray(data)
    for at, fmt, value in writes:
        raw = pack(value, fmt)
        buf[at : at + len(raw)] = raw
    return bytes(buf)


def mutants(data: bytes, where: Offsets, rng: random.Random) -> list[tuple[str, bytes]]:
    """Extreme field values, byte flips, truncations and insertions of one fixture."""
    out = []
    fields = [
        (at, "<d", f"marker{k}.{what}")
        for k, pair in enumerate(where.markers)
        for at, what in zip(pair, ("SecTime", "BeatTime"), strict=True)
    ]
    meter = [(where.numerator, "<f", "Numerator"), (where.denominator, "<f", "Denominator")]
    for at, fmt, label in fields + meter:
        values = (*(F32_EXTREMES if fmt == "<f" else F64_EXTREMES), *RAW[fmt])
        out += [(f"{label}={v!r}", patched(data, [(at, fmt, v)])) for v in values]
    for v in (float("nan"), 1e300, -1e300, -1.0, 5e-324):
        out.append((f"TimeSignature.Time={v!r}", patched(data, [(where.signature_time, "<d", v)])))
    every = [(at, fmt) for at, fmt, _ in fields + meter]
    for _ in range(20):  # several fields at once
        writes = []
        for at, fmt in rng.sample(every, rng.randint(2, 4)):
            pool = F32_EXTREMES if fmt == "<f" else F64_EXTREMES
            writes.append((at, fmt, rng.choice(pool)))
        out.append((f"multi{writes}", patched(data, writes)))

    hot = [at for at, _, _ in fields + meter]

    def position() -> int:  # half of them near the values above, half anywhere
        if rng.random() < 0.5:
            return min(rng.choice(hot) + rng.randrange(-24, 24), len(data) - 1)
        return rng.randrange(len(data))

    for _ in range(60):
        buf = bytearray(data)
        picks = [position() for _ in range(rng.randint(1, 4))]
        for at in picks:
            buf[at] ^= (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(1, 256)
        out.append((f"flip@{picks}", bytes(buf)))
    for _ in range(30):
        cut = position()
        out.append((f"truncate@{cut}", data[:cut]))
    for _ in range(30):
        at = position()
        extra = rng.randbytes(rng.choice((1, 2, 4, 8, rng.randint(1, 64))))
        out.append((f"insert@{at}+{len(extra)}", data[:at] + extra + data[at:]))
    return out


def noise_wav(path: Path, frames: int, sample_rate: int) -> float:
    """Quiet noise with exactly ``frames`` frames (what the .asd grid checks); its duration."""
    rng = np.random.default_rng(0)
    sf.write(path, 0.1 * rng.standard_normal(frames), sample_rate, subtype="PCM_16")
    return frames / sample_rate


def check_warp(warp: WarpMap, duration: float) -> int:
    """A usable map: tempo of every segment in Live's range, bar lines bounded by duration."""
    assert 1 <= warp.beats_per_bar <= MAX_BEATS_PER_BAR
    bpm = 60.0 * np.diff(warp.beats) / np.diff(warp.seconds)
    assert np.all((bpm >= MIN_BPM) & (bpm <= MAX_BPM)), bpm
    bars = warp.bar_starts(duration)
    assert np.all(np.isfinite(bars))
    assert len(bars) <= duration * MAX_BPM / 60 / warp.beats_per_bar + 1
    return len(bars)


def job(root: Path) -> AnalyzeJob:
    return AnalyzeJob(
        root=root,
        warp_dir=root / "warp",
        options=AnalyzeOptions(),
        min_confidence=0.0,
        min_trust=0.0,
        cache_dir=None,
        overrides={},
        published_splits={},
    )


# ---------------------------------------------------------------------------------------------
# The crafted files of issue 12: each crashed the analyze stage or ran for many seconds.

APACHE = "apache_live10_loop_on.asd"
APACHE_FRAMES = 181_675


@requires_asd_fixtures
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("hidden BeatTime", 1e300, r"BeatTime 1e\+300 is beyond ±1e\+09 beats"),  # ValueError
        ("hidden BeatTime", 1e9, r"BeatTime 0 -> 1e\+09\) give 3\.7\d*e\+12 BPM, outside 20"),
        ("hidden BeatTime", 1e6, r"BeatTime 0 -> 1e\+06\) give 3\.7\d*e\+09 BPM, outside 20"),
        ("Numerator", 3e38, r"TimeSignature 3e\+38/4 is not one Live writes"),  # OverflowError
    ],
    ids=["beat-1e300", "beat-1e9", "beat-1e6", "numerator-3e38"],
)
def test_crafted_apache_asd_is_set_aside_with_its_reason(
    tmp_path: Path, stub_trackers: None, field: str, value: float, reason: str
) -> None:
    data = (ASD_FIXTURES / APACHE).read_bytes()
    where = offsets(data, APACHE)
    at, fmt = (where.markers[1][1], "<d") if field == "hidden BeatTime" else (where.numerator, "<f")
    assert at == 4391 + 24 or field == "Numerator"  # the offset the issue names
    audio = tmp_path / "apache.wav"
    duration = noise_wav(audio, APACHE_FRAMES, 44_100)
    asd_path = tmp_path / "apache.wav.asd"
    asd_path.write_bytes(patched(data, [(at, fmt, value)]))

    t0 = time.perf_counter()
    row = analyze_one(audio, job(tmp_path))
    assert time.perf_counter() - t0 < MAX_SECONDS_PER_CASE
    assert row["status"] == "ok" and row["method"] == "stub", row
    assert row["fallback_reason"].startswith("apache.wav.asd not used: ")
    saved = json.loads((tmp_path / "warp" / f"{row['track']}.json").read_text())
    check_warp(WarpMap.from_dict(saved["sections"][0]["warp_map"]), duration)  # the fallback's map

    with pytest.raises(AsdError, match=reason) as ei:
        asd_warp_map(asd_path, APACHE_FRAMES)
    assert ei.value.path == str(asd_path)
    assert ei.value.reason in row["fallback_reason"]


@requires_asd_fixtures
def test_unpatched_apache_still_gives_its_bars(tmp_path: Path, stub_trackers: None) -> None:
    audio = tmp_path / "apache.wav"
    duration = noise_wav(audio, APACHE_FRAMES, 44_100)
    (tmp_path / "apache.wav.asd").write_bytes((ASD_FIXTURES / APACHE).read_bytes())
    warp, info = analyze_track(audio, AnalyzeOptions())
    assert info["method"] == "asd" and info["fallback_reason"] == ""
    np.testing.assert_allclose(warp.bar_starts(duration), [0.0, 2.059807, 4.119615], atol=1e-6)


@pytest.mark.parametrize(
    ("seconds", "beats", "bpb", "duration", "reason"),
    [
        ([0.0, 0.016], [0.0, 1e6], 4, 4.1, "more than 999 BPM"),  # 64 million bar lines
        ([0.0, 0.016], [0.0, 1e300], 4, 4.1, "more than 999 BPM"),
        ([1e300, 2e300], [0.0, 1e300], 4, 0.0, "beyond"),  # bar indices past int64
        ([0.0, 1.0], [0.0, 2.0], 4, float("inf"), "duration"),
        ([0.0, 1.0], [0.0, 2.0], 4, float("nan"), "duration"),
    ],
)
def test_bar_starts_is_bounded_by_the_duration(seconds, beats, bpb, duration, reason) -> None:
    warp = WarpMap(np.array(seconds), np.array(beats), bpb)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=reason):
        warp.bar_starts(duration)
    assert time.perf_counter() - t0 < 0.1


@pytest.mark.parametrize("bpb", [0, 33, 2**70, 4.0, 3e38, True])
def test_warp_map_meter_is_a_small_whole_number(bpb) -> None:
    with pytest.raises(ValueError, match="beats_per_bar"):
        WarpMap(np.array([0.0, 1.0]), np.array([0.0, 2.0]), bpb)


@pytest.mark.parametrize(("override", "reason"), [(Override(5000.0, 0.0, 4), "999 BPM")])
def test_unusable_override_rejects_the_track(tmp_path: Path, override, reason) -> None:
    audio = tmp_path / "song.wav"
    noise_wav(audio, 8000 * 3, 8000)
    with pytest.raises(AudioError, match=f"override unusable: .*{reason}"):
        analyze_track(audio, AnalyzeOptions(), override)


# ---------------------------------------------------------------------------------------------
# Fuzz


@requires_asd_fixtures
def test_mutated_asd_files_give_a_warp_map_or_a_named_reason(
    tmp_path: Path, stub_trackers: None
) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    slowest = (0.0, "")
    for name, sample_rate in MARKED.items():
        data = (ASD_FIXTURES / name).read_bytes()
        frames = parse_asd(data, name).total_frames
        folder = tmp_path / Path(name).stem
        folder.mkdir()
        audio = folder / "clip.wav"
        duration = noise_wav(audio, frames, sample_rate)
        asd_path = folder / "clip.wav.asd"
        analyze = job(folder)
        for label, variant in mutants(data, offsets(data, name), rng):
            case = f"{name} {label}"
            asd_path.write_bytes(variant)
            t0 = time.perf_counter()
            try:
                warp = asd_warp_map(asd_path, frames)
            except AsdError as err:  # AppleDoubleStub included
                direct = f"not used: {err.reason}"
                assert err.reason, case
            except Exception as err:
                failures.append(f"{case}: asd_warp_map raised {type(err).__name__}: {err}")
                continue
            else:
                direct = "asd"
                try:
                    check_warp(warp, duration)
                except (AssertionError, ValueError) as err:
                    failures.append(f"{case}: unusable warp map accepted: {err!r}")
                    continue
            try:
                row = analyze_one(audio, analyze)
            except Exception as err:
                failures.append(f"{case}: analyze_one raised {type(err).__name__}: {err}")
                continue
            elapsed = time.perf_counter() - t0
            slowest = max(slowest, (elapsed, case))
            if elapsed >= MAX_SECONDS_PER_CASE:
                failures.append(f"{case}: {elapsed:.2f} s")
            if row["status"] != "ok":
                failures.append(f"{case}: rejected: {row['reason']}")
            elif direct == "asd":
                outcomes["warp map from the markers"] += 1
                if row["method"] != "asd":
                    failures.append(f"{case}: markers usable, but {row['fallback_reason']}")
            else:
                outcomes["set aside with a reason"] += 1
                if row["method"] != "stub" or direct not in row["fallback_reason"]:
                    failures.append(f"{case}: {direct!r} but row {row}")
    total = sum(outcomes.values()) + len(failures)
    print(f"{total} mutants: {dict(outcomes)}, slowest {slowest[0]:.3f} s ({slowest[1]})")
    assert not failures, f"{len(failures)} of {total} failed:\n" + "\n".join(failures[:20])
    assert total >= MIN_CASES
    assert min(outcomes.values()) > 0 and len(outcomes) == 2, outcomes
