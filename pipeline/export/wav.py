"""Writing loop-ready WAV files: PCM audio with ``acid`` and ``smpl`` tags (see
:mod:`pipeline.export.riff`), atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.audio.io import encode_wav
from pipeline.export.riff import LoopTags, add_chunks, loop_chunks, whole_bar_loop
from pipeline.fileio import atomic_write


def write_tagged_wav(
    path: str | os.PathLike, audio: np.ndarray, tags: LoopTags, bits: int = 16
) -> Path:
    """Write ``[channels, frames]`` audio at ``tags.sample_rate`` with its loop tags."""
    frames = np.atleast_2d(audio).shape[1]
    if tags.loop_end >= frames:
        raise ValueError(f"loop end {tags.loop_end} is past the audio's {frames} samples")
    data = add_chunks(encode_wav(audio, tags.sample_rate, bits), loop_chunks(tags))
    return atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def write_bars_wav(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    bar_samples: int,
    bpm: float,
    beats_per_bar: int,
    bits: int = 16,
) -> Path:
    """Write audio of whole ``bar_samples``-sample bars at ``bpm``, tagged as one loop over
    all of them. Raises ValueError when the audio is not a whole number of bars."""
    frames = np.atleast_2d(audio).shape[1]
    if bar_samples < 1 or frames == 0 or frames % bar_samples:
        raise ValueError(f"{frames} samples are not a whole number of {bar_samples}-sample bars")
    tags = whole_bar_loop(frames, frames // bar_samples, sample_rate, bpm, beats_per_bar)
    return write_tagged_wav(path, audio, tags, bits)
