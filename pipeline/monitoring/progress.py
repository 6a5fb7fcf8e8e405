"""Metrics of the generator during training, so quality can be followed over checkpoints.

Two cheap metrics (BeatGAN novelty and the shift-tolerant nearest-neighbour distance), imported
by their modules and not through the registry, so the train stage's code holds no evaluation-only
metric, on a fixed set of latents, against a fixed subset of the training bars, beside the
same numbers for held-out real bars. Rows go to MLflow per step and to a CSV that DVC plots.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.fileio import write_csv_atomic
from pipeline.grid import BarGrid
from pipeline.metrics import nearest_neighbour, novelty
from pipeline.metrics.spec import compute, numeric_metrics
from pipeline.monitoring.mlflow_logger import MlflowBatchLogger
from pipeline.sample.generate import class_labels, generate_bars, random_latents

PROGRESS_FILE = "progress.csv"
PROGRESS_METRICS = (novelty.SPEC, nearest_neighbour.SPEC)
# Fixed diagnostic settings (the evaluate stage's params govern the final metrics).
PROGRESS_OPTIONS: dict[str, Any] = {
    "novelty_thresholds": [0.1],
    "chunk_size": 256,
    "n_mels": 64,
    "max_shift_16ths": 2,
    "reference_quantile": 0.5,
}


class ProgressMetrics:
    """``metrics(step, generator) -> {"step": step, "novelty.generated.median_score": ...}``."""

    def __init__(
        self,
        train: np.ndarray,
        valid: np.ndarray | None,
        grid: BarGrid,
        class_counts: list[int] | None = None,
        n_bars: int = 32,
        reference_bars: int = 256,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        # a conditional generator's bars in the training bars' class mix (class_mix)
        self.class_counts = class_counts
        self.train = _subset(train, reference_bars, rng)
        self.valid = _subset(valid, n_bars, rng) if valid is not None and len(valid) else None
        self.options = {**PROGRESS_OPTIONS, **grid.timing()}
        self.n_bars = n_bars
        self.seed = seed

    def __call__(self, step: int, generator: torch.nn.Module) -> dict[str, float]:
        latents = random_latents(generator, self.n_bars, self.seed)
        labels = class_labels(generator, self.n_bars, class_counts=self.class_counts)
        bars = generate_bars(generator, latents, labels)
        metrics = compute(PROGRESS_METRICS, bars, self.train, self.valid, self.options)
        return {"step": step, **numeric_metrics(metrics)}


def _subset(bars: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(bars) <= n:
        return bars
    return bars[np.sort(rng.choice(len(bars), n, replace=False))]


def progress_recorder(
    path: Path, metrics: ProgressMetrics, mlflow_log: MlflowBatchLogger
) -> Callable[[int, nn.Module], None]:
    """Append each preview's metrics to ``path`` (kept in the run folder, so a resumed run keeps
    its history) and log them to MLflow as ``progress.*`` at that step."""

    def record(step: int, generator: nn.Module) -> None:
        row = metrics(step, generator)
        table = read_progress(path)
        table = pd.concat([table[table.step != step], pd.DataFrame([row])], ignore_index=True)
        table["step"] = table.step.astype(int)
        write_csv_atomic(path, table.sort_values("step"))
        mlflow_log.log(step, {f"progress.{k}": v for k, v in row.items() if k != "step"})

    return record


def read_progress(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame({"step": []})
