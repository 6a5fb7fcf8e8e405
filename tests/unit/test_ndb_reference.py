"""Our NDB/JSD against the reference (Richardson & Weiss's ndb.py as LoopTest shipped it, vendored
under tests/reference/ndb): the same features give the same bins, NDB and JS divergence.

The reference calls ``KMeans(..., n_jobs=-1)`` (gone since scikit-learn 1.0) and draws the
dimensions it clusters on from the global ``np.random``; the test gives it a seeded KMeans and
seeds ``np.random`` so both sides make the same random choices.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans

from pipeline.metrics.ndb import (
    fixed_bins,
    js_divergence,
    looptest_bins,
    ndb_jsd,
    proportion_z_test,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
SEED = 3
K = 8


@pytest.fixture(scope="module")
def reference():
    """The vendored ndb module, with a KMeans that takes its ``n_jobs`` and is seeded."""
    sys.path.insert(0, str(REFERENCE))
    try:
        from ndb import ndb
    finally:
        sys.path.remove(str(REFERENCE))

    def seeded_kmeans(n_clusters: int, max_iter: int, n_jobs: int) -> KMeans:
        return KMeans(n_clusters=n_clusters, max_iter=max_iter, n_init=10, random_state=SEED)

    ndb.KMeans = seeded_kmeans
    return ndb


def mixture(n: int, dim: int, seed: int, clusters: tuple[int, ...] = tuple(range(K))):
    """``n`` samples of a K-cluster Gaussian mixture in ``dim`` dimensions (same centres for
    every seed), drawn only from ``clusters``; every dimension has its own scale and offset."""
    centres = 2.0 * np.random.default_rng(0).standard_normal((K, dim))
    scale = np.linspace(0.5, 3.0, dim)
    rng = np.random.default_rng(seed)
    which = rng.choice(np.asarray(clusters), n)
    return (centres[which] + rng.standard_normal((n, dim))) * scale + 7.0


def uniform(n: int, dim: int, seed: int, high: float = 1.0) -> np.ndarray:
    """The reference's own demo data (uniform in [0, high) per dimension), scaled per dimension:
    no clusters, so the bins depend on which dimensions k-means sees."""
    scale = np.linspace(0.5, 3.0, dim)
    return np.random.default_rng(seed).uniform(high=high, size=(n, dim)) * scale + 7.0


def reference_ndb(reference, train: np.ndarray):
    np.random.seed(SEED)  # the reference's dimension choice: ours is RandomState(SEED)'s
    return reference.NDB(training_data=train, number_of_bins=K, whitening=True)


@pytest.mark.parametrize("dim", [1200, 40], ids=["sixth_of_dims", "all_dims"])
@pytest.mark.parametrize("data", ["mixture", "uniform"])
def test_looptest_binning_ndb_and_jsd_match_the_reference(reference, dim, data):
    if data == "mixture":
        train = mixture(200, dim, seed=1)
        queries = {
            "held_out": mixture(150, dim, seed=2),
            "collapsed": mixture(150, dim, seed=3, clusters=(0, 1)),
            "shifted": mixture(150, dim, seed=4) + 0.3,
        }
    else:
        train = uniform(200, dim, seed=1)
        queries = {
            "held_out": uniform(150, dim, seed=2),
            "collapsed": uniform(150, dim, seed=3, high=0.75),  # the reference demo's "Bad"
            "shifted": uniform(150, dim, seed=4, high=0.9),  # and its "Good"
        }
    theirs = reference_ndb(reference, train)
    ours = ndb_jsd(train, queries, bins=K, alpha=0.05, seed=SEED, binning="looptest")
    assert ours["bins"] == K
    labels, assign = looptest_bins(train, K, SEED)
    assert len(theirs.used_d_indices) == (dim // 6 if dim > 1000 else dim)
    # Bins are the same up to the reference's ordering by size.
    np.testing.assert_allclose(
        np.sort(np.bincount(labels, minlength=K))[::-1] / len(train), theirs.bin_proportions
    )
    ndbs = {}
    for name, query in queries.items():
        result = theirs.evaluate(query)
        mapping = {}
        for our_bin, their_bin in zip(assign(query), result["Bin-Assignment"], strict=True):
            assert mapping.setdefault(our_bin, their_bin) == their_bin, name
        assert ours[f"{name}.ndb"] == result["NDB"], name
        assert ours[f"{name}.ndb_fraction"] == result["NDB"] / theirs.number_of_bins
        assert ours[f"{name}.jsd_nats"] == pytest.approx(result["JS"], abs=1e-9), name
        assert ours[f"{name}.jsd"] == pytest.approx(result["JS"] / np.log(2), abs=1e-9), name
        ndbs[name] = result["NDB"]
    assert ndbs["collapsed"] > ndbs["held_out"]  # not trivially equal


def test_fixed_binning_counts_and_divides_as_the_reference(reference):
    """On its own bins, the fixed route's NDB and JSD are the reference's statistics."""
    train = mixture(200, 12, seed=1)
    query = mixture(120, 12, seed=3, clusters=(0, 1, 2))
    ours = ndb_jsd(train, {"generated": query}, bins=K, alpha=0.05, seed=SEED, binning="fixed")
    labels, assign = fixed_bins(train, K, SEED)
    p = np.bincount(labels, minlength=K) / len(train)
    q = np.bincount(assign(query), minlength=K) / len(query)
    different = reference.NDB.two_proportions_z_test(p, len(train), q, len(query), 0.05)
    js = reference.NDB.jensen_shannon_divergence(p, q)
    assert ours["generated.ndb"] == np.count_nonzero(different) > 0
    assert ours["generated.jsd_nats"] == pytest.approx(js, abs=1e-12)
    assert ours["generated.jsd"] == pytest.approx(js / np.log(2), abs=1e-12)  # bits


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_z_test_and_js_divergence_are_the_references(reference, alpha):
    rng = np.random.default_rng(5)
    n_a, n_b = 400, 90
    counts_a = rng.multinomial(n_a, rng.dirichlet(np.ones(20)))
    counts_b = rng.multinomial(n_b, rng.dirichlet(np.ones(20)))
    counts_b[:3] = 0  # bins the evaluated set never visits
    p, q = counts_a / n_a, counts_b / n_b
    ours = proportion_z_test(counts_a, n_a, counts_b, n_b, alpha)
    theirs = reference.NDB.two_proportions_z_test(p, n_a, q, n_b, significance_level=alpha)
    np.testing.assert_array_equal(ours, theirs)
    assert 0 < ours.sum() < len(ours)
    js = js_divergence(p, q)
    assert js == pytest.approx(reference.NDB.jensen_shannon_divergence(p, q), abs=1e-12)
    assert 0 < js <= np.log(2)
