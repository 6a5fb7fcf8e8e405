"""The training benchmarks run end to end at toy size (their numbers are for bench runs, not
asserted here): throughput prints a row per mode, the learning check scores the untrained and
the trained generator of every configuration beside the real bars, and the GPU recipe runs in
its toy mode on a CPU without the packages a bare GPU image lacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, run

# What a bare GPU image lacks (bench/compat.py stands in for soundfile and jsonschema).
BARE_IMAGE_MISSING = ("librosa", "soundfile", "jsonschema", "madmom", "pyrubberband", "mlflow")


def bare_image_path(root: Path) -> Path:
    """A folder for PYTHONPATH in which each of BARE_IMAGE_MISSING fails to import."""
    for name in BARE_IMAGE_MISSING:
        package = root / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f"raise ImportError('{name}: not on this image')\n")
    return root


@pytest.fixture(scope="module")
def toy_splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo bars rendered straight onto a toy grid (8 kHz, 3 styles x 2 tracks x 4 bars)."""
    out = tmp_path_factory.mktemp("splits") / "splits"
    run(
        [
            sys.executable,
            str(REPO / "bench/demo_splits.py"),
            "--out-dir",
            str(out),
            "--method",
            "direct",
            "--toy",
        ],
        REPO,
    )
    return out


def test_demo_splits_direct_matches_the_split_stage_layout(toy_splits: Path) -> None:
    from pipeline.data.splits import load_split

    info = json.loads((toy_splits / "info.json").read_text())
    grid = json.loads((toy_splits / "grid.json").read_text())
    assert grid["bar_samples"] == round(grid["sample_rate"] * 60 / grid["bpm"] * 4)
    assert info["classes"] == ["breakbeat", "house", "techno"]
    bars, labels, sample_rate = load_split(toy_splits / "train.npz")
    valid, _, _ = load_split(toy_splits / "valid.npz")
    assert sample_rate == 8000 and bars.shape[1:] == (1, grid["bar_samples"])
    assert len(bars) == info["counts"]["train"] and len(valid) == info["counts"]["valid"] > 0
    assert set(labels) <= {0, 1, 2}
    rms_db = 20 * np.log10(np.sqrt(np.mean(np.square(bars), axis=(1, 2))))
    assert np.all(rms_db <= -19.5) and np.all(rms_db > -40)  # normalised, never clipped


def test_train_throughput_prints_modes_side_by_side(tmp_path: Path) -> None:
    report = tmp_path / "throughput.json"
    result = run(
        [
            sys.executable,
            str(REPO / "bench/train_throughput.py"),
            "--archs",
            "wavegan",
            "--cpu-batch",
            "2",
            "--cpu-model-dim",
            "2",
            "--steps",
            "1",
            "--length",
            "4096",
            "--cpu-modes",
            "fp32 eager",
            "bf16 eager",
            "--json",
            str(report),
        ],
        tmp_path,
    )
    header = next(line for line in result.stdout.splitlines() if line.startswith("arch"))
    assert "fp32 eager bars/s" in header and "bf16 eager bars/s" in header
    row = next(line for line in result.stdout.splitlines() if line.startswith("wavegan"))
    fp32, _mem, bf16, _mem2, speedup = row.split()[1:]
    assert float(fp32) > 0 and float(bf16) > 0
    assert "no CUDA device" in result.stdout or "GPU " in result.stdout
    rows = json.loads(report.read_text())["cpu"]["rows"]["wavegan"]
    # the printed rates are rounded to 0.1 bars/s (on a busy machine a few bars/s): the
    # printed speed-up is checked against the unrounded rates the JSON keeps
    fp32_rate, bf16_rate = (rows[m]["bars_per_sec"] for m in ("fp32 eager", "bf16 eager"))
    assert float(speedup.rstrip("x")) == pytest.approx(bf16_rate / fp32_rate, abs=0.006)
    assert fp32_rate == pytest.approx(float(fp32), abs=0.051)
    assert rows["bf16 eager"]["error"] is None and rows["bf16 eager"]["model_dim"] == 2


def test_learning_check_scores_every_config(toy_splits: Path, tmp_path: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["loss"] = "hinge"  # the default config is whatever params.yaml says
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    report = tmp_path / "learning.json"
    result = run(
        [
            sys.executable,
            str(REPO / "bench/learning_check.py"),
            "--params",
            str(params_file),
            "--splits-dir",
            str(toy_splits),
            "--configs",
            "default,wavegan,melgan,specgan",
            "--device",
            "cpu",
            "--model-dim",
            "2",
            "--batch-size",
            "2",
            "--latent-dim",
            "8",
            "--max-steps",
            "1",
            "--bars",
            "6",
            "--threads",
            "1",
            "--json",
            str(report),
        ],
        tmp_path,
    )
    out = result.stdout
    # command and machine above the table
    assert re.search(r"^command: `python .*learning_check\.py .*--configs ", out, re.M)
    assert re.search(r"^machine: .+ cores .*torch .*device cpu", out, re.M)
    table = [line for line in out.splitlines() if line.startswith("|")]
    header = table[0]
    for column in ("CPU s", "Fréchet (fixed)", "NDB bins", "downbeat", "similar", "nearest"):
        assert column in header
    assert table[2].startswith("| real | held-out bars |")
    assert table[3].startswith("| noise | white noise at their RMS |")
    names = [line.split("|")[1:3] for line in table[4:]]
    assert [(n.strip(), s.strip()) for n, s in names] == [
        (config, state)
        for config in ("default", "wavegan", "melgan", "specgan")
        for state in ("untrained", "trained", "held-out bars through its synthesis")
    ]

    numbers = json.loads(report.read_text())
    runs = {r["name"]: r for r in numbers["runs"]}
    assert runs["default"]["config"]["loss"] == "hinge"  # params.yaml's train section
    assert runs["wavegan"]["config"]["ema_decay"] == 0.0  # the WaveGAN preset's recipe
    assert runs["melgan"]["config"]["lr_d"] == pytest.approx(3e-4)  # BERGAN's
    assert runs["specgan"]["config"]["num_classes"] == 3  # specgan-genre is conditional
    for r in runs.values():
        assert r["steps"] == 1 and r["cpu_s"] > 0 and r["wall_s"] > 0
        before, after = r["untrained"], r["trained"]
        for key in ("frechet.generated.fixed", "nearest_neighbour.generated.median_db"):
            assert before[key] > 0 and after[key] > 0
        assert before["frechet.generated.fixed"] != after["frechet.generated.fixed"]
        assert "ndb.generated.bins_visited" in after
        assert "novelty.generated.fraction_similar_at_0.1" in after
        # the real reference does not depend on the generator
        assert before["frechet.valid.fixed"] == after["frechet.valid.fixed"]
        assert "frechet_fall" in r["checks"]
        # the ceiling: the held-out bars through the representation; a waveform model's is
        # the held-out bars themselves
        ceiling = r["ceiling"]
        if r["config"]["arch"] == "specgan":
            assert ceiling["frechet.generated.fixed"] > 0
        else:
            assert ceiling["frechet.generated.fixed"] == pytest.approx(
                ceiling["frechet.valid.fixed"]
            )
        assert "two_sample.generated.accuracy" in after and "ceiling_over_real" in r["checks"]
    assert numbers["noise"]["two_sample.generated.accuracy"] > 0.9


def test_gpu_check_toy_mode_on_a_bare_image(tmp_path: Path) -> None:
    """The GPU recipe's toy mode on a CPU, without librosa, soundfile, jsonschema, madmom or
    Rubber Band's Python wrapper (as on the GPU machine): the results file names the device and
    holds the throughput and learning tables."""
    script = (REPO / "bench/gpu_check.sh").read_text()
    assert re.search(r"^# EXPECTED DURATION: .*minutes", script, re.M)
    results = tmp_path / "results"
    env = dict(os.environ)
    env.update(
        PYTHON=sys.executable,
        PYTHONPATH=str(bare_image_path(tmp_path / "bare")),
        GPU_CHECK_WORK_DIR=str(tmp_path / "work"),
        GPU_CHECK_RESULTS_DIR=str(results),
    )
    env.pop("OUT", None)
    result = subprocess.run(
        ["bash", str(REPO / "bench/gpu_check.sh"), "--toy"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "expected duration" in result.stdout.splitlines()[0]
    (path,) = results.glob("gpu_check-toy-cpu-*.md")
    text = path.read_text()
    assert text.startswith("# GPU check (TOY MODE, CPU): cpu, ")
    assert "expected duration: " in text and "TOY MODE" in text
    assert "optional packages missing: librosa, soundfile, jsonschema, madmom, pyrubberband" in text
    assert "direct: rendered on the grid" in text
    for part in ("environment", "splits", "throughput", "learning"):
        assert re.search(rf"^\| {part} \| ok \| \d+ \|$", text, re.M), part
    number = r"[\d.]+"
    for arch in ("wavegan", "melgan", "specgan"):  # arch, width, batch, two modes, speed-up
        row = rf"^\| {arch} \| 2 \| 2 \| {number} \| - \| {number} \| - \| {number}x \|$"
        assert re.search(row, text, re.M), arch
    assert re.search(r"^\| real \| held-out bars \|", text, re.M)
    assert re.search(r"^\| wavegan \| trained \| 2 \|", text, re.M)
    assert "librosa is not installed" not in text  # the metrics need no librosa
    assert "Target: WaveGAN preset bf16 + compile >= 2x fp32 eager" in text
    assert "Target: the preset's Fréchet distance falls >= 3x from step 0" in text


def test_onnx_speed_prints_torch_and_onnxruntime_side_by_side() -> None:
    result = run(
        [sys.executable, str(REPO / "bench/onnx_speed.py"), "--arch", "wavegan",
         "--batch-sizes", "1", "2", "--repeats", "1", "--threads", "1"],
        REPO,
    )  # fmt: skip
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("wavegan")]
    assert [row[1] for row in rows] == ["1", "2"]
    for _, _, rtf_torch, rtf_onnx, ratio in rows:
        assert float(rtf_torch) > 0 and float(rtf_onnx) > 0
        assert float(ratio) == pytest.approx(float(rtf_onnx) / float(rtf_torch), rel=0.02)


def test_piece_splits_keep_every_piece_in_one_split(tmp_path: Path) -> None:
    """Two renderings of each piece, dealt by the split stage to different splits: regrouped,
    every piece's bars are in one split, and each bar keeps its audio and label."""
    import pandas as pd

    from pipeline.data.splits import load_split

    src = tmp_path / "splits"
    src.mkdir()
    rows, split_of_track = [], {}
    pieces = [f"piece{p}" for p in range(6)]
    for p, piece in enumerate(pieces):
        for rendering, split in enumerate(("train", ("valid", "test")[p % 2])):
            path = f"class{p % 2}/{piece}_{rendering}.wav"
            split_of_track[path] = split
            for bar in range(2 + p):
                rows.append({"path": path, "track": path, "label": f"class{p % 2}",
                             "label_index": p % 2, "split": split,
                             "value": 1000 * p + bar})  # fmt: skip
    manifest = pd.DataFrame(rows)
    manifest.to_csv(src / "manifest.csv", index=False)
    for split in ("train", "valid", "test"):
        mine = manifest[manifest["split"] == split]
        bars = np.repeat(mine["value"].to_numpy(np.int16)[:, None, None], 8, axis=2)
        np.savez(src / f"{split}.npz", bars=bars, labels=mine["label_index"].to_numpy(),
                 sample_rate=8000)  # fmt: skip
    (src / "grid.json").write_text(json.dumps({"sample_rate": 8000, "bpm": 120.0}))
    (src / "info.json").write_text(json.dumps({"classes": ["class0", "class1"]}))
    groups = tmp_path / "truth.csv"
    pd.DataFrame(
        {"path": list(split_of_track), "source_file": [p.split("/")[1][:6] for p in split_of_track]}
    ).to_csv(groups, index=False)

    out = tmp_path / "regrouped"
    result = run([sys.executable, str(REPO / "bench/piece_splits.py"), "--splits-dir", str(src),
                  "--groups", str(groups), "--out", str(out)], REPO)  # fmt: skip
    assert "class0" in result.stdout
    regrouped = pd.read_csv(out / "manifest.csv")
    regrouped["piece"] = regrouped["path"].str.split("/").str[1].str[:6]
    assert (regrouped.groupby("piece")["split"].nunique() == 1).all()
    assert set(regrouped["split"]) == {"train", "valid", "test"}
    for split in ("train", "valid", "test"):
        bars, labels, _ = load_split(out / f"{split}.npz")
        mine = regrouped[regrouped["split"] == split]
        np.testing.assert_array_equal(np.round(bars[:, 0, 0] * 32767), mine["value"])
        np.testing.assert_array_equal(labels, mine["label_index"])


def test_representation_ceiling_scores_every_setting(toy_splits: Path, tmp_path: Path) -> None:
    from pipeline.data.splits import load_split
    from pipeline.grid import BarGrid
    from pipeline.models.generator_file import build_generator, save_generator
    from pipeline.stages.train import train_config

    train, _, sample_rate = load_split(toy_splits / "train.npz")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = dict(params["train"], conditional=False, model_dim=2, latent_dim=8)
    section["model"] = {"specgan": {"n_fft": 256, "hop_length": 128}}
    config = train_config(section, train[:1], sample_rate, 0)
    grid = json.loads((toy_splits / "grid.json").read_text())
    timing = BarGrid(sample_rate, grid["bpm"], grid["beats_per_bar"], 1).timing()
    generator = tmp_path / "generator.pt"
    save_generator(generator, build_generator(config), config, timing)

    report = tmp_path / "ceiling.json"
    result = run([sys.executable, str(REPO / "bench/representation_ceiling.py"), "--splits-dir",
                  str(toy_splits), "--bootstrap", "5", "--json", str(report), "--generator",
                  str(generator), "--bars", "8"], REPO)  # fmt: skip
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    numbers = json.loads(report.read_text())
    assert len(table) == 2 + len(numbers["rows"]) + len(numbers["generated_rows"])
    assert len(numbers["rows"]) >= 5
    # the generator's spectrograms through each phase reconstruction: an untrained generator's
    # bars are far from music whichever way they are rendered
    phases = [(r["phase"], r["iterations"]) for r in numbers["generated_rows"]]
    assert phases == [("griffin-lim", 32), ("pghi", 0), ("pghi", 8), ("pghi", 16)]
    ratios = [r["frechet_fixed_ratio"] for r in numbers["generated_rows"]]
    ceilings = [r["frechet_fixed_ratio"] for r in numbers["rows"]]
    assert min(ratios) > 5 and min(ratios) > 2 * max(ceilings), (ratios, ceilings)
    for row in numbers["rows"]:
        # real bars through a spectrogram stay music: near the held-out bars, far from noise
        assert 0.5 < row["frechet_fixed_ratio"] < 20, row
        assert row["seconds_per_bar"] > 0 and np.isfinite(row["crest_db"])


def test_class_spread_reads_zero_for_a_generator_that_ignores_its_latent(
    toy_splits: Path, tmp_path: Path
) -> None:
    import torch

    from pipeline.data.splits import load_split
    from pipeline.grid import BarGrid
    from pipeline.models.generator_file import build_generator, save_generator
    from pipeline.stages.train import train_config

    train, labels, sample_rate = load_split(toy_splits / "train.npz")
    n_classes = int(labels.max()) + 1
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = dict(params["train"], conditional=True, model_dim=2, latent_dim=8)
    section["model"] = {"specgan": {"n_fft": 256, "hop_length": 128}}
    config = train_config(section, train[:1], sample_rate, n_classes)
    grid = json.loads((toy_splits / "grid.json").read_text())
    timing = BarGrid(sample_rate, grid["bpm"], grid["beats_per_bar"], 1).timing()
    generator = build_generator(config)
    save_generator(tmp_path / "varied.pt", generator, config, timing)
    with torch.no_grad():
        generator.project.weight[:, : config.latent_dim] = 0.0  # the label alone decides
    save_generator(tmp_path / "deaf.pt", generator, config, timing)

    def spread(name: str) -> dict:
        report = tmp_path / f"{name}.json"
        result = run([sys.executable, str(REPO / "bench/class_spread.py"), "--generator",
                      str(tmp_path / f"{name}.pt"), "--splits-dir", str(toy_splits), "--bars",
                      "30", "--json", str(report)], REPO)  # fmt: skip
        assert "| generator | 30 |" in result.stdout
        return {row["set"]: row for row in json.loads(report.read_text())["rows"]}

    deaf, varied = spread("deaf"), spread("varied")
    trained_classes = sorted(set(labels.tolist()))  # the toy splits hold one style out whole
    assert [c["class"] for c in deaf["generator"]["classes"]] == trained_classes
    assert max(c["spread"] for c in deaf["generator"]["classes"]) < 1e-3
    assert min(c["spread"] for c in varied["generator"]["classes"]) > 0.01
    # white noise is far from music in the mean, whatever its variety
    assert deaf["white noise"]["mean_term"] > 10 * deaf["held-out bars"]["mean_term"]
    for row in deaf.values():
        assert row["frechet"] == pytest.approx(row["mean_term"] + row["covariance_term"])
