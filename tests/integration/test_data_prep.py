"""analyze + bars on odd real-world inputs, with real madmom and Rubber Band, then incremental."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from pipeline.audio.resample import resample
from pipeline.data.synth import SynthTrackSpec, render_track
from pipeline.grid import BarGrid
from tests.conftest import run, tiny_params, write_params

pytestmark = pytest.mark.integration
SR = 44100


def add_track(corpus, name, spec, sample_rate=SR, channels=2, subtype=None):
    """Render a synthetic track, convert rate/channels, write it; returns its true downbeats."""
    audio, downbeats, _ = render_track(spec, SR)
    audio = resample(audio, SR, sample_rate)
    if channels == 1:
        audio = audio.mean(axis=0, keepdims=True)
    elif channels > 2:
        audio = np.concatenate([audio] * (channels // 2))[:channels] * 0.5
    path = corpus / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, sample_rate, subtype=subtype)
    return downbeats


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    corpus = root / "audio"
    truth = {
        "techno/plain.wav": add_track(corpus, "techno/plain.wav", SynthTrackSpec("techno", 128, 6)),
        "house/lossless.flac": add_track(
            corpus, "house/lossless.flac", SynthTrackSpec("house", 122, 6, seed=1)
        ),
        "house/vorbis.ogg": add_track(
            corpus, "house/vorbis.ogg", SynthTrackSpec("house", 124, 6, seed=2)
        ),
        "breakbeat/lossy.mp3": add_track(
            corpus,
            "breakbeat/lossy.mp3",
            SynthTrackSpec("breakbeat", 132, 6, seed=3),
            subtype="MPEG_LAYER_III",
        ),
        "metal/apple.aiff": add_track(
            corpus, "metal/apple.aiff", SynthTrackSpec("metal", 140, 6, seed=4)
        ),
        "techno/low_rate_mono.wav": add_track(
            corpus, "techno/low_rate_mono.wav", SynthTrackSpec("techno", 126, 6, seed=5), 8000, 1
        ),
        "house/hi_rate_6ch.wav": add_track(
            corpus, "house/hi_rate_6ch.wav", SynthTrackSpec("house", 120, 6, seed=6), 96000, 6
        ),
        "techno/waltz.wav": add_track(
            corpus, "techno/waltz.wav", SynthTrackSpec("techno", 130, 8, beats_per_bar=3, seed=7)
        ),
        "breakbeat/speeding_up.wav": add_track(
            corpus,
            "breakbeat/speeding_up.wav",
            SynthTrackSpec("breakbeat", 112, 10, bpm_end=136, seed=8),
        ),
    }
    (corpus / "techno/corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x07" * 64)
    (corpus / "techno/empty.flac").write_bytes(b"")
    sf.write(corpus / "house/silence.wav", np.zeros((SR * 6, 2)), SR)

    params = tiny_params()
    params["analyze"]["jobs"] = 2
    params["bars"]["jobs"] = 2
    write_params(root, params)
    prep = lambda: prepare(root)  # noqa: E731
    return root, corpus, truth, prep, prep()


def prepare(root):
    analyze = run(
        [
            "python",
            "-m",
            "pipeline.stages.analyze",
            "--params",
            "params.yaml",
            "--audio-dir",
            "audio",
            "--out-dir",
            "analysis",
            "--cache-dir",
            "cache",
        ],
        root,
    )
    bars = run(
        [
            "python",
            "-m",
            "pipeline.stages.bars",
            "--params",
            "params.yaml",
            "--audio-dir",
            "audio",
            "--analysis-dir",
            "analysis",
            "--out-dir",
            "bars",
            "--cache-dir",
            "cache",
        ],
        root,
    )
    tracks = pd.read_csv(root / "analysis/tracks.csv", keep_default_na=False)
    manifest = pd.read_csv(root / "bars/bars.csv")
    rejects = pd.read_csv(root / "bars/rejects.csv", keep_default_na=False)
    return tracks, manifest, rejects, analyze.stderr + bars.stderr


def test_every_container_rate_and_layout_gives_bars_on_the_downbeats(prepared):
    root, _, truth, _, (tracks, manifest, _, _) = prepared
    for path in [
        "techno/plain.wav",
        "house/lossless.flac",
        "house/vorbis.ogg",
        "breakbeat/lossy.mp3",
        "metal/apple.aiff",
        "techno/low_rate_mono.wav",
        "house/hi_rate_6ch.wav",
    ]:
        rows = manifest[manifest.path == path]
        assert len(rows) >= 4, f"{path}: only {len(rows)} bars"
        error = np.abs(rows.start_s.to_numpy()[:, None] - truth[path][None, :]).min(axis=1)
        assert np.median(error) < 0.010, f"{path}: bar starts off by {error}"
    assert BarGrid.read(root / "bars/grid.json").bar_samples == 16000
    by_path = tracks.set_index("path")
    assert float(by_path.loc["house/hi_rate_6ch.wav", "channels"]) == 6
    assert float(by_path.loc["house/hi_rate_6ch.wav", "sample_rate"]) == 96000
    assert float(by_path.loc["techno/low_rate_mono.wav", "sample_rate"]) == 8000


def test_tempo_change_midway_keeps_bars_on_downbeats(prepared):
    _, _, truth, _, (_, manifest, _, _) = prepared
    rows = manifest[manifest.path == "breakbeat/speeding_up.wav"]
    assert len(rows) >= 6
    error = np.abs(rows.start_s.to_numpy()[:, None] - truth["breakbeat/speeding_up.wav"]).min(1)
    assert error.max() < 0.020
    assert rows.local_bpm.iloc[-1] > rows.local_bpm.iloc[0] + 10  # the tempo really rose


def test_three_four_piece_is_found_and_rejected_against_a_four_four_grid(prepared):
    _, _, _, _, (tracks, _, rejects, _) = prepared
    waltz = tracks.set_index("path").loc["techno/waltz.wav"]
    assert waltz.status == "ok" and float(waltz.meter) == 3
    reasons = rejects[rejects.path == "techno/waltz.wav"].reason.tolist()
    assert reasons == ["track has 3 beats per bar, target grid has 4"]


def test_bad_files_are_rejected_with_reasons(prepared):
    _, _, _, _, (tracks, _, rejects, _) = prepared
    reason = tracks.set_index("path").reason
    assert "unreadable audio" in reason["techno/corrupt.wav"]
    assert "empty file" in reason["techno/empty.flac"]
    assert "silent" in reason["house/silence.wav"]
    assert {"techno/corrupt.wav", "techno/empty.flac", "house/silence.wav"} <= set(rejects.path)


def test_adding_a_recording_processes_only_that_recording(prepared):
    _, corpus, _, prep, _ = prepared
    add_track(corpus, "metal/new.wav", SynthTrackSpec("metal", 150, 5, seed=9))
    tracks, manifest, _, log = prep()
    # every other recording came from the cache (tracks.csv does not say: it is the same
    # bytes however the results were found)
    assert f"analyzed {len(tracks)} tracks ({len(tracks) - 1} from cache" in log
    assert "cached" not in tracks.columns
    assert "metal/new.wav" in set(manifest.path)
