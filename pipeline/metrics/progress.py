"""Metrics of the generator during training, so quality can be followed over checkpoints.

A cheap subset of the registry (BeatGAN novelty and the shift-tolerant nearest-neighbour
distance) on a fixed set of latents, against a fixed subset of the training bars, beside the
same numbers for held-out real bars. Rows go to MLflow per step and to a CSV that DVC plots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline.metrics.registry import compute_all, numeric_metrics
from pipeline.sample.generate import generate_bars, random_latents

PROGRESS_METRICS = ("novelty", "nearest_neighbour")
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
        grid: dict[str, Any],
        n_bars: int = 32,
        reference_bars: int = 256,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.train = _subset(train, reference_bars, rng)
        self.valid = _subset(valid, n_bars, rng) if valid is not None and len(valid) else None
        self.options = {**PROGRESS_OPTIONS, **grid}
        self.n_bars = n_bars
        self.seed = seed

    def __call__(self, step: int, generator: torch.nn.Module) -> dict[str, float]:
        latents = random_latents(generator, self.n_bars, self.seed)
        labels = None
        if getattr(generator, "num_classes", 0):
            labels = torch.arange(self.n_bars) % generator.num_classes
        bars = generate_bars(generator, latents, labels)
        metrics = compute_all(bars, self.train, self.valid, dict(self.options), PROGRESS_METRICS)
        return {"step": step, **numeric_metrics(metrics)}


def _subset(bars: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(bars) <= n:
        return bars
    return bars[np.sort(rng.choice(len(bars), n, replace=False))]
