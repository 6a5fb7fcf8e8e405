"""The Fréchet distance of a smaller set is larger; generated and held-out sets of different
sizes are compared at one size, so that their ratio measures the bars, not the set sizes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics.frechet import compared_size, frechet_bootstrap, frechet_distance

DIM = 24


def _draw(seed: int, n: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, (n, DIM))


def test_sets_of_one_distribution_score_alike_at_one_size_and_not_at_their_own():
    reference, small, large = _draw(0, 600), _draw(1, 40), _draw(2, 600)
    own_small, own_large = frechet_distance(small, reference), frechet_distance(large, reference)
    assert own_small > 3 * own_large  # the bias this corrects: same bars, other sizes
    size = compared_size(small, large)
    assert size == compared_size(large, small) == 40
    small_point, _ = frechet_bootstrap(small, reference, 50, 0, size=size)
    large_point, _ = frechet_bootstrap(large, reference, 50, 0, size=size)
    assert small_point == pytest.approx(own_small)  # the smaller set is scored whole
    assert large_point == pytest.approx(small_point, rel=0.25)


def test_a_different_distribution_still_scores_farther_at_one_size():
    reference, real, shifted = _draw(0, 600), _draw(2, 600), _draw(3, 40, shift=0.5)
    size = compared_size(shifted, real)
    real_point, real_samples = frechet_bootstrap(real, reference, 50, 0, size=size)
    shifted_point, _ = frechet_bootstrap(shifted, reference, 50, 0, size=size)
    assert shifted_point > 1.5 * real_point
    # The resamples are of the compared size too: they spread around the small-set value.
    assert np.median(real_samples) > 2 * frechet_distance(real, reference)


def test_equal_sizes_and_no_held_out_set_change_nothing():
    reference, bars = _draw(0, 200), _draw(1, 50)
    assert compared_size(bars, _draw(2, 50)) is None
    assert compared_size(bars, None) is None
    point, samples = frechet_bootstrap(bars, reference, 20, 7)
    assert point == frechet_distance(bars, reference)
    again, same = frechet_bootstrap(bars, reference, 20, 7, size=None)
    assert again == point and np.array_equal(samples, same)
