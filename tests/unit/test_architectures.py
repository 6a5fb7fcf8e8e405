"""MelGAN (BERGAN) and SpecGAN models, R1 and mode-seeking terms, noise augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.models import build_models
from pipeline.models.registry import extra_keys
from pipeline.train import train_gan
from pipeline.train.augment import add_noise_copies
from pipeline.train.losses import mode_seeking_loss, r1_penalty
from tests.conftest import labels_for, tiny_train_config

pytestmark = pytest.mark.usefixtures("single_torch_thread")


# --- MelGAN / BERGAN ---------------------------------------------------------------------------
@pytest.mark.parametrize("length,channels,num_classes", [(32000, 1, 0), (8000, 2, 3)])
def test_melgan_shapes_scales_and_conditioning(
    length: int, channels: int, num_classes: int
) -> None:
    torch.manual_seed(0)
    g, d = build_models(
        "melgan",
        length=length,
        channels=channels,
        latent_dim=16,
        model_dim=1,
        num_classes=num_classes,
        scales=2,
    )
    assert g.frames == -(-length // 1024)  # dense layer -> ceil(length / hop) frames
    z = g.sample_latent(2, generator=torch.Generator().manual_seed(0), device="cpu")
    y = labels_for(2, num_classes)
    with torch.no_grad():
        x = g(z, y)
        assert x.shape == (2, channels, length) and x.abs().max() <= 1.0
        per_scale = d.forward_scales(x, y)
        assert len(per_scale) == 2 and all(s.shape == (2,) for s in per_scale)
        torch.testing.assert_close(d(x, y), torch.stack(per_scale).mean(0))
    # weight norm everywhere in the discriminator, normal latents in the generator
    convs = [m for m in d.modules() if isinstance(m, nn.Conv1d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    zs = g.sample_latent(4000, generator=torch.Generator().manual_seed(1), device="cpu")
    assert abs(zs.mean()) < 0.02 and abs(zs.std() - 1) < 0.02 and zs.min() < -3
    if num_classes:
        with pytest.raises(ValueError, match="labels"):
            g(z)
        with torch.no_grad():
            assert not torch.allclose(d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 1])))


def test_registry_names_bad_architecture_settings() -> None:
    assert {"scales", "strides", "dense_channels"} <= set(extra_keys("melgan"))
    assert "phase_shuffle_radius" in extra_keys("wavegan")
    with pytest.raises(ValueError, match=r"melgan does not take phase_shuffle_radius.*scales"):
        build_models("melgan", length=8000, channels=1, model_dim=1, phase_shuffle_radius=2)


# --- SpecGAN ----------------------------------------------------------------------------------
def test_specgan_training_domain_and_audio_output() -> None:
    torch.manual_seed(0)
    g, d = build_models(
        "specgan",
        length=16000,
        channels=2,
        latent_dim=16,
        model_dim=2,
        num_classes=3,
        griffin_lim_iters=8,
    )
    assert (g.bins, g.frames) == (128, 16000 // 128 + 1)
    t = torch.arange(16000) / 16000
    audio = torch.stack([0.5 * torch.sin(2 * torch.pi * 1000 * t), 0.05 * torch.randn(16000)])
    spec = g.to_training_domain(audio.unsqueeze(0))
    assert spec.shape == (1, 2, 128, g.frames) and spec.dtype == torch.float32
    assert spec.min() >= -1 and spec.max() <= 1
    peak_bin = spec[0, 0, :, 50].argmax().item()
    assert peak_bin == 1000 * 256 // 16000  # the 1 kHz tone lands in its bin
    # Griffin-Lim gives back audio whose spectrogram is close to the one it came from
    back = g.codec.decode(spec)
    assert back.shape == (1, 2, 16000)
    assert (g.to_training_domain(back) - spec).abs().mean() < 0.1

    z = g.sample_latent(2)
    y = labels_for(2, 3)
    with torch.no_grad():
        fake = g.forward_training(z, y)
        assert fake.shape == (2, 2, 128, g.frames)
        assert d(fake, y).shape == (2,)
        assert g(z, y).shape == (2, 2, 16000)
    with pytest.raises(ValueError, match="spectrograms"):
        d(audio.unsqueeze(0), y[:1])


# --- regularisers -----------------------------------------------------------------------------
class _ScaledLinear(nn.Module):
    """D(x_i) = s_i * <w, x_i>: per-example input gradient s_i * w."""

    def __init__(self, w: torch.Tensor, s: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)
        self.s = nn.Parameter(s)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.s[labels] * (x * self.w).flatten(1).sum(1)


def test_r1_penalty_per_example_fp32_and_differentiable() -> None:
    torch.manual_seed(0)
    w, s = torch.randn(2, 7), torch.tensor([0.5, 1.0, 2.0])
    critic = _ScaledLinear(w, s)
    real, y = torch.randn(3, 2, 7), torch.arange(3)
    expected = 0.5 * 4.0 * (s**2 * w.pow(2).sum()).mean()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        r1 = r1_penalty(critic, real.bfloat16(), y, gamma=4.0)
    assert r1.dtype == torch.float32
    torch.testing.assert_close(r1, expected, rtol=1e-5, atol=1e-6)
    r1.backward()
    assert critic.w.grad.abs().sum() > 0 and critic.s.grad.abs().sum() > 0


def test_mode_seeking_term() -> None:
    z1, z2 = torch.zeros(2, 4), torch.ones(2, 4)  # mean |z1 - z2| = 1
    a, b = torch.zeros(2, 1, 8), torch.full((2, 1, 8), 0.25)  # mean |a - b| = 0.25
    torch.testing.assert_close(mode_seeking_loss(a, b, z1, z2), torch.tensor(1 / (0.25 + 1e-5)))
    b.requires_grad_(True)
    mode_seeking_loss(a, b, z1, z2).backward()
    assert (b.grad < 0).all()  # minimising it pushes the two outputs apart


# --- augmentation and trainer options ----------------------------------------------------------
def test_noise_copies_snr_order_and_determinism() -> None:
    rng = np.random.default_rng(0)
    data = torch.from_numpy((rng.standard_normal((3, 2, 20000)) * 0.1).astype(np.float32))
    data[2] = 0.0  # silence stays silence
    out = add_noise_copies(data, copies=4, snr_db=20.0, seed=1)
    assert out.shape == (12, 2, 20000)
    assert torch.equal(out, add_noise_copies(data, copies=4, snr_db=20.0, seed=1))
    for k in range(4):
        noise = out[3 * k : 3 * k + 2] - data[:2]  # copy k of bar i is row k * N + i
        snr = 10 * torch.log10(data[:2].pow(2).mean() / noise.pow(2).mean())
        assert abs(snr.item() - 20.0) < 0.2
        assert torch.equal(out[3 * k + 2], data[2])
    assert not torch.equal(out[:3], out[3:6])  # each copy has its own noise


def test_trainer_regularisers_switch_on_and_off(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = (rng.standard_normal((8, 1, 4096)) * 0.2).astype(np.float32)
    off = train_gan(data, None, tiny_train_config(model_dim=2), tmp_path / "off")
    assert all(r["r1"] == 0 and r["mode_seeking"] == 0 for r in off.losses)
    on = train_gan(
        data,
        np.arange(8) % 2,
        tiny_train_config(model_dim=2, r1_gamma=1.0, mode_seeking=0.5, num_classes=2, loss="hinge"),
        tmp_path / "on",
    )
    assert all(r["r1"] > 0 and r["mode_seeking"] > 0 and r["gp"] == 0 for r in on.losses)
    with pytest.raises(ValueError, match="mode_seeking"):
        tiny_train_config(model_dim=2, batch_size=1, mode_seeking=1.0)


def test_lazy_r1_runs_every_interval_weighted_by_it(tmp_path: Path) -> None:
    """r1_interval 3: the penalty on steps 0, 3, 6 only, three times what every step would add
    at step 0 (same seed, same critic there)."""
    rng = np.random.default_rng(2)
    data = (rng.standard_normal((8, 1, 4096)) * 0.2).astype(np.float32)
    every = train_gan(data, None, tiny_train_config(model_dim=2, r1_gamma=1.0, steps=1),
                      tmp_path / "every")  # fmt: skip
    lazy = train_gan(data, None, tiny_train_config(model_dim=2, r1_gamma=1.0, r1_interval=3,
                     steps=7), tmp_path / "lazy")  # fmt: skip
    penalised = [r["step"] for r in lazy.losses if r["r1"] > 0]
    assert penalised == [1, 4, 7]  # logged steps count from 1: the updates of steps 0, 3, 6
    assert lazy.losses[0]["r1"] == pytest.approx(3 * every.losses[0]["r1"], rel=1e-5)
    with pytest.raises(ValueError, match="r1_interval"):
        tiny_train_config(r1_interval=0)


def test_specgan_minibatch_std_sees_batch_diversity_within_each_half() -> None:
    from pipeline.models.specgan import append_minibatch_std

    torch.manual_seed(0)
    _, d = build_models(
        "specgan", length=8000, channels=1, latent_dim=8, model_dim=4, minibatch_std=4
    )
    x = torch.rand(16, *d_input_shape(d)) * 2 - 1
    scores = d(x)
    # the trainer scores [real; fake] in one call: the real half must not see the fake half
    changed = torch.cat([x[:8], torch.rand(8, *d_input_shape(d)) * 2 - 1])
    assert torch.equal(d(changed)[:8], scores[:8])
    assert not torch.equal(d(changed)[8:], scores[8:])
    # identical examples: zero diversity; varied ones: positive
    same = append_minibatch_std(torch.ones(8, 3, 2, 2), 4)[:, -1]
    varied = append_minibatch_std(torch.randn(8, 3, 2, 2), 4)[:, -1]
    assert same.max() < 1e-3 < varied.min()
    # off by default: the published architecture is unchanged
    _, plain = build_models("specgan", length=8000, channels=1, latent_dim=8, model_dim=4)
    assert plain.fc.in_features < d.fc.in_features


def d_input_shape(d) -> tuple[int, int, int]:
    return (d.channels, d.bins, d.frames)
