"""Running a trained generator: random bars, loops, per-class bars and latent-walk tracks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pipeline.models.clusters import hold_cluster
from pipeline.sample.assemble import concatenate_bars, loop_bar
from pipeline.sample.latent import latent_walk


@torch.no_grad()
def generate_bars(
    generator: torch.nn.Module,
    latents: torch.Tensor,
    labels: torch.Tensor | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """``[n, latent_dim]`` latents -> float32 bars ``[n, channels, length]``, in batches."""
    device = next(generator.parameters()).device
    out = []
    for start in range(0, len(latents), batch_size):
        z = latents[start : start + batch_size].to(device)
        y = None if labels is None else labels[start : start + batch_size].to(device)
        bars = generator(z, y) if y is not None else generator(z)
        out.append(bars.float().cpu().numpy())
    return np.concatenate(out)


def random_latents(generator: torch.nn.Module, n: int, seed: int) -> torch.Tensor:
    """``n`` latents from the generator's prior, reproducible from ``seed`` (always on CPU)."""
    rng = torch.Generator().manual_seed(seed)
    return generator.sample_latent(n, generator=rng, device="cpu")


def class_labels(
    generator: torch.nn.Module,
    n: int,
    class_index: int | None = None,
    class_counts: Sequence[int] | None = None,
) -> torch.Tensor | None:
    """Labels for ``n`` bars: ``None`` for an unconditional generator; for a conditional one,
    ``class_index`` for every bar, else the classes in the proportions of ``class_counts``
    (:func:`class_mix`), else all classes in turn."""
    num_classes = int(getattr(generator, "num_classes", 0))
    if num_classes == 0:
        if class_index is not None:
            raise ValueError("this generator is not conditional (it has no classes)")
        return None
    if class_index is None and class_counts is not None:
        if len(class_counts) != num_classes:
            raise ValueError(
                f"{len(class_counts)} class counts for a generator with {num_classes} classes"
            )
        return class_mix(n, class_counts)
    if class_index is None:
        return torch.arange(n) % num_classes
    if not 0 <= class_index < num_classes:
        raise ValueError(f"class index {class_index} out of range: the generator has {num_classes}")
    return torch.full((n,), int(class_index), dtype=torch.long)


def class_mix(n: int, class_counts: Sequence[int]) -> torch.Tensor:
    """``n`` labels in the proportions of ``class_counts`` (each class's share of ``n`` rounded
    by largest remainder), the classes interleaved so that every prefix is mixed as well.

    A conditional generator learns p(x | y) under the training set's p(y) (the trainer draws
    fake labels from the training labels), so a set that stands for the model as a whole is
    drawn in those proportions: with every class in turn, a perfect generator of a corpus whose
    classes differ in size would score as far from the training bars as a set of real bars in
    the wrong mix does."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"class counts must be non-negative with a positive total, got {counts}")
    exact = n * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    remainder_order = np.argsort(-(exact - quota), kind="stable")
    quota[remainder_order[: n - int(quota.sum())]] += 1
    # class c's k-th bar sits at (k + 0.5) / quota[c] of the way through the set
    positions = np.concatenate([(np.arange(q) + 0.5) / q for q in quota if q])
    classes = np.concatenate([np.full(q, c) for c, q in enumerate(quota) if q])
    order = np.lexsort((classes, positions))
    return torch.from_numpy(classes[order].astype(np.int64))


def random_bars(
    generator: torch.nn.Module, n: int, seed: int, class_index: int | None = None
) -> np.ndarray:
    """``n`` random bars ``[n, C, T]`` (conditional generators: see :func:`class_labels`)."""
    latents = random_latents(generator, n, seed)
    return generate_bars(generator, latents, class_labels(generator, n, class_index))


def scored_bars(
    generator: torch.nn.Module,
    n: int,
    seed: int,
    batch_size: int = 64,
    class_counts: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` bars ``[n, C, T]`` for the metrics, and their labels (None for an unconditional
    generator): latents reproducible from ``seed``; classes in the training bars' proportions
    ``class_counts`` (:func:`class_mix`), or in turn where they are not known (a generator file
    written before they were recorded). Generated ``batch_size`` at a time into one array, so
    only the bars themselves grow with ``n``."""
    latents = random_latents(generator, n, seed)
    labels = class_labels(generator, n, class_counts=class_counts)
    bars: np.ndarray | None = None
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        y = None if labels is None else labels[start:stop]
        batch = generate_bars(generator, latents[start:stop], y, batch_size)
        if bars is None:
            bars = np.empty((n, *batch.shape[1:]), dtype=np.float32)
        bars[start:stop] = batch
    if bars is None:
        raise ValueError(f"need at least one bar to score, got {n}")
    return bars, None if labels is None else labels.numpy()


def per_class_bars(generator: torch.nn.Module, n_per_class: int, seed: int) -> np.ndarray:
    """``[num_classes, n_per_class, C, T]``: the SAME ``n_per_class`` latents rendered as every
    class, so differences between rows are the class's doing."""
    num_classes = int(getattr(generator, "num_classes", 0))
    if num_classes == 0:
        raise ValueError("per-class bars need a conditional generator (num_classes > 0)")
    latents = random_latents(generator, n_per_class, seed).repeat(num_classes, 1)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    bars = generate_bars(generator, latents, labels)
    return bars.reshape(num_classes, n_per_class, *bars.shape[1:])


def walk_bars(
    generator: torch.nn.Module,
    n_bars: int,
    n_keyframes: int,
    method: str,
    seed: int,
    class_index: int | None = None,
) -> np.ndarray:
    """Bars ``[n_bars, C, T]`` along a latent walk through ``n_keyframes`` random points
    (one bar per step). A conditional generator keeps one class for the whole walk:
    ``class_index``, or class 0; a self-conditioned one also keeps one cluster
    (:func:`pipeline.models.clusters.hold_cluster`)."""
    keyframes = random_latents(generator, n_keyframes, seed)
    latents = hold_cluster(generator, latent_walk(keyframes, n_bars, method), keyframes)
    if getattr(generator, "num_classes", 0) and class_index is None:
        class_index = 0
    return generate_bars(generator, latents, class_labels(generator, n_bars, class_index))


def interpolation_track(
    generator: torch.nn.Module,
    n_bars: int,
    n_keyframes: int,
    method: str,
    seed: int,
    crossfade: int = 64,
    class_index: int | None = None,
    sample_rate: int | None = None,
) -> np.ndarray:
    """A latent walk through ``n_keyframes`` random points, one bar per step, as ``[C, n*T]``
    with crossfaded seams (see :func:`pipeline.sample.assemble.concatenate_bars`)."""
    bars = walk_bars(generator, n_bars, n_keyframes, method, seed, class_index)
    return concatenate_bars(bars, crossfade, sample_rate)


def loops(
    bars: np.ndarray, repeats: int, crossfade: int = 64, sample_rate: int | None = None
) -> list[np.ndarray]:
    """Each ``[C, T]`` bar of ``bars`` repeated ``repeats`` times with crossfaded seams."""
    return [loop_bar(bar, repeats, crossfade, sample_rate) for bar in bars]
