"""analyze.method clip: data without bars (SC09's one-second digits) becomes one example per file,
cut as WaveGAN's loader cut it (first 16384 samples, zero-padded), through the real stages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from pipeline.audio.clips import render_clip
from pipeline.audio.render import BarFilters
from pipeline.audio.resample import resample
from pipeline.grid import BarGrid
from tests.conftest import run, tiny_params, write_params

pytestmark = pytest.mark.integration


def stage(name: str, *args: str) -> list[str]:
    return ["python", "-m", f"pipeline.stages.{name}", "--params", "params.yaml", *args]


ANALYZE = stage("analyze", "--audio-dir", "audio", "--out-dir", "analysis", "--cache-dir", "cache")
BARS = stage(
    "bars", "--audio-dir", "audio", "--analysis-dir", "analysis", "--out-dir", "bars",
    "--cache-dir", "cache",
)  # fmt: skip
SPLIT = stage("split", "--bars-dir", "bars", "--out-dir", "splits")


def spoken_like(seconds: float, pitch: float, sample_rate: int, seed: int) -> np.ndarray:
    """A voiced burst: a harmonic tone under a smooth envelope, with a little breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    envelope = np.sin(np.pi * np.clip((t - 0.1) / (seconds - 0.2), 0, 1)) ** 2
    voice = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    return (0.3 * envelope * voice + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def clip_params() -> dict:
    params = tiny_params()
    params["analyze"]["method"] = "clip"
    params["bars"].update(
        sample_rate=16000, bpm=117.1875, beats_per_bar=2, channels=1, normalize_dbfs=None
    )
    return params


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    audio = root / "audio"
    for label in ("zero", "one"):
        (audio / label).mkdir(parents=True)
    sources = {
        "zero/a.wav": (spoken_like(1.0, 140, 16000, 0), 16000),
        "zero/b.wav": (spoken_like(1.0, 150, 16000, 1), 16000),
        "one/long.wav": (spoken_like(1.5, 220, 16000, 2), 16000),  # cropped to 16384
        "one/stereo_8k.wav": (np.stack([spoken_like(1.0, 230, 8000, 3)] * 2), 8000),
    }
    for name, (signal, rate) in sources.items():
        sf.write(audio / name, np.atleast_2d(signal).T, rate)
    sf.write(audio / "zero/silent.wav", np.zeros(16000, np.float32), 16000)
    (audio / "one/corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x07" * 64)

    write_params(root, clip_params())
    run(ANALYZE, root)
    run(BARS, root)
    return root, sources


def kept_clip(root, path: str) -> np.ndarray:
    manifest = pd.read_csv(root / "bars/bars.csv")
    row = manifest[manifest.path == path].iloc[0]
    with np.load(root / "bars" / row.bars_file) as packed:
        return packed["bars"][row.row_in_file, 0].astype(np.float64) / 32767


def test_every_readable_file_is_one_example_and_nothing_is_tracked(clips):
    root, sources = clips
    tracks = pd.read_csv(root / "analysis/tracks.csv", keep_default_na=False)
    ok = tracks[tracks.status == "ok"]
    assert sorted(ok.path) == sorted(sources)
    assert set(ok.method) == {"clip"}
    assert not list((root / "analysis/warp").glob("*.json"))  # no bar grid was invented
    manifest = pd.read_csv(root / "bars/bars.csv")
    assert sorted(manifest.path) == sorted(sources)
    assert manifest.groupby("path").size().eq(1).all()
    assert dict(zip(manifest.path, manifest.label, strict=True))["one/long.wav"] == "one"


def test_short_clips_are_zero_padded_and_long_ones_cropped_like_wavegans_loader(clips):
    root, sources = clips
    manifest = pd.read_csv(root / "bars/bars.csv").set_index("path")
    for name in ("zero/a.wav", "one/long.wav"):
        signal = sources[name][0]
        clip = kept_clip(root, name)
        assert clip.shape == (16384,)
        kept = min(len(signal), 16384)
        np.testing.assert_allclose(clip[:kept], signal[:kept], atol=1.5 / 32767)
        assert np.all(clip[kept:] == 0)
        assert manifest.loc[name, "padded_s"] == pytest.approx((16384 - kept) / 16000)
    stereo = kept_clip(root, "one/stereo_8k.wav")
    expected = resample(sources["one/stereo_8k.wav"][0][:1], 8000, 16000)[0]
    np.testing.assert_allclose(stereo[:16000], expected, atol=4 / 32767)  # two 16-bit roundings


def test_silent_and_corrupt_files_are_rejected_with_reasons(clips):
    root, _ = clips
    rejects = pd.read_csv(root / "bars/rejects.csv", keep_default_na=False).set_index("path")
    assert "silent" in rejects.loc["zero/silent.wav", "reason"]
    assert "unreadable" in rejects.loc["one/corrupt.wav", "reason"]


def test_a_rerun_reuses_every_cached_clip(clips):
    root, _ = clips
    assert "(4 tracks from cache" in run(BARS, root).stderr


def test_a_clip_too_quiet_or_clipped_is_rejected_and_loudness_is_normalised():
    grid = BarGrid(8000, 120, 2, 2)
    filters = BarFilters(silence_dbfs=-40, normalize_dbfs=-20)
    quiet = render_clip(np.full((1, 4000), 1e-3, np.float32), 8000, grid, filters)
    assert quiet.bars.shape == (0, 2, 8000) and "silent" in quiet.rejects[0]["reason"]
    clipped = render_clip(np.ones((1, 4000), np.float32), 8000, grid, filters)
    assert "clipping" in clipped.rejects[0]["reason"]
    tone = 0.05 * np.sin(np.linspace(0, 400 * np.pi, 8000, dtype=np.float32))[None]
    kept = render_clip(tone, 8000, grid, filters)
    assert kept.bars.shape == (1, 2, 8000)
    rms_db = 20 * np.log10(np.sqrt(np.mean(np.square(kept.bars, dtype=np.float64))))
    assert rms_db == pytest.approx(-20, abs=0.01)
    assert kept.rows[0]["padded_s"] == 0.0


def test_split_follows_the_published_split_and_refuses_recordings_without_one(clips):
    root, sources = clips
    params = clip_params()
    params["split"]["method"] = "published"
    write_params(root, params)
    refused = run(SPLIT, root, check=False)
    assert refused.returncode != 0
    assert "split.method is published, but 4 recordings have no published split" in refused.stderr

    published = {
        "zero/a.wav": "train",
        "one/long.wav": "train",
        "zero/b.wav": "valid",
        "one/stereo_8k.wav": "test",
    }
    assert published.keys() == sources.keys()
    table = pd.DataFrame(sorted(published.items()), columns=["path", "split"])
    table.to_csv(root / "audio/splits.csv", index=False)
    for command in (ANALYZE, BARS, SPLIT):
        run(command, root)
    manifest = pd.read_csv(root / "splits/manifest.csv")
    assert dict(zip(manifest.path, manifest.split, strict=True)) == published
