"""Griffin-Lim in real arithmetic (convolutions with fixed DFT bases), so that it exports to
ONNX: ONNX has no inverse STFT and no complex tensors.

It is torchaudio's ``griffinlim`` step for step (what :class:`pipeline.models.specgan.
SpectrogramCodec` runs): the phase starts at 0, each iteration inverts the magnitudes with the
current phase (inverse STFT: windowed inverse DFT, overlap-add, divided by the summed squared
window), re-analyses the result (STFT of the reflect-padded signal), subtracts
``momentum / (1 + momentum)`` times the previous analysis (fast Griffin-Lim) and keeps only the
phase; a last inverse STFT gives the audio. The DFT is a matrix product rather than an FFT, so
results agree with torchaudio's to float32 rounding, amplified a little by the iterations
(measured in tests/integration/test_onnx_export.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RealGriffinLim(nn.Module):
    """Magnitudes ``[B, n_fft / 2 + 1, frames]`` -> audio ``[B, length]``."""

    def __init__(
        self,
        n_fft: int,
        hop_length: int,
        length: int,
        n_iter: int,
        momentum: float,
        window: Tensor,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.n_fft, self.hop, self.length, self.n_iter = n_fft, hop_length, length, n_iter
        self.momentum = momentum / (1 + momentum)  # as torchaudio applies it
        self.frames = length // hop_length + 1
        bins = n_fft // 2 + 1
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        angle = 2 * math.pi * k * n / n_fft
        w = window.to(torch.float64)
        # analysis: X_k = sum_n w[n] x[n] e^{-i 2 pi k n / N}
        analysis = torch.cat([w * torch.cos(angle), -w * torch.sin(angle)])[:, None, :]
        # synthesis: w[n] * irfft(X)[n], the DC and Nyquist bins counted once, the others twice
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        synthesis = torch.cat([weight * torch.cos(angle), -weight * torch.sin(angle)])
        synthesis = (synthesis * w / n_fft)[:, None, :]
        ones = torch.ones(1, 1, self.frames, dtype=torch.float64)
        envelope = F.conv_transpose1d(ones, (w * w)[None, None, :], stride=hop_length)
        start = n_fft // 2
        envelope = envelope[0, 0, start : start + length]
        if envelope.shape[0] < length or float(envelope.min()) < 1e-11:
            raise ValueError("window and hop do not overlap-add to a usable envelope")
        # computed in float64, stored in ``dtype`` (float64 for a reference computation)
        self.register_buffer("analysis", analysis.to(dtype), persistent=False)
        self.register_buffer("synthesis", synthesis.to(dtype), persistent=False)
        self.register_buffer("envelope", envelope.to(dtype), persistent=False)

    def stft(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, length]`` -> real and imaginary parts ``[B, bins, frames]`` (centred, reflect)."""
        pad = self.n_fft // 2
        x = F.pad(audio[:, None, :], (pad, pad), mode="reflect")
        spec = F.conv1d(x, self.analysis, stride=self.hop)
        bins = spec.shape[1] // 2
        return spec[:, :bins], spec[:, bins:]

    def istft(self, real: Tensor, imag: Tensor) -> Tensor:
        """Real and imaginary parts ``[B, bins, frames]`` -> audio ``[B, length]``."""
        frames = F.conv_transpose1d(torch.cat([real, imag], 1), self.synthesis, stride=self.hop)
        start = self.n_fft // 2
        return frames[:, 0, start : start + self.length] / self.envelope

    def forward(self, magnitude: Tensor) -> Tensor:
        real = torch.ones_like(magnitude)
        imag = torch.zeros_like(magnitude)
        prev_real = prev_imag = None
        for _ in range(self.n_iter):
            rebuilt_real, rebuilt_imag = self.stft(self.istft(magnitude * real, magnitude * imag))
            real, imag = rebuilt_real, rebuilt_imag
            if prev_real is not None and self.momentum:
                real = real - self.momentum * prev_real
                imag = imag - self.momentum * prev_imag
            norm = torch.sqrt(real * real + imag * imag) + 1e-16
            real, imag = real / norm, imag / norm
            prev_real, prev_imag = rebuilt_real, rebuilt_imag
        return self.istft(magnitude * real, magnitude * imag)
