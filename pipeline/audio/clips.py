"""Clip mode: every recording is one training example, cut as WaveGAN's loader cut SC09.

For data that has no bars (SC09's one-second spoken digits): no beat analysis and no stretching.
The recording is mixed to the grid's channels and resampled to its rate; its first
``grid.bar_samples`` samples are kept, zero-padded at the end when it is shorter (the reference
code's ``--data_first_slice --data_pad_end``: SC09's 16000-sample clips become 16384).
"""

from __future__ import annotations

import numpy as np

from pipeline.audio.io import dbfs, to_channels
from pipeline.audio.render import BarFilters, RenderedTrack, level_reason, normalize
from pipeline.audio.resample import resample
from pipeline.grid import BarGrid


def render_clip(
    audio: np.ndarray, sample_rate: int, grid: BarGrid, filters: BarFilters
) -> RenderedTrack:
    """The first ``grid.bar_samples`` of a ``[channels, frames]`` recording, padded with zeros;
    rejected (with its reason) when too quiet or clipped. Stretch and trust filters do not apply:
    nothing is stretched or tracked."""
    y = resample(to_channels(audio, grid.channels), sample_rate, grid.sample_rate)
    length = min(y.shape[1], grid.bar_samples)
    clip = np.zeros((grid.channels, grid.bar_samples), np.float32)
    clip[:, :length] = y[:, :length]
    row = {
        "bar_index": 0,
        "start_s": 0.0,
        "end_s": length / grid.sample_rate,
        "padded_s": (grid.bar_samples - length) / grid.sample_rate,
        "rms_dbfs": dbfs(np.sqrt(np.mean(np.square(clip, dtype=np.float64)))),
        "peak": float(np.abs(clip).max()),
        "trust": 1.0,
    }
    reason = level_reason(clip, row["rms_dbfs"], filters)
    if reason:
        empty = np.zeros((0, grid.channels, grid.bar_samples), np.float32)
        return RenderedTrack(empty, [], [{**row, "reason": reason}])
    return RenderedTrack(normalize(clip, filters.normalize_dbfs)[None], [row], [])
