"""The inception score, its bootstrap interval and WaveGAN's split statistic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.metrics.inception import (
    bootstrap_scores,
    inception_score,
    inception_summary,
    split_scores,
)


def by_hand(rows: list[list[float]]) -> float:
    """exp of the mean KL divergence of each row from the rows' mean, written out."""
    n, k = len(rows), len(rows[0])
    marginal = [sum(row[y] for row in rows) / n for y in range(k)]
    kl = [sum(p * math.log(p / marginal[y]) for y, p in enumerate(row) if p > 0) for row in rows]
    return math.exp(sum(kl) / n)


def test_the_score_is_the_definition():
    rows = [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.25, 0.25], [0.05, 0.05, 0.9]]
    assert inception_score(np.array(rows)) == pytest.approx(by_hand(rows), rel=1e-9)
    assert inception_score(np.eye(4)) == pytest.approx(4.0)  # confident and balanced: K
    assert inception_score(np.tile([0.2, 0.8], (5, 1))) == pytest.approx(1.0)  # one answer
    assert inception_score(np.full((6, 3), 1 / 3)) == pytest.approx(1.0)  # uninformative


def test_splits_are_contiguous_groups_as_wavegan_scores_them():
    rows = np.eye(2)[[0, 1, 0, 0, 1, 1, 0]]
    scores = split_scores(rows[:6], 3)  # groups {0,1}: 2, {0,0}: 1, {1,1}: 1
    np.testing.assert_allclose(scores, [2.0, 1.0, 1.0])
    np.testing.assert_allclose(split_scores(rows[:7], 3), scores)  # the remainder is left out
    assert split_scores(rows[:5], 3) is None  # groups of one say nothing
    with pytest.raises(ValueError, match=r"evaluate\.inception_splits"):
        split_scores(rows[:6], 0)


def test_the_summary_reports_the_split_mean_and_population_std_of_shuffled_rows():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(3, 0.3), size=40)
    options = {"bootstrap": 100, "confidence": 0.9, "seed": 7, "inception_splits": 4}
    result = inception_summary("generated.inception_score", p, options)
    assert result["generated.inception_score"] == pytest.approx(inception_score(p))
    scores = split_scores(p[np.random.default_rng(7).permutation(40)], 4)
    assert result["generated.inception_score.split_mean"] == pytest.approx(np.mean(scores))
    assert result["generated.inception_score.split_std"] == pytest.approx(np.std(scores))
    # ten rows per split have more spread than a score of all forty
    assert result["generated.inception_score.split_mean"] < inception_score(p)
    low, high = (result[f"generated.inception_score.ci_{end}"] for end in ("low", "high"))
    assert 1.0 <= low < result["generated.inception_score"] < high
    assert inception_summary("x", p, options) == inception_summary("x", p, options)
    assert "x.split_mean" not in inception_summary("x", p[:7], options)


def test_bootstrap_resamples_score_as_the_resampled_rows_do():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=12)
    scores = bootstrap_scores(p, 5, seed=1)
    counts = np.random.default_rng(1).multinomial(12, np.full(12, 1 / 12), size=5)
    for score, count in zip(scores, counts, strict=True):
        assert score == pytest.approx(inception_score(np.repeat(p, count, axis=0)), rel=1e-9)
