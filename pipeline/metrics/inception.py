"""The inception score of class probabilities, with a bootstrap interval and the paper's splits.

``IS = exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the set's mean prediction: 1 for one class
or an uninformative classifier, the number of classes at best. WaveGAN (Donahue et al. 2019,
``eval/inception/score.py`` of github.com/chrisdonahue/wavegan) reports the mean and population
standard deviation of the score over ``k`` equal splits of shuffled samples (50k clips, k = 10);
:func:`inception_summary` does the same. :func:`inception_summary` adds a bootstrap interval over
samples, as :mod:`pipeline.metrics.bootstrap` gives the distances.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.metrics.bootstrap import resample_counts, settings, summary

EPS = 1e-12
DEFAULT_SPLITS = 10  # WaveGAN's k


def _clipped(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or not len(p):
        raise ValueError(f"probabilities must be [N, classes] with N >= 1, got {p.shape}")
    return np.clip(p, EPS, 1.0)


def inception_score(probabilities: np.ndarray) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` of ``[N, classes]`` probabilities."""
    p = _clipped(probabilities)
    marginal = p.mean(0, keepdims=True)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def bootstrap_scores(probabilities: np.ndarray, n_boot: int, seed: int = 0) -> np.ndarray:
    """The score of ``n_boot`` with-replacement resamples of the rows, ``[n_boot]``."""
    p = _clipped(probabilities)
    n = len(p)
    counts = resample_counts(np.random.default_rng(seed), n, n_boot).astype(np.float64)
    # mean KL = mean_i sum_y p_iy log p_iy - sum_y m_y log m_y, m the resample's marginal
    neg_entropy = np.sum(p * np.log(p), axis=1)
    marginal = counts @ p / n
    kl = counts @ neg_entropy / n - np.sum(marginal * np.log(marginal), axis=1)
    return np.exp(kl)


def split_scores(probabilities: np.ndarray, splits: int) -> np.ndarray | None:
    """The score of each of ``splits`` contiguous groups of ``n // splits`` rows, as
    ``inception_score`` of WaveGAN's score.py (which demands ``n`` divisible; the rows past
    ``splits * (n // splits)`` are left out here). None when a group would hold fewer than two
    rows: its score would be 1 whatever the rows."""
    if splits < 1:
        raise ValueError(f"evaluate.inception_splits is {splits}: it must be at least 1")
    p = _clipped(probabilities)
    size = len(p) // splits
    if size < 2:
        return None
    return np.array(
        [inception_score(group) for group in p[: size * splits].reshape(splits, size, -1)]
    )


def inception_summary(
    prefix: str, probabilities: np.ndarray, options: Mapping[str, Any]
) -> dict[str, float]:
    """``{prefix, prefix.ci_low, prefix.ci_high}`` (bootstrap: ``bootstrap``, ``confidence``,
    ``seed``) and, where every split holds two rows or more, ``prefix.split_mean`` and
    ``prefix.split_std`` over ``inception_splits`` (10) splits."""
    n_boot, confidence, seed = settings(options)
    point = inception_score(probabilities)
    samples = bootstrap_scores(probabilities, n_boot, seed) if n_boot else np.array([])
    result = summary(prefix, point, samples, confidence, lower_bound=1.0)
    # score.py's caller shuffles the clips (random.seed(0)) before they are split
    order = np.random.default_rng(seed).permutation(len(probabilities))
    scores = split_scores(
        np.asarray(probabilities)[order], int(options.get("inception_splits", DEFAULT_SPLITS))
    )
    if scores is not None:
        result[f"{prefix}.split_mean"] = float(scores.mean())
        result[f"{prefix}.split_std"] = float(scores.std())  # population std, as score.py's np.std
    return result
