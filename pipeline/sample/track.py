"""A whole generated track: a latent walk over N bars, assembled on the grid with crossfaded
seams, optionally re-rendered at another tempo. Used by the ``bargan generate`` command.

:func:`track_pieces` makes the track a few dozen bars at a time, so a track of any length is
written to disk with bounded memory; :func:`make_track` joins the pieces in memory. The pieces
are the same numbers as one pass over the whole track: the walk's latents are slices of one
walk, the generator sees the same batches, each seam crossfades from the bar before it, and
Rubber Band renders the track in one call up to :func:`pipeline.sample.tempo.segment_bars`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.grid import DEFAULT_BEATS_PER_BAR, bar_samples_at, tempo_of
from pipeline.models.clusters import hold_cluster
from pipeline.sample.assemble import DEFAULT_CROSSFADE_MS, concatenate_bars, crossfade_samples
from pipeline.sample.generate import class_labels, generate_bars, random_bars, random_latents
from pipeline.sample.latent import latent_walk
from pipeline.sample.tempo import retempo_stream

BARS_PER_KEYFRAME = 4
PIECE_BARS = 64  # bars generated at a time: a multiple of generate_bars' batch (64)


@dataclass(frozen=True)
class TrackSpec:
    n_bars: int
    method: str = "slerp"  # slerp | linear
    seed: int = 0
    n_keyframes: int | None = None  # None: one keyframe about every BARS_PER_KEYFRAME bars
    class_index: int | None = None  # conditional generators: the class of every bar (None: 0)
    crossfade_ms: float = DEFAULT_CROSSFADE_MS
    bpm: float | None = None  # None: the tempo the generator was trained at
    beats_per_bar: int = DEFAULT_BEATS_PER_BAR


@dataclass(frozen=True)
class TrackLayout:
    """What a track will be, known before any bar is made."""

    sample_rate: int
    channels: int
    n_bars: int
    bar_samples: int  # of the written track (at ``bpm``)
    bpm: float
    source_bpm: float  # the generator's
    n_keyframes: int

    @property
    def frames(self) -> int:
        return self.n_bars * self.bar_samples

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


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


def track_layout(generator: torch.nn.Module, sample_rate: int, spec: TrackSpec) -> TrackLayout:
    """The length, tempo and keyframes of ``spec`` rendered by ``generator``."""
    if spec.n_bars < 1:
        raise ValueError(f"a track needs at least 1 bar, got {spec.n_bars}")
    length = int(generator.length)
    source_bpm = tempo_of(length, sample_rate, spec.beats_per_bar)
    keyframes = spec.n_keyframes or default_keyframes(spec.n_bars)
    if spec.n_bars > 1:
        keyframes = min(max(2, keyframes), spec.n_bars)
    bar_samples, bpm = length, source_bpm
    if spec.bpm is not None:
        bar_samples = bar_samples_at(sample_rate, spec.bpm, spec.beats_per_bar)
        bpm = float(spec.bpm)
    channels = int(getattr(generator, "channels", 1))
    return TrackLayout(sample_rate, channels, spec.n_bars, bar_samples, bpm, source_bpm, keyframes)


def track_pieces(
    generator: torch.nn.Module, sample_rate: int, spec: TrackSpec, piece_bars: int = PIECE_BARS
) -> Iterator[np.ndarray]:
    """The track of ``spec`` as consecutive float32 ``[channels, m * bar_samples]`` pieces of
    whole bars (``m`` about ``piece_bars``)."""
    layout = track_layout(generator, sample_rate, spec)
    length = int(generator.length)
    assembled = _assembled_pieces(generator, sample_rate, spec, layout, piece_bars)
    if spec.bpm is None:
        yield from assembled
    else:
        yield from retempo_stream(assembled, sample_rate, length, layout.bar_samples)


def make_track(generator: torch.nn.Module, sample_rate: int, spec: TrackSpec) -> Track:
    """Render ``spec`` with ``generator`` (whose bars are ``generator.length`` samples)."""
    layout = track_layout(generator, sample_rate, spec)
    audio = np.concatenate(list(track_pieces(generator, sample_rate, spec)), axis=1)
    return Track(
        audio, sample_rate, layout.bar_samples, layout.bpm, layout.source_bpm, layout.n_keyframes
    )


def _assembled_pieces(
    generator: torch.nn.Module,
    sample_rate: int,
    spec: TrackSpec,
    layout: TrackLayout,
    piece_bars: int,
) -> Iterator[np.ndarray]:
    """Bars of the walk, crossfaded at every seam, a piece at a time at the generator's tempo."""
    crossfade = crossfade_samples(sample_rate, spec.crossfade_ms)
    if spec.n_bars == 1:
        bars = random_bars(generator, 1, spec.seed, _class(generator, spec.class_index))
        yield concatenate_bars(bars, crossfade, sample_rate)
        return
    keyframes = random_latents(generator, layout.n_keyframes, spec.seed)
    labels = class_labels(generator, spec.n_bars, _class(generator, spec.class_index))
    previous = None  # the bar before this piece: its seam into the piece is crossfaded here
    for start in range(0, spec.n_bars, piece_bars):
        stop = min(start + piece_bars, spec.n_bars)
        latents = latent_walk(keyframes, spec.n_bars, spec.method, start, stop)
        latents = hold_cluster(generator, latents, keyframes)
        bars = generate_bars(generator, latents, None if labels is None else labels[start:stop])
        if previous is None:
            yield concatenate_bars(bars, crossfade, sample_rate)
        else:
            joined = concatenate_bars(np.concatenate([previous, bars]), crossfade, sample_rate)
            yield joined[:, bars.shape[-1] :]
        previous = bars[-1:]


def _class(generator: torch.nn.Module, class_index: int | None) -> int | None:
    if class_index is None and getattr(generator, "num_classes", 0):
        return 0
    return class_index
