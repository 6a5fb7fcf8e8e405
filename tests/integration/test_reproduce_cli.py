"""`bargan reproduce`: the plan of every preset, a full-length run refused on a CPU, and a whole
reproduction (fetch from a local server through evaluate, then the paper's table) offline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from pipeline.presets import preset_names
from tests.conftest import REPO, make_project, run, tiny_params
from tests.http_server import FileServer
from tests.tiny_dataset import NAME, entry, make_loops, zipped

pytestmark = pytest.mark.integration


def bargan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("preset", preset_names())
def test_dry_run_prints_dataset_steps_hours_and_published_numbers(preset, tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy2(REPO / "params.yaml", params)
    result = bargan("reproduce", preset, "--dry-run", "--params", str(params))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"preset {preset}: ")
    assert "\ndataset: " in out and " steps, n_critic " in out
    dataset = yaml.safe_load((REPO / "presets" / f"{preset}.yaml").read_text())["dataset"]
    if dataset:  # the registry entry's size and published checksum
        assert re.search(r": sha256 [0-9a-f]{64} \(published in ", out), out
    assert "GPU hours on one NVIDIA H200" in out  # from the committed measurement
    assert "published numbers" in out or "the paper's numbers it will be compared with" in out
    assert params.read_bytes() == (REPO / "params.yaml").read_bytes()  # nothing changed


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="the refusal is for machines without CUDA"
)
def test_a_full_length_run_is_refused_on_a_cpu_and_nothing_changes(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy2(REPO / "params.yaml", params)
    result = bargan("reproduce", "wavegan", "--params", str(params))
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("bargan reproduce: error: preset wavegan trains 200000 steps")
    assert "no CUDA device" in error and "--allow-cpu" in error and "NVIDIA H200" in error
    assert params.read_bytes() == (REPO / "params.yaml").read_bytes()


TINY_PRESET = {
    "source": "A test, https://example.org/tiny",
    "description": "the tiny training settings of the tests",
    "dataset": NAME,
    "dataset_note": "made in the test, served from 127.0.0.1",
    "paper": [
        {
            "metric": "Fréchet distance, fixed features",
            "value": 123.0,
            "spread": 4.0,
            "protocol": "ours (the test's stand-in for a published number)",
            "where": "Table 9 of no paper",
            "ours": "frechet/generated.fixed",
        }
    ],
    "split": {"method": "published"},
    "train": {"steps": 3},
}


def test_reproduce_fetches_runs_the_graph_and_ends_with_the_papers_table(tmp_path):
    """The whole command, offline: the preset's dataset comes from a local HTTP server, dvc
    repro runs fetch through report, and the paper's number stands beside ours."""
    loops = make_loops(tmp_path / "made", tmp_path / "published")
    data = zipped(loops)
    root = make_project(tmp_path / "project", tiny_params())
    (root / "presets").mkdir()
    (root / "presets/tiny.yaml").write_text(yaml.safe_dump(TINY_PRESET, sort_keys=False))
    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        registry_entry = entry(server.url(f"{NAME}.zip"), data)
        (root / "datasets" / f"{NAME}.yaml").write_text(yaml.safe_dump(registry_entry))
        result = run(["python", "-m", "pipeline.cli", "reproduce", "tiny"], root, timeout=900)
    out = result.stdout
    assert out.startswith("preset tiny: A test, https://example.org/tiny")
    assert f": sha256 {registry_entry['archives'][0]['checksum']['value']} (published in" in out
    assert "Fréchet distance, fixed features: 123 ± 4 (Table 9 of no paper;" in out
    assert "Running stage 'fetch'" in out and "Running stage 'evaluate'" in out
    # the last lines: the paper's number beside ours, with our bootstrap interval
    row = out.strip().splitlines()[-1]
    metrics = json.loads((root / "data/metrics/metrics.json").read_text())["frechet"]
    low, high = metrics["generated.fixed.ci_low"], metrics["generated.fixed.ci_high"]
    ours = f"{metrics['generated.fixed']:.4g} [{low:.4g}, {high:.4g}]"
    assert row == (
        f"| Fréchet distance, fixed features | 123 ± 4 | {ours} | - | "
        "ours (the test's stand-in for a published number) |"
    )
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["train"]["preset"] == "tiny" and params["fetch"]["dataset"] == NAME
    assert params["data"]["audio_dir"] == "data/raw/fetched"
    manifest = pd.read_csv(root / "data/splits/manifest.csv")
    assert set(manifest.split) == {"train", "valid", "test"}  # the publisher's split
    assert len(server.requests) == 1  # one download, verified once


def test_a_preset_is_not_written_into_a_params_file_dvc_does_not_read(tmp_path):
    """The stages in dvc.yaml read params.yaml: a preset applied to another file would run
    with params.yaml's settings, so the command refuses in one line and changes nothing."""
    root = make_project(tmp_path / "project", tiny_params())
    (root / "presets").mkdir()
    (root / "presets/tiny.yaml").write_text(yaml.safe_dump(TINY_PRESET, sort_keys=False))
    data = b"never served"
    (root / "datasets" / f"{NAME}.yaml").write_text(
        yaml.safe_dump(entry("http://127.0.0.1:9/tinyloops.zip", data))
    )
    other = root / "my-params.yaml"
    shutil.copy2(root / "params.yaml", other)
    before = {name: (root / name).read_bytes() for name in ("params.yaml", "my-params.yaml")}
    result = run(
        ["python", "-m", "pipeline.cli", "reproduce", "tiny", "--params", str(other)],
        root,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"bargan reproduce: error: --params {other}: dvc repro runs")
    assert f"which read {root / 'params.yaml'}" in error and "--dry-run" in error
    assert "Running stage" not in result.stdout
    assert {name: (root / name).read_bytes() for name in before} == before
    assert not (root / "data").exists()
