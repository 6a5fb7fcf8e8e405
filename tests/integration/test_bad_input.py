"""Bad recordings are rejected with a reason while the run goes on; bad params fail fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.audio.io import write_audio
from pipeline.data.synth import SynthTrackSpec, render_track
from tests.conftest import run, tiny_params, write_params

pytestmark = pytest.mark.integration


def test_corrupt_empty_and_silent_files_are_rejected_and_the_rest_continues(tiny_project):
    root = tiny_project
    corpus = root / "data/raw/mine"
    for i, style in enumerate(["techno", "house"]):
        audio, _, _ = render_track(SynthTrackSpec(style=style, bpm=124, n_bars=5, seed=i), 22050)
        write_audio(corpus / style / f"{style}.wav", audio, 22050)
    (corpus / "techno/broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(200)))
    (corpus / "house/empty.wav").write_bytes(b"")
    write_audio(corpus / "house/silence.wav", np.zeros((2, 22050 * 4), np.float32), 22050)
    params = tiny_params()
    params["data"]["audio_dir"] = "data/raw/mine"
    write_params(root, params)

    result = run(["dvc", "repro", "split"], root)
    assert "Running stage 'synth'" not in result.stdout  # own recordings: no demo corpus

    tracks = pd.read_csv(root / "data/interim/analysis/tracks.csv", keep_default_na=False)
    reasons = dict(zip(tracks.path, tracks.reason, strict=True))
    status = dict(zip(tracks.path, tracks.status, strict=True))
    assert status["techno/broken.wav"] == "rejected"
    assert "unreadable audio" in reasons["techno/broken.wav"]
    assert status["house/empty.wav"] == "rejected"
    assert "empty file" in reasons["house/empty.wav"]
    assert status["house/silence.wav"] == "rejected"
    assert "silent" in reasons["house/silence.wav"]
    assert status["techno/techno.wav"] == status["house/house.wav"] == "ok"

    bars = pd.read_csv(root / "data/bars/bars.csv")
    assert set(bars.path) == {"techno/techno.wav", "house/house.wav"}
    rejects = pd.read_csv(root / "data/bars/rejects.csv")
    assert {"techno/broken.wav", "house/empty.wav", "house/silence.wav"} <= set(rejects.path)
    assert (root / "data/splits/train.npz").is_file()


def test_invalid_param_fails_fast_naming_the_key(tiny_project):
    params = tiny_params()
    params["train"]["lr_g"] = -1
    write_params(tiny_project, params)
    dvc = run(["dvc", "repro"], tiny_project, check=False)
    assert dvc.returncode != 0
    assert "train.lr_g" in dvc.stdout + dvc.stderr
    assert not (tiny_project / "data/raw/demo").exists()  # failed before writing anything

    smk = run(["snakemake", "--cores", "1", "train"], tiny_project, check=False)
    assert smk.returncode != 0
    assert "train.lr_g" in smk.stdout + smk.stderr


def test_unknown_param_key_is_named(tiny_project):
    params = tiny_params()
    params["bars"]["sample_rte"] = 16000
    write_params(tiny_project, params)
    result = run(
        ["python", "-m", "pipeline.stages.synth", "--out-dir", "x"], tiny_project, check=False
    )
    assert result.returncode == 2
    assert "bars: unknown key" in result.stderr and "sample_rte" in result.stderr
