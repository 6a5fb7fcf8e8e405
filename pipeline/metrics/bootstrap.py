"""Seeded bootstrap confidence intervals for set-to-set distances.

Resamples are drawn as multiplicity counts (how often each item is drawn), so a statistic can
weight precomputed quantities instead of copying data. Plug-in distances between sets grow when
resampling duplicates items (fewer distinct items, more noise), so the percentile interval is
re-centred on the point estimate: it is an interval for the value the same estimate would take on
another draw of sets of the same sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# The options of every metric with bootstrap intervals, and their defaults.
OPTIONS: dict[str, Any] = {"bootstrap": 200, "confidence": 0.95, "seed": 0}


def settings(options: Mapping[str, Any]) -> tuple[int, float, int]:
    """``(resamples, confidence, seed)`` from a metric's options (:data:`OPTIONS` by default)."""
    return (
        int(options.get("bootstrap", OPTIONS["bootstrap"])),
        float(options.get("confidence", OPTIONS["confidence"])),
        int(options.get("seed", OPTIONS["seed"])),
    )


def resample_counts(
    rng: np.random.Generator, n: int, n_boot: int, draws: int | None = None
) -> np.ndarray:
    """``[n_boot, n]`` multiplicities of a with-replacement resample of ``draws`` (default
    ``n``) of ``n`` items."""
    return rng.multinomial(n if draws is None else draws, np.full(n, 1.0 / n), size=n_boot)


def interval(
    point: float, samples: np.ndarray, confidence: float = 0.95, lower_bound: float | None = None
) -> tuple[float, float]:
    """Percentile interval of ``samples`` shifted by the bootstrap bias, mean(samples) - point."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0 or not np.isfinite(point):
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha]) - (samples.mean() - point)
    if lower_bound is not None:
        low, high = max(low, lower_bound), max(high, lower_bound)
    return float(low), float(high)


def summary(
    prefix: str,
    point: float,
    samples: np.ndarray,
    confidence: float = 0.95,
    lower_bound: float | None = None,
) -> dict[str, float]:
    """``{prefix: point, prefix.ci_low: .., prefix.ci_high: ..}``."""
    low, high = interval(point, samples, confidence, lower_bound)
    return {prefix: float(point), f"{prefix}.ci_low": low, f"{prefix}.ci_high": high}
