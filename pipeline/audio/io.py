"""Reading and writing audio files, with errors that name the file and the reason."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.fileio import atomic_write

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
# libsndfile's WAV/AIFF header dump marks a cut-short data chunk "data : 32000 (should be 15978)"
TRUNCATED_CHUNK = re.compile(
    r"^(?:data|SSND)\s*:\s*(?P<declared>\d+)\s*\(should be (?P<present>\d+)\)", re.MULTILINE
)


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class CorpusScan:
    files: list[Path]  # audio files to analyse, sorted
    skipped: list[tuple[Path, str]]  # entries named like audio that cannot be read, and why


def find_audio_files(root: Path) -> list[Path]:
    """All audio files under `root`, sorted (see :func:`scan_corpus`)."""
    return scan_corpus(root).files


def scan_corpus(root: Path) -> CorpusScan:
    """Audio files under `root`, and the entries named like audio that are not readable files
    (dangling links, folders). Hidden files and folders (``.git``, AppleDouble ``._x.wav``,
    ``.Trash``) are not part of the corpus."""
    files, skipped = [], []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in [*subfolders, *names]:
            path = Path(folder) / name
            if name.startswith(".") or path.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            if path.is_file():
                files.append(path)
            elif path.is_symlink() and not path.exists():
                skipped.append((path, f"dangling link to {os.readlink(path)}"))
            elif path.is_dir():
                skipped.append((path, "a folder named like an audio file"))
            else:
                skipped.append((path, "not a regular file"))
    return CorpusScan(sorted(files), sorted(skipped))


def truncation_warning(path: Path) -> str:
    """'' or why the file holds fewer frames than its header declares (a cut-short copy)."""
    try:
        details = sf.info(str(path)).extra_info
    except (sf.LibsndfileError, RuntimeError):
        return ""
    match = TRUNCATED_CHUNK.search(details)
    if match is None:
        return ""
    declared, present = int(match["declared"]), int(match["present"])
    return f"truncated: the header declares {declared} bytes of audio, the file holds {present}"


@dataclass(frozen=True)
class AudioHeader:
    frames: int
    sample_rate: int
    channels: int


BLOCK_FRAMES = 1 << 18  # 6 s at 44.1 kHz: streamed reads hold one block at a time


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return path


def probe_audio(path: str | os.PathLike) -> AudioHeader:
    """The header of an audio file, checked as :func:`read_audio` checks it, without reading
    the audio. Raises AudioError."""
    path = _existing_file(path)
    try:
        header = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from err
    check_audio_format(path, header.frames, header.samplerate, header.channels)
    return AudioHeader(int(header.frames), int(header.samplerate), int(header.channels))


def stream_blocks(path: str | os.PathLike, block_frames: int = BLOCK_FRAMES):
    """float32 ``[frames, channels]`` blocks of a file that :func:`probe_audio` accepts;
    raises AudioError for unreadable data or NaN/infinite samples, naming the file."""
    try:
        with sf.SoundFile(str(path)) as handle:
            yield from read_blocks(handle, path, 0, handle.frames, block_frames)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from err


def read_blocks(
    handle: sf.SoundFile,
    path: str | os.PathLike,
    start: int,
    stop: int,
    block_frames: int = BLOCK_FRAMES,
):
    """float32 ``[frames, channels]`` blocks of frames [start, stop) of an open file; raises
    AudioError naming ``path`` for unreadable data or NaN/infinite samples."""
    try:
        handle.seek(start)
        while start < stop:
            block = handle.read(min(block_frames, stop - start), "float32", True)
            if len(block) == 0:
                return
            if not np.isfinite(block).all():
                raise AudioError(path, "contains NaN or infinite samples")
            start += len(block)
            yield block
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from err


def stream_rms_dbfs(path: str | os.PathLike) -> float:
    """RMS level of the whole file in dBFS, read block by block."""
    total, count = 0.0, 0
    for block in stream_blocks(path):
        total += float(np.sum(np.square(block, dtype=np.float64)))
        count += block.size
    return dbfs(np.sqrt(total / max(count, 1)))


def head_rms_dbfs(path: str | os.PathLike, seconds: float) -> float:
    """RMS level in dBFS of the file's first ``seconds`` (how it starts: a loop cut on the bar
    starts with its downbeat's sound, a recording with a lead-in with silence)."""
    try:
        with sf.SoundFile(str(path)) as handle:
            frames = max(1, min(handle.frames, round(seconds * handle.samplerate)))
            head = np.concatenate(list(read_blocks(handle, path, 0, frames)) or [np.zeros((1, 1))])
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from err
    return dbfs(float(np.sqrt(np.mean(np.square(head, dtype=np.float64)))))


def dbfs(rms: float) -> float:
    """An RMS level in dBFS (a silent signal gives -240 dB, not minus infinity)."""
    return float(20 * np.log10(rms + 1e-12))


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``[channels, frames]`` and its sample rate.

    Raises AudioError for unreadable, empty or out-of-range files.
    """
    path = _existing_file(path)
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from err
    check_audio_format(path, data.shape[0], sample_rate, data.shape[1])
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return np.ascontiguousarray(data.T), int(sample_rate)


def check_audio_format(path: Path, frames: int, sample_rate: int, channels: int) -> None:
    """Raise AudioError unless the file has frames, a usable sample rate and channel count."""
    if frames == 0:
        raise AudioError(path, "no audio frames")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            path, f"sample rate {sample_rate} Hz outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(path, f"{channels} channels; 1 to {MAX_CHANNELS} are supported")


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write ``[channels, frames]`` (or 1-D mono) audio as 16-bit PCM WAV, atomically."""
    frames = np.clip(np.atleast_2d(audio).T, -1.0, 1.0)
    atomic_write(
        Path(path),
        lambda tmp: sf.write(tmp, frames, sample_rate, subtype="PCM_16", format="WAV"),
    )


PCM_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}


def encode_wav(audio: np.ndarray, sample_rate: int, bits: int = 16) -> bytes:
    """``[channels, frames]`` (or 1-D mono) audio as the bytes of a PCM WAV file of ``bits``
    (16 or 24) bits, clipped to full scale as :func:`write_audio` does."""
    if bits not in PCM_SUBTYPES:
        raise ValueError(f"bit depth {bits}: 16 or 24 are written")
    frames = np.clip(np.atleast_2d(audio).T, -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, frames, sample_rate, subtype=PCM_SUBTYPES[bits], format="WAV")
    return buffer.getvalue()


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Down-mix to mono, or up-/down-mix to stereo (first two channels, mono duplicated)."""
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if channels == 2:
        if audio.shape[0] == 1:
            return np.repeat(audio, 2, axis=0)
        if audio.shape[0] == 2:
            return audio
        # More than two channels: left = mean of even-indexed, right = mean of odd-indexed.
        return np.stack([audio[0::2].mean(axis=0), audio[1::2].mean(axis=0)])
    raise ValueError(f"channels must be 1 or 2, got {channels}")
