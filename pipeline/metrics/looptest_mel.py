"""LoopTest's log-mel front end (Hung et al., ISMIR 2021), adapted to our bars.

LoopTest (github allenhung1025/LoopTest, ``preprocess/extract_mel.py``) time-stretches each
one-bar loop to 2 s, loads it at 44.1 kHz mono, divides it by its peak and takes MelGAN's
``Audio2Mel``: reflect padding of ``(n_fft - hop) // 2``, a 1024-point periodic Hann STFT
(``center=False``) with hop 275, magnitude (not power), librosa's 80-band Slaney mel filterbank
(0 Hz to Nyquist, Slaney area normalisation) and ``log10(max(mel, 1e-5))``: 80 x 320 frames for
a 2 s bar. ``evaluation/NDB_JS/compute_ndb_js.py`` then scales each mel band by the reference
set's per-band mean and std (``preprocess/compute_mean_std.mel.py``: a StandardScaler over
frames) and flattens to 80 * 320 dimensions.

Our adaptation: each bar is resampled to 44.1 kHz (polyphase, not librosa 0.8's resampy), so the
window, the filterbank and, for a 2 s bar, the hop are LoopTest's own. Keeping the bar's own
rate with a scaled hop would have been cheaper but changes every filter's band and the window's
length, so the features would no longer be LoopTest's. The cost of that choice: a bar at a lower
rate has nothing above its Nyquist (at 16 kHz, 18 of the 80 bands lie wholly above 8 kHz), so
those bands hold only window leakage near the log floor, and NDB's per-dimension whitening
scales them up like any other dimension, as it would for LoopTest's own band-limited loops.

A bar that is not 2 s long gets the largest hop that still gives 320 frames (the first 320 are
kept): the frame grid follows the bar as LoopTest's stretch to 2 s made it do, while the window
stays 1024 samples. A silent bar
(peak 0) is left at zero instead of divided by its peak (LoopTest would get NaN).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.audio.mel import mel_filterbank
from pipeline.audio.resample import resample

SAMPLE_RATE = 44100
N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 275
N_MELS = 80
N_FRAMES = 320
BAR_SECONDS = 2.0
LOG_FLOOR = 1e-5


def mel_basis() -> torch.Tensor:
    """librosa's default (Slaney) filterbank, as LoopTest's ``librosa_mel_fn(44100, 1024, 80)``."""
    return torch.from_numpy(mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS)).float()


def frame_count(n_samples: int, hop: int) -> int:
    """Frames ``Audio2Mel`` gives for ``n_samples`` at ``hop`` (its padding, ``center=False``)."""
    pad = (N_FFT - hop) // 2
    return 1 + (n_samples + 2 * pad - N_FFT) // hop


def looptest_hop(n_samples: int) -> int:
    """The largest hop giving at least :data:`N_FRAMES` frames: 275 for 2 s at 44.1 kHz."""
    hop = n_samples // (N_FRAMES - 1)
    while hop > 1 and frame_count(n_samples, hop) < N_FRAMES:
        hop -= 1
    if hop > WIN_LENGTH or frame_count(n_samples, hop) < N_FRAMES:
        raise ValueError(
            f"a bar of {n_samples / SAMPLE_RATE:.2f} s at 44.1 kHz cannot give LoopTest's "
            f"{N_FRAMES} frames of {WIN_LENGTH}-sample windows without gaps or padding past the "
            f"bar (evaluate.ndb_features looptest; check bars.bpm and bars.beats_per_bar)"
        )
    return hop


def audio2mel(audio: torch.Tensor, hop: int = HOP_LENGTH) -> torch.Tensor:
    """MelGAN's ``Audio2Mel.forward`` with LoopTest's settings: ``[N, T]`` -> ``[N, 80, F]``."""
    pad = (N_FFT - hop) // 2
    padded = torch.nn.functional.pad(audio[:, None, :], (pad, pad), "reflect")[:, 0, :]
    spectrum = torch.stft(
        padded,
        n_fft=N_FFT,
        hop_length=hop,
        win_length=WIN_LENGTH,
        window=torch.hann_window(WIN_LENGTH),
        center=False,
        return_complex=True,
    )
    mel = torch.matmul(mel_basis(), spectrum.abs())
    return torch.log10(torch.clamp(mel, min=LOG_FLOOR))


def to_looptest_audio(bars: np.ndarray, sample_rate: int) -> np.ndarray:
    """Bars ``[N, C, T]`` as LoopTest loaded its loops: mono, 44.1 kHz, peak-normalised."""
    mono = resample(np.asarray(bars, dtype=np.float64).mean(axis=1), int(sample_rate), SAMPLE_RATE)
    peak = np.abs(mono).max(axis=-1, keepdims=True)
    return (mono / np.where(peak > 0, peak, 1.0)).astype(np.float32)


def looptest_log_mels(bars: np.ndarray, sample_rate: int, chunk_size: int = 64) -> np.ndarray:
    """LoopTest's log-mel of each bar ``[N, C, T]``: ``[N, 80, 320]`` float32."""
    if len(bars) == 0:
        return np.zeros((0, N_MELS, N_FRAMES), np.float32)
    audio = to_looptest_audio(bars, sample_rate)
    hop = looptest_hop(audio.shape[-1])
    chunks = []
    with torch.no_grad():
        for start in range(0, len(audio), chunk_size):
            chunk = torch.from_numpy(audio[start : start + chunk_size])
            chunks.append(audio2mel(chunk, hop)[:, :, :N_FRAMES].numpy())
    return np.concatenate(chunks)


def band_statistics(log_mels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std over every frame of ``[N, 80, F]``, as LoopTest's StandardScaler
    (population std; a constant band gets std 1, as sklearn's scaler gives it)."""
    frames = log_mels.transpose(1, 0, 2).reshape(log_mels.shape[1], -1).astype(np.float64)
    mean, std = frames.mean(axis=1), frames.std(axis=1)
    std[std == 0] = 1.0
    return mean, std


def looptest_vectors(log_mels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Band-normalised and flattened: ``[N, 80 * frames]`` float64, compute_ndb_js.py's rows."""
    scaled = (log_mels - mean[None, :, None]) / std[None, :, None]
    return scaled.reshape(len(log_mels), -1)
