"""MLflow conventions: where the store is, how experiments are created and runs tagged."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from pipeline.params import REPO_ROOT

DEFAULT_DB = "mlflow.db"
ARTIFACT_DIR = "mlartifacts"
# MLflow 3's UI opens an experiment without this tag on its (empty) GenAI traces page
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def tracking_uri(root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else an absolute SQLite store in the project root."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(root or Path.cwd()).resolve()
    return f"sqlite:///{root / DEFAULT_DB}"


def setup(experiment: str, root: Path | None = None):
    """Point MLflow at the store and return the experiment id (creating it if needed), tagged
    as a model-training experiment so that the UI opens it on its runs."""
    import mlflow

    root = Path(root or Path.cwd()).resolve()
    mlflow.set_tracking_uri(tracking_uri(root))
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        if found.tags.get(EXPERIMENT_KIND_TAG) is None:
            mlflow.MlflowClient().set_experiment_tag(
                found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
            )
        return found.experiment_id
    location = None
    if tracking_uri(root).startswith("sqlite:"):
        location = (root / ARTIFACT_DIR).as_uri()
    return mlflow.create_experiment(
        experiment, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    )


def ui_command(uri: str) -> str:
    """The command that opens the MLflow UI on the store at ``uri``."""
    return f"mlflow ui --backend-store-uri {uri}"


def run_tags(preset: str | None = None) -> dict[str, str]:
    return {
        "git_commit": _git(["rev-parse", "HEAD"]) or "unknown",
        "git_dirty": str(bool(_git(["status", "--porcelain"]))),
        "preset": preset or "none",
        "machine": f"{platform.node()} ({platform.machine()}, {platform.system()})",
    }


def _git(args: list[str]) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()
