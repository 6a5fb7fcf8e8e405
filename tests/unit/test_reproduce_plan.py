"""A preset's reproduction plan: GPU hours from measured throughput, the paper's numbers read
and checked, and the paper's table beside ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline.reproduce.estimate import estimate_gpu_hours
from pipeline.reproduce.plan import (
    PlanError,
    comparison_table,
    format_plan,
    load_plan,
    paper_results,
)
from tests.conftest import REPO


def throughput_file(folder: Path, name: str, device: str, rows: dict) -> None:
    (folder / f"{name}.throughput.json").write_text(json.dumps({"device": device, "rows": rows}))


def test_gpu_hours_follow_the_measured_rate_of_the_runs_mode_and_batch(tmp_path):
    rows = {
        "wavegan": {
            "fp32 eager": {"steps_per_sec": 5.0, "batch": 64, "error": None},
            "bf16 eager": {"steps_per_sec": 8.0, "batch": 64, "error": None},
            "bf16+compile": {"steps_per_sec": None, "batch": 64, "error": "timed out"},
        }
    }
    throughput_file(tmp_path, "gpu_check-h200-20260101", "NVIDIA H200", rows)
    (fp32,) = estimate_gpu_hours("wavegan", 36000, 64, False, False, tmp_path)
    assert fp32.hours == pytest.approx(2.0) and fp32.mode == "fp32 eager"
    # bf16 + compile was not measured: the eager bf16 rate stands in, and says so
    (fast,) = estimate_gpu_hours("wavegan", 36000, 64, True, True, tmp_path)
    assert fast.mode == "bf16 eager" and fast.hours == pytest.approx(1.25)
    # twice the batch, half the steps per second
    (big,) = estimate_gpu_hours("wavegan", 36000, 128, False, False, tmp_path)
    assert big.hours == pytest.approx(4.0)
    assert estimate_gpu_hours("melgan", 1000, 64, False, False, tmp_path) == []


def test_the_committed_h200_measurement_gives_the_wavegan_preset_hours():
    preset = yaml.safe_load((REPO / "presets/wavegan.yaml").read_text())["train"]
    estimates = estimate_gpu_hours(
        "wavegan", preset["steps"], preset["batch_size"], preset["amp"], preset["compile"]
    )
    h200 = [e for e in estimates if e.device == "NVIDIA H200"]
    assert len(h200) == 1 and h200[0].mode == "fp32 eager"
    # 200k steps at the 6.7 steps/s measured for fp32 eager at batch 64: about 8.3 hours
    assert 7.5 < h200[0].hours < 9.0


def test_paper_entries_are_checked_and_named():
    good = [{"metric": "IS", "value": 9.18, "spread": 0.04, "protocol": "p", "where": "w"}]
    (result,) = paper_results(good, "presets/x.yaml")
    assert result.value == 9.18 and result.ours is None
    with pytest.raises(PlanError, match=r"presets/x\.yaml: paper\[0\]: missing protocol"):
        paper_results([{"metric": "IS", "value": 1.0, "where": "w"}], "presets/x.yaml")
    with pytest.raises(PlanError, match=r"paper\[0\]\.value: 'high' is not a finite number"):
        paper_results([{**good[0], "value": "high"}], "presets/x.yaml")


def write_preset(folder: Path, **meta) -> None:
    preset = {
        "source": "A paper (2020)",
        "description": "d",
        **meta,
        "train": {"arch": "wavegan", "steps": 1000, "batch_size": 64},
    }
    (folder / "p.yaml").write_text(yaml.safe_dump(preset))


def test_plan_lists_dataset_hours_and_paper_numbers_then_compares(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    rows = {
        "wavegan": {
            "fp32 eager": {"steps_per_sec": 10.0, "batch": 64, "error": None},
            "bf16 eager": {"steps_per_sec": 20.0, "batch": 64, "error": None},
        }
    }
    throughput_file(results, "gpu_check-x", "GPU X", rows)
    paper = [
        {
            "metric": "inception score",
            "value": 4.5,
            "spread": 0.1,
            "protocol": "IS, classifier",
            "where": "Table 1",
            "ours": "classifier/generated.inception_score",
        }
    ]
    write_preset(tmp_path, dataset="toy-set", paper=paper)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    plan = load_plan(
        "p", params, tmp_path, results, describe_dataset=lambda name: [f"{name}: 12 MB"]
    )
    text = format_plan(plan)
    assert "dataset: toy-set\n  toy-set: 12 MB" in text
    assert "1000 steps" in text and "about 0.0 GPU hours on one GPU X" in text
    # params.yaml's amp: auto is bf16 on a GPU: the bf16 row is the one that counts
    assert "bf16 (auto)" in text and [e.mode for e in plan.estimates] == ["bf16 eager"]
    assert "inception score: 4.5 ± 0.1 (Table 1; IS, classifier)" in text
    metrics = {
        "classifier": {
            "generated.inception_score": 3.21,
            "generated.inception_score.ci_low": 3.0,
            "generated.inception_score.ci_high": 3.4,
        }
    }
    table = comparison_table(plan, metrics)
    assert "| inception score | 4.5 ± 0.1 | 3.21 [3, 3.4] | - | IS, classifier |" in table
    metrics["classifier"].update(
        {"generated.inception_score.split_mean": 3.2, "generated.inception_score.split_std": 0.05}
    )
    table = comparison_table(plan, metrics)
    assert "| 4.5 ± 0.1 | 3.21 [3, 3.4] | 3.200 ± 0.050 | IS, classifier |" in table
    assert "not measured" in comparison_table(plan, {})


def test_a_preset_without_a_dataset_key_is_refused(tmp_path):
    write_preset(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    with pytest.raises(PlanError, match=r"p\.yaml: no 'dataset' key"):
        load_plan("p", params, tmp_path)


def test_a_reproduction_applies_the_preset_and_points_at_its_dataset_in_one_write(tmp_path):
    from pipeline.params import FETCHED_DIR
    from pipeline.reproduce.command import ReproduceError, apply_reproduction

    params = tmp_path / "params.yaml"
    original = (REPO / "params.yaml").read_text()
    params.write_text(original)
    apply_reproduction(params, "wavegan", "sc09")
    changed = yaml.safe_load(params.read_text())
    assert changed["fetch"]["dataset"] == "sc09" and changed["data"]["audio_dir"] == FETCHED_DIR
    assert changed["train"]["preset"] == "wavegan" and changed["analyze"]["method"] == "clip"
    assert _comments(params.read_text()) == _comments(original)  # comments kept

    params.write_text(original)
    with pytest.raises(ReproduceError, match=r"^\S[^\n]*fetch[^\n]*$"):  # one line, the key
        apply_reproduction(params, "wavegan", "no such/dataset")
    assert params.read_text() == original  # nothing written


def _comments(text: str) -> list[str]:
    return [line[line.index("#") :] for line in text.splitlines() if "#" in line]


def test_only_the_params_file_dvc_reads_takes_a_reproduction(tmp_path, monkeypatch):
    from pipeline.reproduce.command import ReproduceError, check_params_file

    project = tmp_path / "project"
    project.mkdir()
    (project / "dvc.yaml").write_text("stages: {}\n")
    (project / "params.yaml").write_text("train: {}\n")
    (project / "link.yaml").symlink_to(project / "params.yaml")
    (tmp_path / "other.yaml").write_text("train: {}\n")
    monkeypatch.chdir(project)
    for same in (Path("params.yaml"), project / "params.yaml", Path("link.yaml")):
        check_params_file(same, project)
    with pytest.raises(ReproduceError, match=r"--params .*other.yaml: dvc repro runs the stages"):
        check_params_file(tmp_path / "other.yaml", project)
    with pytest.raises(ReproduceError, match=r"no dvc.yaml here"):
        check_params_file(tmp_path / "other.yaml", tmp_path)
