"""report: a self-contained HTML listening report (the headline with how many bars were scored,
the spread of the scored bars beside real bars of the same class or region on one colour scale,
players, spectrograms, metrics, loss curves), logged to the training's MLflow run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.data.splits import load_split
from pipeline.grid import DEFAULT_BEATS_PER_BAR
from pipeline.monitoring.runs import recorded_run
from pipeline.report import BarComparison, build_report
from pipeline.report.spread import MAX_ROWS, spread_comparison
from pipeline.stages.common import StageError, log, run_stage, stage_parser


def main(args: argparse.Namespace, params: dict[str, Any]) -> None:
    run = _read_json(args.train_run, "training run record")
    metrics = _read_json(args.metrics, "metrics")
    losses_path = args.losses or args.train_run.parent / "losses.csv"
    losses = None
    if losses_path.is_file():
        losses = pd.read_csv(losses_path)
    else:
        log.warning("%s not found: the report has no loss curves", losses_path)
    if not args.samples_dir.is_dir():
        raise StageError(f"{args.samples_dir}: samples folder not found")

    title = f"bargan report: {Path(run.get('run_dir') or 'run').name}"
    comparison = _comparison(args.samples_dir, args.splits_dir, args.ceiling)
    index = build_report(
        args.out_dir, args.samples_dir, metrics, losses, run, title=title, comparison=comparison
    )
    n_audio = sum(1 for _ in (args.out_dir / "audio").rglob("*.wav"))
    log.info("report with %d audio files -> %s", n_audio, index)

    with recorded_run(run) as mlflow_log:
        mlflow_log.log_artifacts(args.out_dir, "report")
    log.info("logged the report to MLflow run %s (artifacts/report)", mlflow_log.run_id)


def _comparison(
    samples_dir: Path, splits_dir: Path | None, ceiling_file: Path | None = None
) -> BarComparison | None:
    """The spread of the scored bars (``generated.npz``) beside held-out real bars
    (``valid.npz``; ``train.npz`` stands in for classes no held-out bar has) and, with
    ``ceiling_file``, the same held-out bars through the model's own synthesis."""
    generated_file = samples_dir / "generated.npz"
    if splits_dir is None or not generated_file.is_file():
        log.warning("no splits folder or no %s: the report shows no real bars", generated_file)
        return None
    if not (splits_dir / "valid.npz").is_file():
        raise StageError(f"{splits_dir / 'valid.npz'}: held-out bars not found")
    real, real_labels, sample_rate = load_split(splits_dir / "valid.npz")
    with np.load(generated_file) as packed:
        generated = packed["bars"].astype(np.float32)
        labels = packed["labels"] if "labels" in packed.files else None
    if not len(generated):
        log.warning("%s holds no bars: the report shows no real bars", generated_file)
        return None
    listing = _read_json(samples_dir / "samples.json", "samples listing", required=False)
    info = _read_json(splits_dir / "info.json", "split info", required=False)
    train = None  # read only when a class shown has no held-out bar
    if labels is not None:
        n_classes = max(len(info.get("classes") or []), int(labels.max()) + 1)
        shown = np.arange(min(n_classes, MAX_ROWS))
        if not np.isin(shown, real_labels).all() and (splits_dir / "train.npz").is_file():
            train_bars, train_labels, _ = load_split(splits_dir / "train.npz")
            train = (train_bars, train_labels)
    ceiling = None
    if ceiling_file is not None:
        if not ceiling_file.is_file():
            raise StageError(f"{ceiling_file}: resynthesised held-out bars not found")
        with np.load(ceiling_file) as packed:
            ceiling = packed["bars"].astype(np.float32)
        if len(ceiling) != len(real):
            raise StageError(
                f"{ceiling_file}: {len(ceiling)} bars, but {splits_dir / 'valid.npz'} holds "
                f"{len(real)}: it was written for other splits"
            )
    return spread_comparison(
        generated,
        labels,
        real,
        real_labels,
        sample_rate,
        int(listing.get("beats_per_bar", DEFAULT_BEATS_PER_BAR)),
        class_names=info.get("classes"),
        train=train,
        ceiling=ceiling,
    )


def _read_json(path: Path, what: str, required: bool = True) -> dict[str, Any]:
    if not path.is_file():
        if not required:
            return {}
        raise StageError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise StageError(f"{path}: {what} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise StageError(f"{path}: {what} should be a JSON object")
    return data


def parser() -> argparse.ArgumentParser:
    p = stage_parser(__doc__)
    p.add_argument("--samples-dir", type=Path, required=True)
    p.add_argument(
        "--splits-dir", type=Path, default=None, help="held-out real bars (valid.npz) to show"
    )
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument(
        "--ceiling",
        type=Path,
        default=None,
        help="the held-out bars through the model's synthesis (evaluate's ceiling.npz) to show",
    )
    p.add_argument("--train-run", type=Path, required=True)
    p.add_argument(
        "--losses", type=Path, default=None, help="default: losses.csv beside --train-run"
    )
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
