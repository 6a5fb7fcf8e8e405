"""Decode the real Ableton ``.asd`` fixtures and compare with the reference decoder's values."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio.asd import (
    AppleDoubleStub,
    AsdClip,
    AsdError,
    WarpMarker,
    bar_start_seconds,
    check_frame_count,
    parse_asd,
    read_asd,
    scan_warp_markers,
    validate_markers,
    warp_points,
)
from tests.conftest import ASD_FIXTURES, requires_asd_fixtures

FIXTURES = ASD_FIXTURES
EXPECTED_JSON = FIXTURES / "expected_decode.json"

pytestmark = requires_asd_fixtures


def _expected() -> dict:
    return json.loads(EXPECTED_JSON.read_text()) if EXPECTED_JSON.is_file() else {}


EXPECTED = _expected()
NAMES = sorted(EXPECTED)


@pytest.fixture(scope="module")
def clips() -> dict[str, AsdClip]:
    return {name: read_asd(FIXTURES / name) for name in NAMES}


def test_fixture_set_is_complete() -> None:
    assert len(NAMES) == 7
    assert {p.name for p in FIXTURES.glob("*.asd")} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_head_and_documents(name: str, clips: dict[str, AsdClip]) -> None:
    exp, clip = EXPECTED[name], clips[name]
    assert (FIXTURES / name).stat().st_size == exp["size"]
    assert exp["parsed_to_eof"] is True  # parse_asd rejects trailing bytes
    assert clip.byte_order == exp["byte_order"] == "little"
    assert clip.grid_entries == exp["head"]["grid_entries"]
    assert clip.total_frames == exp["head"]["total_frames"]
    assert clip.legacy_block_length == exp["head"]["m"]
    assert clip.saved is bool(exp["head"]["saved_flag"])
    assert [tuple(d) for d in clip.documents] == [
        (d["root"], d["version"], d["id"], d["classes"]) for d in exp["documents"]
    ]
    assert clip.path == str(FIXTURES / name)


@pytest.mark.parametrize("name", NAMES)
def test_warp_markers(name: str, clips: dict[str, AsdClip]) -> None:
    exp, clip = EXPECTED[name], clips[name]
    assert clip.warp_marker_next_id == exp["warp_marker_next_id"]
    assert len(clip.warp_markers) == len(exp["warp_markers"])
    for got, want in zip(clip.warp_markers, exp["warp_markers"], strict=True):
        assert got.id == want["id"]
        assert got.seconds == pytest.approx(want["sec"], abs=1e-9)
        assert got.beats == pytest.approx(want["beat"], abs=1e-9)
    assert clip.segment_bpm == pytest.approx(exp["segment_bpm"], abs=1e-6)
    assert clip.has_markers is bool(exp["warp_markers"])
    # saved flag is 1 exactly when markers were written
    assert clip.saved is clip.has_markers
    # the signature scan agrees with the schema walk
    assert exp["scan_agrees"] is True
    assert tuple(scan_warp_markers((FIXTURES / name).read_bytes(), name)) == clip.warp_markers
    validate_markers(clip)


@pytest.mark.parametrize("name", NAMES)
def test_clip_fields(name: str, clips: dict[str, AsdClip]) -> None:
    exp, clip = EXPECTED[name], clips[name]
    for key, attr in [
        ("LoopStart", "loop_start"),
        ("LoopEnd", "loop_end"),
        ("SampleOffset", "sample_offset"),
        ("HiddenLoopStart", "hidden_loop_start"),
        ("HiddenLoopEnd", "hidden_loop_end"),
        ("OutMarker", "out_marker"),
    ]:
        assert getattr(clip, attr) == pytest.approx(exp[key], abs=1e-12), key
    assert clip.is_warped is bool(exp["IsWarped"])
    assert clip.warp_mode == exp["WarpMode"]
    assert clip.loop_on is bool(exp["LoopOn"])
    assert clip.markers_generated is bool(exp["MarkersGenerated"])
    assert clip.original_file_size == exp["OriginalFileSize"]
    assert clip.extra_length == exp["ExtraLength"]
    num, den, t = exp["TimeSignature"]
    assert clip.time_signature == (num, den)
    assert clip.time_signature_time == t
    assert clip.beats_per_bar == 4.0 * num / den
    assert clip.name == exp.get("Name")  # Live 12 has no Name field
    assert clip.color_index == exp["ColorIndex"]
    ov = exp["OverView"]
    assert clip.overview is not None
    assert clip.overview.samples_per_bin_log2 == ov["SamplesPerBinLog2"]
    assert clip.overview.channel_count == ov["ChannelCount"]
    assert clip.overview.version == ov["Version"]
    assert list(clip.overview.level_lengths) == ov["levels"]
    assert clip.onsets_count == exp["OnSets_count"]
    if exp["OnSets_InitialBPM"] is None:
        assert clip.onsets_initial_bpm is None
    else:
        assert clip.onsets_initial_bpm == pytest.approx(exp["OnSets_InitialBPM"], rel=1e-9)
    if "AufTaktData" in exp:
        a = exp["AufTaktData"]
        assert clip.auftakt is not None
        assert clip.auftakt.is_set is bool(a["IsSet"])
        assert clip.auftakt.unbiased_tempo_estimate == a["UnbiasedTempoEstimate"]
        assert clip.auftakt.chunk_bytes == a["chunk_bytes"]
    else:
        assert clip.auftakt is None


def test_warp_mode_names(clips: dict[str, AsdClip]) -> None:
    assert clips["apache_live10_loop_on.asd"].warp_mode_name == "Complex Pro"
    assert clips["chasedurand_freeze_snare.wav.asd"].warp_mode_name == "Beats"


def test_loop_on_clip_region(clips: dict[str, AsdClip]) -> None:
    on = clips["apache_live10_loop_on.asd"]
    assert on.clip_start_beats == 0.0
    assert (on.loop_start, on.loop_end, on.loop_on) == (4.0, 6.0, True)


def test_out_of_order_ids_are_kept_in_file_order(clips: dict[str, AsdClip]) -> None:
    clip = clips["dawdreamer_disco_drums_96kHz.wav.asd"]
    assert [m.id for m in clip.warp_markers] == [3, 2]
    sec, beat = warp_points(clip)
    assert sec.dtype == beat.dtype == np.float64
    assert np.all(np.diff(sec) > 0) and np.all(np.diff(beat) > 0)


def test_hidden_marker_is_kept(clips: dict[str, AsdClip]) -> None:
    for name in ("apache_live10_loop_on.asd", "chasedurand_freeze_snare.wav.asd"):
        markers = clips[name].warp_markers
        assert markers[-1].beats - markers[-2].beats == pytest.approx(1 / 32)


def test_apache_bar_lines_and_frame_count(clips: dict[str, AsdClip]) -> None:
    import soundfile as sf

    clip = clips["apache_live10_loop_on.asd"]
    info = sf.info(str(FIXTURES / "apache.wav"))
    exp = EXPECTED["apache_live10_loop_on.asd"]["audio_check"]
    assert (info.frames, info.samplerate, info.channels) == (
        exp["frames"],
        exp["rate"],
        exp["channels"],
    )
    check_frame_count(clip, info.frames)

    want = [t for _, t in EXPECTED["apache_live10_loop_on.asd"]["bar_lines_sec"]]
    assert want == pytest.approx([0.0, 2.059807, 4.119615], abs=1e-6)
    bars = bar_start_seconds(clip, 3)
    np.testing.assert_allclose(bars, want, atol=1e-3)
    np.testing.assert_allclose(bars, [0.0, 2.059807, 4.119615], atol=1e-6)
    # every bar line inside the audio: exactly 2 bars of 4/4, the 3rd line at the very end
    until = bar_start_seconds(clip, until_seconds=info.frames / info.samplerate)
    np.testing.assert_allclose(until, want, atol=1e-3)


def test_bar_lines_extrapolate_before_first_marker(clips: dict[str, AsdClip]) -> None:
    clip = clips["dawdreamer_disco_drums.wav.asd"]  # first marker at 0.267 s, 110 BPM
    bars = bar_start_seconds(clip, 2)
    spb = 60.0 / 110.0
    np.testing.assert_allclose(bars, [0.26702947845804986, 0.26702947845804986 + 4 * spb])
    inside = bar_start_seconds(clip, until_seconds=10.0)
    assert inside[0] == pytest.approx(0.26702947845804986)  # bar -1 would be before 0 s
    assert np.all(np.diff(inside) == pytest.approx(4 * spb))
    assert inside[-1] <= 10.0 < inside[-1] + 4 * spb
    with pytest.raises(TypeError):
        bar_start_seconds(clip)


def test_wrong_frame_count_is_rejected(clips: dict[str, AsdClip]) -> None:
    clip = clips["apache_live10_loop_on.asd"]
    with pytest.raises(AsdError, match="belongs to different audio") as ei:
        check_frame_count(clip, 181676)
    msg = str(ei.value)
    assert "apache_live10_loop_on.asd" in msg
    assert "181675" in msg and "181676" in msg


def test_no_markers_gives_no_warp_points(clips: dict[str, AsdClip]) -> None:
    for name in ("producerpal_sample_mono.aiff.asd", "abletoolz_pine-021.wav.asd"):
        with pytest.raises(AsdError, match="no warp grid") as ei:
            warp_points(clips[name])
        assert name in str(ei.value)


def test_appledouble_stub(tmp_path: Path) -> None:
    stub = tmp_path / "._x.wav.asd"
    stub.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(40))
    with pytest.raises(AppleDoubleStub, match="AppleDouble") as ei:
        read_asd(stub)
    assert "._x.wav.asd" in str(ei.value)
    assert isinstance(ei.value, AsdError)
    # by magic alone, whatever the name
    with pytest.raises(AppleDoubleStub):
        parse_asd(stub.read_bytes(), "x.wav.asd")
    # by name alone, whatever the content
    real = (FIXTURES / "chasedurand_freeze_snare.wav.asd").read_bytes()
    named = tmp_path / "._snare.wav.asd"
    named.write_bytes(real)
    with pytest.raises(AppleDoubleStub):
        read_asd(named)


def test_big_endian_is_refused() -> None:
    data = bytearray((FIXTURES / "chasedurand_freeze_snare.wav.asd").read_bytes())
    data[1] = ord("M")
    with pytest.raises(AsdError, match="big-endian") as ei:
        parse_asd(bytes(data), "old.aif.asd")
    assert str(ei.value).startswith("old.aif.asd: ")


def test_error_message_names_file_and_reason() -> None:
    data = (FIXTURES / "apache_live10_loop_on.asd").read_bytes()
    cut = data.rindex(b"\x00\x0aWarpMarker") + 8  # inside the second marker record
    with pytest.raises(AsdError) as ei:
        parse_asd(data[:cut], "song.wav.asd")
    msg = str(ei.value)
    assert msg.startswith("song.wav.asd: truncated at byte ")
    assert "WarpMarkers" in msg
    assert ei.value.path == "song.wav.asd"
    again = pickle.loads(pickle.dumps(ei.value))
    assert str(again) == msg


def test_validate_markers_rejects_bad_sequences(clips: dict[str, AsdClip]) -> None:
    import dataclasses

    clip = clips["apache_live10_loop_on.asd"]
    bad = [
        (WarpMarker(0, 0.0, 0.0), WarpMarker(1, float("nan"), 1.0)),
        (WarpMarker(0, -0.5, 0.0), WarpMarker(1, 1.0, 1.0)),
        (WarpMarker(0, 1.0, 0.0), WarpMarker(1, 1.0, 1.0)),
        (WarpMarker(0, 0.0, 1.0), WarpMarker(1, 1.0, 1.0)),
        (WarpMarker(0, 0.0, 0.0), WarpMarker(1, 1.0, float("inf"))),
    ]
    for markers in bad:
        with pytest.raises(AsdError, match=r"apache_live10_loop_on\.asd"):
            validate_markers(dataclasses.replace(clip, warp_markers=markers))


def test_scan_disagreement_is_an_error() -> None:
    # Hide a plausible fake marker record inside waveform-overview data: the scan sees it,
    # the schema walk reads those bytes as overview values.
    data = bytearray((FIXTURES / "chasedurand_freeze_snare.wav.asd").read_bytes())
    fake = b"\x00\x0aWarpMarker" + struct.pack("<Idd", 9, 10.0, 20.0)
    # overwrite the start of the first overview level's bin data (u16 values, any bytes valid)
    at = data.index(b"\x00\x13SampleOverViewLevel", 3000) + 2 + 0x13 + 4 + 4 + 8
    data[at : at + len(fake)] = fake
    with pytest.raises(AsdError, match="cross-check"):
        parse_asd(bytes(data), "x.asd")
