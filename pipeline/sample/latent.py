"""Latent-space walks: linear and spherical interpolation through keyframes."""

from __future__ import annotations

import torch

PARALLEL_EPS = 1e-6


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` at fractions ``t`` ([n]).

    The direction moves along the great circle from ``a`` to ``b`` at constant angular speed
    and the norm goes linearly from ``|a|`` to ``|b|``, so the path never cuts through the
    low-density middle of the latent space and never overshoots (the textbook formula
    ``sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b`` does both when the norms differ). For equal
    norms the two agree. ``t = 0`` gives ``a`` and ``t = 1`` gives ``b``. (Nearly) parallel
    rows fall back to linear interpolation of the directions.
    """
    t = t.reshape(-1, 1).to(a.dtype)
    norm_a = a.norm(dim=-1, keepdim=True)
    norm_b = b.norm(dim=-1, keepdim=True)
    a_n = a / norm_a.clamp_min(1e-12)
    b_n = b / norm_b.clamp_min(1e-12)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    parallel = so < PARALLEL_EPS
    safe = torch.where(parallel, torch.ones_like(so), so)
    w_a = torch.where(parallel, 1 - t, torch.sin((1 - t) * omega) / safe)
    w_b = torch.where(parallel, t, torch.sin(t * omega) / safe)
    direction = w_a * a_n + w_b * b_n
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return direction * ((1 - t) * norm_a + t * norm_b)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation between rows of ``a`` and ``b`` at fractions ``t`` ([n])."""
    t = t.reshape(-1, 1).to(a.dtype)
    return (1 - t) * a + t * b


INTERPOLATIONS = {"slerp": slerp, "linear": lerp}


def latent_walk(
    keyframes: torch.Tensor,
    n_steps: int,
    method: str = "slerp",
    start: int = 0,
    stop: int | None = None,
) -> torch.Tensor:
    """``n_steps`` latents passing through every keyframe ([k, dim]) in order, first and last
    keyframes included (step ``i`` sits at keyframe position ``i * (k-1) / (n_steps-1)``).
    ``start``/``stop`` give steps ``[start, stop)`` of that walk alone, the same numbers as the
    slice of the whole (a long walk is made a piece at a time)."""
    if method not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {method!r}; known: {sorted(INTERPOLATIONS)}")
    k = keyframes.shape[0]
    if k < 2 or n_steps < 2:
        raise ValueError("a latent walk needs at least 2 keyframes and 2 steps")
    position = torch.linspace(0, k - 1, n_steps, dtype=keyframes.dtype)[start:stop]
    segment = position.floor().long().clamp(max=k - 2)
    fraction = position - segment
    return INTERPOLATIONS[method](keyframes[segment], keyframes[segment + 1], fraction)
