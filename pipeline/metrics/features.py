"""Per-bar features shared by the metrics: bar-synchronous log-mel frames and a fixed embedding.

A bar loops, so its spectrum is taken circularly: frame ``k`` is centred on sample
``round(k * T / F)`` and windows reaching past either end wrap around to the other end, exactly
as when the bar is played in a loop. There are ``frames_per_16th`` frames per 16th note, so a
time shift by whole 16ths (when ``T`` divides evenly) is exactly a roll of the frame axis.

The fixed embedding needs no download: log-mel mean/std, MFCC mean/std, spectral contrast,
the onset pattern folded onto the 16th grid, onset-envelope autocorrelation at 16th-note lags,
and loudness/timbre statistics. Features are computed in chunks of bars with torch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import scipy.fft
import torch

from pipeline.audio.mel import mel_filterbank
from pipeline.grid import DEFAULT_BEATS_PER_BAR

# Levels in dB relative to a full-scale sinusoid, floored 80 dB below it: detail quieter than that
# (dither, an inverter's residue between hits) is inaudible in a mix and must not move the features.
DB_FLOOR = -80.0
FRAMES_PER_16TH = 4
N_MFCC = 20
CONTRAST_BANDS = 7  # [0, 200 Hz], then six octaves from 200 Hz (the last one open-ended)
CONTRAST_QUANTILE = 0.02
AUTOCORR_LAGS_16THS = 8

T = TypeVar("T")


@dataclass(frozen=True)
class BarFeatures:
    """``log_mel``: [N, n_mels, F] in dB; ``embedding``: [N, D] fixed features (unscaled)."""

    log_mel: np.ndarray
    embedding: np.ndarray


def cached(options: dict[str, Any] | None, key: tuple, compute: Callable[[], T]) -> T:
    """Memoise ``compute()`` in ``options["cache"]``: a dict that ``compute_all`` makes for one
    call (or a bench for several); no cache, no memo."""
    cache = None if options is None else options.get("cache")
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


class _Identity:
    """A key part equal only to another for the same array object. It holds the array: while a
    cache entry lives, its array cannot be freed, so its ``id`` cannot pass to another array."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __hash__(self) -> int:
        return id(self.array)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.array is self.array


def array_key(array: np.ndarray) -> tuple:
    """Cache key for an array that stays unchanged while the cache is in use (by identity)."""
    return (_Identity(array), tuple(array.shape))


def frame_centres(length: int, n_frames: int) -> np.ndarray:
    return np.round(np.arange(n_frames) * length / n_frames).astype(np.int64)


def n_frames_per_bar(beats_per_bar: int, frames_per_16th: int) -> int:
    return 4 * beats_per_bar * frames_per_16th


def fft_size(length: int, n_frames: int) -> int:
    """Power of two covering two hops (windows overlap by at least half)."""
    hop = length / n_frames
    return int(2 ** np.ceil(np.log2(max(2 * hop, 64))))


def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    return torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels))


def _contrast_bands(sample_rate: int, n_fft: int) -> list[tuple[int, int]]:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = [0.0, *(200.0 * 2.0**k for k in range(CONTRAST_BANDS - 1)), np.inf]
    bands = []
    for low, high in itertools.pairwise(edges):
        inside = np.nonzero((freqs >= low) & (freqs < high))[0]
        bands.append((int(inside[0]), int(inside[-1]) + 1) if len(inside) >= 2 else (0, 0))
    return bands


def bar_features(
    bars: np.ndarray,
    sample_rate: int,
    beats_per_bar: int = DEFAULT_BEATS_PER_BAR,
    n_mels: int = 64,
    frames_per_16th: int = FRAMES_PER_16TH,
    chunk_size: int = 256,
) -> BarFeatures:
    """Log-mel frames and the fixed embedding of ``bars`` [N, channels, T] (channels averaged)."""
    bars = np.asarray(bars, dtype=np.float32)
    if bars.ndim != 3:
        raise ValueError(f"bars must be [N, channels, T], got shape {bars.shape}")
    length = bars.shape[2]
    n_frames = n_frames_per_bar(beats_per_bar, frames_per_16th)
    n_fft = fft_size(length, n_frames)
    index = torch.from_numpy(
        (frame_centres(length, n_frames)[:, None] + np.arange(n_fft)[None, :] - n_fft // 2) % length
    )
    window = torch.hann_window(n_fft, periodic=True)
    mel = _mel_filters(sample_rate, n_fft, n_mels)
    dct = torch.from_numpy(scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:N_MFCC])
    bands = _contrast_bands(sample_rate, n_fft)
    freqs = torch.from_numpy(np.fft.rfftfreq(n_fft, 1.0 / sample_rate).astype(np.float32))
    context = (index, window, mel, dct.float(), bands, freqs, beats_per_bar, frames_per_16th)
    log_mels, embeddings = [], []
    for start in range(0, len(bars), chunk_size):
        mono = torch.from_numpy(bars[start : start + chunk_size].mean(axis=1))
        log_mel, embedding = _chunk_features(mono, context)
        log_mels.append(log_mel.numpy())
        embeddings.append(embedding.numpy())
    if not log_mels:
        return BarFeatures(
            np.zeros((0, n_mels, n_frames), np.float32), np.zeros((0, 0), np.float32)
        )
    return BarFeatures(np.concatenate(log_mels), np.concatenate(embeddings))


def _db(power: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(power.clamp_min(10.0 ** (DB_FLOOR / 10.0)))


def _chunk_features(mono: torch.Tensor, context: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    index, window, mel, dct, bands, freqs, beats_per_bar, frames_per_16th = context
    frames = mono[:, index] * window  # [n, F, n_fft]
    full_scale = (window.sum() / 2.0).square()  # a full-scale sinusoid's peak bin
    power = torch.fft.rfft(frames).abs().square() / full_scale  # [n, F, bins]
    log_mel = _db(power @ mel.T)  # [n, F, M]
    n, n_frames, _ = log_mel.shape

    parts = [log_mel.mean(1), log_mel.std(1, correction=0)]
    mfcc = log_mel @ dct.T  # [n, F, N_MFCC]
    parts += [mfcc.mean(1), mfcc.std(1, correction=0)]

    peaks, valleys = [], []
    for low, high in bands:
        if high - low < 2:
            peaks.append(torch.zeros(n, n_frames))
            valleys.append(torch.zeros(n, n_frames))
            continue
        ordered = power[..., low:high].sort(dim=-1).values
        k = max(1, round(CONTRAST_QUANTILE * (high - low)))
        valleys.append(_db(ordered[..., :k].mean(-1)))
        peaks.append(_db(ordered[..., -k:].mean(-1)))
    peak, valley = torch.stack(peaks, -1), torch.stack(valleys, -1)  # [n, F, bands]
    parts += [(peak - valley).mean(1), valley.mean(1)]

    # Onset envelope: positive log-mel flux, circular because the bar loops.
    flux = (log_mel - log_mel.roll(1, dims=1)).clamp_min(0).mean(-1)  # [n, F]
    slots = 4 * beats_per_bar
    pattern = flux.reshape(n, slots, frames_per_16th).sum(-1)
    parts.append(pattern / pattern.sum(-1, keepdim=True).clamp_min(1e-8))
    parts.append(flux.mean(1, keepdim=True))
    centred = flux - flux.mean(1, keepdim=True)
    spectrum = torch.fft.rfft(centred)
    autocorr = torch.fft.irfft(spectrum.abs().square(), n=n_frames)
    lags = [min(k * frames_per_16th, n_frames - 1) for k in range(1, AUTOCORR_LAGS_16THS + 1)]
    parts.append(autocorr[:, lags] / autocorr[:, :1].clamp_min(1e-8))

    total = power.sum(-1).clamp_min(1e-20)  # [n, F]
    frame_db = _db(total)
    centroid = (power * freqs).sum(-1) / total / freqs[-1]
    floored = power.clamp_min(10.0 ** (DB_FLOOR / 10.0))
    flatness = torch.exp(torch.log(floored).mean(-1)) / floored.mean(-1)
    peak_db = 20.0 * torch.log10(mono.abs().amax(1).clamp_min(1e-5))
    rms_db = 10.0 * torch.log10(mono.square().mean(1).clamp_min(1e-10))
    zero_crossings = (mono[:, 1:] * mono[:, :-1] < 0).float().mean(1)
    parts.append(
        torch.stack(
            [
                frame_db.mean(1),
                frame_db.std(1, correction=0),
                centroid.mean(1),
                centroid.std(1, correction=0),
                flatness.mean(1),
                peak_db,
                peak_db - rms_db,
                zero_crossings,
            ],
            dim=1,
        )
    )
    embedding = torch.cat(parts, dim=1).float()
    return log_mel.transpose(1, 2).contiguous(), embedding


# The option of every metric on these features, and its default.
OPTIONS: dict[str, Any] = {"n_mels": 64}


def features_for(bars: np.ndarray, options: dict[str, Any]) -> BarFeatures:
    """:func:`bar_features` with the evaluation's options, cached per bar set."""
    sample_rate = int(options["sample_rate"])
    beats_per_bar = int(options.get("beats_per_bar", DEFAULT_BEATS_PER_BAR))
    n_mels = int(options.get("n_mels", OPTIONS["n_mels"]))
    key = ("features", *array_key(bars), sample_rate, beats_per_bar, n_mels)
    return cached(
        options, key, lambda: bar_features(bars, sample_rate, beats_per_bar, n_mels=n_mels)
    )
