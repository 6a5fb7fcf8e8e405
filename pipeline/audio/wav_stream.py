"""Writing a long 16-bit WAV piece by piece, atomically, in a container that can hold it.

A WAV file's sizes are 32-bit: it holds at most 4 GiB. A longer track is written as RF64
(EBU Tech 3306: the same header and samples with 64-bit sizes, read by libsndfile, ffmpeg, SoX
and the common DAWs) under the same ``.wav`` name; anything that fits stays a plain WAV,
byte for byte what :func:`pipeline.audio.io.write_audio` writes.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.fileio import atomic_write

BYTES_PER_SAMPLE = 2  # PCM_16
WAV_HEADER_BYTES = 44
WAV_LIMIT_BYTES = (1 << 32) - 1  # the RIFF chunk size is an unsigned 32-bit number
HEADER_MARGIN = 1 << 16  # room for any chunk libsndfile adds to the header


def wav_bytes(frames: int, channels: int) -> int:
    """Size of a 16-bit WAV holding ``frames`` frames of ``channels`` channels."""
    return WAV_HEADER_BYTES + frames * channels * BYTES_PER_SAMPLE


def container_for(frames: int, channels: int, limit: int = WAV_LIMIT_BYTES) -> str:
    """``"WAV"``, or ``"RF64"`` when a WAV cannot hold the audio."""
    return "WAV" if wav_bytes(frames, channels) + HEADER_MARGIN <= limit else "RF64"


def free_bytes(path: Path) -> int:
    """Free space on the file system that ``path`` (or its nearest existing parent) is on."""
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def write_wav_stream(
    path: Path,
    pieces: Iterable[np.ndarray],
    sample_rate: int,
    channels: int,
    frames: int,
    limit: int = WAV_LIMIT_BYTES,
    chunks: Sequence[bytes] = (),
) -> str:
    """Write the ``[channels, n]`` float pieces (``frames`` frames in all) to ``path`` as 16-bit
    PCM, clipped to [-1, 1], through a temporary file beside it; returns the container used.
    ``chunks`` (whole RIFF chunks, e.g. loop tags) follow the audio in a WAV; an RF64 file is
    written without them (its sizes live in a ds64 chunk that few readers of tags understand).
    An OSError names ``path`` (a full disk too); nothing is left behind on any failure."""
    container = container_for(frames, channels, limit)

    def write(tmp: str) -> None:
        written = 0
        with sf.SoundFile(tmp, "w", sample_rate, channels, "PCM_16", format=container) as out:
            for piece in pieces:
                block = np.clip(np.atleast_2d(piece).T, -1.0, 1.0)
                try:
                    out.write(block)
                except (AssertionError, sf.LibsndfileError) as err:  # a short write
                    raise _write_failed(tmp, block.nbytes) from err
                written += len(block)
        if written != frames:
            raise RuntimeError(f"{path}: {written} frames were made, {frames} expected")
        if chunks and container == "WAV":
            append_chunks(Path(tmp), chunks)

    atomic_write(path, write)
    return container


def append_chunks(path: Path, chunks: Sequence[bytes]) -> None:
    """Append whole RIFF ``chunks`` to the WAV file at ``path`` and rewrite its RIFF size,
    without reading the audio (a pad byte first if the file's length is odd)."""
    with open(path, "r+b") as wav:
        head = wav.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path}: not a RIFF/WAVE file")
        end = wav.seek(0, os.SEEK_END)
        if end % 2:
            end += wav.write(b"\0")
        end += wav.write(b"".join(chunks))
        wav.seek(4)
        wav.write(struct.pack("<I", end - 8))


def _write_failed(tmp: str, needed: int) -> OSError:
    # soundfile reports a short write as an AssertionError; a full disk is the usual cause
    if free_bytes(Path(tmp)) < needed:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(errno.EIO, os.strerror(errno.EIO))
