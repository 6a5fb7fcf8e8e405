"""GAN losses and the per-example WGAN-GP gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.train.losses import LOSSES, get_loss, gradient_penalty

pytestmark = pytest.mark.usefixtures("single_torch_thread")


class ScaledLinearCritic(torch.nn.Module):
    """D(x, y) = s[y] * <w, x>: the input gradient of example i is s[y_i] * w, whatever the
    interpolation point, so ||grad_i|| = |s[y_i]| * ||w|| is known analytically."""

    def __init__(self, w: torch.Tensor, scales: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.s = torch.nn.Parameter(scales.clone())

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.s[y] * (self.w * x).flatten(1).sum(1)


def _setup(lam: float = 10.0):
    torch.manual_seed(0)
    b, c, t = 6, 2, 7
    w = torch.randn(c, t) * 0.3
    scales = torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0, -1.5])
    critic = ScaledLinearCritic(w, scales)
    y = torch.arange(b)
    real, fake = torch.randn(b, c, t), torch.randn(b, c, t)
    norms = scales.abs() * w.norm()
    expected = lam * ((norms - 1.0) ** 2).mean()
    return critic, real, fake, y, w, scales, expected


def test_gradient_penalty_is_per_example_over_all_dims() -> None:
    lam = 7.5
    critic, real, fake, y, w, scales, expected = _setup(lam)
    gp = gradient_penalty(critic, real, fake, y, lam=lam)
    torch.testing.assert_close(gp, expected, rtol=1e-5, atol=1e-6)

    grads = scales.view(-1, 1, 1) * w  # analytic per-example gradients [B, C, T]
    wrong_batch_flat = lam * (grads.flatten().norm() - 1.0) ** 2  # one norm for the whole batch
    wrong_channel_norm = lam * ((grads.norm(dim=1) - 1.0) ** 2).mean()  # norm over channels only
    assert not math.isclose(gp.item(), wrong_batch_flat.item(), rel_tol=1e-3)
    assert not math.isclose(gp.item(), wrong_channel_norm.item(), rel_tol=1e-3)


def test_gradient_penalty_interpolates_per_example() -> None:
    """D(x) = 0.5 ||x||^2 has grad x; with fake = -real the interpolate is (2 eps_i - 1) real_i,
    so the expected penalty depends on the per-example eps drawn from the given generator."""
    torch.manual_seed(1)
    b, c, t, lam = 8, 2, 5, 10.0
    real = torch.randn(b, c, t)

    def critic(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).flatten(1).sum(1)

    gp = gradient_penalty(critic, real, -real, lam=lam, generator=torch.Generator().manual_seed(5))
    eps = torch.rand(b, 1, 1, generator=torch.Generator().manual_seed(5))
    norms = (2 * eps.flatten() - 1).abs() * real.flatten(1).norm(dim=1)
    torch.testing.assert_close(gp, lam * ((norms - 1) ** 2).mean(), rtol=1e-5, atol=1e-6)


def test_gradient_penalty_fp32_and_differentiable() -> None:
    critic, real, fake, y, _w, _s, expected = _setup()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(critic, real.bfloat16(), fake.bfloat16(), y)
    assert gp.dtype == torch.float32
    torch.testing.assert_close(gp, expected, rtol=1e-5, atol=1e-6)
    gp.backward()  # create_graph=True: the penalty trains the critic
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0
    assert critic.s.grad is not None and critic.s.grad.abs().sum() > 0


def test_gradient_penalty_shape_mismatch() -> None:
    critic, real, _f, y, *_ = _setup()
    with pytest.raises(ValueError, match="shapes"):
        gradient_penalty(critic, real, real[:, :1], y)


def test_loss_values() -> None:
    real = torch.tensor([2.0, -1.0, 0.5])
    fake = torch.tensor([-3.0, 0.0, 1.5])
    wgan, hinge, ns, ls = (
        LOSSES["wgan-gp"],
        LOSSES["hinge"],
        LOSSES["non-saturating"],
        LOSSES["least-squares"],
    )
    assert wgan.gradient_penalty and not hinge.gradient_penalty
    assert wgan.d_loss(real, fake).item() == pytest.approx(fake.mean() - real.mean())
    assert wgan.g_loss(fake).item() == pytest.approx(-fake.mean())
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 2 + 0.5)/3 + (0 + 1 + 2.5)/3
    assert hinge.d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert hinge.g_loss(fake).item() == pytest.approx(-fake.mean())

    def bce(logit: float, target: float) -> float:
        p = 1 / (1 + math.exp(-logit))
        return -(target * math.log(p) + (1 - target) * math.log(1 - p))

    # one-sided label smoothing: real targets 0.9, fake targets exactly 0
    exp_d = (
        sum(bce(v, 0.9) for v in real.tolist()) / 3 + sum(bce(v, 0.0) for v in fake.tolist()) / 3
    )
    assert ns.d_loss(real, fake).item() == pytest.approx(exp_d, rel=1e-5)
    assert ns.g_loss(fake).item() == pytest.approx(
        sum(bce(v, 1.0) for v in fake.tolist()) / 3, rel=1e-5
    )
    exp_ls = 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    assert ls.d_loss(real, fake).item() == pytest.approx(exp_ls.item())
    assert ls.g_loss(fake).item() == pytest.approx((0.5 * (fake - 1) ** 2).mean().item())


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_fp32_and_g_loss_decreases_with_score(name: str) -> None:
    loss = get_loss(name)
    real = torch.randn(16).bfloat16()
    fake = torch.randn(16).bfloat16()
    assert loss.d_loss(real, fake).dtype == torch.float32
    assert loss.g_loss(fake).dtype == torch.float32
    lo, hi = torch.full((4,), -0.5), torch.full((4,), 0.5)
    assert loss.g_loss(hi) < loss.g_loss(lo)  # the generator wants higher scores
    assert loss.d_loss(hi, lo) < loss.d_loss(lo, hi)  # the critic wants real > fake


def test_unknown_loss() -> None:
    with pytest.raises(ValueError, match="wgan-gp"):
        get_loss("bogus")
