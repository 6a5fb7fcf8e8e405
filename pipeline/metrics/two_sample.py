"""Classifier two-sample test (C2ST, Lopez-Paz & Oquab 2017): can a classifier tell two sets apart?

A linear classifier (ridge regression on the labels -1/+1, i.e. regularised least squares:
closed form, deterministic, well under a millisecond per fit) on standardised fixed features
(:mod:`pipeline.metrics.features`) learns to tell one set of bars from the held-out real bars.
Its accuracy on bars it was not trained on, by stratified k-fold cross-validation with the
classes balanced (the larger set subsampled, seeded, afresh each repeat; accuracies averaged over
repeats), is the score: 0.5 means indistinguishable, 1.0 always told apart. Reported for the
generated bars against the held-out real bars, and as the real-vs-real reference for the
training bars (other tracks) against the same held-out bars, both at the same number of bars per
side so the two accuracies are comparable. With few bars per side, two sets from one
distribution score a little below 0.5 on average: holding a bar out moves its class's training
mean away from it.

The interval is a seeded bootstrap over bars of their out-of-fold correctness (each bar's share
of repeats in which it was classified correctly): the spread from which bars were tested, not
from retraining.

:func:`two_sample_test` and :func:`two_sample_accuracy` take any two feature matrices, so other
code can ask the same question of other pairs (resynthesised real bars against real, noise
against real).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.metrics import bootstrap, features
from pipeline.metrics.features import array_key, cached, features_for
from pipeline.metrics.spec import NOT_COMPARABLE, QUALITY, Headline, MetricSpec

MIN_BARS = 4  # per side: fewer cannot fill two folds with both classes and still train
RIDGE = 0.1  # the ridge penalty per feature (standardised features)
DEFAULT_FOLDS = 5
DEFAULT_REPEATS = 10

OPTIONS: dict[str, Any] = {
    "two_sample_folds": DEFAULT_FOLDS,
    "two_sample_repeats": DEFAULT_REPEATS,
    **bootstrap.OPTIONS,
    **features.OPTIONS,
}


@dataclass(frozen=True)
class TwoSampleTest:
    """Cross-validated accuracy (mean over repeats) with its bootstrap interval (NaN without
    resamples), each repeat's accuracy, the bars per side and the folds used."""

    accuracy: float
    ci_low: float
    ci_high: float
    repeat_accuracies: tuple[float, ...]
    per_side: int
    folds: int


def _checked(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"two-sample test: features must be [n, D] and [m, D] with the same D, got "
            f"{x.shape} and {y.shape}"
        )
    if min(len(x), len(y)) < MIN_BARS:
        raise ValueError(
            f"two-sample test: each set needs at least {MIN_BARS} rows, got {len(x)} and {len(y)}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("two-sample test: features must be finite")
    return x, y


def _fit_predict(train_x: np.ndarray, train_y: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Labels (0/1) for ``test`` from a ridge classifier of ``train_x`` (0) against ``train_y``
    (1), standardised on the training rows."""
    rows = np.concatenate([train_x, train_y])
    mean, std = rows.mean(0), rows.std(0)
    std[std < 1e-8] = 1.0
    rows = (rows - mean) / std
    targets = np.r_[-np.ones(len(train_x)), np.ones(len(train_y))]
    offset = targets.mean()
    n, d = rows.shape
    # The penalty scales with the squared norm of a standardised row (d), so its strength does
    # not depend on the number of features; solved in the smaller of the two Gram matrices.
    penalty = RIDGE * d
    if d <= n:
        weights = np.linalg.solve(rows.T @ rows + penalty * np.eye(d), rows.T @ (targets - offset))
    else:
        weights = rows.T @ np.linalg.solve(rows @ rows.T + penalty * np.eye(n), targets - offset)
    return (((test - mean) / std) @ weights + offset > 0).astype(np.int64)


def _folds_of(
    picked: np.ndarray,
    groups: np.ndarray | None,
    folds: int,
    fold_of_group: dict,
    rng: np.random.Generator,
) -> np.ndarray:
    """The fold of each picked row: rows spread evenly over the folds or, with ``groups``, the
    fold ``fold_of_group`` deals each group (a recording's bars all in one fold)."""
    if groups is None:
        return rng.permutation(np.arange(len(picked)) % folds)
    return np.array([fold_of_group[name] for name in groups[picked]], dtype=np.int64)


def _deal_groups(names: list[np.ndarray], folds: int, rng: np.random.Generator) -> dict:
    """Each group name of either side to a fold, in turn after a shuffle: a group both sides
    share (a recording and its resynthesis) lands in one fold."""
    unique = np.unique(np.concatenate(names)) if names else np.zeros(0)
    folds_dealt = rng.permutation(len(unique)) % folds
    return {name: int(f) for name, f in zip(unique, folds_dealt, strict=True)}


def _one_repeat(
    x: np.ndarray,
    y: np.ndarray,
    per_side: int,
    folds: int,
    rng: np.random.Generator,
    groups_x: np.ndarray | None = None,
    groups_y: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One balanced cross-validation: the rows of ``x`` and ``y`` drawn, and whether each was
    classified correctly when its fold was held out."""
    picked_x = rng.choice(len(x), per_side, replace=False)
    picked_y = rng.choice(len(y), per_side, replace=False)
    # Each class spread over the folds: every fold tests and trains on both classes.
    names = [g[p] for g, p in ((groups_x, picked_x), (groups_y, picked_y)) if g is not None]
    dealt = _deal_groups(names, folds, rng)
    fold_x = _folds_of(picked_x, groups_x, folds, dealt, rng)
    fold_y = _folds_of(picked_y, groups_y, folds, dealt, rng)
    right_x = np.zeros(per_side, bool)
    right_y = np.zeros(per_side, bool)
    for fold in range(folds):
        test_x, test_y = fold_x == fold, fold_y == fold
        predicted = _fit_predict(
            x[picked_x[~test_x]],
            y[picked_y[~test_y]],
            np.concatenate([x[picked_x[test_x]], y[picked_y[test_y]]]),
        )
        right_x[test_x] = predicted[: test_x.sum()] == 0
        right_y[test_y] = predicted[test_x.sum() :] == 1
    return picked_x, right_x, picked_y, right_y


def _item_scores(n: int, picks: list[np.ndarray], rights: list[np.ndarray]) -> np.ndarray:
    """Each row's share of correct out-of-fold predictions over the repeats that drew it."""
    hits, seen = np.zeros(n), np.zeros(n)
    for picked, right in zip(picks, rights, strict=True):
        np.add.at(hits, picked, right)
        np.add.at(seen, picked, 1.0)
    return hits[seen > 0] / seen[seen > 0]


def two_sample_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = DEFAULT_FOLDS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    per_side: int | None = None,
    n_boot: int = bootstrap.OPTIONS["bootstrap"],
    confidence: float = bootstrap.OPTIONS["confidence"],
    groups_x: np.ndarray | None = None,
    groups_y: np.ndarray | None = None,
) -> TwoSampleTest:
    """C2ST of feature rows ``x`` [n, D] against ``y`` [m, D]: ``per_side`` rows of each
    (default: the smaller set's size) drawn afresh each of ``repeats`` times, accuracy by
    ``folds``-fold cross-validation (fewer when a side has fewer rows, or groups, than folds).

    ``groups_x`` / ``groups_y``: a group per row (the recording a bar was cut from). Bars of one
    recording resemble each other far more than bars of two recordings, so with rows of a group
    in both the training and the test folds the classifier tells recordings apart, not sets:
    two real splits of other tracks scored 0.98. Grouped, each fold holds out whole recordings;
    a side with a single group is not grouped."""
    x, y = _checked(x, y)
    for g, rows in ((groups_x, x), (groups_y, y)):
        if g is not None and len(g) != len(rows):
            raise ValueError(f"two-sample test: {len(g)} groups for {len(rows)} rows")
    groups_x, groups_y = (
        None if g is None or len(np.unique(g)) < 2 else np.asarray(g) for g in (groups_x, groups_y)
    )
    if folds < 2 or repeats < 1:
        raise ValueError(
            f"two-sample test: folds must be >= 2, repeats >= 1 (got {folds}, {repeats})"
        )
    per_side = min(len(x), len(y)) if per_side is None else per_side
    if not MIN_BARS <= per_side <= min(len(x), len(y)):
        raise ValueError(
            f"two-sample test: per_side {per_side} must be in [{MIN_BARS}, {min(len(x), len(y))}]"
        )
    folds = min(
        folds, per_side, *(len(np.unique(g)) for g in (groups_x, groups_y) if g is not None)
    )
    rng = np.random.default_rng(seed)
    runs = [_one_repeat(x, y, per_side, folds, rng, groups_x, groups_y) for _ in range(repeats)]
    accuracies = tuple(float((rx.sum() + ry.sum()) / (2 * per_side)) for _, rx, _, ry in runs)
    point = float(np.mean(accuracies))
    low = high = float("nan")
    if n_boot > 0:
        scores_x = _item_scores(len(x), [r[0] for r in runs], [r[1] for r in runs])
        scores_y = _item_scores(len(y), [r[2] for r in runs], [r[3] for r in runs])
        samples = 0.5 * (
            bootstrap.resample_counts(rng, len(scores_x), n_boot) @ scores_x / len(scores_x)
            + bootstrap.resample_counts(rng, len(scores_y), n_boot) @ scores_y / len(scores_y)
        )
        low, high = bootstrap.interval(point, samples, confidence, lower_bound=0.0)
        low, high = min(low, 1.0), min(high, 1.0)
    return TwoSampleTest(point, low, high, accuracies, per_side, folds)


def two_sample_accuracy(
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = DEFAULT_FOLDS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> float:
    """The cross-validated accuracy of :func:`two_sample_test` alone (0.5: indistinguishable)."""
    return two_sample_test(x, y, folds=folds, repeats=repeats, seed=seed, n_boot=0).accuracy


def two_sample_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """``generated.accuracy``: generated against held-out real bars; ``valid.accuracy``: the
    training bars against the same held-out bars (the real-vs-real reference); each with
    ``.ci_low`` / ``.ci_high``. Skipped when a set has fewer than :data:`MIN_BARS` bars.
    ``options``' ``train_groups`` / ``valid_groups`` / ``generated_groups`` (the recording of
    each bar, where known) make the folds hold out whole recordings."""
    sizes = {
        "generated": len(generated),
        "train": len(train),
        "valid": 0 if valid is None else len(valid),
    }
    small = {name: n for name, n in sizes.items() if n < MIN_BARS}
    if small:
        return {"skipped": f"the two-sample test needs {MIN_BARS} bars per set, got {small}"}
    folds = int(options.get("two_sample_folds", OPTIONS["two_sample_folds"]))
    repeats = int(options.get("two_sample_repeats", OPTIONS["two_sample_repeats"]))
    n_boot, confidence, seed = bootstrap.settings(options)
    per_side = min(sizes.values())
    settings = {"folds": folds, "repeats": repeats, "seed": seed, "per_side": per_side,
                "n_boot": n_boot, "confidence": confidence}  # fmt: skip
    held_out = features_for(valid, options).embedding
    valid_groups = options.get("valid_groups")

    def test(bars: np.ndarray, groups: np.ndarray | None) -> TwoSampleTest:
        embedding = features_for(bars, options).embedding
        return two_sample_test(
            embedding, held_out, groups_x=groups, groups_y=valid_groups, **settings
        )

    # The reference is the same for every generated set of a size: computed once per cache.
    grouped = valid_groups is not None
    reference_key = ("two_sample", *array_key(train), *array_key(valid), grouped,
                     *settings.values())  # fmt: skip
    tests = {
        "generated": test(generated, options.get("generated_groups")),
        "valid": cached(options, reference_key, lambda: test(train, options.get("train_groups"))),
    }
    result: dict[str, Any] = {
        "per_side": per_side,
        "folds": tests["valid"].folds,
        "repeats": repeats,
        "bootstrap": n_boot,
        "confidence": confidence,
        "grouped_by_recording": grouped,
        **{f"{name}.count": n for name, n in sizes.items()},
    }
    for name, outcome in tests.items():
        result[f"{name}.accuracy"] = outcome.accuracy
        result[f"{name}.accuracy.ci_low"] = outcome.ci_low
        result[f"{name}.accuracy.ci_high"] = outcome.ci_high
    return result


SPEC = MetricSpec(
    name="two_sample",
    function=two_sample_scores,
    options=OPTIONS,
    protocol="ours: classifier two-sample test (C2ST, Lopez-Paz & Oquab 2017): accuracy of a "
    "linear ridge classifier on standardised fixed features telling a set from the held-out real "
    "bars, by stratified k-fold cross-validation with balanced classes (larger set subsampled, "
    "seeded, averaged over repeats; folds hold out whole recordings where they are known); "
    "0.5 = indistinguishable; valid.accuracy: training bars "
    "against held-out bars (real vs real); .ci_low / .ci_high: bootstrap over bars of their "
    f"out-of-fold correctness; {NOT_COMPARABLE}",
    role=QUALITY,
    # At 15-35 bars per side an accuracy has a standard error of 0.06-0.09 (binomial), so two
    # real sets' accuracies differ by up to about 0.2 (the ladder's real bars: 0.16).
    headlines=(Headline("accuracy", "lower", band=0.2),),
)
