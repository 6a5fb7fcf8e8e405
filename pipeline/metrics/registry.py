"""Metric registry: name -> function(generated, train, valid, options) -> flat dict of numbers.

Every metric reports the generated bars beside the same number for held-out real bars (``valid``
against ``train``), so each value has a real-data reference. ``options`` carries typed values
(stages read params.yaml, the library never does):

- grid: ``sample_rate``, ``bpm``, ``beats_per_bar``;
- novelty: ``novelty_thresholds``, ``chunk_size``; nearest neighbour: ``n_mels``,
  ``max_shift_16ths``, ``reference_quantile``;
- distances: ``embeddings`` (names in :data:`pipeline.metrics.embeddings.EMBEDDINGS`),
  ``bootstrap``, ``confidence``, ``seed``; NDB: ``ndb_bins``, ``ndb_alpha``;
- labels (optional; metrics that need them skip): ``train_labels``, ``valid_labels``,
  ``generated_labels``; classifier: ``classifier_hidden``;
- rhythm: ``tempo_tolerance``, ``downbeat_tolerance_ms``; seams: ``click_window_ms``,
  ``click_highpass_hz``, ``click_threshold_db``;
- real-time factor (skips without a generator): ``generator``, ``rtf_batch_sizes``,
  ``rtf_repeats``, ``rtf_device``.

A metric that cannot run here returns an empty dict and is left out of the result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pipeline.metrics.classifier import classifier_scores
from pipeline.metrics.frechet import frechet_scores
from pipeline.metrics.kernel_distance import kernel_scores
from pipeline.metrics.ndb import ndb_scores
from pipeline.metrics.nearest_neighbour import nearest_neighbour_scores
from pipeline.metrics.novelty import beatgan_novelty
from pipeline.metrics.realtime import real_time_factor_scores
from pipeline.metrics.rhythm import rhythm_scores
from pipeline.metrics.seams import seam_click_scores
from pipeline.params import flatten

log = logging.getLogger("bargan")

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]], dict[str, float]]

METRICS: dict[str, Metric] = {
    "novelty": beatgan_novelty,
    "nearest_neighbour": nearest_neighbour_scores,
    "frechet": frechet_scores,
    "kernel_distance": kernel_scores,
    "ndb": ndb_scores,
    "classifier": classifier_scores,
    "rhythm": rhythm_scores,
    "seam_clicks": seam_click_scores,
    "real_time_factor": real_time_factor_scores,
}


def _finite_or_none(value: Any) -> Any:
    """NaN/inf are not JSON numbers: they become null (and are not logged to MLflow)."""
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def compute_all(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
    names: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Run the named metrics (all by default); features are computed once and shared."""
    names = list(names or METRICS)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {sorted(METRICS)}")
    # Features, embeddings and searches are cached by array identity for this call only.
    options = {**options, "cache": {}}
    results: dict[str, dict[str, float]] = {}
    for name in names:
        values = METRICS[name](generated, train, valid, options)
        if not values:
            log.info("metric %s skipped: what it needs (labels, generator) is not available", name)
            continue
        results[name] = {key: _finite_or_none(value) for key, value in values.items()}
    return results


def numeric_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """:func:`compute_all`'s result as flat ``{"metric.key": number}``, for logging and tables;
    nulls (non-finite values) and non-numbers are left out."""
    return {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float)}
