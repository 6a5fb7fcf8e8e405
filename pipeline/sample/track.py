"""A whole generated track: a latent walk over N bars, assembled on the grid with crossfaded
seams, optionally re-rendered at another tempo. Used by the ``bargan generate`` command."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.grid import bar_samples_at, tempo_of
from pipeline.sample.assemble import DEFAULT_CROSSFADE_MS, concatenate_bars, crossfade_samples
from pipeline.sample.generate import random_bars, walk_bars
from pipeline.sample.tempo import retempo

BARS_PER_KEYFRAME = 4


@dataclass(frozen=True)
class TrackSpec:
    n_bars: int
    method: str = "slerp"  # slerp | linear
    seed: int = 0
    n_keyframes: int | None = None  # None: one keyframe about every BARS_PER_KEYFRAME bars
    class_index: int | None = None  # conditional generators: the class of every bar (None: 0)
    crossfade_ms: float = DEFAULT_CROSSFADE_MS
    bpm: float | None = None  # None: the tempo the generator was trained at
    beats_per_bar: int = 4


@dataclass(frozen=True)
class Track:
    audio: np.ndarray  # float32 [channels, n_bars * bar_samples]
    sample_rate: int
    bar_samples: int
    bpm: float
    source_bpm: float
    n_keyframes: int


def default_keyframes(n_bars: int) -> int:
    """About one keyframe every ``BARS_PER_KEYFRAME`` bars, at least 2 (first and last bar)."""
    return max(2, round((n_bars - 1) / BARS_PER_KEYFRAME) + 1)


def make_track(generator: torch.nn.Module, sample_rate: int, spec: TrackSpec) -> Track:
    """Render ``spec`` with ``generator`` (whose bars are ``generator.length`` samples)."""
    if spec.n_bars < 1:
        raise ValueError(f"a track needs at least 1 bar, got {spec.n_bars}")
    length = int(generator.length)
    source_bpm = tempo_of(length, sample_rate, spec.beats_per_bar)
    keyframes = spec.n_keyframes or default_keyframes(spec.n_bars)
    if spec.n_bars == 1:
        bars = random_bars(generator, 1, spec.seed, _class(generator, spec.class_index))
    else:
        keyframes = min(max(2, keyframes), spec.n_bars)
        bars = walk_bars(
            generator, spec.n_bars, keyframes, spec.method, spec.seed, spec.class_index
        )
    audio = concatenate_bars(bars, crossfade_samples(sample_rate, spec.crossfade_ms), sample_rate)
    bar_samples, bpm = length, source_bpm
    if spec.bpm is not None:
        bar_samples = bar_samples_at(sample_rate, spec.bpm, spec.beats_per_bar)
        bpm = float(spec.bpm)
        audio = retempo(audio, sample_rate, length, bar_samples)
    return Track(audio, sample_rate, bar_samples, bpm, source_bpm, keyframes)


def _class(generator: torch.nn.Module, class_index: int | None) -> int | None:
    if class_index is None and getattr(generator, "num_classes", 0):
        return 0
    return class_index
