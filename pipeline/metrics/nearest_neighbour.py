"""Shift-tolerant nearest-neighbour distance on log-mel frames, calibrated on held-out real bars.

The distance between a generated bar ``g`` and a training bar ``t`` is the smallest RMS
difference of their log-mel frames (in dB) over circular shifts of ``g`` by up to
``max_shift_16ths`` 16th notes each way, one frame (a quarter 16th) at a time. Bars loop, so a
circular shift is a copy that starts at another point of the loop; the raw BeatGAN score sees such
a copy as unrelated audio, this distance does not. Computed as chunked matrix products, all
shifts of a chunk of generated bars at once.

Calibration: the same distance from each held-out real bar to the training set. The
``reference_quantile`` (0.5: the median) of those distances is the threshold; the share of
generated bars below it is reported beside the share of held-out bars below it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline.grid import DEFAULT_BEATS_PER_BAR
from pipeline.metrics import features
from pipeline.metrics.features import FRAMES_PER_16TH, array_key, cached, features_for
from pipeline.metrics.spec import COPY_DETECTOR, NOT_COMPARABLE, Headline, MetricSpec

OPTIONS: dict[str, Any] = {
    "chunk_size": 1024,
    "max_shift_16ths": 2,
    "reference_quantile": 0.5,
    **features.OPTIONS,
}


def shift_tolerant_distances(
    query: np.ndarray,
    reference: np.ndarray,
    max_shift: int,
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query ``[N, bands, frames]``: (distance in dB RMS to its nearest reference
    ``[R, bands, frames]`` over circular frame shifts ``-max_shift..max_shift``, index of that
    reference, the shift in frames)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    q = torch.as_tensor(np.asarray(query), dtype=torch.float32)
    r = torch.as_tensor(np.asarray(reference), dtype=torch.float32).flatten(1).to(device)
    if q.shape[1:] != tuple(reference.shape[1:]):
        raise ValueError(f"feature shapes differ: {tuple(q.shape[1:])} vs {reference.shape[1:]}")
    if len(r) == 0:
        raise ValueError("empty reference set")
    n_values = r.shape[1]
    shifts = torch.arange(-max_shift, max_shift + 1)
    # Distances in float32 products: centred on the reference mean, energies stay small enough
    # that |q|^2 + |r|^2 - 2 q.r does not cancel to hundredths of a dB (identical bars give 0).
    centre = r.mean(0)
    r = r - centre
    r_energy = r.double().square().sum(1)
    # A chunk holds chunk_size shifted queries.
    q_chunk = max(1, chunk_size // len(shifts))
    best = torch.full((len(q),), float("inf"), dtype=torch.float64)
    best_index = torch.zeros(len(q), dtype=torch.long)
    best_shift = torch.zeros(len(q), dtype=torch.long)
    for start in range(0, len(q), q_chunk):
        block = q[start : start + q_chunk].to(device)
        n = len(block)
        rolled = torch.stack([block.roll(int(s), dims=-1) for s in shifts], 1).flatten(2)
        rolled = rolled.reshape(n * len(shifts), n_values) - centre  # [n*S, D]
        q_energy = rolled.double().square().sum(1)
        for ref_start in range(0, len(r), chunk_size):
            ref = r[ref_start : ref_start + chunk_size]
            cross = (rolled @ ref.T).double()
            squared = q_energy[:, None] + r_energy[None, ref_start : ref_start + len(ref)]
            squared = (squared - 2 * cross).clamp_min(0).reshape(n, len(shifts) * len(ref))
            value, flat = squared.min(dim=1)
            value, flat = value.cpu(), flat.cpu()
            better = value < best[start : start + n]
            best[start : start + n][better] = value[better]
            best_index[start : start + n][better] = (flat % len(ref) + ref_start)[better]
            best_shift[start : start + n][better] = shifts[flat // len(ref)][better]
    distance = torch.sqrt(best / n_values)
    return distance.numpy(), best_index.numpy(), best_shift.numpy()


def _summary(distances: np.ndarray, shifts: np.ndarray) -> dict[str, float]:
    return {
        "median_db": float(np.median(distances)),
        "mean_db": float(np.mean(distances)),
        "min_db": float(np.min(distances)),
        "fraction_shifted_match": float(np.mean(shifts != 0)),
        "count": len(distances),
    }


def nearest_neighbour_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """Distances of generated and held-out bars to the training set, and the calibrated share
    ``generated.fraction_closer`` (beside ``valid.fraction_closer``) below ``threshold_db``."""
    max_shift_16ths = float(options.get("max_shift_16ths", OPTIONS["max_shift_16ths"]))
    quantile = float(options.get("reference_quantile", OPTIONS["reference_quantile"]))
    chunk = int(options.get("chunk_size", OPTIONS["chunk_size"]))
    max_shift = round(max_shift_16ths * FRAMES_PER_16TH)
    sixteenths = 4 * int(options.get("beats_per_bar", DEFAULT_BEATS_PER_BAR))
    sixteenth_ms = 1000.0 * train.shape[2] / options["sample_rate"] / sixteenths
    reference = features_for(train, options).log_mel
    result: dict[str, float] = {
        "max_shift_ms": max_shift / FRAMES_PER_16TH * sixteenth_ms,
        "shift_step_ms": sixteenth_ms / FRAMES_PER_16TH,
        "quantile": quantile,
    }
    sets = {"generated": generated}
    if valid is not None and len(valid):
        sets["valid"] = valid
    distances = {}
    for name, bars in sets.items():

        def search(bars: np.ndarray = bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            query = features_for(bars, options).log_mel
            return shift_tolerant_distances(query, reference, max_shift, chunk)

        key = ("nearest", *array_key(bars), *array_key(train), max_shift)
        distances[name], _, shifts = cached(options, key, search)
        result.update({f"{name}.{k}": v for k, v in _summary(distances[name], shifts).items()})
    if "valid" in distances:
        threshold = float(np.quantile(distances["valid"], quantile))
        result["threshold_db"] = threshold
        for name, values in distances.items():
            result[f"{name}.fraction_closer"] = float(np.mean(values < threshold))
    return result


SPEC = MetricSpec(
    name="nearest_neighbour",
    function=nearest_neighbour_scores,
    options=OPTIONS,
    protocol=f"ours: shift-tolerant nearest training bar on log-mel, dB; {NOT_COMPARABLE}",
    role=COPY_DETECTOR,
    headlines=(
        Headline("median_db", "higher", band=0.5, relative=True),
        Headline("fraction_closer", "lower", band=0.3),
    ),
)
