"""The one mel filterbank (pipeline.audio.mel) is librosa's, to the bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pipeline.audio.mel import mel_filterbank


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("n_fft", [64, 256, 1024, 4096])
@pytest.mark.parametrize("n_mels", [24, 64, 80])
def test_mel_filterbank_is_librosas(sample_rate: int, n_fft: int, n_mels: int) -> None:
    librosa = pytest.importorskip("librosa")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # empty bands at low rates
        expected = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    ours = mel_filterbank(sample_rate, n_fft, n_mels)
    assert ours.dtype == expected.dtype == np.float32
    assert ours.tobytes() == expected.tobytes()
