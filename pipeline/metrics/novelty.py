"""BeatGAN novelty: how close each generated bar is to its nearest training bar.

score(a, b) = sum((a - b)^2) / sum(a^2), with ``a`` the training (reference) bar and ``b`` the
generated bar. A generated bar's novelty is its minimum score over the training set; each
generated bar is counted once (earlier code counted a generated bar once per close training
bar, so the "copied" fraction could exceed 1). Computed as chunked matrix products:
``||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pipeline.metrics.spec import COPY_DETECTOR, Headline, MetricSpec

DEFAULT_THRESHOLDS = (0.1, 0.05)
OPTIONS: dict[str, Any] = {"novelty_thresholds": DEFAULT_THRESHOLDS, "chunk_size": 1024}


def nearest_scores(
    generated: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each generated bar: (min score over reference bars, index of that bar).

    Bars are flattened over channels and time. Silent reference bars (zero energy) are skipped.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gen = torch.as_tensor(np.asarray(generated), dtype=torch.float32).flatten(1)
    ref = torch.as_tensor(np.asarray(reference), dtype=torch.float32).flatten(1)
    if gen.shape[1] != ref.shape[1]:
        raise ValueError(f"bar sizes differ: generated {gen.shape[1]}, reference {ref.shape[1]}")
    energy = ref.double().square().sum(1)
    keep = torch.nonzero(energy > 0).squeeze(1)
    if len(keep) == 0:
        raise ValueError("every reference bar is silent")
    ref, energy = ref[keep].to(device), energy[keep].to(device)
    best = torch.full((len(gen),), float("inf"), dtype=torch.float64)
    best_index = torch.zeros(len(gen), dtype=torch.long)
    for start in range(0, len(gen), chunk_size):
        g = gen[start : start + chunk_size].to(device)
        g_energy = g.double().square().sum(1)
        for ref_start in range(0, len(ref), chunk_size):
            r = ref[ref_start : ref_start + chunk_size]
            r_energy = energy[ref_start : ref_start + chunk_size]
            cross = (g @ r.T).double()  # [g, r]
            distance = (g_energy[:, None] + r_energy[None, :] - 2 * cross).clamp_min(0)
            score = distance / r_energy[None, :]
            value, index = score.min(dim=1)
            value, index = value.cpu(), index.cpu() + ref_start
            better = value < best[start : start + len(g)]
            best[start : start + len(g)][better] = value[better]
            best_index[start : start + len(g)][better] = index[better]
    return best.numpy(), keep[best_index].numpy()


def novelty_summary(
    scores: np.ndarray, threshold: float | Sequence[float] = DEFAULT_THRESHOLDS
) -> dict[str, float]:
    """Share of bars at or below each threshold (near-copies) and score statistics.

    ``fraction_similar`` uses the first threshold; ``fraction_similar_at_<t>`` each of them.
    """
    thresholds = [threshold] if np.isscalar(threshold) else list(threshold)
    result = {"fraction_similar": float(np.mean(scores <= thresholds[0]))}
    for t in thresholds:
        result[f"fraction_similar_at_{t:g}"] = float(np.mean(scores <= t))
    result.update(
        {
            "median_score": float(np.median(scores)),
            "min_score": float(np.min(scores)),
            "mean_score": float(np.mean(scores)),
        }
    )
    return result


def beatgan_novelty(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """BeatGAN novelty of generated bars, beside the same score for held-out real bars."""
    thresholds = [float(t) for t in options.get("novelty_thresholds", DEFAULT_THRESHOLDS)]
    chunk = int(options.get("chunk_size", OPTIONS["chunk_size"]))
    result: dict[str, float] = {"threshold": thresholds[0]}
    sets = {"generated": generated}
    if valid is not None and len(valid):
        sets["valid"] = valid
    for name, bars in sets.items():
        scores, _ = nearest_scores(bars, train, chunk_size=chunk)
        result.update({f"{name}.{k}": v for k, v in novelty_summary(scores, thresholds).items()})
        result[f"{name}.count"] = len(scores)
    return result


SPEC = MetricSpec(
    name="novelty",
    function=beatgan_novelty,
    options=OPTIONS,
    protocol="BeatGAN novelty (nearest training bar, normalised squared error on samples)",
    role=COPY_DETECTOR,
    headlines=(Headline("fraction_similar", "lower", band=0.2),),
)
