"""The wavegan preset's data and evaluation settings, end to end on a miniature SC09 made in code:
the Speech Commands layout served from 127.0.0.1, only the digits kept, its validation and
testing lists followed, every clip one 16384-sample example, and the evaluation the preset asks
for (WaveGAN's classifier, no rhythm metrics). Only the training is shrunk."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from pipeline.params import FETCHED_DIR
from pipeline.presets import apply_preset
from tests.conftest import REPO, make_project, run, tiny_params
from tests.http_server import FileServer

pytestmark = pytest.mark.integration

ARCHIVE = "speech_commands_v0.02.tar.gz"
CLIPS_PER_WORD = 10
WORDS = {"zero": 110.0, "one": 190.0, "yes": 150.0}  # "yes" is no digit: left out


def word(pitch: float, seed: int) -> np.ndarray:
    """One second at 16 kHz: a voiced burst whose pitch names the word, at a random onset."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    onset = rng.uniform(0.05, 0.3)
    envelope = np.clip((t - onset) / 0.05, 0, 1) * np.exp(-np.clip(t - onset, 0, None) * 4)
    voice = sum(np.sin(2 * np.pi * pitch * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    return (0.25 * envelope * voice + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def speech_commands_archive(folder: Path) -> bytes:
    """Word folders of 16-bit WAVs plus the two split lists, as the real archive lays them out."""
    listed = {"validation_list.txt": [], "testing_list.txt": []}
    for w, (name, pitch) in enumerate(WORDS.items()):
        (folder / name).mkdir(parents=True)
        for i in range(CLIPS_PER_WORD):
            path = f"{name}/speaker{i}_nohash_0.wav"
            sf.write(folder / path, word(pitch, 100 * w + i), 16000, subtype="PCM_16")
            if i in (0, 1):
                listed["validation_list.txt"].append(path)
            elif i in (2, 3):
                listed["testing_list.txt"].append(path)
    for name, paths in listed.items():
        (folder / name).write_text("\n".join(paths) + "\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as handle:
        for path in sorted(folder.rglob("*")):
            handle.add(path, path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def wavegan_params() -> dict:
    """The wavegan preset as published, with only training (and the classifier) made tiny and
    FAD left out (no VGGish weights offline)."""
    params = apply_preset(tiny_params(), "wavegan")
    params["fetch"].update(dataset="sc09", models=[])
    params["data"]["audio_dir"] = FETCHED_DIR
    params["train"].update(
        model_dim=2, batch_size=4, steps=2, checkpoint_every=1, log_every=1, preview_every=0
    )
    params["evaluate"].update(
        vggish_weights=None,
        metrics=[m for m in params["evaluate"]["metrics"] if m != "fad_vggish"],
        classifier_epochs=8,
        classifier_channels=8,
        inception_splits=2,
        bootstrap=20,
    )
    return params


def test_the_wavegan_preset_runs_on_a_miniature_sc09(tmp_path):
    data = speech_commands_archive(tmp_path / "published")
    root = make_project(tmp_path / "project", wavegan_params())
    sc09 = yaml.safe_load((REPO / "datasets/sc09.yaml").read_text())
    with FileServer() as server:
        server.files[ARCHIVE] = data
        (archive,) = sc09["archives"]
        archive.update(
            urls=[server.url(ARCHIVE)],
            size=len(data),
            checksum={
                "algorithm": "sha256",
                "value": hashlib.sha256(data).hexdigest(),
                "source": "computed by the test",
            },
        )
        (root / "datasets/sc09.yaml").write_text(yaml.safe_dump(sc09))
        run(["dvc", "repro"], root, timeout=900)

    splits = pd.read_csv(root / "data/raw/fetched/splits.csv")
    assert len(splits) == 2 * CLIPS_PER_WORD and not splits.path.str.startswith("yes/").any()
    manifest = pd.read_csv(root / "data/splits/manifest.csv")
    assert set(manifest.method) == {"clip"} and len(manifest) == 2 * CLIPS_PER_WORD
    by_path = dict(zip(manifest.path, manifest.split, strict=True))
    assert by_path["zero/speaker0_nohash_0.wav"] == "valid"
    assert by_path["one/speaker3_nohash_0.wav"] == "test"
    assert sum(split == "train" for split in by_path.values()) == 12
    with np.load(root / "data/splits/train.npz") as train:
        assert train["bars"].shape == (12, 1, 16384)
        assert np.all(train["bars"][:, :, 16000:] == 0)  # 16000 samples, zero-padded

    metrics = json.loads((root / "data/metrics/metrics.json").read_text())
    assert "rhythm" not in metrics and "seam_clicks" not in metrics
    classifier = metrics["classifier"]
    assert "here WaveGAN's classifier (eval/inception/train.py" in classifier["protocol"]
    assert classifier["train.accuracy"] == 1.0  # two pitches are easy to tell apart
    assert classifier["train.inception_score"] > classifier["generated.inception_score"]
    assert classifier["train.inception_score"] > 1.8  # near 2: confident and balanced
    for key in ("train", "valid"):  # the 3 generated clips are too few for 2 splits of 2
        assert f"{key}.inception_score.split_mean" in classifier
    assert (root / "data/report/index.html").is_file()
