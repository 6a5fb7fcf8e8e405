"""NDB and JSD over k-means bins of real bars (Richardson & Weiss, "On GANs and GMMs", 2018).

The training bars' features are clustered into ``k`` bins with k-means; generated (and held-out
real) bars are assigned to their nearest centre. A bin is statistically different when a pooled
two-proportion z-test of its training share against the evaluated set's share gives a two-sided
p-value below ``alpha``. NDB is the number of such bins (also given as a share of ``k``); JSD is
the Jensen-Shannon divergence between the bin histograms. Mode collapse shows as many different
bins: the bins the generator never visits. ``<set>.jsd`` is in bits (base 2, in [0, 1]: the unit
the headline band is declared in); ``<set>.jsd_nats`` is the same divergence in nats (natural
log, in [0, ln 2]), the number the reference ``ndb.py`` prints and LoopTest's tables give.

``evaluate.ndb_features`` picks the features and the binning:

- ``fixed``: our fixed embedding (standardised), k-means assignment by ``KMeans.predict``;
- ``looptest``: LoopTest's log-mel (:mod:`pipeline.metrics.looptest_mel`), binned as the
  reference ``ndb.py`` (Richardson's, in LoopTest's ``evaluation/NDB_JS``) with
  ``whitening=True``: per-dimension whitening by the training samples' mean and std + 1e-6,
  k-means (``max_iter=100``, 10 inits) on a random sixth of the dimensions when there are more
  than 1000, centres the means of each bin's whitened samples, nearest centre in L2 on those
  dimensions.

The z-test, NDB/K and ``jsd_nats`` are the reference's definitions in both; the tests check them,
and the looptest binning, against the vendored reference (tests/reference/ndb).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.cluster import KMeans

from pipeline.metrics import features
from pipeline.metrics.embeddings import embedded_sets
from pipeline.metrics.features import array_key, cached
from pipeline.metrics.looptest_mel import band_statistics, looptest_log_mels, looptest_vectors
from pipeline.metrics.spec import QUALITY, Headline, MetricSpec

MIN_BARS_PER_BIN = 5
NDB_FEATURES = ("fixed", "looptest")
LOOPTEST_BINS = 100  # compute_ndb_js.py's k
WHITENING_EPS = 1e-6  # the reference's ndb_eps
MAX_FULL_DIMS = 1000  # above this the reference clusters on a random sixth of the dimensions
_SHARED = "NDB/JSD (Richardson & Weiss 2018): pooled two-proportion z-test, NDB/K"
PROTOCOLS = {
    "fixed": f"{_SHARED}; jsd in bits (base 2), jsd_nats as the reference ndb.py (natural log); "
    "ours: on k-means bins of our fixed features of the training bars, not comparable with "
    "papers' numbers",
    "looptest": f"{_SHARED}; as LoopTest (evaluation/NDB_JS): its 80 x 320 log-mel at 44.1 kHz "
    "(MelGAN Audio2Mel, hop 275 for a 2 s bar), whitened k-means bins of the training bars as "
    "the reference ndb.py; jsd_nats is the reference's JS (natural log), jsd the same in bits; "
    f"k from evaluate.ndb_bins (LoopTest: {LOOPTEST_BINS}) and the training split as reference "
    "(LoopTest: 2,000 Looperman loops), so comparable with LoopTest's numbers only on their data "
    "and k",
}

OPTIONS: dict[str, Any] = {
    "ndb_features": "fixed",
    "ndb_bins": 20,
    "ndb_alpha": 0.05,
    "seed": 0,
    **features.OPTIONS,
}

Assign = Callable[[np.ndarray], np.ndarray]


def ndb_feature_name(options: dict[str, Any]) -> str:
    name = options.get("ndb_features", OPTIONS["ndb_features"])
    if name not in NDB_FEATURES:
        raise ValueError(
            f"evaluate.ndb_features is {name!r}: NDB's features must be one of {list(NDB_FEATURES)}"
        )
    return name


def proportion_z_test(
    counts_a: np.ndarray, n_a: int, counts_b: np.ndarray, n_b: int, alpha: float = 0.05
) -> np.ndarray:
    """Per bin: do the shares ``counts_a / n_a`` and ``counts_b / n_b`` differ? The reference's
    pooled z-test (two-sided p-value below ``alpha``); a bin empty in both is not different."""
    p_a, p_b = counts_a / n_a, counts_b / n_b
    pooled = (p_a * n_a + p_b * n_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p_a - p_b) / se, 0.0)
    return 2.0 * norm.cdf(-np.abs(z)) < alpha


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two histograms (not its square root) in nats, as the
    reference's ``jensen_shannon_divergence``."""
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        inside = a > 0
        return float(np.sum(a[inside] * np.log(a[inside] / m[inside])))

    return 0.5 * (kl(p) + kl(q))


def bin_count(reference_size: int, bins: int) -> int:
    """``bins``, fewer when the reference has under :data:`MIN_BARS_PER_BIN` bars per bin."""
    k = int(max(2, min(bins, reference_size // MIN_BARS_PER_BIN)))
    return min(k, reference_size)


def fixed_bins(reference: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, Assign]:
    """(training labels, assignment): k-means on the (standardised) embedding."""
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(reference)
    return kmeans.labels_, kmeans.predict


def looptest_bins(reference: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, Assign]:
    """(training labels, assignment) as the reference ``NDB(whitening=True)`` bins; its random
    choice of dimensions is ``np.random.RandomState(seed)``'s (the reference's is unseeded)."""
    d = reference.shape[1]
    mean = reference.mean(axis=0)
    std = reference.std(axis=0) + WHITENING_EPS
    used = d if d <= MAX_FULL_DIMS else d // 6
    dims = np.random.RandomState(seed).choice(d, used, replace=False)
    whitened = (reference[:, dims] - mean[dims]) / std[dims]
    kmeans = KMeans(n_clusters=k, max_iter=100, n_init=10, random_state=seed).fit(whitened)
    labels = kmeans.labels_
    centres = np.stack([whitened[labels == i].mean(axis=0) for i in range(k)])

    def assign(values: np.ndarray) -> np.ndarray:
        query = (values[:, dims] - mean[dims]) / std[dims]
        distances = np.stack([np.linalg.norm(query - c, axis=1) for c in centres], axis=1)
        return np.argmin(distances, axis=1)

    return labels, assign


BINNINGS = {"fixed": fixed_bins, "looptest": looptest_bins}


def ndb_jsd(
    reference: np.ndarray,
    evaluated: dict[str, np.ndarray],
    bins: int = 20,
    alpha: float = 0.05,
    seed: int = 0,
    binning: str = "fixed",
) -> dict[str, float]:
    """NDB/JSD of each evaluated feature set against bins of ``reference`` features."""
    k = bin_count(len(reference), bins)
    labels, assign = BINNINGS[binning](reference, k, seed)
    train_counts = np.bincount(labels, minlength=k)
    result: dict[str, float] = {"bins": k, "alpha": alpha}
    for name, values in evaluated.items():
        counts = np.bincount(assign(values), minlength=k)
        different = proportion_z_test(train_counts, len(reference), counts, len(values), alpha)
        nats = js_divergence(train_counts / len(reference), counts / len(values))
        result[f"{name}.ndb"] = int(different.sum())
        result[f"{name}.ndb_fraction"] = float(different.mean())
        result[f"{name}.jsd"] = nats / np.log(2.0)
        result[f"{name}.jsd_nats"] = nats
        result[f"{name}.bins_visited"] = int((counts > 0).sum())
    return result


def looptest_sets(
    generated: np.ndarray, train: np.ndarray, valid: np.ndarray | None, options: dict[str, Any]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(training vectors, {"generated", "valid"} vectors) of LoopTest's log-mel, every set
    band-normalised with the training bars' statistics."""
    rate = int(options["sample_rate"])

    def mels(bars: np.ndarray) -> np.ndarray:
        key = ("looptest_mel", *array_key(bars))
        return cached(options, key, lambda: looptest_log_mels(bars, rate))

    train_mels = mels(train)
    mean, std = band_statistics(train_mels)
    sets = {"generated": generated}
    if valid is not None and len(valid):
        sets["valid"] = valid
    vectors = {name: looptest_vectors(mels(bars), mean, std) for name, bars in sets.items()}
    return looptest_vectors(train_mels, mean, std), vectors


def ndb_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """NDB/JSD on the features ``ndb_features`` names, generated beside held-out real bars."""
    features = ndb_feature_name(options)
    settings = {
        "bins": int(options.get("ndb_bins", OPTIONS["ndb_bins"])),
        "alpha": float(options.get("ndb_alpha", OPTIONS["ndb_alpha"])),
        "seed": int(options.get("seed", OPTIONS["seed"])),
        "binning": features,
    }
    if features == "looptest":
        reference, sets = looptest_sets(generated, train, valid, options)
        return {**ndb_jsd(reference, sets, **settings), "protocol": PROTOCOLS[features]}
    for _, reference, sets in embedded_sets(
        generated, train, valid, {**options, "embeddings": ["fixed"]}
    ):
        return {**ndb_jsd(reference, sets, **settings), "protocol": PROTOCOLS[features]}
    return {}


SPEC = MetricSpec(
    name="ndb",
    function=ndb_scores,
    options=OPTIONS,
    protocol=PROTOCOLS["fixed"],  # the default; the result says which features were used
    role=QUALITY,
    headlines=(
        Headline("jsd", "lower", band=0.15),
        Headline("bins_visited", "higher", band=0.34, relative=True),
    ),
)
