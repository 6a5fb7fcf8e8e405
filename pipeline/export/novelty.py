"""How close each exported bar is to the training set, for a pack's metadata table: the same two
distances the evaluate stage reports (:mod:`pipeline.metrics.novelty`,
:mod:`pipeline.metrics.nearest_neighbour`), per bar."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.splits import load_split
from pipeline.metrics.features import FRAMES_PER_16TH, bar_features
from pipeline.metrics.nearest_neighbour import shift_tolerant_distances
from pipeline.metrics.novelty import DEFAULT_THRESHOLDS, nearest_scores

MAX_SHIFT_16THS = 2  # as the evaluate stage's default (evaluate.max_shift_16ths)
NEAR_COPY_SCORE = DEFAULT_THRESHOLDS[0]  # BeatGAN score at or below: a near-copy


@dataclass(frozen=True)
class Nearest:
    """Per bar: ``distance_db`` (shift-tolerant log-mel RMS distance to the nearest training
    bar), ``score`` (BeatGAN novelty score ``sum((a-b)^2)/sum(a^2)`` to its nearest training
    bar), ``index`` (that bar's row in the training split)."""

    distance_db: np.ndarray
    score: np.ndarray
    index: np.ndarray


class TrainingBarsError(ValueError):
    """Training bars that cannot be compared with the generator's; names the file and why."""


def read_training_bars(path: Path, sample_rate: int, bar_samples: int, channels: int) -> np.ndarray:
    """The bars of a split file (``data/splits/train.npz``), checked against the generator's
    grid. Raises TrainingBarsError naming the file."""
    try:
        bars, _, rate = load_split(path)
    except (OSError, KeyError, ValueError) as err:
        raise TrainingBarsError(f"{path}: not a readable split file ({err})") from err
    found = (rate, bars.shape[1], bars.shape[2])
    if found != (sample_rate, channels, bar_samples) or len(bars) == 0:
        raise TrainingBarsError(
            f"{path}: {len(bars)} bars of {found[2]} samples, {found[1]} channel(s) at "
            f"{found[0]} Hz; the generator makes {bar_samples} samples, {channels} channel(s) "
            f"at {sample_rate} Hz"
        )
    return bars


def nearest_training_bars(
    bars: np.ndarray, train: np.ndarray, sample_rate: int, beats_per_bar: int
) -> Nearest:
    """Both distances of each of ``bars`` ``[N, C, T]`` to the training bars ``[R, C, T]``."""
    score, index = nearest_scores(bars, train, device="cpu")
    query = bar_features(bars, sample_rate, beats_per_bar).log_mel
    reference = bar_features(train, sample_rate, beats_per_bar).log_mel
    max_shift = MAX_SHIFT_16THS * FRAMES_PER_16TH
    distance, _, _ = shift_tolerant_distances(query, reference, max_shift, device="cpu")
    return Nearest(distance, score, index)
