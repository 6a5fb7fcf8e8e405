"""BERGAN-style MelGAN generator and multi-scale discriminator for one-bar clips.

BERGAN (Adrien Bitton, github.com/adrienchaton/BERGAN, config ``WGANGP_2scales_WN_WN_crop0``)
turns the MelGAN vocoder (Kumar et al., NeurIPS 2019) into an unconditional bar generator:

* Generator: ``z ~ N(0, I)`` (128-d) -> weight-normed dense layer -> ``[32 channels, F frames]``
  with ``F = ceil(length / prod(strides))`` (32 frames for a 2 s bar at 16 kHz and strides
  ``4,4,4,4,4``) -> MelGAN body: 7-tap conv to ``32 * model_dim`` channels (512 at the
  published ``model_dim = 16``), then per stride a transposed conv (kernel ``2 * stride``)
  halving the channels, a residual stack of three dilated convs (dilation 1, 3, 9) and
  LeakyReLU(0.2); a 7-tap conv to ``channels`` and ``tanh``.  The output is cropped to
  ``length`` samples.  All convolutions and the dense layer are weight-normalised.
* Discriminator: ``scales`` identical MelGAN discriminators (BERGAN uses 2, MelGAN 3), scale
  ``k`` sees the input average-pooled ``k`` times (kernel 4, stride 2).  Each is the MelGAN
  stack: 15-tap conv (``model_dim`` channels), four grouped strided convs (kernel 41, stride 4,
  channels x4 up to ``64 * model_dim``), a 5-tap conv and a 3-tap conv to one channel, all
  weight-normalised, LeakyReLU(0.2) between them.

Scores.  Each scale produces a map of patch scores ``[B, 1, T_k]``.  The discriminator's
``forward`` returns ONE score per example: the mean over the patches of each scale, averaged
over the scales (``forward_scales`` gives the per-scale ``[B]`` scores).  Every loss, the
WGAN gradient penalty and R1 therefore work unchanged.  For the Wasserstein loss this equals
BERGAN's objective (which sums patch scores over time and scales) up to a constant factor per
scale that the weight-normed last layer absorbs; for hinge / least-squares losses the loss is
applied to the patch-averaged score rather than to every patch.

Class conditioning (``num_classes > 0``): the generator concatenates a learned label embedding
to ``z``; every scale of the discriminator adds a projection term (Miyato & Koyama 2018)
``<embed_k(y), mean_t phi_k(x)>`` with ``phi_k`` the features before its last conv.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from pipeline.models.conditioning import (
    ConditionalGenerator,
    add_projection,
    projection_embedding,
)

LEAK = 0.2


def _init(module: nn.Module) -> None:
    """BERGAN's initialisation: Glorot-uniform with the LeakyReLU(0.2) gain, biases 0.01."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("leaky_relu", LEAK))
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.01)


def _wn(module: nn.Module) -> nn.Module:
    _init(module)  # before weight norm, so the magnitude starts at the initial weight norm
    return weight_norm(module)


class ResStack(nn.Module):
    """Three residual blocks with dilations 1, 3, 9 (MelGAN), 1x1-conv shortcuts (BERGAN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LeakyReLU(LEAK),
                nn.ReflectionPad1d(3**i),
                _wn(nn.Conv1d(channels, channels, kernel_size=3, dilation=3**i)),
                nn.LeakyReLU(LEAK),
                _wn(nn.Conv1d(channels, channels, kernel_size=1)),
            )
            for i in range(3)
        )
        self.shortcuts = nn.ModuleList(
            _wn(nn.Conv1d(channels, channels, kernel_size=1)) for _ in range(3)
        )

    def forward(self, x: Tensor) -> Tensor:
        for block, shortcut in zip(self.blocks, self.shortcuts, strict=True):
            x = shortcut(x) + block(x)
        return x


def _upsample(cin: int, cout: int, stride: int) -> nn.Module:
    # kernel 2*stride; padding chosen so the output has exactly stride * input frames
    return _wn(
        nn.ConvTranspose1d(
            cin,
            cout,
            kernel_size=2 * stride,
            stride=stride,
            padding=stride // 2 + stride % 2,
            output_padding=stride % 2,
        )
    )


class MelGANGenerator(ConditionalGenerator):
    """z [B, latent_dim] (+ labels [B]) -> audio [B, channels, length] in [-1, 1]."""

    latent_prior = "normal"  # BERGAN's z_prior = "normal"

    def __init__(
        self,
        length: int,
        channels: int = 1,
        latent_dim: int = 128,
        model_dim: int = 16,
        num_classes: int = 0,
        strides: tuple[int, ...] = (4, 4, 4, 4, 4),
        dense_channels: int = 32,
        embed_dim: int | None = None,
    ):
        if length < 1 or channels < 1:
            raise ValueError(f"length and channels must be >= 1, got {length}, {channels}")
        super().__init__(length, channels, latent_dim, model_dim, num_classes)
        self.strides = tuple(int(s) for s in strides)
        if not self.strides or min(self.strides) < 1:
            raise ValueError(f"strides must be a non-empty list of positive ints, got {strides}")
        self.hop = math.prod(self.strides)
        self.frames = math.ceil(self.length / self.hop)
        self.dense_channels = int(dense_channels)
        width = 32 * self.model_dim
        if width >> len(self.strides) < 1:
            raise ValueError(
                f"model_dim {model_dim} is too small for {len(self.strides)} upsampling layers "
                "(each halves the channels)"
            )
        conditioned_dim = self.add_label_embedding(embed_dim)

        self.project = _wn(nn.Linear(conditioned_dim, self.dense_channels * self.frames))
        layers: list[nn.Module] = [
            nn.ReflectionPad1d(3),
            _wn(nn.Conv1d(self.dense_channels, width, kernel_size=7)),
            nn.LeakyReLU(LEAK),
        ]
        c = width
        for s in self.strides:
            layers += [_upsample(c, c // 2, s), ResStack(c // 2), nn.LeakyReLU(LEAK)]
            c //= 2
        layers += [
            nn.ReflectionPad1d(3),
            _wn(nn.Conv1d(c, self.channels, kernel_size=7)),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        z = self.condition(z, labels)
        h = F.leaky_relu(self.project(z), LEAK).view(z.shape[0], self.dense_channels, self.frames)
        return self.net(h)[..., : self.length]


class ScaleDiscriminator(nn.Module):
    """One MelGAN discriminator: audio [B, C, T] -> (patch scores [B, 1, T'], features)."""

    def __init__(self, channels: int, model_dim: int, num_classes: int):
        super().__init__()
        d = int(model_dim)
        widths = [d, 4 * d, 16 * d, 64 * d, 64 * d]
        layers: list[nn.Module] = [
            nn.Sequential(nn.ReflectionPad1d(7), _wn(nn.Conv1d(channels, d, kernel_size=15)))
        ]
        for cin, cout in itertools.pairwise(widths):
            groups = cin // 4 if cin % 4 == 0 else 1
            layers.append(
                _wn(nn.Conv1d(cin, cout, kernel_size=41, stride=4, padding=20, groups=groups))
            )
        layers.append(_wn(nn.Conv1d(widths[-1], widths[-1], kernel_size=5, padding=2)))
        self.layers = nn.ModuleList(layers)
        self.out = _wn(nn.Conv1d(widths[-1], 1, kernel_size=3, padding=1))
        self.feature_dim = widths[-1]
        self.projection = projection_embedding(num_classes, self.feature_dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = x
        for layer in self.layers:
            h = F.leaky_relu(layer(h), LEAK)
        score = self.out(h).mean(dim=(1, 2))
        score = add_projection(score, h.mean(dim=2), labels, self.projection)
        return score


class MultiScaleDiscriminator(nn.Module):
    """audio [B, channels, length] (+ labels [B]) -> scores [B], the mean over ``scales``."""

    def __init__(
        self,
        length: int,
        channels: int = 1,
        model_dim: int = 16,
        num_classes: int = 0,
        scales: int = 3,
    ):
        super().__init__()
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        self.length = int(length)
        self.channels = int(channels)
        self.num_classes = int(num_classes)
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, model_dim, num_classes) for _ in range(scales)
        )
        self.pool = nn.AvgPool1d(kernel_size=4, stride=2, padding=1, count_include_pad=False)

    def forward_scales(self, x: Tensor, labels: Tensor | None = None) -> list[Tensor]:
        """Per-scale scores ``[B]``, finest scale first."""
        if x.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {x.shape[1]}")
        scores = []
        for k, disc in enumerate(self.discriminators):
            if k > 0:
                x = self.pool(x)
            scores.append(disc(x, labels))
        return scores

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return torch.stack(self.forward_scales(x, labels)).mean(dim=0)


def build_melgan(
    *,
    length: int,
    channels: int = 1,
    latent_dim: int = 128,
    model_dim: int = 16,
    num_classes: int = 0,
    scales: int = 3,
    strides: tuple[int, ...] | list[int] = (4, 4, 4, 4, 4),
    dense_channels: int = 32,
    embed_dim: int | None = None,
) -> tuple[MelGANGenerator, MultiScaleDiscriminator]:
    g = MelGANGenerator(
        length=length,
        channels=channels,
        latent_dim=latent_dim,
        model_dim=model_dim,
        num_classes=num_classes,
        strides=tuple(strides),
        dense_channels=dense_channels,
        embed_dim=embed_dim,
    )
    d = MultiScaleDiscriminator(
        length=length,
        channels=channels,
        model_dim=model_dim,
        num_classes=num_classes,
        scales=scales,
    )
    return g, d
