"""The training benchmarks run end to end at toy size (their numbers are for bench runs, not
asserted here): throughput prints a row per mode, the learning check scores both generators."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run


def test_train_throughput_prints_modes_side_by_side(tmp_path: Path) -> None:
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
            "--cpu-modes",
            "fp32 eager",
            "bf16 eager",
        ],
        tmp_path,
    )
    header = next(line for line in result.stdout.splitlines() if line.startswith("arch"))
    assert "fp32 eager bars/s" in header and "bf16 eager bars/s" in header
    row = next(line for line in result.stdout.splitlines() if line.startswith("wavegan"))
    fp32, _mem, bf16, _mem2, speedup = row.split()[1:]
    assert float(fp32) > 0 and float(bf16) > 0
    assert float(speedup.rstrip("x")) == pytest.approx(float(bf16) / float(fp32), rel=0.05)
    assert "no CUDA device" in result.stdout or "GPU " in result.stdout


def test_learning_check_scores_untrained_and_trained(tiny_project: Path) -> None:
    run(["dvc", "repro", "split"], tiny_project)
    shutil.copytree(REPO / "bench", tiny_project / "bench")
    report = tiny_project / "learning.json"
    result = run(
        [
            sys.executable,
            "bench/learning_check.py",
            "--minutes",
            "0.01",
            "--bars",
            "6",
            "--json",
            str(report),
        ],
        tiny_project,
    )
    numbers = json.loads(report.read_text())
    assert numbers["steps"] >= 1  # the step under way when time runs out finishes
    assert numbers["seconds"] < 60
    assert numbers["config"]["model_dim"] == 4  # the project's params.yaml, not the defaults
    for key in ("frechet.generated.fixed", "nearest_neighbour.generated.median_db"):
        before, after = numbers["untrained"][key], numbers["trained"][key]
        assert before > 0 and after > 0 and before != after  # the weights did change
    # the real-data reference is the same for both (it does not depend on the generator)
    assert numbers["untrained"]["frechet.valid.fixed"] == numbers["trained"]["frechet.valid.fixed"]
    assert re.search(
        r"Fréchet distance .*\n.*kernel distance .*\n.*nearest training bar", result.stdout
    )
