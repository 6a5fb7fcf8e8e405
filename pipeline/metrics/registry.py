"""Metric registry: name -> function(generated, train, valid, options) -> flat dict of numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.metrics.novelty import nearest_scores, novelty_summary

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]], dict[str, float]]


def beatgan_novelty(generated, train, valid, options) -> dict[str, float]:
    """BeatGAN novelty of generated bars, beside the same score for held-out real bars."""
    threshold = options["novelty_threshold"]
    chunk = options["chunk_size"]
    scores, _ = nearest_scores(generated, train, chunk_size=chunk)
    result = {f"generated.{k}": v for k, v in novelty_summary(scores, threshold).items()}
    result["generated.count"] = len(scores)
    if valid is not None and len(valid):
        reference, _ = nearest_scores(valid, train, chunk_size=chunk)
        result.update({f"valid.{k}": v for k, v in novelty_summary(reference, threshold).items()})
        result["valid.count"] = len(reference)
    return result


METRICS: dict[str, Metric] = {"novelty": beatgan_novelty}


def compute_all(generated, train, valid, options, names=None) -> dict[str, dict[str, float]]:
    names = list(names or METRICS)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {sorted(METRICS)}")
    return {name: METRICS[name](generated, train, valid, options) for name in names}
