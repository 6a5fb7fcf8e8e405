"""GAN losses: WGAN-GP, hinge, non-saturating (with one-sided label smoothing), least squares.

``LOSSES`` maps a name to a :class:`GanLoss` holding

* ``d_loss(real_scores, fake_scores) -> scalar`` (the critic/discriminator minimises it),
* ``g_loss(fake_scores) -> scalar`` (the generator minimises it),
* ``gradient_penalty``: whether the trainer adds :func:`gradient_penalty` to ``d_loss``.

Regularisers usable with any loss: :func:`r1_penalty` (critic, real data) and
:func:`mode_seeking_loss` (generator).

Scores are raw discriminator outputs (logits), shape ``[B]``.  All losses are evaluated in
fp32 whatever the score dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class GanLoss:
    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]
    gradient_penalty: bool = False


# --- Wasserstein ---------------------------------------------------------------------------
def wasserstein_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return fake.float().mean() - real.float().mean()


def wasserstein_g_loss(fake: Tensor) -> Tensor:
    return -fake.float().mean()


# --- hinge ---------------------------------------------------------------------------------
def hinge_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real.float()).mean() + F.relu(1.0 + fake.float()).mean()


def hinge_g_loss(fake: Tensor) -> Tensor:
    return -fake.float().mean()


# --- non-saturating (standard GAN, -log D(G(z)) for G) ----------------------------------------
def nonsaturating_d_loss(real: Tensor, fake: Tensor, label_smoothing: float = 0.1) -> Tensor:
    """BCE with one-sided label smoothing: real targets ``1 - label_smoothing``, fake targets 0."""
    real = real.float()
    fake = fake.float()
    real_t = torch.full_like(real, 1.0 - label_smoothing)
    return F.binary_cross_entropy_with_logits(real, real_t) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )


def nonsaturating_g_loss(fake: Tensor) -> Tensor:
    return F.softplus(-fake.float()).mean()  # == BCE(fake, 1)


# --- least squares (LSGAN, a=0, b=c=1) -----------------------------------------------------
def least_squares_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real.float() - 1.0) ** 2).mean() + 0.5 * (fake.float() ** 2).mean()


def least_squares_g_loss(fake: Tensor) -> Tensor:
    return 0.5 * ((fake.float() - 1.0) ** 2).mean()


# --- gradient penalty ------------------------------------------------------------------------
def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor,
    labels: Tensor | None = None,
    *,
    lam: float = 10.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty ``lam * mean_i (||grad_x D(x_i)|| - 1)^2`` (Gulrajani et al. 2017).

    ``x_i = eps_i * real_i + (1 - eps_i) * fake_i`` with one ``eps_i ~ U[0, 1]`` per example.
    The gradient norm is taken PER EXAMPLE over ALL non-batch dimensions (channels and time):
    ``grads.flatten(1).norm(dim=1)``.  Computed in fp32 with autocast disabled; the graph is
    kept (``create_graph=True``) so the penalty can be back-propagated into the critic.
    ``critic`` is called as ``critic(x)`` or ``critic(x, labels)`` when labels are given.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} shapes differ")
    device = real.device
    with torch.autocast(device_type=device.type, enabled=False):
        real32 = real.detach().float()
        fake32 = fake.detach().float()
        eps_shape = (real32.shape[0],) + (1,) * (real32.dim() - 1)
        gen_device = generator.device if generator is not None else device
        eps = torch.rand(eps_shape, generator=generator, device=gen_device).to(device)
        x = (eps * real32 + (1.0 - eps) * fake32).requires_grad_(True)
        scores = critic(x) if labels is None else critic(x, labels)
        (grads,) = torch.autograd.grad(scores.float().sum(), x, create_graph=True)
        norms = grads.float().flatten(1).norm(dim=1)
        return lam * ((norms - 1.0) ** 2).mean()


def r1_penalty(
    critic: Callable[..., Tensor],
    real: Tensor,
    labels: Tensor | None = None,
    *,
    gamma: float,
) -> Tensor:
    """R1 penalty ``gamma / 2 * mean_i ||grad_x D(x_i)||^2`` on REAL examples (Mescheder et al.
    2018).  Per example over all non-batch dimensions, in fp32 with autocast disabled, with
    ``create_graph=True`` so it trains the critic."""
    device = real.device
    with torch.autocast(device_type=device.type, enabled=False):
        x = real.detach().float().requires_grad_(True)
        scores = critic(x) if labels is None else critic(x, labels)
        (grads,) = torch.autograd.grad(scores.float().sum(), x, create_graph=True)
        return 0.5 * gamma * grads.float().flatten(1).pow(2).sum(dim=1).mean()


def mode_seeking_loss(
    fake_a: Tensor, fake_b: Tensor, z_a: Tensor, z_b: Tensor, eps: float = 1e-5
) -> Tensor:
    """Mode-seeking term of MSGAN (Mao et al., CVPR 2019) for the generator to MINIMISE.

    ``ratio = mean|G(z_a) - G(z_b)| / mean|z_a - z_b|`` (outputs generated with the same labels)
    and the term is ``1 / (ratio + eps)``, as in the authors' code: pairs of latents that are far
    apart must give outputs that are far apart.  Computed in fp32.
    """
    image_dist = (fake_a.float() - fake_b.float()).abs().mean()
    latent_dist = (z_a.float() - z_b.float()).abs().mean()
    return 1.0 / (image_dist / latent_dist + eps)


LOSSES: dict[str, GanLoss] = {
    "wgan-gp": GanLoss("wgan-gp", wasserstein_d_loss, wasserstein_g_loss, gradient_penalty=True),
    "hinge": GanLoss("hinge", hinge_d_loss, hinge_g_loss),
    "non-saturating": GanLoss(
        "non-saturating", partial(nonsaturating_d_loss, label_smoothing=0.1), nonsaturating_g_loss
    ),
    "least-squares": GanLoss("least-squares", least_squares_d_loss, least_squares_g_loss),
}


def get_loss(name: str) -> GanLoss:
    try:
        return LOSSES[name]
    except KeyError:
        known = ", ".join(sorted(LOSSES))
        raise ValueError(f"unknown loss {name!r}; known losses: {known}") from None
