"""What the page renders: a loop-ready bar or a walk between two seeds' latents, at a tempo,
written as a tagged WAV (the code of ``bargan generate`` and ``bargan export``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.export.wav import write_bars_wav
from pipeline.grid import BarGrid, bar_samples_at
from pipeline.models.clusters import hold_cluster
from pipeline.sample.assemble import concatenate_bars, crossfade_samples, seamless_bar
from pipeline.sample.generate import class_labels, generate_bars, random_bars, random_latents
from pipeline.sample.latent import latent_walk
from pipeline.sample.tempo import retempo

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Rendered:
    path: Path
    bars: int
    bpm: float
    seconds: float


def _no_progress(fraction: float, text: str) -> None:
    pass


def render_bar(
    generator: torch.nn.Module,
    grid: BarGrid,
    seed: int,
    class_index: int | None,
    bpm: float,
    out: Path,
    crossfade_ms: float = 5.0,
) -> Rendered:
    """The bar of latent ``seed`` made to loop on its own, at ``bpm`` (Rubber Band when it is
    not the grid's: three copies in a row stretched, the middle one kept, so the loop's wrap is
    stretched like any other point), written to ``out`` with its tags."""
    sr, length = grid.sample_rate, int(generator.length)
    bar = random_bars(generator, 1, seed, class_index)[0]
    loop = seamless_bar(bar, crossfade_samples(sr, crossfade_ms), sr)
    new_length = length if bpm == grid.bpm else bar_samples_at(sr, bpm, grid.beats_per_bar)
    if new_length != length:
        stretched = retempo(np.tile(loop, (1, 3)), sr, length, new_length)
        loop = stretched[:, new_length : 2 * new_length]
    write_bars_wav(out, loop, sr, new_length, bpm, grid.beats_per_bar)
    return Rendered(out, 1, bpm, new_length / sr)


def render_walk(
    generator: torch.nn.Module,
    grid: BarGrid,
    seeds: tuple[int, int],
    class_index: int | None,
    n_bars: int,
    bpm: float,
    out: Path,
    method: str = "slerp",
    crossfade_ms: float = 5.0,
    progress: Progress = _no_progress,
) -> Rendered:
    """``n_bars`` bars walking from the latent of ``seeds[0]`` to that of ``seeds[1]`` (one bar
    per step, crossfaded seams), at ``bpm``, written to ``out`` with its tags."""
    if n_bars < 2:
        raise ValueError(f"a walk needs at least 2 bars, got {n_bars}")
    sr, length = grid.sample_rate, int(generator.length)
    keyframes = torch.cat([random_latents(generator, 1, s) for s in seeds])
    latents = hold_cluster(generator, latent_walk(keyframes, n_bars, method), keyframes)
    if getattr(generator, "num_classes", 0) and class_index is None:
        class_index = 0
    labels = class_labels(generator, n_bars, class_index)
    bars = []
    for i in range(n_bars):
        progress(0.8 * i / n_bars, f"bar {i + 1} of {n_bars}")
        y = None if labels is None else labels[i : i + 1]
        bars.append(generate_bars(generator, latents[i : i + 1], y))
    audio = concatenate_bars(np.concatenate(bars), crossfade_samples(sr, crossfade_ms), sr)
    bar_samples = length
    if bpm != grid.bpm:
        progress(0.85, "re-tempo (Rubber Band)")
        bar_samples = bar_samples_at(sr, bpm, grid.beats_per_bar)
        audio = retempo(audio, sr, length, bar_samples)
    progress(0.95, "writing the tagged WAV")
    write_bars_wav(out, audio, sr, bar_samples, bpm, grid.beats_per_bar)
    return Rendered(out, n_bars, bpm, audio.shape[1] / sr)
