"""TEMPORARY whole-file stand-in; replaced by the streamed version (branch act)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.audio.io import read_audio
from pipeline.audio.resample import resample

FPS = 100


@dataclass(frozen=True)
class TrackActivations:
    beat: np.ndarray
    downbeat: np.ndarray
    onset: np.ndarray
    onset_low: np.ndarray
    chroma: np.ndarray
    duration: float
    sample_rate: int
    channels: int
    rms_dbfs: float


def compute_activations(path: Path) -> TrackActivations:
    import librosa
    from madmom.audio.signal import Signal

    from pipeline.audio import downbeats

    audio, sr = read_audio(path)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    y = resample(audio.mean(axis=0), sr, 44100)
    act = downbeats._downbeat_network()(Signal(y, sample_rate=44100))
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=441))
    freqs = librosa.fft_frequencies(sr=44100, n_fft=2048)
    logS = np.log1p(100 * S)
    flux = np.maximum(0, np.diff(logS, axis=1, prepend=logS[:, :1]))
    n = len(act)
    chroma = librosa.feature.chroma_stft(S=S**2, sr=44100, hop_length=441)
    return TrackActivations(
        act[:, 0].astype(np.float32),
        act[:, 1].astype(np.float32),
        flux.mean(axis=0)[:n].astype(np.float32),
        flux[freqs < 200].mean(axis=0)[:n].astype(np.float32),
        chroma[:, :n].T.astype(np.float32),
        audio.shape[1] / sr,
        sr,
        audio.shape[0],
        20 * np.log10(rms + 1e-12),
    )
