"""evaluate: metrics of the generated bars against the training set, with real-data references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline import tracking
from pipeline.fileio import write_json_atomic
from pipeline.metrics.registry import compute_all
from pipeline.params import flatten
from pipeline.stages.common import log, run_stage, stage_parser
from pipeline.stages.train import load_split


def main(args, params) -> None:
    section = params["evaluate"]
    with np.load(args.samples_dir / "generated.npz") as packed:
        generated = packed["bars"]
    train, _, _ = load_split(args.splits_dir / "train.npz")
    valid, _, _ = load_split(args.splits_dir / "valid.npz")
    metrics = compute_all(generated, train, valid, section)
    metrics["threshold"] = section["novelty_threshold"]
    write_json_atomic(args.out, metrics)
    log.info("metrics -> %s: %s", args.out, json.dumps(metrics))

    run = json.loads(args.train_run.read_text())
    import mlflow

    tracking.setup(params["train"]["experiment"])
    with mlflow.start_run(run_id=run["mlflow_run_id"]):
        numbers = {k: v for k, v in flatten(metrics).items() if isinstance(v, int | float)}
        mlflow.log_metrics({k.replace(".", "_"): float(v) for k, v in numbers.items()})
        mlflow.log_artifact(str(args.out))
        mlflow.log_artifact(str(args.samples_dir / "interpolation.wav"), "audio")
        for path in sorted((args.samples_dir / "bars").glob("*.wav"))[:4]:
            mlflow.log_artifact(str(path), "audio/bars")
    log.info("logged metrics and audio to MLflow run %s", run["mlflow_run_id"])


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--samples-dir", type=Path, required=True)
    p.add_argument("--splits-dir", type=Path, required=True)
    p.add_argument("--train-run", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
