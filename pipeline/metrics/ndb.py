"""NDB and JSD over k-means bins of real bars (Richardson & Weiss, "On GANs and GMMs", 2018).

The training bars' fixed embedding (standardised) is clustered into ``k`` bins with k-means;
generated (and held-out real) bars are assigned to their nearest centre. A bin is statistically
different when a two-proportion z-test of its training share against the evaluated set's share
rejects equality at ``alpha`` (two-sided). NDB is the number of such bins (also given as a share of
``k``); JSD is the Jensen-Shannon divergence (base 2, so in [0, 1]) between the bin histograms.
Mode collapse shows as many different bins: the bins the generator never visits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm
from sklearn.cluster import KMeans

from pipeline.metrics.embeddings import embedded_sets

MIN_BARS_PER_BIN = 5


def proportion_z_test(
    counts_a: np.ndarray, n_a: int, counts_b: np.ndarray, n_b: int, alpha: float = 0.05
) -> np.ndarray:
    """Per bin: do the shares ``counts_a / n_a`` and ``counts_b / n_b`` differ (pooled z-test)?"""
    p_a, p_b = counts_a / n_a, counts_b / n_b
    pooled = (counts_a + counts_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p_a - p_b) / se, 0.0)
    return np.abs(z) > norm.ppf(1.0 - alpha / 2.0)


def ndb_jsd(
    reference: np.ndarray,
    evaluated: dict[str, np.ndarray],
    bins: int = 20,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """NDB/JSD of each evaluated embedding set against bins of ``reference`` embeddings."""
    k = int(max(2, min(bins, len(reference) // MIN_BARS_PER_BIN)))
    k = min(k, len(reference))
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(reference)
    train_counts = np.bincount(kmeans.labels_, minlength=k)
    result: dict[str, float] = {"bins": k, "alpha": alpha}
    for name, values in evaluated.items():
        counts = np.bincount(kmeans.predict(values), minlength=k)
        different = proportion_z_test(train_counts, len(reference), counts, len(values), alpha)
        jsd = jensenshannon(train_counts / len(reference), counts / len(values), base=2) ** 2
        result[f"{name}.ndb"] = int(different.sum())
        result[f"{name}.ndb_fraction"] = float(different.mean())
        result[f"{name}.jsd"] = float(jsd)
        result[f"{name}.bins_visited"] = int((counts > 0).sum())
    return result


def ndb_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """NDB/JSD on the fixed embedding, generated beside held-out real bars."""
    options = {**options, "embeddings": ["fixed"]}
    for _, reference, sets in embedded_sets(generated, train, valid, options):
        return ndb_jsd(
            reference,
            sets,
            bins=int(options.get("ndb_bins", 20)),
            alpha=float(options.get("ndb_alpha", 0.05)),
            seed=int(options.get("seed", 0)),
        )
    return {}
