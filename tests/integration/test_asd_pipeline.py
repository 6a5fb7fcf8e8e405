""".asd warp markers as the timing source, end to end, with real madmom and Rubber Band.

Fixtures are read from ``ASD_FIXTURES`` and copied into ``tmp_path`` beside audio; never into
the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from pipeline.audio.analysis import AnalyzeOptions, analyze_track
from pipeline.audio.io import read_audio
from pipeline.audio.render import BarFilters, BarGrid, render_bars
from pipeline.audio.resample import resample
from tests.conftest import ASD_FIXTURES, REPO, requires_asd_fixtures, run

pytestmark = [pytest.mark.integration, requires_asd_fixtures]

APACHE_BPM = 116.515756  # from the fixture's markers (PROVENANCE.md)
APACHE_BARS = [0.0, 2.059807, 4.119615]
APACHE_FRAMES = 181_675
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + b"\x00\x00"


def apache(folder: Path, name: str = "apache.wav", asd: str | None = "apache.wav.asd") -> Path:
    """apache.wav copied into ``folder`` as ``name``, with the loop-on .asd beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = shutil.copyfile(ASD_FIXTURES / "apache.wav", folder / name)
    if asd:
        shutil.copyfile(ASD_FIXTURES / "apache_live10_loop_on.asd", folder / asd)
    return Path(audio)


def truncated_apache(folder: Path, name: str, frames_less: int = 1000) -> Path:
    """apache.wav shortened by ``frames_less`` frames: different audio, same .asd beside it."""
    data, sr = sf.read(ASD_FIXTURES / "apache.wav", dtype="int16", always_2d=True)
    path = folder / name
    sf.write(path, data[:-frames_less], sr, subtype="PCM_16")
    shutil.copyfile(ASD_FIXTURES / "apache_live10_loop_on.asd", folder / f"{name}.asd")
    return path


def attack_ms(x: np.ndarray, at_s: float, sr: int) -> float:
    """Where the first hit near ``at_s`` starts, in ms from ``at_s``: the first 2 ms frame in
    [-10, +100] ms that comes within 6 dB of the loudest frame there, after a rise of >= 12 dB.
    The signal is padded with silence in front (the recording starts there)."""
    frame = sr // 500
    padded = np.concatenate([np.zeros(sr, np.float32), x])
    n = len(padded) // frame
    db = 10 * np.log10(np.mean(padded[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-10)
    start = round((at_s + 1.0) * sr) // frame
    window = db[start - 5 : start + 50]
    first = int(np.argmax(window >= window.max() - 6))
    assert window[first] - window[: first + 1].min() >= 12, "no clear attack near the bar line"
    return (first - 5) * 2.0


def test_apache_asd_markers_give_the_bars_and_render_onto_the_grid(tmp_path):
    path = apache(tmp_path)
    warp, info = analyze_track(path, AnalyzeOptions())
    assert info["method"] == "asd"
    assert info["asd_path"] == str(tmp_path / "apache.wav.asd")
    assert info["fallback_reason"] == ""
    assert info["bpm"] == pytest.approx(APACHE_BPM, rel=1e-6)
    bar_lines = warp.bar_starts(info["duration"])
    np.testing.assert_allclose(bar_lines, APACHE_BARS, atol=1e-3)

    audio, sr = read_audio(path)
    grid = BarGrid(sample_rate=8000, bpm=120, beats_per_bar=4, channels=1)
    rendered = render_bars(audio, sr, warp, grid, BarFilters(normalize_dbfs=None))
    assert grid.bar_samples == 8000 * 60 // 120 * 4
    assert rendered.bars.shape == (2, 1, grid.bar_samples)
    assert [row["bar_index"] for row in rendered.rows] == [0, 1]
    for row in rendered.rows:
        assert row["stretch"] == pytest.approx(APACHE_BPM / 120, rel=1e-4)
        assert row["local_bpm"] == pytest.approx(APACHE_BPM, rel=1e-6)

    # The downbeat hit of each bar sits at the bar's first samples. Apache's second downbeat is
    # played ~30 ms behind the constant-tempo grid; Rubber Band adds up to ~16 ms of drift
    # between its keyframes (measured on clicks). So: within 60 ms of the bar start (under a
    # 32nd note at 120 BPM), and where the source's own attack lands after stretching.
    source = resample(audio.mean(axis=0, keepdims=True), sr, grid.sample_rate)[0]
    out = rendered.bars[:, 0, :].reshape(-1)
    for k, row in enumerate(rendered.rows):
        rendered_ms = attack_ms(out, k * grid.bar_seconds, grid.sample_rate)
        source_ms = attack_ms(source, row["start_s"], grid.sample_rate)
        assert -5.0 <= rendered_ms <= 60.0, (k, rendered_ms)
        assert rendered_ms == pytest.approx(source_ms * row["stretch"], abs=25.0), (k, source_ms)


def test_asd_of_other_audio_is_not_trusted(tmp_path):
    path = truncated_apache(tmp_path, "apache.wav")
    _, info = analyze_track(path, AnalyzeOptions())
    assert info["method"] == "madmom"
    assert info["asd_path"] == str(tmp_path / "apache.wav.asd")
    reason = info["fallback_reason"]
    assert "apache.wav.asd not used: belongs to different audio" in reason
    assert f"{APACHE_FRAMES} frames" in reason and f"{APACHE_FRAMES - 1000}" in reason


@pytest.mark.parametrize(
    ("fixture", "asd_name"),
    [
        ("producerpal_sample_mono.aiff.asd", "apache.wav.asd"),
        ("abletoolz_pine-021.wav.asd", "apache.asd"),  # song.asd beside song.wav also occurs
    ],
)
def test_asd_without_markers_falls_back_to_beat_tracking(tmp_path, fixture, asd_name):
    path = apache(tmp_path, asd=None)
    shutil.copyfile(ASD_FIXTURES / fixture, tmp_path / asd_name)
    _, info = analyze_track(path, AnalyzeOptions())
    assert info["method"] == "madmom"
    assert info["asd_path"] == str(tmp_path / asd_name)
    assert info["fallback_reason"] == f"{asd_name} not used: no warp markers (saved flag 0)"


@pytest.mark.parametrize("stub_name", ["._apache.wav.asd", "apache.wav.asd"])
def test_appledouble_stub_is_skipped(tmp_path, stub_name):
    """A ``._`` stub beside the audio, or a candidate .asd that is one (magic 00 05 16 07)."""
    path = apache(tmp_path, asd=None)
    (tmp_path / stub_name).write_bytes(APPLEDOUBLE)
    _, info = analyze_track(path, AnalyzeOptions())
    assert info["method"] == "madmom"
    assert info["asd_path"] == str(tmp_path / stub_name)
    assert info["fallback_reason"] == (
        f"{stub_name} skipped: macOS AppleDouble stub, not Ableton analysis"
    )


def test_real_stub_does_not_hide_the_real_asd(tmp_path):
    path = apache(tmp_path)
    (tmp_path / "._apache.wav.asd").write_bytes(APPLEDOUBLE)
    _, info = analyze_track(path, AnalyzeOptions())
    assert (info["method"], info["fallback_reason"]) == ("asd", "")


def test_analyze_stage_records_the_timing_source_of_every_track(tmp_path):
    audio_dir = tmp_path / "audio"
    apache(audio_dir / "asd")  # label "asd": markers used
    truncated_apache(audio_dir, "mismatch.wav")
    apache(audio_dir, "nomarkers.wav", asd=None)
    shutil.copyfile(ASD_FIXTURES / "producerpal_sample_mono.aiff.asd", audio_dir / "nomarkers.asd")
    apache(audio_dir, "stub.wav", asd=None)
    (audio_dir / "._stub.wav.asd").write_bytes(APPLEDOUBLE)
    apache(audio_dir, "corrupt.wav", asd=None)
    asd_bytes = (ASD_FIXTURES / "apache_live10_loop_on.asd").read_bytes()
    (audio_dir / "corrupt.wav.asd").write_bytes(asd_bytes[:4000])
    apache(audio_dir, "plain.wav", asd=None)

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["analyze"]["jobs"] = 1
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    out_dir = tmp_path / "analysis"
    cmd = ["python", "-m", "pipeline.stages.analyze", "--params", str(params_file)]
    done = run([*cmd, "--audio-dir", str(audio_dir), "--out-dir", str(out_dir)], REPO)

    tracks = pd.read_csv(out_dir / "tracks.csv", keep_default_na=False).set_index("path")
    assert (tracks.status == "ok").all(), tracks.reason.to_dict()
    got = tracks[["method", "asd_path", "fallback_reason"]].to_dict("index")
    assert got["asd/apache.wav"] == {
        "method": "asd",
        "asd_path": "asd/apache.wav.asd",
        "fallback_reason": "",
    }
    assert got["plain.wav"] == {"method": "madmom", "asd_path": "", "fallback_reason": ""}
    expected = {
        "mismatch.wav": ("mismatch.wav.asd", "mismatch.wav.asd not used: belongs to different"),
        "nomarkers.wav": ("nomarkers.asd", "nomarkers.asd not used: no warp markers"),
        "stub.wav": ("._stub.wav.asd", "._stub.wav.asd skipped: macOS AppleDouble stub"),
        "corrupt.wav": ("corrupt.wav.asd", "corrupt.wav.asd not used: truncated"),
    }
    for track, (asd_path, reason) in expected.items():
        row = got[track]
        assert (row["method"], row["asd_path"]) == ("madmom", asd_path), track
        assert row["fallback_reason"].startswith(reason), row
        assert f"WARNING bargan: {track}: {row['fallback_reason']}; used madmom" in done.stderr
    assert "frames" in got["mismatch.wav"]["fallback_reason"]
    assert tracks.loc["asd/apache.wav", "bpm"] == pytest.approx(APACHE_BPM, rel=1e-6)
