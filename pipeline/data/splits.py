"""Train/valid/test assignment grouped by source track: a track never spans two splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "valid", "test")


def assign_splits(
    tracks: list[str], valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Shuffle tracks with ``seed`` and give each one split; train always gets at least one.

    Valid/test get ``round(fraction * n)`` tracks, at least one each when the fraction is
    positive and enough tracks exist, so small corpora still have held-out data.
    """
    unique = sorted(set(tracks))
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    n = len(shuffled)
    n_valid = _count(valid_fraction, n)
    n_test = _count(test_fraction, n)
    while n_valid + n_test > n - 1 and (n_valid or n_test):
        if n_test >= n_valid and n_test:
            n_test -= 1
        else:
            n_valid -= 1
    assignment = {}
    for i, track in enumerate(shuffled):
        if i < n_valid:
            assignment[track] = "valid"
        elif i < n_valid + n_test:
            assignment[track] = "test"
        else:
            assignment[track] = "train"
    return assignment


def _count(fraction: float, n: int) -> int:
    if fraction <= 0 or n < 3:
        return 0
    return max(1, round(fraction * n))


def label_indices(labels: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Class names -> integer indices (sorted names); empty names mean 'unlabelled'."""
    classes = sorted(name for name in labels.unique() if name)
    index = {name: i for i, name in enumerate(classes)}
    return labels.map(lambda name: index.get(name, -1)).to_numpy(np.int64), classes


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """-> (float32 bars [N, C, T] in [-1, 1], int64 labels, sample rate)."""
    with np.load(path) as packed:
        bars = packed["bars"].astype(np.float32) / 32767.0
        return bars, packed["labels"], int(packed["sample_rate"])
