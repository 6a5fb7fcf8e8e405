"""Every corpus layout trains under the default settings (conditional on the class folder), or
stops at the split stage with one line: all recordings at the top level, all in class folders,
all in one folder, and a mix, which has recordings without a class."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.data.splits import load_split
from pipeline.grid import BarGrid
from pipeline.models.generator_file import generator_metadata
from tests.conftest import (
    REPO,
    make_track,
    run,
    tiny_params,
    tool_env,
    write_overrides,
    write_params,
)

pytestmark = pytest.mark.integration

LAYOUTS = {
    "flat": (["a.wav", "b.wav", "c.wav"], []),
    "folders": (["techno/a.wav", "house/b.wav", "techno/c.wav"], ["house", "techno"]),
    "one-folder": (["techno/a.wav", "techno/b.wav", "techno/c.wav"], ["techno"]),
    "numbered-folders": (["0/a.wav", "1/b.wav", "01/c.wav"], ["0", "01", "1"]),  # names
}


def own_corpus(root: Path, paths: list[str]) -> None:
    corpus = root / "data/raw/mine"
    for seed, path in enumerate(paths):
        make_track(corpus / path, 120, seed=seed)
    write_overrides(corpus, dict.fromkeys(paths, 120))
    params = tiny_params()
    params["data"]["audio_dir"] = "data/raw/mine"
    assert params["train"]["conditional"] is True  # the default
    write_params(root, params)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("ERROR bargan")]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_layout_without_recordings_outside_class_folders_trains(tiny_project, layout):
    paths, classes = LAYOUTS[layout]
    own_corpus(tiny_project, paths)
    result = run(["dvc", "repro", "train"], tiny_project)
    assert "Running stage 'train'" in result.stdout
    info = json.loads((tiny_project / "data/splits/info.json").read_text())
    assert info["classes"] == classes
    record = json.loads((tiny_project / "data/models/train_run.json").read_text())
    assert record["config"]["num_classes"] == len(classes)  # flat: unconditional
    # the class mix the generator learned, which the sample stage draws scored bars in
    _, labels, _ = load_split(tiny_project / "data/splits/train.npz")
    counts = np.bincount(labels, minlength=len(classes)).tolist() if classes else []
    assert generator_metadata(tiny_project / "data/models/generator.pt")["class_counts"] == counts


def test_recordings_beside_class_folders_stop_the_split_in_one_line(tiny_project):
    own_corpus(tiny_project, ["techno/a.wav", "b.wav", "house/c.wav", "d.wav"])
    result = run(["dvc", "repro", "train"], tiny_project, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "Running stage 'split'" in output and "Running stage 'train'" not in output
    [error] = error_lines(output)
    assert "data/bars/bars.csv: 2 of 4 recordings are at the top level" in error
    assert "(b.wav, d.wav)" in error and "(house, techno)" in error
    assert "move them into a class folder" in error and "in a class folder or none" in error
    assert not (tiny_project / "data/splits/train.npz").exists()


def test_labels_outside_the_classes_stop_training_in_one_line(tmp_path):
    """A splits folder the split stage did not write (by hand, or an older version's): the
    train stage names the file instead of failing inside the training loop."""
    write_params(tmp_path, tiny_params())
    splits = tmp_path / "splits"
    splits.mkdir()
    bars = np.zeros((4, 1, 8192), np.int16)
    for name, labels in (("train", [0, -1, 1, -1]), ("valid", [0, 1, 0, 1])):
        np.savez(splits / f"{name}.npz", bars=bars, labels=np.array(labels), sample_rate=8000)
    (splits / "info.json").write_text(json.dumps({"classes": ["house", "techno"]}))
    BarGrid(8000, 120, 4, 1).write(splits / "grid.json")
    command = [sys.executable, "-m", "pipeline.stages.train", "--params", "params.yaml"]
    command += ["--splits-dir", "splits", "--checkpoint-root", "ck", "--out-dir", "models"]
    result = subprocess.run(
        command, cwd=tmp_path, env=tool_env(REPO), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [error] = error_lines(result.stderr)
    assert "splits/train.npz: 2 of 4 bars have a class label outside 0-1" in error
    assert "run the split stage again" in error
