"""Running a trained generator: random bars, loops and latent-interpolation tracks."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.sample.assemble import concatenate_bars, loop_bar
from pipeline.sample.latent import latent_walk


@torch.no_grad()
def generate_bars(
    generator: torch.nn.Module,
    latents: torch.Tensor,
    labels: torch.Tensor | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """``[n, latent_dim]`` latents -> float32 bars ``[n, channels, length]``, in batches."""
    device = next(generator.parameters()).device
    out = []
    for start in range(0, len(latents), batch_size):
        z = latents[start : start + batch_size].to(device)
        y = None if labels is None else labels[start : start + batch_size].to(device)
        bars = generator(z, y) if y is not None else generator(z)
        out.append(bars.float().cpu().numpy())
    return np.concatenate(out)


def random_latents(generator: torch.nn.Module, n: int, seed: int) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    return generator.sample_latent(n, generator=rng, device="cpu")


def interpolation_track(
    generator: torch.nn.Module, n_bars: int, n_keyframes: int, method: str, seed: int
) -> np.ndarray:
    """A latent walk through ``n_keyframes`` random points, one bar per step, as ``[C, n*T]``."""
    keyframes = random_latents(generator, n_keyframes, seed)
    bars = generate_bars(generator, latent_walk(keyframes, n_bars, method))
    return concatenate_bars(bars)


def loops(bars: np.ndarray, repeats: int) -> list[np.ndarray]:
    return [loop_bar(bar, repeats) for bar in bars]
