"""train: fit a GAN on the train split; resumable, logged to MLflow."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import tracking
from pipeline.fileio import write_csv_atomic, write_json_atomic
from pipeline.params import flatten
from pipeline.stages.common import StageError, log, run_stage, stage_parser
from pipeline.train.config import TrainConfig
from pipeline.train.loop import train_gan
from pipeline.train.mlflow_logger import MlflowBatchLogger


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """-> (float32 bars [N, C, T] in [-1, 1], int64 labels, sample rate)."""
    with np.load(path) as packed:
        bars = packed["bars"].astype(np.float32) / 32767.0
        return bars, packed["labels"], int(packed["sample_rate"])


def train_config(section: dict, bars: np.ndarray, sample_rate: int, n_classes: int) -> TrainConfig:
    keys = (
        "arch",
        "loss",
        "latent_dim",
        "model_dim",
        "batch_size",
        "steps",
        "n_critic",
        "lr_g",
        "lr_d",
        "gp_lambda",
        "ema_decay",
        "checkpoint_every",
        "log_every",
        "seed",
        "device",
    )
    return TrainConfig(
        **{key: section[key] for key in keys},
        betas=tuple(section["betas"]),
        sample_rate=sample_rate,
        length=bars.shape[2],
        channels=bars.shape[1],
        num_classes=n_classes,
    )


def run_folder(root: Path, config: TrainConfig, data_file: Path) -> Path:
    """A descriptive, resumable run folder: same config and data -> same folder.

    Keys that may change on resume (steps, logging, device) are left out of the hash, so raising
    ``steps`` continues the previous run instead of starting over.
    """
    settings = {k: v for k, v in config.to_dict().items() if k not in TrainConfig.RESUMABLE_KEYS}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(hashlib.sha1(data_file.read_bytes()).digest())
    name = f"{config.arch}-{config.loss}-d{config.model_dim}-b{config.batch_size}"
    return root / f"{name}-{digest.hexdigest()[:8]}"


def main(args, params) -> None:
    section = params["train"]
    train_file = args.splits_dir / "train.npz"
    bars, labels, sample_rate = load_split(train_file)
    if len(bars) == 0:
        raise StageError(f"{train_file}: the train split is empty")
    info = json.loads((args.splits_dir / "info.json").read_text())
    n_classes = len(info["classes"]) if section["conditional"] else 0
    config = train_config(section, bars, sample_rate, n_classes)
    run_dir = run_folder(args.checkpoint_root, config, train_file)
    run_dir.mkdir(parents=True, exist_ok=True)
    log.info("training %s on %d bars %s -> %s", config.arch, len(bars), bars.shape[1:], run_dir)

    tracking.setup(section["experiment"])
    with MlflowBatchLogger.for_run_dir(run_dir, section["experiment"]) as mlflow_log:
        if mlflow_log.is_new:
            mlflow_log.log_params(flatten(params))
            mlflow_log.set_tags({**tracking.run_tags(), "run_dir": str(run_dir)})
        result = train_gan(bars, labels if n_classes else None, config, run_dir, mlflow_log.log)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.generator_path, args.out_dir / "generator.pt")
        losses = pd.DataFrame(result.losses)
        write_csv_atomic(args.out_dir / "losses.csv", losses)
        mlflow_log.log_artifact(args.out_dir / "losses.csv")
        write_json_atomic(
            args.out_dir / "train_run.json",
            {
                "mlflow_run_id": mlflow_log.run_id,
                "mlflow_tracking_uri": tracking.tracking_uri(),
                "run_dir": str(run_dir),
                "steps": result.steps_done,
                "train_bars": len(bars),
                "config": config.to_dict(),
            },
        )
    log.info("generator -> %s; MLflow run %s", args.out_dir / "generator.pt", mlflow_log.run_id)


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--splits-dir", type=Path, required=True)
    p.add_argument("--checkpoint-root", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
