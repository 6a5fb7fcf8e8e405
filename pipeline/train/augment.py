"""Training-set augmentation."""

from __future__ import annotations

import torch
from torch import Tensor


def add_noise_copies(data: Tensor, copies: int, snr_db: float, seed: int) -> Tensor:
    """``copies`` noisy versions of every bar of ``data`` ([N, C, T]) -> ``[N * copies, C, T]``.

    BeatGAN's augmentation (434 loops -> 2170 training clips, the clean loops not kept): white
    Gaussian noise whose power is the bar's own mean power (over channels and time) divided by
    ``10 ** (snr_db / 10)``; results are clipped to [-1, 1].  Copy ``k`` of bar ``i`` is row
    ``k * N + i``.  Deterministic for a given ``seed``; silent bars stay silent.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    power = data.float().pow(2).mean(dim=(1, 2), keepdim=True)
    sigma = (power / 10.0 ** (snr_db / 10.0)).sqrt()
    out = []
    for _ in range(copies):
        noise = torch.randn(data.shape, generator=gen, dtype=torch.float32)
        out.append((data + noise * sigma).clamp(-1.0, 1.0))
    return torch.cat(out)
