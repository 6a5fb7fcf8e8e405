"""Reference rungs scored beside the generated bars, so that every number has its floor and
its ceiling on the same run:

- ``ceiling``: the held-out real bars through the generator's own analysis and synthesis (the
  spectrogram and the phase reconstruction of a SpecGAN; unchanged for a waveform model). No
  generator in this representation can do better than real music rendered through it, so a
  generated score is read against this one as much as against real;
- ``noise``: white noise at the held-out bars' loudness, what no metric may mistake for music.

Both are scored as "generated" sets by :func:`pipeline.metrics.registry.compute_all` with the
quality metrics asked for, against the same training and held-out bars; the result sits under
``references`` in metrics.json and the headline reads its ceiling line from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.metrics.registry import QUALITY, compute_all, spec

REFERENCES_KEY = "references"
CEILING, NOISE = "ceiling", "noise"
ROUND_TRIP_BATCH = 16


def white_noise(shape: tuple[int, ...], level: float, seed: int = 0) -> np.ndarray:
    """Gaussian white noise with RMS ``level``."""
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(shape)).astype(np.float32)


def rms(bars: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(bars, dtype=np.float64))))


def round_trip_bars(generator: nn.Module, bars: np.ndarray) -> np.ndarray:
    """``bars`` [N, C, T] through ``generator.round_trip`` (on its device, in batches)."""
    device = next(generator.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(bars), ROUND_TRIP_BATCH):
            chunk = torch.from_numpy(np.ascontiguousarray(bars[start : start + ROUND_TRIP_BATCH]))
            out.append(generator.round_trip(chunk.to(device)).float().cpu().numpy())
    if not out:
        return np.zeros_like(bars, dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


def reference_bars(generator: nn.Module, valid: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """``{"ceiling": ..., "noise": ...}``, each the shape of ``valid``."""
    return {
        CEILING: round_trip_bars(generator, valid),
        NOISE: white_noise(valid.shape, rms(valid), seed),
    }


def quality_metrics(names: Sequence[str]) -> list[str]:
    """The quality metrics among ``names`` (the rungs are not scored for copies or speed)."""
    return [name for name in names if spec(name).role == QUALITY]


def score_references(
    rungs: dict[str, np.ndarray],
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
    names: Sequence[str],
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{rung: compute_all(rung bars, train, valid)}`` over the quality metrics of ``names``
    (``rungs``: :func:`reference_bars`); empty without held-out bars (nothing to compare with).
    The rungs stand for the held-out bars' classes, and the ceiling for their recordings (a
    resynthesised bar is in the same two-sample fold as its original). Pass a shared
    ``options["cache"]`` so the training and held-out features are computed once for the
    generated bars and both rungs."""
    if valid is None or not len(valid):
        return {}
    quality = quality_metrics(names)
    labels = options.get("valid_labels")
    groups = {CEILING: options.get("valid_groups")}
    return {
        rung: compute_all(
            bars,
            train,
            valid,
            {**options, "generated_labels": labels, "generated_groups": groups.get(rung)},
            quality,
        )
        for rung, bars in rungs.items()
    }
