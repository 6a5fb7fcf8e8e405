"""VGGish's input: audio -> log-mel examples ``[n, 96, 64]``, as the reference VGGish computes it.

The AudioSet VGGish front end (Hershey et al. 2017; the TensorFlow release's ``vggish_input`` /
``mel_features``, carried unchanged into the torchvggish port): 16 kHz mono; 25 ms frames
(400 samples) every 10 ms (160 samples), no padding, a periodic Hann window, the magnitude of a
512-point real FFT; 64 HTK-mel triangles from 125 Hz to 7500 Hz (the DC bin weighted 0);
``log(mel + 0.01)``; then non-overlapping 0.96 s examples of 96 frames (a last partial one
dropped). Computed in float64 with numpy, as the reference does, so the same audio gives the
same examples to float64 round-off.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from pipeline.audio.resample import resample

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
FFT_SIZE = 512  # the power of two covering a window
NUM_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames, examples do not overlap
MIN_SAMPLES = WINDOW_SAMPLES + (EXAMPLE_FRAMES - 1) * HOP_SAMPLES  # audio for one example

# HTK mel scale: mel = 1127 ln(1 + f / 700).
_MEL_BREAK_HZ = 700.0
_MEL_Q = 1127.0


def hertz_to_mel(hertz: np.ndarray | float) -> np.ndarray:
    return _MEL_Q * np.log1p(np.asarray(hertz, dtype=np.float64) / _MEL_BREAK_HZ)


@cache
def mel_matrix() -> np.ndarray:
    """``[FFT_SIZE // 2 + 1, NUM_BANDS]``: FFT magnitudes (rows) to mel bands; triangles that are
    linear in mel between neighbouring band edges, the DC bin excluded."""
    n_bins = FFT_SIZE // 2 + 1
    bin_mel = hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2.0, n_bins))
    edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), NUM_BANDS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    weights.setflags(write=False)
    return weights


@cache
def periodic_hann() -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi / WINDOW_SAMPLES * np.arange(WINDOW_SAMPLES))
    window.setflags(write=False)
    return window


def log_mel(audio: np.ndarray) -> np.ndarray:
    """``[frames, 64]`` log-mel of mono 16 kHz ``audio`` (1-D)."""
    audio = np.asarray(audio, dtype=np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(audio, WINDOW_SAMPLES)[::HOP_SAMPLES]
    magnitude = np.abs(np.fft.rfft(frames * periodic_hann(), FFT_SIZE))
    return np.log(magnitude @ mel_matrix() + LOG_OFFSET)


def waveform_to_examples(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[n, 96, 64]`` float64 examples of ``audio`` (``[samples]`` mono or ``[channels,
    samples]``, averaged to mono), resampled to 16 kHz when at another rate (polyphase, see
    :func:`pipeline.audio.resample.resample`). Audio shorter than one example (0.975 s at 16 kHz)
    gives none."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2:
        audio = audio.mean(0)
    elif audio.ndim != 1:
        raise ValueError(f"expected [samples] or [channels, samples] audio, got {audio.shape}")
    audio = np.asarray(resample(audio, int(sample_rate), SAMPLE_RATE), dtype=np.float64)
    if len(audio) < MIN_SAMPLES:
        return np.zeros((0, EXAMPLE_FRAMES, NUM_BANDS))
    mel = log_mel(audio)
    n = len(mel) // EXAMPLE_FRAMES
    return mel[: n * EXAMPLE_FRAMES].reshape(n, EXAMPLE_FRAMES, NUM_BANDS)
