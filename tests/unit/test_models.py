"""WaveGAN shapes, conditioning, registry and phase shuffle."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipeline.models import (
    ARCHITECTURES,
    PhaseShuffle,
    build_models,
    build_models_for,
    native_length,
    phase_shuffle,
)
from pipeline.models.conditioning import ConditionalGenerator
from pipeline.models.wavegan import layer_strides
from tests.conftest import labels_for

MD = 4  # tiny model_dim keeps these tests fast on CPU


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.mark.parametrize("length", [16384, 32768, 65536, 32000, 4096])
@pytest.mark.parametrize("channels,num_classes", [(1, 0), (2, 0), (1, 3), (2, 3)])
def test_generator_and_discriminator_shapes(length: int, channels: int, num_classes: int) -> None:
    torch.manual_seed(0)
    g, d = build_models(
        "wavegan",
        length=length,
        channels=channels,
        latent_dim=16,
        model_dim=MD,
        num_classes=num_classes,
    )
    assert (g.length, g.channels, g.latent_dim, g.num_classes) == (
        length,
        channels,
        16,
        num_classes,
    )
    z = g.sample_latent(2)
    y = labels_for(2, num_classes)
    with torch.no_grad():
        x = g(z, y)
        assert x.shape == (2, channels, length)
        assert x.abs().max() <= 1.0  # tanh output
        s = d(x, y)
    assert s.shape == (2,)
    assert torch.isfinite(s).all()


def test_native_lengths_and_layer_counts() -> None:
    assert native_length(4096) == 16384
    assert native_length(16384) == 16384
    assert native_length(32000) == 32768
    assert native_length(65536) == 65536
    with pytest.raises(ValueError):
        native_length(65537)
    assert layer_strides(16384) == [4] * 5
    assert layer_strides(32768) == [4] * 5 + [2]  # documented choice: stride-2 extra layer
    assert layer_strides(65536) == [4] * 6
    g, d = build_models(
        "wavegan", length=32000, channels=1, latent_dim=8, model_dim=MD, num_classes=0
    )
    assert g.n_layers == 6 and d.n_layers == 6
    assert g.native_length == 32768
    # paper widths: dense -> 16 steps x 16d (32d for the 6-layer models)
    g16, _ = build_models(
        "wavegan", length=16384, channels=1, latent_dim=8, model_dim=MD, num_classes=0
    )
    assert g16.project.out_features == 16 * 16 * MD
    assert g.project.out_features == 16 * 32 * MD


def test_discriminator_accepts_shorter_inputs_and_rejects_bad_ones() -> None:
    _, d = build_models(
        "wavegan", length=32768, channels=2, latent_dim=8, model_dim=MD, num_classes=0
    )
    d.eval()
    with torch.no_grad():
        for t in (32768, 32000, 20000):
            assert d(torch.zeros(3, 2, t)).shape == (3,)
        # zero padding: a short clip scores like the same clip padded with zeros by hand
        x = torch.randn(2, 2, 30000) * 0.1
        padded = torch.nn.functional.pad(x, (0, 32768 - 30000))
        torch.testing.assert_close(d(x), d(padded))
        with pytest.raises(ValueError, match="exceeds"):
            d(torch.zeros(1, 2, 32769))
        with pytest.raises(ValueError, match="channels"):
            d(torch.zeros(1, 1, 32768))


def test_conditioning_changes_outputs_and_requires_labels() -> None:
    torch.manual_seed(0)
    g, d = build_models(
        "wavegan", length=4096, channels=1, latent_dim=8, model_dim=MD, num_classes=4
    )
    d.eval()
    z = g.sample_latent(1).repeat(2, 1)
    y = torch.tensor([0, 3])
    with torch.no_grad():
        x = g(z, y)
        assert not torch.allclose(x[0], x[1])  # same z, different class -> different audio
        xs = x[:1].repeat(2, 1, 1)
        s = d(xs, y)
        assert not torch.allclose(s[0], s[1])  # projection term depends on the label
        with pytest.raises(ValueError, match="labels"):
            g(z)
        with pytest.raises(ValueError, match="labels"):
            d(xs)


def test_sample_latent_uniform_and_seeded() -> None:
    g, _ = build_models(
        "wavegan", length=4096, channels=1, latent_dim=32, model_dim=MD, num_classes=0
    )
    z1 = g.sample_latent(500, generator=torch.Generator().manual_seed(3), device="cpu")
    z2 = g.sample_latent(500, generator=torch.Generator().manual_seed(3), device="cpu")
    assert z1.shape == (500, 32)
    assert torch.equal(z1, z2)
    assert z1.min() >= -1.0 and z1.max() <= 1.0
    assert z1.min() < -0.99 and z1.max() > 0.99  # uses the whole [-1, 1] range


@pytest.mark.parametrize(
    "arch,extra",
    [("wavegan", {"phase_shuffle_radius": 1}), ("melgan", {"scales": 1}), ("specgan", {})],
)
def test_build_models_for_reads_a_duck_typed_config(arch: str, extra: dict) -> None:
    settings = SimpleNamespace(
        arch=arch, length=4096, channels=1, latent_dim=8, model_dim=2, num_classes=2, extra=extra
    )
    torch.manual_seed(0)
    g, d = build_models_for(settings)
    torch.manual_seed(0)
    g_ref, d_ref = build_models(
        arch, length=4096, channels=1, latent_dim=8, model_dim=2, num_classes=2, **extra
    )
    assert isinstance(g, ConditionalGenerator) and g.embed_dim == 8  # min(50, latent_dim)
    for model, ref in ((g, g_ref), (d, d_ref)):
        state, ref_state = model.state_dict(), ref.state_dict()
        assert list(state) == list(ref_state)
        assert all(torch.equal(state[k], ref_state[k]) for k in state)


def test_unknown_architecture_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="wavegan") as exc:
        build_models("nope", length=4096, channels=1, latent_dim=8, model_dim=MD, num_classes=0)
    assert "nope" in str(exc.value)
    assert "wavegan" in ARCHITECTURES


# --- phase shuffle --------------------------------------------------------------------------------
def _ramps(b: int, c: int, t: int) -> torch.Tensor:
    """x[b, c, t] = 100000 b + 1000 c + t: distinct ramps along time, per channel and example."""
    bi = torch.arange(b).view(b, 1, 1) * 100000.0
    ci = torch.arange(c).view(1, c, 1) * 1000.0
    ti = torch.arange(t).view(1, 1, t).float()
    return bi + ci + ti


def _reference_shift(row: np.ndarray, k: int, radius: int) -> np.ndarray:
    """out[t] = row[t - k] with reflect padding (edge sample not repeated)."""
    padded = np.pad(row, (radius, radius), mode="reflect")
    return padded[radius - k : radius - k + row.shape[0]]


def test_phase_shuffle_shifts_along_time_per_example() -> None:
    b, c, t, radius = 64, 3, 50, 2
    x = _ramps(b, c, t)
    out = phase_shuffle(x, radius, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    xn, on = x.numpy(), out.numpy()
    shifts = []
    for i in range(b):
        # interior sample tells the shift: out[t] = x[t - k]  =>  k = x[t] - out[t]
        k = round(float(xn[i, 0, 10] - on[i, 0, 10]))
        assert -radius <= k <= radius
        shifts.append(k)
        for ch in range(c):
            # every channel of an example is shifted by the same k along time, reflected at edges
            np.testing.assert_array_equal(on[i, ch], _reference_shift(xn[i, ch], k, radius))
            # channels never mixed, examples never mixed
            base = 100000.0 * i + 1000.0 * ch
            assert on[i, ch].min() >= base and on[i, ch].max() < base + t
    # one offset per example: a batch-wide shift would give a single value here
    assert len(set(shifts)) >= 2
    # all offsets in [-2, 2] are reachable
    assert set(shifts) == set(range(-radius, radius + 1))


def test_phase_shuffle_explicit_shifts_and_edges() -> None:
    x = _ramps(5, 2, 8)
    out = phase_shuffle(x, 2, shifts=torch.tensor([-2, -1, 0, 1, 2]))
    # example 4, shift +2: [x2, x1, x0, x1, ..., x5]; example 0, shift -2: [x2..x7, x6, x5]
    assert out[4, 0].tolist() == [
        400002.0,
        400001.0,
        400000.0,
        400001.0,
        400002.0,
        400003.0,
        400004.0,
        400005.0,
    ]
    assert out[0, 1].tolist() == [1002.0, 1003.0, 1004.0, 1005.0, 1006.0, 1007.0, 1006.0, 1005.0]
    assert torch.equal(out[2], x[2])


def test_phase_shuffle_module_eval_identity_and_gradients() -> None:
    ps = PhaseShuffle(2)
    x = torch.randn(4, 3, 20, requires_grad=True)
    ps.eval()
    assert ps(x) is x
    ps.train()
    ps.generator = torch.Generator().manual_seed(1)
    y = ps(x)
    y.sum().backward()
    assert x.grad is not None and x.grad.sum().item() == pytest.approx(4 * 3 * 20)


def test_discriminator_phase_shuffle_is_per_example() -> None:
    """The same clip repeated across the batch must get different scores in train mode (shifts
    drawn per example) and identical scores in eval mode (no shuffle)."""
    torch.manual_seed(0)
    _, d = build_models(
        "wavegan", length=4096, channels=2, latent_dim=8, model_dim=MD, num_classes=0
    )
    x = (torch.randn(1, 2, 4096) * 0.5).repeat(32, 1, 1)
    d.set_phase_shuffle_generator(torch.Generator().manual_seed(0))
    with torch.no_grad():
        d.train()
        s_train = d(x)
        d.eval()
        s_eval = d(x)
    assert torch.unique(s_train).numel() >= 2
    assert torch.allclose(s_eval, s_eval[0].expand_as(s_eval))
