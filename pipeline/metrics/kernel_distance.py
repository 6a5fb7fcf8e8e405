"""Kernel distance: squared MMD with KID's cubic polynomial kernel ``(x.y / d + 1)^3``.

The estimate is the unbiased one of Bińkowski et al. (2018): within-set kernel means leave out
each item's kernel with itself, so the expected value is 0 for two independent samples of the
same distribution and the estimate can be slightly negative. A set compared with *itself* is not
two independent samples; there the within-set and cross terms are identical sums, and the
estimate is 0 only when the cross term also leaves out the pairs of an item with itself
(``paired=True``: used when both sets hold the same items in the same order).

Bootstrap draws reuse the kernel matrices, weighting them by each item's multiplicity; pairs of
copies of the same item are left out of the within-set means, which keeps the estimate unbiased
under resampling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.metrics import bootstrap
from pipeline.metrics.embeddings import OPTIONS, bootstrapped_distances
from pipeline.metrics.spec import NOT_COMPARABLE, QUALITY, Headline, MetricSpec


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _within(kernel: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean kernel over pairs of distinct items, for each row of ``counts`` [B, n]."""
    total = np.einsum("bi,ij,bj->b", counts, kernel, counts)
    same = counts**2 @ np.diag(kernel)
    pairs = counts.sum(1) ** 2 - (counts**2).sum(1)
    return (total - same) / np.maximum(pairs, 1.0)


def _mmd(k_xx, k_yy, k_xy, counts_x, counts_y, paired: bool) -> np.ndarray:
    cross = np.einsum("bi,ij,bj->b", counts_x, k_xy, counts_y)
    if paired:
        cross = cross - (counts_x * counts_y) @ np.diag(k_xy)
        cross = cross / (counts_x.sum(1) * counts_y.sum(1) - (counts_x * counts_y).sum(1))
    else:
        cross = cross / (counts_x.sum(1) * counts_y.sum(1))
    return _within(k_xx, counts_x) + _within(k_yy, counts_y) - 2.0 * cross


def kernel_distance(x: np.ndarray, y: np.ndarray, paired: bool | None = None) -> float:
    """Unbiased squared MMD (KID) between embeddings ``x`` [n, D] and ``y`` [m, D]."""
    point, _ = kernel_bootstrap(x, y, 0, 0, paired)
    return point


def kernel_bootstrap(
    x: np.ndarray, y: np.ndarray, n_boot: int, seed: int, paired: bool | None = None
) -> tuple[float, np.ndarray]:
    """Point estimate and ``n_boot`` resampled estimates (``paired`` defaults to ``x is y``)."""
    if paired is None:
        paired = x is y
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if paired and x.shape != y.shape:
        raise ValueError("paired sets must have the same shape")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    ones_x, ones_y = np.ones((1, len(x))), np.ones((1, len(y)))
    point = float(_mmd(k_xx, k_yy, k_xy, ones_x, ones_y, paired)[0])
    if n_boot <= 0:
        return point, np.zeros(0)
    rng = np.random.default_rng(seed)
    counts_x = bootstrap.resample_counts(rng, len(x), n_boot).astype(np.float64)
    # Paired sets are one set: resample the pairs together.
    counts_y = (
        counts_x if paired else bootstrap.resample_counts(rng, len(y), n_boot).astype(np.float64)
    )
    return point, _mmd(k_xx, k_yy, k_xy, counts_x, counts_y, paired)


def kernel_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """``generated.{embedding}`` / ``valid.{embedding}``: KID to the training bars, each with
    ``.ci_low`` / ``.ci_high``; the bootstrap size and confidence."""

    def kid(embedded: np.ndarray, reference: np.ndarray, n_boot: int, seed: int):
        same = embedded.shape == reference.shape and np.array_equal(embedded, reference)
        return kernel_bootstrap(embedded, reference, n_boot, seed, paired=same)

    return bootstrapped_distances(generated, train, valid, options, kid)


SPEC = MetricSpec(
    name="kernel_distance",
    function=kernel_scores,
    options=OPTIONS,
    protocol="ours: KID's unbiased polynomial-kernel MMD² (Bińkowski et al. 2018) on the "
    f"Fréchet embeddings; {NOT_COMPARABLE}",
    role=QUALITY,
    headlines=(Headline("fixed", "lower"), Headline("classifier", "lower")),
)
