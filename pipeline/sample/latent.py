"""Latent-space walks: linear and spherical interpolation through keyframes."""

from __future__ import annotations

import torch


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` at fractions ``t`` ([n])."""
    a_n = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    omega = torch.acos((a_n * b_n).sum(-1).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t.reshape(-1, 1)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.reshape(-1, 1)
    return (1 - t) * a + t * b


INTERPOLATIONS = {"slerp": slerp, "linear": lerp}


def latent_walk(keyframes: torch.Tensor, n_steps: int, method: str = "slerp") -> torch.Tensor:
    """``n_steps`` latents passing through every keyframe ([k, dim]) in order, first and last
    keyframes included."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {method!r}; known: {sorted(INTERPOLATIONS)}")
    k = keyframes.shape[0]
    if k < 2 or n_steps < 2:
        raise ValueError("a latent walk needs at least 2 keyframes and 2 steps")
    position = torch.linspace(0, k - 1, n_steps, dtype=keyframes.dtype)
    segment = position.floor().long().clamp(max=k - 2)
    fraction = position - segment
    start, end = keyframes[segment], keyframes[segment + 1]
    return torch.cat(
        [
            INTERPOLATIONS[method](start[i : i + 1], end[i : i + 1], fraction[i : i + 1])
            for i in range(n_steps)
        ]
    )
