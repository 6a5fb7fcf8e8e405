"""The classifier two-sample test: chance for one distribution, certainty for separated sets,
seeded, and honest about sets too small to test."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.synth import STYLES
from pipeline.metrics.two_sample import (
    MIN_BARS,
    SPEC,
    two_sample_accuracy,
    two_sample_scores,
    two_sample_test,
)
from tests.metric_ladder import drum_bars, white_noise

SR = 8000
DIM = 50


def gaussian(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)) + shift


@pytest.mark.parametrize(("n_x", "n_y"), [(35, 35), (256, 35), (10, 256)])
def test_two_sets_from_one_distribution_are_near_chance(n_x: int, n_y: int):
    result = two_sample_test(gaussian(n_x, 1), gaussian(n_y, 2), seed=0)
    assert 0.3 < result.accuracy < 0.65, result
    assert result.per_side == min(n_x, n_y)
    assert result.ci_low <= result.accuracy <= result.ci_high


def test_clearly_separated_sets_are_told_apart():
    x, y = gaussian(256, 1), gaussian(35, 2, shift=1.0)
    assert two_sample_accuracy(x, y, folds=5, repeats=5, seed=0) > 0.95
    # and a weaker separation scores between chance and certainty
    partial = two_sample_accuracy(x, gaussian(35, 2, shift=0.4), folds=5, repeats=5, seed=0)
    assert 0.65 < partial < 0.9


def test_the_same_seed_gives_the_same_test_and_another_seed_another_draw():
    x, y = gaussian(256, 1), gaussian(35, 2, shift=0.1)
    first, second = two_sample_test(x, y, seed=3), two_sample_test(x, y, seed=3)
    assert first == second
    other = two_sample_test(x, y, seed=4)
    assert other.repeat_accuracies != first.repeat_accuracies


def test_small_sets_use_fewer_folds_and_tiny_sets_are_refused():
    x, y = gaussian(MIN_BARS, 1), gaussian(30, 2, shift=3.0)
    result = two_sample_test(x, y, folds=5, repeats=3, seed=0)
    assert (result.per_side, result.folds) == (MIN_BARS, MIN_BARS)
    assert result.accuracy == 1.0  # every fold held out bars of both classes and got them right
    with pytest.raises(ValueError, match="at least 4 rows"):
        two_sample_test(gaussian(MIN_BARS - 1, 1), y)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.zeros((10, 5)), np.zeros((10, 6))),  # different feature counts
        (np.zeros(10), np.zeros((10, 1))),  # not [n, D]
        (np.full((10, 3), np.nan), np.zeros((10, 3))),
    ],
)
def test_mismatched_or_broken_features_are_an_error(x: np.ndarray, y: np.ndarray):
    with pytest.raises(ValueError, match="two-sample test"):
        two_sample_test(x, y)


@pytest.fixture(scope="module")
def drums() -> dict[str, np.ndarray]:
    """Training and held-out bars of every style, from different tracks."""
    train = np.concatenate([drum_bars(style, 1, 4, SR) for style in STYLES])
    valid = np.concatenate([drum_bars(style, 2, 3, SR) for style in STYLES])
    return {"train": train.astype(np.float32), "valid": valid.astype(np.float32)}


def test_the_metric_tells_noise_from_music_and_reports_its_real_reference(drums):
    options = {"sample_rate": SR, "beats_per_bar": 4, "bootstrap": 50, "seed": 0, "cache": {}}
    noise = white_noise((64, *drums["valid"].shape[1:]), 0.1)
    result = SPEC.run(noise, drums["train"], drums["valid"], options)
    assert result["generated.accuracy"] == 1.0
    assert result["valid.accuracy"] < 0.8  # two real sets are hard to tell apart
    assert result["valid.accuracy.ci_low"] <= result["valid.accuracy"]
    assert result["valid.accuracy"] <= result["valid.accuracy.ci_high"]
    per_side = len(drums["valid"])
    assert result["per_side"] == per_side and result["folds"] == 5
    assert result["repeats"] == SPEC.options["two_sample_repeats"]
    assert result["generated.count"] == 64
    # the reference is computed once per cache, whatever the generated set
    again = SPEC.run(noise[:32], drums["train"], drums["valid"], options)
    assert again["valid.accuracy"] == result["valid.accuracy"]
    assert sum(1 for key in options["cache"] if key[0] == "two_sample") == 1


@pytest.mark.parametrize("short", ["generated", "valid"])
def test_the_metric_skips_with_a_reason_when_a_set_is_tiny(drums, short: str):
    sets = {"generated": drums["valid"], "train": drums["train"], "valid": drums["valid"]}
    sets[short] = sets[short][: MIN_BARS - 1]
    result = two_sample_scores(sets["generated"], sets["train"], sets["valid"],
                               {"sample_rate": SR})  # fmt: skip
    assert set(result) == {"skipped"}
    assert short in result["skipped"] and "4 bars" in result["skipped"]
    assert two_sample_scores(drums["valid"], drums["train"], None, {"sample_rate": SR}) == {
        "skipped": "the two-sample test needs 4 bars per set, got {'valid': 0}"
    }


def recordings(n_recordings: int, bars_each: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bars that cluster by recording (each recording its own centre, drawn from one
    distribution), and each bar's recording."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((n_recordings, DIM))
    rows = np.repeat(centres, bars_each, axis=0) + 0.3 * rng.standard_normal(
        (n_recordings * bars_each, DIM)
    )
    return rows, np.repeat([f"{seed}-{r}" for r in range(n_recordings)], bars_each)


def test_folds_that_hold_out_whole_recordings_do_not_tell_recordings_apart():
    """Two real splits of other recordings from one distribution: with bars of a recording in
    both training and test folds the classifier learns the recordings (near certainty); with
    whole recordings held out it is near chance, as it should be."""
    x, groups_x = recordings(9, 12, seed=1)
    y, groups_y = recordings(3, 12, seed=2)
    mixed = two_sample_test(x, y, seed=0, n_boot=0)
    grouped = two_sample_test(x, y, seed=0, n_boot=0, groups_x=groups_x, groups_y=groups_y)
    assert mixed.accuracy > 0.9
    assert grouped.accuracy < 0.7 and grouped.folds == 3
    # a set that does differ is still told apart with grouped folds
    shifted = two_sample_test(x + 3.0, y, seed=0, n_boot=0, groups_x=groups_x, groups_y=groups_y)
    assert shifted.accuracy > 0.9


def test_a_recording_and_its_resynthesis_share_a_fold():
    y, groups = recordings(4, 10, seed=3)
    x = y + 0.01  # "resynthesised": paired with y, bar for bar
    paired = two_sample_test(x, y, seed=0, n_boot=0, groups_x=groups, groups_y=groups)
    assert paired.folds == 4 and 0.3 < paired.accuracy < 0.8
    with pytest.raises(ValueError, match="3 groups for 40 rows"):
        two_sample_test(x, y, groups_x=groups[:3])
