"""LoopTest's log-mel front end (preprocess/extract_mel.py: MelGAN's Audio2Mel at 44.1 kHz, n_fft
1024, hop 275, 80 Slaney mel bands, log10 floored at 1e-5) on our bars."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from pipeline.metrics.looptest_mel import (
    HOP_LENGTH,
    N_FRAMES,
    N_MELS,
    SAMPLE_RATE,
    band_statistics,
    frame_count,
    looptest_hop,
    looptest_log_mels,
    looptest_vectors,
)

TWO_SECONDS = 2 * SAMPLE_RATE


def audio2mel_numpy(audio: np.ndarray, hop: int) -> np.ndarray:
    """Audio2Mel written out in numpy: reflect padding, periodic Hann frames, |rfft|, mel, log10."""
    pad = (1024 - hop) // 2
    padded = np.pad(audio, (pad, pad), mode="reflect")
    n_frames = 1 + (len(padded) - 1024) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    frames = np.stack([padded[i * hop : i * hop + 1024] * window for i in range(n_frames)])
    magnitude = np.abs(np.fft.rfft(frames, axis=1)).T
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=1024, n_mels=80, htk=False, norm="slaney")
    return np.log10(np.maximum(basis @ magnitude, 1e-5))


def drums(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Decaying noise bursts on a 16th grid and a low sine: a bar ``[1, 1, T]``."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    hits = np.exp(-40 * (t % (seconds / 16))) * rng.standard_normal(len(t))
    return (0.4 * hits + 0.3 * np.sin(2 * np.pi * 110 * t))[None, None, :].astype(np.float32)


def test_a_two_second_bar_at_44k1_gives_looptests_80_by_320_frames():
    assert looptest_hop(TWO_SECONDS) == HOP_LENGTH == 275
    assert frame_count(TWO_SECONDS, HOP_LENGTH) == N_FRAMES == 320
    mels = looptest_log_mels(drums(2.0, SAMPLE_RATE), SAMPLE_RATE)
    assert mels.shape == (1, N_MELS, N_FRAMES) == (1, 80, 320)


def test_the_mel_is_audio2mel_of_the_peak_normalised_bar():
    bar = drums(2.0, SAMPLE_RATE)
    expected = audio2mel_numpy(bar[0, 0].astype(np.float64) / np.abs(bar).max(), HOP_LENGTH)
    assert expected.shape == (80, 320)
    np.testing.assert_allclose(looptest_log_mels(bar, SAMPLE_RATE)[0], expected, atol=2e-4)
    quiet = looptest_log_mels(0.05 * bar, SAMPLE_RATE)  # peak normalisation: level drops out
    np.testing.assert_allclose(quiet, looptest_log_mels(bar, SAMPLE_RATE), atol=1e-4)


def test_stereo_bars_are_averaged_to_mono():
    left, right = drums(2.0, SAMPLE_RATE, 1), drums(2.0, SAMPLE_RATE, 2)
    stereo = np.concatenate([left, right], axis=1)
    mono = 0.5 * (left + right)
    np.testing.assert_allclose(
        looptest_log_mels(stereo, SAMPLE_RATE), looptest_log_mels(mono, SAMPLE_RATE), atol=1e-4
    )


def test_a_16k_bar_is_resampled_so_a_tone_lands_in_the_same_band():
    t16, t44 = np.arange(32000) / 16000, np.arange(TWO_SECONDS) / SAMPLE_RATE
    tone16 = np.sin(2 * np.pi * 1000 * t16)[None, None, :]
    tone44 = np.sin(2 * np.pi * 1000 * t44)[None, None, :]
    low, high = looptest_log_mels(tone16, 16000)[0], looptest_log_mels(tone44, SAMPLE_RATE)[0]
    assert low.shape == (80, 320)
    assert np.argmax(low.mean(axis=1)) == np.argmax(high.mean(axis=1))
    loud = high > high.max() - 2.0  # within 40 dB of the peak: the tone, not window leakage
    assert 0 < loud.mean() < 0.2
    np.testing.assert_allclose(low[loud], high[loud], atol=0.05)


def test_silence_sits_at_the_log_floor_without_nan():
    mels = looptest_log_mels(np.zeros((2, 1, 32000), np.float32), 16000)
    assert np.isfinite(mels).all()
    np.testing.assert_allclose(mels, -5.0)


@pytest.mark.parametrize("seconds", [1.5, 2.25, 4.0])
def test_bars_of_other_lengths_keep_320_frames(seconds):
    mels = looptest_log_mels(drums(seconds, 8000), 8000)
    assert mels.shape == (1, 80, 320)
    assert np.isfinite(mels).all()


def test_a_bar_too_long_for_320_windows_names_the_params_key():
    with pytest.raises(ValueError, match=r"evaluate\.ndb_features looptest"):
        looptest_log_mels(np.zeros((1, 1, 8000 * 10)), 8000)


def test_band_statistics_are_looptests_standard_scaler_over_frames():
    mels = looptest_log_mels(
        np.concatenate([drums(2.0, 8000, s) for s in range(3)] + [np.zeros((1, 1, 16000))]),
        8000,
    )
    scaler = StandardScaler()
    for mel in mels:  # compute_mean_std.mel.py: partial_fit on each file's frames
        scaler.partial_fit(mel.T)
    mean, std = band_statistics(mels)
    np.testing.assert_allclose(mean, scaler.mean_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(std, scaler.scale_, rtol=1e-5)
    vectors = looptest_vectors(mels, mean, std)
    assert vectors.shape == (4, 80 * 320)  # compute_ndb_js.py's dim
    scaled = (mels[1] - mean[:, None]) / std[:, None]
    np.testing.assert_allclose(vectors[1].reshape(80, 320), scaled)
