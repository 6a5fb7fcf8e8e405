"""The Griffin-Lim that goes into ONNX is torchaudio's, step for step: the same audio in float64
on well-conditioned magnitudes, after 1 and after 32 iterations, and its STFT and inverse STFT
are torch's."""

from __future__ import annotations

import pytest
import torch
from torchaudio.transforms import GriffinLim

from pipeline.export.griffin_lim import RealGriffinLim

N_FFT, HOP, LENGTH = 256, 128, 8000


@pytest.mark.parametrize("n_iter", [0, 1, 32])
def test_real_griffin_lim_is_torchaudios(n_iter):
    torch.manual_seed(0)
    magnitude = torch.rand(2, N_FFT // 2 + 1, LENGTH // HOP + 1, dtype=torch.float64) * 2
    reference = GriffinLim(
        n_fft=N_FFT, hop_length=HOP, power=1.0, length=LENGTH, rand_init=False, n_iter=n_iter
    ).double()
    ours = RealGriffinLim(
        N_FFT, HOP, LENGTH, n_iter, reference.momentum, reference.window, torch.float64
    )
    expected = reference(magnitude)
    assert expected.abs().max() > 0.1
    assert (ours(magnitude) - expected).abs().max() < 1e-9


@pytest.mark.parametrize("hop", [HOP, 64, 96])  # frames by reshaping (hop divides n_fft) or not
def test_stft_and_inverse_are_torchs(hop):
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    ours = RealGriffinLim(N_FFT, hop, LENGTH, 1, 0.99, window, torch.float64)
    audio = torch.randn(3, LENGTH, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    spec = torch.stft(audio, N_FFT, hop, window=window, center=True, return_complex=True)
    real, imag = ours.stft(audio)
    assert torch.allclose(real, spec.real, atol=1e-9) and torch.allclose(imag, spec.imag, atol=1e-9)
    back = torch.istft(spec, N_FFT, hop, window=window, length=LENGTH)
    assert torch.allclose(ours.istft(spec.real, spec.imag), back, atol=1e-9)
    assert torch.allclose(back, audio, atol=1e-9)  # and both invert the analysis
