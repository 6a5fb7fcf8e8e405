"""Self-conditioning: the training bars clustered within each class, so that the generator and
the critic are conditioned on a cluster of similar bars instead of only on the class.

After Liu et al., "Diverse image generation via self-conditioned GANs" (CVPR 2020), who
condition on k-means clusters of the critic's features to keep a GAN from collapsing onto a few
modes. Here the clusters are made once, before training, on fixed spectrogram features: on
third-party music the class-conditioned generator had collapsed to about one bar per class
(README, "Why it plateaus"), and conditioning on clusters of about 40 bars spreads it across
each class. A trained generator is used through
:class:`pipeline.models.clusters.ClusterConditioned`, which picks a cluster within the class
asked for, so nothing downstream sees the clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

FEATURE_N_FFT = 512
FEATURE_HOP = 128
FEATURE_FLOOR_DB = -80.0
POOLED_SHAPE = (16, 16)  # (frequency, time) cells the log-magnitude spectrogram is averaged to
PCA_DIMS = 32
KMEANS_RESTARTS = 4
KMEANS_ITERATIONS = 100


@dataclass(frozen=True)
class Clusters:
    """Each training bar's cluster, the class of each cluster and its number of bars."""

    labels: np.ndarray  # [n_bars] int64, cluster of each bar
    classes: list[int]  # class of each cluster (0 for every cluster of an unconditional model)
    counts: list[int]  # training bars in each cluster


def clusters_for(n_bars: int, bars_per_cluster: int) -> int:
    """Clusters for a class of ``n_bars`` bars: one per ``bars_per_cluster``, rounded, >= 1."""
    if bars_per_cluster < 1:
        raise ValueError(f"bars_per_cluster must be >= 1, got {bars_per_cluster}")
    return max(1, min(n_bars, round(n_bars / bars_per_cluster)))


@torch.no_grad()
def spectrogram_features(bars: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``[n, C, T]`` bars -> ``[n, 256]``: the log-magnitude spectrogram (channels averaged, dB
    floored at -80) averaged over a 16 x 16 grid of frequency and time cells."""
    window = torch.hann_window(FEATURE_N_FFT)
    rows = []
    for start in range(0, len(bars), batch_size):
        audio = torch.from_numpy(np.ascontiguousarray(bars[start : start + batch_size]))
        b, c, t = audio.shape
        spec = torch.stft(
            audio.float().reshape(b * c, t),
            FEATURE_N_FFT,
            hop_length=FEATURE_HOP,
            window=window,
            center=True,
            return_complex=True,
        )
        magnitude = spec.abs() / window.sum()
        db = 20.0 * torch.log10(magnitude.clamp_min(10.0 ** (FEATURE_FLOOR_DB / 20.0)))
        db = db.reshape(b, c, *db.shape[1:]).mean(dim=1, keepdim=True)
        rows.append(F.adaptive_avg_pool2d(db, POOLED_SHAPE).flatten(1).numpy())
    return np.concatenate(rows).astype(np.float64)


def principal_components(x: np.ndarray, dims: int) -> np.ndarray:
    """``x`` ``[n, d]`` projected on its first ``dims`` principal components (fewer where the
    data has fewer)."""
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dims].T


def kmeans(
    x: np.ndarray,
    k: int,
    seed: int,
    restarts: int = KMEANS_RESTARTS,
    iterations: int = KMEANS_ITERATIONS,
) -> np.ndarray:
    """k-means (k-means++ starts, Lloyd's iterations; the best of ``restarts`` by within-cluster
    sum of squares): a cluster index per row of ``x``, numbered 0.. in order of first
    appearance with no empty cluster, so there may be fewer than ``k``."""
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the {len(x)} points, got {k}")
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        centres = _kmeans_plus_plus(x, k, rng)
        for _ in range(iterations):
            assignment = _squared_distances(x, centres).argmin(axis=1)
            moved = _means(x, assignment, centres)
            if np.allclose(moved, centres):
                break
            centres = moved
        distances = _squared_distances(x, centres)
        assignment = distances.argmin(axis=1)
        inertia = distances[np.arange(len(x)), assignment].sum()
        if inertia < best_inertia:
            best, best_inertia = assignment, inertia
    _, first = np.unique(best, return_index=True)
    renumber = np.empty(best.max() + 1, dtype=np.int64)
    renumber[best[np.sort(first)]] = np.arange(len(first))
    return renumber[best]


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``[n, k]`` squared distances, without the ``[n, k, d]`` differences."""
    squared = (x**2).sum(axis=1)[:, None] - 2.0 * x @ centres.T + (centres**2).sum(axis=1)
    return np.maximum(squared, 0.0)


def _means(x: np.ndarray, assignment: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each cluster's mean; an empty cluster keeps its centre."""
    k = len(centres)
    sizes = np.bincount(assignment, minlength=k)
    sums = np.stack(
        [np.bincount(assignment, weights=x[:, j], minlength=k) for j in range(x.shape[1])], axis=1
    )
    return np.where(sizes[:, None] > 0, sums / np.maximum(sizes, 1)[:, None], centres)


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        nearest = _squared_distances(x, np.asarray(centres)).min(axis=1)
        total = nearest.sum()
        if total <= 0:  # fewer distinct points than k: repeat one; it ends up empty
            centres.append(centres[-1])
            continue
        centres.append(x[rng.choice(len(x), p=nearest / total)])
    return np.asarray(centres)


def cluster_within_classes(
    bars: np.ndarray, labels: np.ndarray | None, bars_per_cluster: int, seed: int = 0
) -> Clusters:
    """Cluster ``bars`` within each class of ``labels`` (all one class when None): about one
    cluster per ``bars_per_cluster`` bars of the class, by k-means on the principal components
    of :func:`spectrogram_features`. Clusters are numbered class by class."""
    if len(bars) == 0:
        raise ValueError("no bars to cluster")
    labels = np.zeros(len(bars), dtype=np.int64) if labels is None else np.asarray(labels)
    if labels.shape != (len(bars),):
        raise ValueError(f"{labels.shape[0]} labels for {len(bars)} bars")
    features = principal_components(spectrogram_features(bars), PCA_DIMS)
    cluster_of = np.empty(len(bars), dtype=np.int64)
    classes: list[int] = []
    counts: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        within = kmeans(features[members], clusters_for(len(members), bars_per_cluster), seed)
        cluster_of[members] = len(classes) + within
        sizes = np.bincount(within)
        classes += [int(c)] * len(sizes)
        counts += sizes.tolist()
    return Clusters(cluster_of, classes, counts)


def training_clusters(
    bars: np.ndarray, labels: np.ndarray | None, bars_per_cluster: int, seed: int
) -> Clusters | None:
    """The clusters to condition on (train key ``bars_per_cluster``), or None: when it is 0
    (off), or when no class would have more than one cluster, so that conditioning on them
    would be conditioning on the classes (or on nothing) again."""
    if bars_per_cluster == 0:
        return None
    clusters = cluster_within_classes(bars, labels, bars_per_cluster, seed)
    if len(clusters.classes) == len(set(clusters.classes)):
        return None
    return clusters
