"""The MLflow run of a training: opened by the train stage, recorded in ``train_run.json``
(tracking URI and run id), and logged into by later stages through that record."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.fileio import write_json_atomic
from pipeline.monitoring import tracking
from pipeline.monitoring.mlflow_logger import MlflowBatchLogger

RUN_ID = "mlflow_run_id"
TRACKING_URI = "mlflow_tracking_uri"


@contextmanager
def training_run(
    run_dir: Path,
    experiment: str,
    flat_params: Mapping[str, Any],
    preset: str | None,
    run_name: str | None = None,
) -> Iterator[MlflowBatchLogger]:
    """The MLflow run of the training in ``run_dir``: resumed if it has one, else a new run
    named ``run_name`` in ``experiment`` with the params and the commit/preset/machine tags
    (``run_dir`` among them). Ends the run (failed on an exception) when the block ends."""
    tracking.setup(experiment)
    with MlflowBatchLogger.for_run_dir(run_dir, experiment, run_name) as mlflow_log:
        if mlflow_log.is_new:
            mlflow_log.log_params(dict(flat_params))
            mlflow_log.set_tags({**tracking.run_tags(preset), "run_dir": str(run_dir)})
        yield mlflow_log


def write_run_record(path: Path, run_id: str, **details: Any) -> None:
    """``train_run.json``: the run id and the store it lives in, then ``details``."""
    write_json_atomic(path, {RUN_ID: run_id, TRACKING_URI: tracking.tracking_uri(), **details})


def recorded_run(record: Mapping[str, Any]) -> MlflowBatchLogger:
    """A logger into the run a ``train_run.json`` record names, in the store it names (the
    current store for records written without one). Use it as a context manager."""
    uri = record.get(TRACKING_URI) or tracking.tracking_uri()
    return MlflowBatchLogger(record[RUN_ID], is_new=False, tracking_uri=uri)
