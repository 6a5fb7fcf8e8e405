"""WaveGAN generator and discriminator (Donahue, McAuley & Puckette, ICLR 2019).

Layout follows the reference implementation (chrisdonahue/wavegan, ``wavegan.py``):

* Generator: ``z`` (uniform in [-1, 1]) -> dense -> ``[16 * d * m, 16]`` -> ReLU -> a stack of
  transposed 1-D convolutions (kernel 25) with ReLU in between and ``tanh`` at the end.
  Five stride-4 layers give the native length 16384.  For longer clips one extra layer is
  added, exactly as in the reference code: **stride 2 for 32768** and stride 4 for 65536
  (with the channel multiplier ``m`` doubled from 16 to 32 so the extra layer has width
  ``d``).  Stride 2 was chosen for 32768 because it keeps the 16-step dense projection and
  every stride-4 layer of the published 16384 model unchanged; the only difference is one
  cheap 2x upsampling layer at the end.
* Discriminator: strided convolutions (kernel 25, stride 4; for 32768/65536 an extra last
  layer of stride 2/4 as in the reference code), LeakyReLU(0.2) and phase shuffle (radius 2,
  reflect padding) after every layer but the last, flatten, dense -> one score per example.

Any requested ``length`` up to the native length is supported: the generator output is
cropped to ``length`` samples and the discriminator zero-pads shorter input back to the
native length (so e.g. a bar of 32000 samples uses the 32768 model).

Optional class conditioning (``num_classes > 0``): the generator concatenates a learned
label embedding to ``z``; the discriminator is a projection discriminator (Miyato & Koyama
2018): ``score = linear(phi(x)) + <embed(y), phi(x)>`` with ``phi(x)`` the flattened
features fed to the final dense layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.models.conditioning import (
    ConditionalGenerator,
    add_projection,
    projection_embedding,
)

KERNEL_SIZE = 25
BASE_STEPS = 16  # time steps after the dense projection
NATIVE_LENGTHS = (16384, 32768, 65536)


def native_length(length: int) -> int:
    """Smallest supported native model length >= ``length``."""
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    for n in NATIVE_LENGTHS:
        if length <= n:
            return n
    raise ValueError(
        f"length {length} exceeds the largest supported WaveGAN length {NATIVE_LENGTHS[-1]}"
    )


def layer_strides(native: int) -> list[int]:
    """Per-layer strides (generator order, i.e. from 16 steps up to ``native``)."""
    if native == 16384:
        return [4, 4, 4, 4, 4]
    if native == 32768:
        return [4, 4, 4, 4, 4, 2]
    if native == 65536:
        return [4, 4, 4, 4, 4, 4]
    raise ValueError(f"unsupported native length {native}; expected one of {NATIVE_LENGTHS}")


def _dim_mul(native: int) -> int:
    return 16 if native == 16384 else 32


def phase_shuffle(
    x: Tensor, radius: int, generator: torch.Generator | None = None, shifts: Tensor | None = None
) -> Tensor:
    """Shift each example of ``x`` ([B, C, T]) along time by its own offset in [-radius, radius].

    ``out[b, c, t] = reflect(x[b, c, :])[t - k_b]`` -- a positive ``k_b`` moves the signal to the
    right (later in time); samples that would come from outside ``[0, T)`` are mirrored
    (reflect padding, edge sample not repeated).  One offset per example, shared by all its
    channels; channels are never mixed.  Vectorised: one ``gather`` over a reflect-padded copy.

    ``shifts`` ([B] integer tensor) overrides the random draw (for tests); otherwise offsets are
    drawn with ``torch.randint`` from ``generator`` (or the global RNG of ``x``'s device).
    """
    if radius == 0:
        return x
    b, c, t = x.shape
    if shifts is None:
        gen_device = generator.device if generator is not None else x.device
        shifts = torch.randint(-radius, radius + 1, (b,), generator=generator, device=gen_device)
    shifts = shifts.to(device=x.device, dtype=torch.long)
    padded = F.pad(x, (radius, radius), mode="reflect")
    # out[t] = padded[t + radius - k]
    idx = torch.arange(t, device=x.device).unsqueeze(0) + (radius - shifts).unsqueeze(1)  # [B, T]
    return torch.gather(padded, 2, idx.unsqueeze(1).expand(b, c, t))


class PhaseShuffle(nn.Module):
    """Module wrapper of :func:`phase_shuffle`; identity in eval mode.

    Set ``self.generator`` to draw offsets from a dedicated RNG (default: global RNG).
    """

    def __init__(self, radius: int = 2):
        super().__init__()
        self.radius = radius
        self.generator: torch.Generator | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.radius == 0:
            return x
        return phase_shuffle(x, self.radius, generator=self.generator)

    def extra_repr(self) -> str:
        return f"radius={self.radius}"


def init_weights(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for dense and (transposed) convolutions, the
    TensorFlow defaults used by the reference implementation."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.ConvTranspose1d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _upconv(cin: int, cout: int, stride: int) -> nn.ConvTranspose1d:
    # "same"-style transposed conv: output length = input length * stride.
    # (L-1)*s - 2p + k + op = s*L  <=>  2p - op = k - s
    pad = (KERNEL_SIZE - stride + 1) // 2
    out_pad = 2 * pad - (KERNEL_SIZE - stride)
    return nn.ConvTranspose1d(
        cin, cout, KERNEL_SIZE, stride=stride, padding=pad, output_padding=out_pad
    )


def _downconv(cin: int, cout: int, stride: int) -> nn.Conv1d:
    # output length = input length / stride for input lengths divisible by stride.
    pad = (KERNEL_SIZE - stride + 1) // 2
    return nn.Conv1d(cin, cout, KERNEL_SIZE, stride=stride, padding=pad)


class WaveGANGenerator(ConditionalGenerator):
    """z [B, latent_dim] (+ labels [B]) -> audio [B, channels, length] in [-1, 1]."""

    latent_prior = "uniform"

    def __init__(
        self,
        length: int = 16384,
        channels: int = 1,
        latent_dim: int = 100,
        model_dim: int = 64,
        num_classes: int = 0,
        embed_dim: int | None = None,
    ):
        super().__init__(length, channels, latent_dim, model_dim, num_classes)
        self.native_length = native_length(self.length)
        strides = layer_strides(self.native_length)
        self.n_layers = len(strides)
        conditioned_dim = self.add_label_embedding(embed_dim)

        d = self.model_dim
        mul = _dim_mul(self.native_length)
        self.base_channels = d * mul
        self.project = nn.Linear(conditioned_dim, BASE_STEPS * self.base_channels)
        layers: list[nn.Module] = []
        cin = self.base_channels
        for i, s in enumerate(strides):
            last = i == len(strides) - 1
            cout = self.channels if last else d * (mul >> (i + 1))
            layers.append(_upconv(cin, cout, s))
            layers.append(nn.Tanh() if last else nn.ReLU())
            cin = cout
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        z = self.condition(z, labels)
        h = self.project(z).view(z.shape[0], self.base_channels, BASE_STEPS)
        h = F.relu(h)
        out = self.net(h)
        if out.shape[-1] != self.length:
            out = out[..., : self.length]
        return out


class WaveGANDiscriminator(nn.Module):
    """audio [B, channels, T<=native] (+ labels [B]) -> scores [B]."""

    def __init__(
        self,
        length: int = 16384,
        channels: int = 1,
        model_dim: int = 64,
        num_classes: int = 0,
        phase_shuffle_radius: int = 2,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        self.length = int(length)
        self.channels = int(channels)
        self.model_dim = int(model_dim)
        self.num_classes = int(num_classes)
        self.native_length = native_length(self.length)
        self.negative_slope = negative_slope
        # Same order as the reference code: stride-4 layers first, the extra stride-2 layer
        # (32768) last, so the full-resolution input is reduced 4x by the first layer.
        strides = layer_strides(self.native_length)
        self.n_layers = len(strides)

        d = self.model_dim
        convs = []
        shuffles = []
        cin = self.channels
        for i, s in enumerate(strides):
            cout = d * (1 << i)
            convs.append(_downconv(cin, cout, s))
            last = i == len(strides) - 1
            shuffles.append(nn.Identity() if last else PhaseShuffle(phase_shuffle_radius))
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.shuffles = nn.ModuleList(shuffles)
        self.feature_dim = cin * BASE_STEPS
        self.fc = nn.Linear(self.feature_dim, 1)
        init_weights(self)
        self.projection = projection_embedding(self.num_classes, self.feature_dim)

    def set_phase_shuffle_generator(self, generator: torch.Generator | None) -> None:
        """Draw phase-shuffle offsets from ``generator`` instead of the global RNG."""
        for m in self.shuffles:
            if isinstance(m, PhaseShuffle):
                m.generator = generator

    def features(self, x: Tensor) -> Tensor:
        t = x.shape[-1]
        if t > self.native_length:
            raise ValueError(
                f"input length {t} exceeds the discriminator's native length {self.native_length}"
            )
        if x.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {x.shape[1]}")
        if t < self.native_length:
            x = F.pad(x, (0, self.native_length - t))
        h = x
        for conv, shuffle in zip(self.convs, self.shuffles, strict=True):
            h = F.leaky_relu(conv(h), self.negative_slope)
            h = shuffle(h)
        return h.flatten(1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        phi = self.features(x)
        score = self.fc(phi).squeeze(1)
        score = add_projection(score, phi, labels, self.projection)
        return score


def build_wavegan(
    *,
    length: int,
    channels: int = 1,
    latent_dim: int = 100,
    model_dim: int = 64,
    num_classes: int = 0,
    phase_shuffle_radius: int = 2,
    embed_dim: int | None = None,
) -> tuple[WaveGANGenerator, WaveGANDiscriminator]:
    g = WaveGANGenerator(
        length=length,
        channels=channels,
        latent_dim=latent_dim,
        model_dim=model_dim,
        num_classes=num_classes,
        embed_dim=embed_dim,
    )
    d = WaveGANDiscriminator(
        length=length,
        channels=channels,
        model_dim=model_dim,
        num_classes=num_classes,
        phase_shuffle_radius=phase_shuffle_radius,
    )
    return g, d
