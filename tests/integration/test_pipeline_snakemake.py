"""Real Snakemake over the same graph: `train` stops after training; the default runs all."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run

pytestmark = pytest.mark.integration


def test_snakemake_train_target_stops_after_training_then_finishes(tiny_project):
    root = tiny_project
    result = run(["snakemake", "--cores", "2", "train"], root)
    assert (root / "data/models/generator.pt").is_file()
    # one analyze job and one bars job per recording, then the aggregate stages
    recordings = sorted(
        p.relative_to(root / "data/raw/demo").as_posix()
        for p in (root / "data/raw/demo").rglob("*.wav")
    )
    assert len(recordings) == 3
    log = result.stdout + result.stderr
    for stage in ("analyze", "bars"):
        done = sorted(
            p.relative_to(root / f"data/cache/snakemake/{stage}").as_posix()
            for p in (root / f"data/cache/snakemake/{stage}").rglob("*.done")
        )
        assert done == [f"{path}.done" for path in recordings]
        assert log.count(f"rule {stage}_track:") == len(recordings)
    assert "3 from cache" in log  # the aggregate analyze found every track done
    run_info = json.loads((root / "data/models/train_run.json").read_text())
    assert run_info["steps"] == 3
    assert not (root / "data/samples").exists()
    assert not (root / "data/metrics").exists()

    run(["snakemake", "--cores", "2"], root)
    metrics = json.loads((root / "data/metrics/metrics.json").read_text())
    assert 0.0 <= metrics["novelty"]["generated.fraction_similar"] <= 1.0
    assert (root / "data/samples/interpolation.wav").is_file()

    again = run(["snakemake", "--cores", "2"], root)
    assert "Nothing to be done" in again.stdout + again.stderr
