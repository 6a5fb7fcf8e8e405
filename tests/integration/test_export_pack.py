"""``bargan export``: a sample pack whose WAVs carry the tempo, beats and loop points the grid
implies (read back with an independent RIFF reader and decoded by sox), a metadata table with
each bar's distance to the training set, one zip; and one-line errors for bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.audio.io import read_audio
from pipeline.cli import main
from pipeline.grid import BarGrid, bar_samples_at
from pipeline.models.generator_file import build_generator, read_generator, save_generator
from pipeline.sample.generate import random_bars
from pipeline.train import TrainConfig
from tests.wav_tags import read_wav_tags

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("single_torch_thread")]

SR, BPM, BEATS = 8000, 240.0, 4  # 1 s bars of 8000 samples
CLASSES = ["house", "techno"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """data/models/generator.pt (conditional, 2 classes, with its grid) and
    data/splits/train.npz whose first bar IS the generator's house bar of seed 1."""
    root = tmp_path_factory.mktemp("project")
    config = TrainConfig(sample_rate=SR, length=8000, latent_dim=8, model_dim=4, num_classes=2)
    grid = BarGrid(SR, BPM, BEATS, 1)
    assert grid.bar_samples == config.length
    torch.manual_seed(0)
    checkpoint = save_generator(
        root / "data" / "models" / "generator.pt", build_generator(config), config,
        {**grid.timing(), "classes": CLASSES},
    )  # fmt: skip
    generator, _, _ = read_generator(checkpoint)
    copied = random_bars(generator, 1, seed=1, class_index=0)  # house, seed 1
    rng = np.random.default_rng(0)
    others = rng.uniform(-0.3, 0.3, (5, 1, config.length)).astype(np.float32)
    train = np.concatenate([copied, others])
    splits = root / "data" / "splits"
    splits.mkdir(parents=True)
    np.savez(
        splits / "train.npz", bars=np.round(train * 32767).astype(np.int16),
        labels=np.zeros(len(train), np.int64), sample_rate=np.int64(SR),
    )  # fmt: skip
    return root


def _export(project: Path, out: Path, *extra: str) -> int:
    checkpoint = project / "data" / "models" / "generator.pt"
    return main(["export", "--checkpoint", str(checkpoint), "--out", str(out), *extra])


def _rows(folder: Path) -> list[dict]:
    with open(folder / "metadata.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_pack_at_44k1_24_bit_has_the_grids_tempo_beats_and_loop_points(project, tmp_path):
    out = tmp_path / "pack.zip"
    args = ["--bars-per-class", "2", "--seed", "1", "--walk-bars", "3"]
    assert _export(project, out, *args, "--rate", "44100", "--bits", "24") == 0
    folder = tmp_path / "pack"
    wavs = sorted(folder.glob("*.wav"))
    assert [p.name for p in wavs] == [
        "house_240bpm_bar_s1.wav", "house_240bpm_bar_s2.wav", "house_240bpm_walk3_s1.wav",
        "techno_240bpm_bar_s1.wav", "techno_240bpm_bar_s2.wav", "techno_240bpm_walk3_s1.wav",
    ]  # fmt: skip
    bar_44k = bar_samples_at(44100, BPM, BEATS)
    assert bar_44k == 44100
    for path in wavs:
        bars = 3 if "walk" in path.name else 1
        tags = read_wav_tags(path)
        assert (tags.sample_rate, tags.bits, tags.channels) == (44100, 24, 1), path.name
        assert tags.frames == bars * bar_44k
        assert tags.acid["tempo"] == BPM and tags.acid["beats"] == bars * BEATS
        assert tags.acid["meter"] == (BEATS, 4)
        assert not tags.acid["one_shot"] and tags.acid["stretch"]
        assert not tags.acid["root_note_set"]
        assert tags.smpl["period_ns"] == round(1e9 / 44100) and tags.smpl["unity_note"] == 60
        assert tags.smpl["loops"] == [
            dict(cue=0, type=0, start=0, end=bars * bar_44k - 1, fraction=0, count=0)
        ]
        # sox decodes every sample, as libsndfile does, and they are not silence
        decoded = subprocess.run(
            ["sox", str(path), "-t", "raw", "-e", "floating-point", "-b", "32", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        samples = np.frombuffer(decoded, dtype="<f4")
        audio, _ = read_audio(path)
        assert samples.shape == (bars * bar_44k,) and np.abs(samples).max() > 1e-3
        np.testing.assert_allclose(samples, audio[0], atol=1e-6)

    # metadata: class, seed, tempo, bars; the bar copied into the training set is found
    rows = {row["file"]: row for row in _rows(folder)}
    house1 = rows["house_240bpm_bar_s1.wav"]
    assert (house1["class"], house1["class_index"], house1["latent_seed"]) == ("house", "0", "1")
    assert float(house1["tempo_bpm"]) == BPM and house1["bars"] == "1" and house1["beats"] == "4"
    assert house1["sample_rate"] == "44100" and house1["bit_depth"] == "24"
    assert float(house1["novelty_score"]) < 1e-3 and house1["near_copy"] == "True"
    assert house1["nearest_train_index"] == "0" and float(house1["nearest_train_db"]) < 0.5
    # Every other bar is far further away (an untrained generator's bars resemble each other,
    # so "far" is relative here, not the 0.1 near-copy line).
    for name in ("house_240bpm_bar_s2.wav", "techno_240bpm_bar_s1.wav", "techno_240bpm_bar_s2.wav"):
        assert float(rows[name]["novelty_score"]) > 100 * float(house1["novelty_score"])
        assert float(rows[name]["nearest_train_db"]) > 10 * float(house1["nearest_train_db"])
    walk = rows["house_240bpm_walk3_s1.wav"]
    assert walk["bars"] == "3" and walk["novelty_score"] == "" and "walk" in walk["note"]

    # one zip holding the same files
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"pack/{p.name}" for p in folder.iterdir())
        assert archive.read("pack/house_240bpm_bar_s1.wav") == wavs[0].read_bytes()


def test_a_pack_bar_is_the_bar_generate_makes_from_its_seed_made_to_loop(project, tmp_path):
    assert _export(project, tmp_path / "p.zip", "--bars-per-class", "3", "--class", "techno") == 0
    row = next(r for r in _rows(tmp_path / "p") if r["latent_seed"] == "2")
    assert row["class"] == "techno" and row["sample_rate"] == str(SR)
    packed, _ = read_audio(tmp_path / "p" / row["file"])
    checkpoint = project / "data" / "models" / "generator.pt"
    generated = tmp_path / "g.wav"
    argv = ["generate", "--checkpoint", str(checkpoint), "--out", str(generated), "--bars", "1"]
    assert main([*argv, "--seed", "2", "--class", "techno"]) == 0
    single, _ = read_audio(generated)
    fade = round(SR * 0.005)
    assert packed.shape == single.shape == (1, 8000)
    np.testing.assert_array_equal(packed[:, fade:], single[:, fade:])  # the same bar ...
    assert not np.array_equal(packed[:, :fade], single[:, :fade])  # ... with its wrap crossfaded
    # The wrap (last sample -> first) of the pack's bar is no bigger a step than the bar's
    # own sample-to-sample steps; the plain bar's wrap is an arbitrary jump.
    steps = np.abs(np.diff(single[0]))
    assert abs(packed[0, 0] - packed[0, -1]) <= np.quantile(steps, 0.99)


def test_without_training_bars_the_distances_are_empty_and_say_why(project, tmp_path):
    lone = tmp_path / "lone" / "generator.pt"  # no data/splits beside it
    lone.parent.mkdir()
    shutil.copy(project / "data" / "models" / "generator.pt", lone)
    out = tmp_path / "p.zip"
    assert (
        main(["export", "--checkpoint", str(lone), "--out", str(out), "--bars-per-class", "1"]) == 0
    )
    rows = _rows(tmp_path / "p")
    assert len(rows) == 2 and {r["class"] for r in rows} == set(CLASSES)
    for row in rows:
        assert row["nearest_train_db"] == row["novelty_score"] == row["near_copy"] == ""
        assert row["note"] == "no training bars given (pass --train-bars data/splits/train.npz)"


def test_export_errors_are_one_line_naming_the_value(project, tmp_path, capsys):
    def error(*args: str, out: str = "p.zip") -> str:
        assert _export(project, tmp_path / out, *args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("bargan export: error: "), err
        return err

    assert "--class 'jazz': unknown class; known: house, techno" in error("--class", "jazz")
    assert "--class 5: the generator has classes 0 to 1" in error("--class", "5")
    assert "--rate 22050: choose 'model' or one of 8000, 44100, 48000 Hz" in error(
        "--rate", "22050"
    )
    assert "--rate fast" in error("--rate", "fast")
    assert "--bits 20: 16 or 24 bits are written" in error("--bits", "20")
    assert "--bars-per-class must be at least 1" in error("--bars-per-class", "0")
    assert "name it *.zip" in error(out="p.tar")
    missing = tmp_path / "nope.npz"
    assert f"--train-bars {missing}: file not found" in error("--train-bars", str(missing))
    short = tmp_path / "short.npz"
    np.savez(short, bars=np.zeros((2, 1, 100), np.int16), labels=np.zeros(2), sample_rate=SR)
    assert f"{short}: 2 bars of 100 samples" in error("--train-bars", str(short))
    checkpoint = tmp_path / "damaged.pt"
    checkpoint.write_bytes((project / "data" / "models" / "generator.pt").read_bytes()[:1500])
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "x.zip")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{checkpoint} is not a bargan generator file" in err
    absent = tmp_path / "absent.pt"
    assert main(["export", "--checkpoint", str(absent), "--out", str(tmp_path / "x.zip")]) == 2
    assert f"checkpoint {absent} not found" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.zip"))


def test_generate_tags_its_track_at_the_new_tempo(project, tmp_path):
    out = tmp_path / "track.wav"
    checkpoint = project / "data" / "models" / "generator.pt"
    argv = ["generate", "--checkpoint", str(checkpoint), "--out", str(out), "--bars", "3"]
    assert main([*argv, "--bpm", "200", "--class", "house"]) == 0
    tags = read_wav_tags(out)
    bar = bar_samples_at(SR, 200, BEATS)
    assert tags.frames == 3 * bar and tags.acid["tempo"] == 200.0 and tags.acid["beats"] == 12
    assert tags.smpl["loops"][0]["end"] == 3 * bar - 1
    assert json.dumps(tags.acid)  # plain values
