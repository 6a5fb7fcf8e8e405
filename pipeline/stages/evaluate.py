"""evaluate: metrics of the generated bars against the training set, with real-data references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.splits import load_split, split_recordings
from pipeline.environment import ENVIRONMENT_KEY, fingerprint
from pipeline.fileio import write_json_atomic, write_npz_atomic
from pipeline.grid import BarGrid
from pipeline.metrics.counts import COUNTS_KEY, bar_counts
from pipeline.metrics.headline import HEADLINE_KEY, Scorecard, compute_headline, markdown
from pipeline.metrics.references import (
    CEILING,
    REFERENCES_KEY,
    reference_bars,
    score_references,
)
from pipeline.metrics.registry import compute_all, numeric_metrics, option_defaults
from pipeline.metrics.vggish import VGGishWeightsError
from pipeline.models import generator_file
from pipeline.monitoring.mlflow_logger import MlflowBatchLogger
from pipeline.monitoring.runs import recorded_run
from pipeline.params import PRETRAINED_DIR, fetched_entry
from pipeline.stages.common import StageError, log, run_stage, stage_parser

MIN_GENERATED_BARS = 2  # a spread, a bootstrap interval and a Fréchet covariance need two


def metric_options(section: dict, grid: BarGrid) -> dict[str, Any]:
    """Typed metric options: every option a metric declares (its spec), from the evaluate
    params, and the bar grid."""
    return {**{key: section[key] for key in option_defaults()}, **grid.timing()}


def check_vggish_weights(params: dict[str, Any]) -> None:
    """Fail before any metric is computed when ``evaluate.vggish_weights`` names no file."""
    section = params["evaluate"]
    weights = section["vggish_weights"]
    if weights is None or "fad_vggish" not in section["metrics"] or Path(weights).is_file():
        return
    message = f"evaluate.vggish_weights: {weights} does not exist"
    entry = fetched_entry(weights)
    if entry is not None and entry in params["fetch"]["models"]:
        folder = Path(PRETRAINED_DIR) / entry
        held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        message += (
            f"; the fetch stage puts the files of {entry} (fetch.models) in {folder}, which "
            f"holds {held or 'nothing yet: run the fetch stage'}"
        )
    elif entry is not None:
        message += f"; add {entry} to fetch.models and the fetch stage puts its files there"
    raise StageError(message)


def load_generated(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The bars to score (float32 ``[n, channels, samples]``) and their labels (None when the
    file has none) from the sample stage's ``generated.npz``; at least
    :data:`MIN_GENERATED_BARS` of them."""
    if not path.is_file():
        raise StageError(f"{path}: the generated bars to score are missing (run the sample stage)")
    with np.load(path) as packed:
        if "bars" not in packed.files:
            raise StageError(f"{path}: holds no 'bars' array")
        generated = packed["bars"].astype(np.float32)
        labels = packed["labels"] if "labels" in packed.files else None
    if generated.ndim != 3:
        raise StageError(f"{path}: bars of shape {generated.shape}, not [n, channels, samples]")
    if len(generated) < MIN_GENERATED_BARS:
        raise StageError(
            f"{path}: holds {len(generated)} generated bar(s); the evaluate stage needs at least "
            f"{MIN_GENERATED_BARS} to score (sample.score_bars sets how many sample packs)"
        )
    if labels is not None and len(labels) != len(generated):
        raise StageError(f"{path}: {len(labels)} labels for {len(generated)} bars")
    return generated, labels


def main(args, params) -> None:
    section = params["evaluate"]
    check_vggish_weights(params)
    try:  # the generator file carries the bar grid (and the generator, for the real-time factor)
        model = generator_file.load(args.model, device="cpu")
    except generator_file.CheckpointError as err:
        raise StageError(str(err)) from err
    options = metric_options(section, model.grid)
    generated, generated_labels = load_generated(args.samples_dir / "generated.npz")
    train, train_labels, _ = load_split(args.splits_dir / "train.npz")
    valid, valid_labels, _ = load_split(args.splits_dir / "valid.npz")
    if generated.shape[1:] != train.shape[1:]:
        raise StageError(
            f"generated bars are {generated.shape[1:]} (channels, samples) but training bars are "
            f"{train.shape[1:]}: the model was trained on another grid"
        )
    if not len(valid):
        log.warning(
            "%s holds no bars (too few tracks to hold one out): the real-data reference "
            "numbers and the headline's comparisons are left out",
            args.splits_dir / "valid.npz",
        )
    options.update(
        train_labels=train_labels,
        valid_labels=valid_labels,
        generated_labels=generated_labels,
        train_groups=split_recordings(args.splits_dir, "train", len(train)),
        valid_groups=split_recordings(args.splits_dir, "valid", len(valid)),
        cache={},  # training and held-out features once, for the generated bars and the rungs
    )
    if "real_time_factor" in section["metrics"]:
        options["generator"] = model.generator
    try:
        metrics = compute_all(
            generated, train, valid if len(valid) else None, options, names=section["metrics"]
        )
        rungs = reference_bars(model.generator, valid, section["seed"]) if len(valid) else {}
        references = score_references(rungs, train, valid, options, names=section["metrics"])
    except VGGishWeightsError as err:
        raise StageError(f"evaluate.vggish_weights: {err}") from err
    card = compute_headline({**metrics, REFERENCES_KEY: references})
    counts = bar_counts(len(generated), len(train), len(valid))
    record = {
        HEADLINE_KEY: card.to_dict(),
        **metrics,
        REFERENCES_KEY: references,
        COUNTS_KEY: counts,
        ENVIRONMENT_KEY: fingerprint(),
    }
    write_json_atomic(args.out, record)
    write_npz_atomic(args.ceiling, bars=rungs.get(CEILING, valid), labels=valid_labels)
    write_json_atomic(args.headline, card.numbers())
    log.info(
        "scored %d generated bars against %d training and %d held-out bars; headline -> %s, "
        "every metric -> %s\n%s",
        *counts.values(),
        args.headline,
        args.out,
        markdown(card),
    )

    with recorded_run(json.loads(args.train_run.read_text())) as mlflow_log:
        log_metrics(mlflow_log, metrics, references, card)
        mlflow_log.log(0, {f"{COUNTS_KEY}_{k}": float(v) for k, v in counts.items()})
        mlflow_log.log_artifact(args.out)
        mlflow_log.log_artifact(args.samples_dir / "interpolation.wav", "audio")
        for path in sorted((args.samples_dir / "bars").glob("*.wav"))[:4]:
            mlflow_log.log_artifact(path, "audio/bars")
    log.info("logged metrics and audio to MLflow run %s", mlflow_log.run_id)


def log_metrics(
    mlflow_log: MlflowBatchLogger,
    metrics: dict[str, dict[str, Any]],
    references: dict[str, dict[str, dict[str, Any]]],
    card: Scorecard,
) -> None:
    """The headline numbers first (``headline.*``), its verdict as the ``verdict`` tag and its
    table as the run's description, then every metric (``metric_set_key``) and every reference
    rung's (``ceiling_metric_set_key``, ``noise_...``)."""
    mlflow_log.log(0, card.mlflow_metrics())
    mlflow_log.set_tags({"verdict": card.verdict, "mlflow.note.content": markdown(card)})
    numbers = numeric_metrics(metrics)
    mlflow_log.log(0, {k.replace(".", "_"): v for k, v in numbers.items()})
    for rung, rung_metrics in references.items():
        numbers = numeric_metrics(rung_metrics)
        mlflow_log.log(0, {f"{rung}_{k.replace('.', '_')}": v for k, v in numbers.items()})


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--samples-dir", type=Path, required=True)
    p.add_argument("--splits-dir", type=Path, required=True)
    p.add_argument("--train-run", type=Path, required=True)
    p.add_argument(
        "--model",
        type=Path,
        required=True,
        help="the generator file: the bar grid, and the generator for the real-time factor",
    )
    p.add_argument("--out", type=Path, required=True, help="every metric (JSON)")
    p.add_argument(
        "--headline", type=Path, required=True, help="the headline numbers (DVC's metrics file)"
    )
    p.add_argument(
        "--ceiling",
        type=Path,
        required=True,
        help="the held-out bars through the model's own synthesis, as scored (npz)",
    )
    return p


if __name__ == "__main__":
    run_stage(main, parser())
