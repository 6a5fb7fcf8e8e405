"""Logging into one MLflow run: metrics in batches, params, tags and artifacts; a resumed
training reuses its MLflow run."""

from __future__ import annotations

from pathlib import Path

RUN_ID_FILE = "mlflow_run_id"
BATCH = 200
MAX_BATCH_METRICS = 1000  # MLflow's limit for one log_batch call


class MlflowBatchLogger:
    """Context manager around one MLflow run; ``log(step, metrics)`` buffers and flushes."""

    def __init__(self, run_id: str, is_new: bool, tracking_uri: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id
        self.is_new = is_new
        self._buffer: list = []

    @classmethod
    def for_run_dir(
        cls, run_dir: Path, experiment: str, run_name: str | None = None
    ) -> MlflowBatchLogger:
        """Reuse the MLflow run recorded in ``run_dir`` (a resumed training), else start one
        named ``run_name`` (default: the folder's name)."""
        import mlflow

        id_file = run_dir / RUN_ID_FILE
        client = mlflow.tracking.MlflowClient()
        if id_file.is_file():
            run_id = id_file.read_text().strip()
            try:
                client.get_run(run_id)
                return cls(run_id, is_new=False)
            except mlflow.exceptions.MlflowException:
                pass  # the store was reset; start a fresh run
        experiment_id = mlflow.get_experiment_by_name(experiment).experiment_id
        run = client.create_run(experiment_id, run_name=run_name or run_dir.name)
        id_file.write_text(run.info.run_id)
        return cls(run.info.run_id, is_new=True)

    def __enter__(self) -> MlflowBatchLogger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status=run_status(exc))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer += [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if len(self._buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        for start in range(0, len(self._buffer), MAX_BATCH_METRICS):
            self.client.log_batch(
                self.run_id, metrics=self._buffer[start : start + MAX_BATCH_METRICS]
            )
        self._buffer = []

    def log_params(self, params: dict[str, object]) -> None:
        """Flat params; MLflow caps a value's length, ours are short (lists become their repr)."""
        from mlflow.entities import Param

        items = [Param(key, str(value)[:500]) for key, value in params.items()]
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)


def run_status(exc: BaseException | None) -> str:
    """MLflow's status for a run that ended with ``exc``: KILLED when a signal stopped it (Ctrl-C,
    or an exit carrying the ``signum`` it stopped on, as a SIGTERM stop does), FAILED on any
    other exception, FINISHED without one."""
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt) or getattr(exc, "signum", None):
        return "KILLED"
    return "FAILED"
