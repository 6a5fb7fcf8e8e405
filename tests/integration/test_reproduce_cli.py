"""`bargan reproduce`: the plan of every preset, and a full-length run refused on a CPU."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from pipeline.presets import preset_names
from tests.conftest import REPO

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
