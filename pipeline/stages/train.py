"""train: fit a GAN on the train split; resumable, logged to MLflow.

Several GPUs: ``torchrun --nproc_per_node N -m pipeline.stages.train <same arguments>``; every
process trains its share of the batch, only rank 0 logs to MLflow and writes the outputs.

One trainer per run folder: a second one on the same folder stops at once, naming the PID of
the first. SIGTERM or Ctrl-C stops after the current step with a checkpoint (exit 143 or 130);
before the first step or after the last, SIGTERM stops where it is (exit 143). Either way one
line says where it stopped and the MLflow run ends KILLED. On Linux the trainer also gets
SIGTERM when the process that started it (``dvc repro``, torchrun) dies, so it does not run on
orphaned. A run folder whose checkpoint was trained with other settings is one line naming the
folder and the settings.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from pipeline.data.splits import load_split
from pipeline.environment import fingerprint, mlflow_tags
from pipeline.fileio import write_csv_atomic
from pipeline.grid import GRID_FILE, BarGrid
from pipeline.models.clusters import as_class_generator
from pipeline.models.generator_file import copy_generator
from pipeline.monitoring.previews import preview_logger
from pipeline.monitoring.progress import (
    PROGRESS_FILE,
    ProgressMetrics,
    progress_recorder,
    read_progress,
)
from pipeline.monitoring.runs import training_run, write_run_record
from pipeline.params import flatten
from pipeline.stages.common import StageError, log, run_stage, stage_parser
from pipeline.train.clusters import Clusters, training_clusters
from pipeline.train.config import TrainConfig
from pipeline.train.distributed import env_world_size, is_main_process
from pipeline.train.loop import ResumeMismatch, train_gan
from pipeline.train.run_lock import RunFolderBusy, run_lock

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Stopped(SystemExit):
    """SIGTERM outside the training loop (whose own handler finishes the step and checkpoints):
    ends the stage as the signal would (exit 143) once the MLflow run is marked KILLED."""

    def __init__(self, signum: int, where: str) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.where = where

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        return f"{name}: stopped {self.where}; run the same command to resume"


class SigtermStop:
    """While active, SIGTERM raises :class:`Stopped` saying ``where`` the stage was: before
    training began, or after it ended (the training loop installs its own handler meanwhile)."""

    def __init__(self) -> None:
        self.where = "before training began (nothing trained in this run)"

    @contextmanager
    def active(self) -> Iterator[None]:
        def handler(signum, frame):
            signal.signal(signum, signal.SIG_IGN)  # a second one must not cut the clean-up short
            raise Stopped(signum, self.where)

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


SIGTERM_STOP = SigtermStop()


# TrainConfig fields that come from the data and the model section, not from a train key of
# the same name; every other field is read from params.yaml's train section by its own name.
FROM_DATA = frozenset(
    {
        "sample_rate",
        "length",
        "channels",
        "num_classes",
        "cluster_classes",
        "cluster_counts",
        "extra",
    }
)


def params_fields() -> list[str]:
    """The TrainConfig fields set from train keys of the same name."""
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in FROM_DATA]


def train_config(
    section: dict,
    bars: np.ndarray,
    sample_rate: int,
    n_classes: int,
    clusters: Clusters | None = None,
) -> TrainConfig:
    return TrainConfig(
        **{key: section[key] for key in params_fields()},
        sample_rate=sample_rate,
        length=bars.shape[2],
        channels=bars.shape[1],
        num_classes=n_classes,
        cluster_classes=list(clusters.classes) if clusters else [],
        cluster_counts=list(clusters.counts) if clusters else [],
        extra=dict(section["model"].get(section["arch"]) or {}),
    )


def check_labels(labels: np.ndarray, classes: list[str], train_file: Path) -> None:
    """Every label names one of ``classes`` (the split stage's info.json), or a one-line
    StageError: a conditional model has no embedding for any other."""
    bad = (labels < 0) | (labels >= len(classes))
    if bad.any():
        raise StageError(
            f"{train_file}: {int(bad.sum())} of {len(labels)} bars have a class label "
            f"outside 0-{len(classes) - 1} (info.json lists {len(classes)} classes); "
            "run the split stage again (every recording in a class folder, or none)"
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


def run_name(config: TrainConfig, run_dir: Path) -> str:
    """MLflow's name for the run in ``run_dir``: architecture, width and the first six digits
    of the folder's digest, short enough (at most 18 characters) that the UI's run column shows
    it whole; the full folder is the run's ``run_dir`` tag."""
    return f"{config.arch}-d{config.model_dim}-{run_dir.name.rsplit('-', 1)[-1][:6]}"


@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock (:func:`run_lock`); a folder another trainer holds is a
    one-line :class:`StageError` naming the folder and that trainer's PID."""
    with ExitStack() as stack:
        try:
            stack.enter_context(run_lock(run_dir))
        except RunFolderBusy as err:
            raise StageError(str(err)) from None
        yield


def exit_with_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Linux: have the kernel send ``sig`` to this process when the thread that started it
    exits (``prctl(PR_SET_PDEATHSIG)``; DVC and torchrun start stages from their main thread,
    so: when they die). A no-op elsewhere; returns whether it took effect. For programs, not
    libraries."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def main(args, params) -> None:
    section = params["train"]
    train_file = args.splits_dir / "train.npz"
    bars, labels, sample_rate = load_split(train_file)
    if len(bars) == 0:
        raise StageError(f"{train_file}: the train split is empty")
    info = json.loads((args.splits_dir / "info.json").read_text())
    grid = BarGrid.read(args.splits_dir / GRID_FILE)
    n_classes = len(info["classes"]) if section["conditional"] else 0
    if n_classes:
        check_labels(labels, info["classes"], train_file)
    elif section["conditional"]:
        log.info("train.conditional: the corpus has no class folders; training unconditionally")
    clusters = training_clusters(
        bars, labels if n_classes else None, section["bars_per_cluster"], section["seed"]
    )
    config = train_config(section, bars, sample_rate, n_classes, clusters)
    run_dir = run_folder(args.checkpoint_root, config, train_file)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_labels = clusters.labels if clusters else labels if n_classes else None
    # the class mix the generator learns, in which sets standing for it are drawn (class_mix)
    class_counts = np.bincount(labels, minlength=n_classes).tolist() if n_classes else None
    if not is_main_process():  # torchrun rank > 0: train only; rank 0 logs and writes outputs
        try:
            train_gan(bars, train_labels, config, run_dir)
        except ResumeMismatch as err:
            raise StageError(resume_mismatch_line(run_dir, err)) from None
        return
    flat, experiment = flatten(params), section["experiment"]
    with (
        locked(run_dir),
        training_run(
            run_dir, experiment, flat, section.get("preset"), run_name(config, run_dir)
        ) as mlflow_log,
    ):
        log.info("training %s on %d bars %s -> %s", config.arch, len(bars), bars.shape[1:], run_dir)
        if clusters:
            log.info(
                "self-conditioning on %d clusters of the training bars (train.bars_per_cluster %d)",
                len(clusters.classes),
                section["bars_per_cluster"],
            )
        environment = fingerprint(config.resolved_device())
        mlflow_log.set_tags(mlflow_tags(environment))
        if not environment["lock_matches"]:
            log.warning(
                "installed packages differ from the lock: %s", environment["lock_differences"]
            )
        valid, _, _ = load_split(args.splits_dir / "valid.npz")
        progress = progress_recorder(
            run_dir / PROGRESS_FILE, ProgressMetrics(bars, valid, grid, class_counts), mlflow_log
        )
        previews = preview_logger(mlflow_log, config, section["preview_bars"])

        def on_preview(step: int, generator: nn.Module) -> None:
            generator = as_class_generator(generator, config)
            previews(step, generator)
            progress(step, generator)

        try:
            result = train_gan(
                bars, train_labels, config, run_dir, on_log=mlflow_log.log, on_preview=on_preview
            )
        except ResumeMismatch as err:
            raise StageError(resume_mismatch_line(run_dir, err)) from None
        SIGTERM_STOP.where = (
            f"after training ended at step {result.steps_done}, before its outputs were "
            f"written; checkpoint saved to {result.checkpoint_path}"
        )
        args.out_dir.mkdir(parents=True, exist_ok=True)
        metadata = {
            **grid.timing(),
            "classes": info["classes"] if n_classes else [],
            "class_counts": class_counts or [],
        }
        copy_generator(result.generator_path, args.out_dir / "generator.pt", metadata)
        rows = read_progress(run_dir / PROGRESS_FILE)
        write_csv_atomic(args.out_dir / "checkpoint_metrics.csv", rows)
        losses = pd.DataFrame(result.losses)
        write_csv_atomic(args.out_dir / "losses.csv", losses)
        mlflow_log.log_artifact(args.out_dir / "losses.csv")
        write_run_record(
            args.out_dir / "train_run.json",
            mlflow_log.run_id,
            run_dir=str(run_dir),
            steps=result.steps_done,
            resumed_from=result.resumed_from,
            processes=env_world_size(),  # torchrun's WORLD_SIZE; 1 without it
            train_bars=len(bars),
            config=config.to_dict(),
            environment=environment,
        )
    log.info("generator -> %s; MLflow run %s", args.out_dir / "generator.pt", mlflow_log.run_id)


def resume_mismatch_line(run_dir: Path, err: ResumeMismatch) -> str:
    settings = "; ".join(f"{key} {old!r} there, {new!r} now" for key, old, new in err.differences)
    return (
        f"{run_dir}: cannot resume: its checkpoint was trained with other settings ({settings}); "
        "restore them, or delete the folder to start again"
    )


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--splits-dir", type=Path, required=True)
    p.add_argument("--checkpoint-root", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    exit_with_parent()
    try:
        with SIGTERM_STOP.active():
            run_stage(main, parser())
    except Stopped as stop:
        log.warning("%s", stop)
        sys.exit(stop.code)
    except KeyboardInterrupt:  # Ctrl-C outside the training loop, or a second one inside it
        log.error("interrupted: the last checkpoint is kept; run the same command to resume")
        sys.exit(130)
