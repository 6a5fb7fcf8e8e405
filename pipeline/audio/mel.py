"""The mel filterbank: librosa's default (Slaney mel scale, Slaney area normalisation), in numpy.

Every log-mel in the metrics (our fixed features, the rhythm onset flux, LoopTest's front end)
takes its filters from :func:`mel_filterbank`. It is ``librosa.filters.mel(sr=..., n_fft=...,
n_mels=...)`` to the bit (``tests/unit/test_audio_mel.py`` compares them), without importing
librosa (slow to import, and absent from a bare GPU image). VGGish and WaveGAN's classifier use
their references' own HTK-scale filters (:mod:`pipeline.metrics.vggish_input`,
:mod:`pipeline.metrics.wavegan_classifier`).
"""

from __future__ import annotations

import numpy as np

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asanyarray(frequencies, dtype=np.float64)
    return np.where(
        f >= _MIN_LOG_HZ,
        _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP,
        f / _F_SP,
    )


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    m = np.asanyarray(mels, dtype=np.float64)
    return np.where(
        m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m
    )


def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int) -> np.ndarray:
    """``[n_mels, 1 + n_fft // 2]`` float32 triangular filters from 0 Hz to Nyquist, each
    scaled to unit area (Slaney). Bands too narrow to hold an FFT bin (low rates, many bands)
    are all zero."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / widths[i]
        upper = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, np.newaxis]
    return weights
