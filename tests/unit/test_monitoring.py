"""The monitoring package: a training's MLflow run, recorded in train_run.json, is where later
stages log, whatever store the environment points at by then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.monitoring.runs import recorded_run, training_run, write_run_record


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import mlflow

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    yield uri
    mlflow.set_tracking_uri(previous)


def test_later_stages_log_into_the_recorded_run(tmp_path: Path, mlflow_store: str, monkeypatch):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "checkpoints" / "run"
    run_dir.mkdir(parents=True)
    with training_run(run_dir, "bargan-test", {"train.lr_g": 1e-4}, "wavegan") as mlflow_log:
        assert mlflow_log.is_new
        mlflow_log.log(1, {"loss_d": 0.5})
    record_path = tmp_path / "train_run.json"
    write_run_record(record_path, mlflow_log.run_id, steps=1)
    record = json.loads(record_path.read_text())
    assert list(record)[:3] == ["mlflow_run_id", "mlflow_tracking_uri", "steps"]
    assert record["mlflow_tracking_uri"] == mlflow_store

    # a resumed training reuses its run
    with training_run(run_dir, "bargan-test", {}, None) as resumed:
        assert not resumed.is_new and resumed.run_id == mlflow_log.run_id

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    artifact = tmp_path / "metrics.json"
    artifact.write_text("{}")
    with recorded_run(record) as later:
        later.log(0, {"novelty_score": 0.25})
        later.log_artifact(artifact)
    run = MlflowClient(mlflow_store).get_run(record["mlflow_run_id"])
    assert run.data.metrics == {"loss_d": 0.5, "novelty_score": 0.25}
    assert run.data.params == {"train.lr_g": "0.0001"}
    assert run.data.tags["preset"] == "wavegan" and run.info.status == "FINISHED"
    logged = MlflowClient(mlflow_store).list_artifacts(run.info.run_id)
    assert [a.path for a in logged] == ["metrics.json"]


def test_the_training_library_knows_nothing_of_monitoring():
    """pipeline/train sits below metrics, sampling and MLflow: it imports none of them."""
    import ast

    from tests.conftest import REPO

    forbidden = ("pipeline.metrics", "pipeline.sample", "pipeline.monitoring", "mlflow")
    for path in sorted((REPO / "pipeline" / "train").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            bad = [n for n in names if n.split(".")[0] == "mlflow" or n.startswith(forbidden)]
            assert not bad, f"{path.name} imports {bad}"
