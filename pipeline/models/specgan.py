"""SpecGAN (Donahue, McAuley & Puckette, ICLR 2019): a DCGAN on log-magnitude spectrograms.

Training happens on spectrograms; sampling returns audio:

* :meth:`SpecGANGenerator.to_training_domain` turns real bars ``[B, C, length]`` into the
  training domain ``[B, C, F, frames]``: STFT (Hann window ``n_fft``, hop ``hop_length``,
  centred), magnitude scaled by the window sum (a full-scale sinusoid peaks near 0 dB),
  ``F = n_fft / 2`` bins (the Nyquist bin is dropped, as in SpecGAN), converted to dB and mapped
  linearly from ``[floor_db, 0]`` to ``[-1, 1]`` (clipped).  SpecGAN normalises each bin by its
  mean and standard deviation over the training set instead; the fixed dB range keeps the model
  self-contained and suits bars that the pipeline has already normalised in loudness.
* :meth:`SpecGANGenerator.forward_training` maps ``z`` to such a spectrogram (``tanh`` output).
* :meth:`SpecGANGenerator.forward` = ``forward_training`` followed by phase reconstruction:
  audio ``[B, C, length]`` like every other generator. ``phase: griffin-lim`` runs fast
  Griffin-Lim (``torchaudio.transforms.GriffinLim``, ``griffin_lim_iters`` iterations, zero
  initial phase so sampling is deterministic); ``phase: pghi`` starts from the phase that
  phase-gradient heap integration (:mod:`pipeline.audio.pghi`, as TiFGAN) derives from the
  magnitudes and refines it with ``griffin_lim_iters`` fast Griffin-Lim iterations (0: PGHI
  alone). Both are deterministic.

The trainer converts the training set once with ``to_training_domain`` and trains with
``forward_training``; the discriminator only ever sees spectrograms.

Architecture (SpecGAN): generator ``z`` (uniform in [-1, 1]) -> dense -> ``[16 d, F / 32,
frames' / 32]`` -> ReLU -> five transposed 2-D convolutions (kernel 5, stride 2) with ReLU,
``tanh`` at the end; the output is cropped to ``frames`` (``frames'`` rounds ``frames`` up to a
multiple of 32).  Discriminator: five 2-D convolutions (kernel 5, stride 2), LeakyReLU(0.2),
flatten, dense; inputs are padded with the floor value (-1) to ``frames'``.  Class conditioning
as in WaveGAN: label embedding concatenated to ``z``; projection discriminator.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchaudio.transforms import GriffinLim

from pipeline.audio.pghi import pghi
from pipeline.models.conditioning import (
    ConditionalGenerator,
    add_projection,
    projection_embedding,
)

KERNEL = 5
N_LAYERS = 5
UPSCALE = 2**N_LAYERS
PHASE_METHODS = ("griffin-lim", "pghi")
MOMENTUM = 0.99  # fast Griffin-Lim (Perraudin et al. 2013), torchaudio's default
# PGHI integrates only coefficients more than this above the floor; those below get random phase,
# as PGHI's tolerance does. On the demo (README "The representation") it halved the synthesis
# time and left the Fréchet distance and two-sample accuracy of generated and round-trip bars
# within their noise.
PGHI_FLOOR_MARGIN_DB = 6.0


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SpectrogramCodec(nn.Module):
    """Audio <-> normalised log-magnitude spectrogram (see the module docstring)."""

    def __init__(
        self,
        length: int,
        n_fft: int = 256,
        hop_length: int = 128,
        floor_db: float = -80.0,
        griffin_lim_iters: int = 32,
        phase: str = "griffin-lim",
    ):
        super().__init__()
        if phase not in PHASE_METHODS:
            raise ValueError(f"phase must be one of {', '.join(PHASE_METHODS)}, got {phase!r}")
        if griffin_lim_iters < (0 if phase == "pghi" else 1):
            raise ValueError(f"griffin_lim_iters must be at least 1 with phase {phase}")
        if n_fft % 2 or (n_fft // 2) % UPSCALE:
            raise ValueError(f"n_fft must be a multiple of {2 * UPSCALE}, got {n_fft}")
        if not 0 < hop_length <= n_fft:
            raise ValueError(f"hop_length must be in (0, n_fft], got {hop_length}")
        if floor_db >= 0:
            raise ValueError(f"floor_db must be negative, got {floor_db}")
        self.length = int(length)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.floor_db = float(floor_db)
        self.phase = phase
        self.iterations = int(griffin_lim_iters)
        self.bins = self.n_fft // 2
        self.frames = self.length // self.hop_length + 1  # torch.stft with center=True
        window = torch.hann_window(self.n_fft)
        self.register_buffer("window", window, persistent=False)
        self.scale = float(window.sum())
        self.griffin_lim = GriffinLim(
            n_fft=self.n_fft,
            n_iter=max(1, int(griffin_lim_iters)),
            hop_length=self.hop_length,
            power=1.0,
            length=self.length,
            rand_init=False,
        )

    def encode(self, audio: Tensor) -> Tensor:
        """``[B, C, length]`` -> ``[B, C, bins, frames]`` in [-1, 1] (fp32)."""
        b, c, t = audio.shape
        spec = torch.stft(
            audio.float().reshape(b * c, t),
            self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            return_complex=True,
        )
        mag = spec.abs()[:, : self.bins] / self.scale
        db = 20.0 * torch.log10(mag.clamp_min(10.0 ** (self.floor_db / 20.0)))
        x = (2.0 * (db - self.floor_db) / -self.floor_db - 1.0).clamp(-1.0, 1.0)
        return x.reshape(b, c, self.bins, -1)

    def magnitudes(self, spec: Tensor) -> Tensor:
        """``[B, C, bins, frames]`` in [-1, 1] -> STFT magnitudes ``[B * C, bins + 1, frames]``."""
        b, c, f, n = spec.shape
        db = (spec.float() + 1.0) * (-self.floor_db / 2.0) + self.floor_db
        mag = 10.0 ** (db / 20.0) * self.scale
        return F.pad(mag.reshape(b * c, f, n), (0, 0, 0, 1))  # the dropped Nyquist bin: silence

    def decode(self, spec: Tensor) -> Tensor:
        """``[B, C, bins, frames]`` in [-1, 1] -> audio ``[B, C, length]``."""
        b, c = spec.shape[:2]
        mag = self.magnitudes(spec)
        if self.phase == "griffin-lim":
            audio = self.griffin_lim(mag)
        else:
            audio = self.refine(mag, self.pghi_phase(mag), self.iterations)
        return audio.reshape(b, c, -1).clamp(-1.0, 1.0)

    def pghi_phase(self, mag: Tensor) -> Tensor:
        """PGHI's phase ``[B, bins + 1, frames]`` for magnitudes of the same shape (on the CPU:
        the heap integration is sequential)."""
        cpu = mag.detach().double().cpu().numpy()
        floor = 10.0 ** ((self.floor_db + PGHI_FLOOR_MARGIN_DB) / 20.0) * self.scale
        phases = [pghi(m, self.n_fft, self.hop_length, floor=floor) for m in cpu]
        return torch.from_numpy(np.stack(phases)).to(device=mag.device, dtype=mag.dtype)

    def refine(self, mag: Tensor, phase: Tensor, iterations: int) -> Tensor:
        """Fast Griffin-Lim from ``phase`` (torchaudio's update, any initial phase) -> audio."""
        window = self.window.to(mag.device)

        def istft(spec: Tensor) -> Tensor:
            return torch.istft(
                spec, self.n_fft, self.hop_length, window=window, center=True, length=self.length
            )

        angles = torch.polar(torch.ones_like(mag), phase)
        previous = None
        for _ in range(iterations):
            rebuilt = torch.stft(
                istft(mag * angles),
                self.n_fft,
                hop_length=self.hop_length,
                window=window,
                center=True,
                return_complex=True,
            )
            angles = rebuilt if previous is None else rebuilt - MOMENTUM / (1 + MOMENTUM) * previous
            angles = angles / (angles.abs() + 1e-16)
            previous = rebuilt
        return istft(mag * angles)


class SpecGANGenerator(ConditionalGenerator):
    """z [B, latent_dim] (+ labels) -> spectrogram (``forward_training``) or audio (``forward``)."""

    latent_prior = "uniform"  # as SpecGAN

    def __init__(
        self,
        length: int,
        channels: int = 1,
        latent_dim: int = 100,
        model_dim: int = 64,
        num_classes: int = 0,
        n_fft: int = 256,
        hop_length: int = 128,
        floor_db: float = -80.0,
        griffin_lim_iters: int = 32,
        embed_dim: int | None = None,
        phase: str = "griffin-lim",
    ):
        super().__init__(length, channels, latent_dim, model_dim, num_classes)
        self.codec = SpectrogramCodec(length, n_fft, hop_length, floor_db, griffin_lim_iters, phase)
        self.bins, self.frames = self.codec.bins, self.codec.frames
        self.base = (self.bins // UPSCALE, math.ceil(self.frames / UPSCALE))
        conditioned_dim = self.add_label_embedding(embed_dim)

        d = self.model_dim
        self.base_channels = 16 * d
        self.project = nn.Linear(conditioned_dim, self.base_channels * self.base[0] * self.base[1])
        layers: list[nn.Module] = []
        cin = self.base_channels
        for i in range(N_LAYERS):
            last = i == N_LAYERS - 1
            cout = self.channels if last else self.base_channels >> (i + 1)
            layers.append(
                nn.ConvTranspose2d(cin, cout, KERNEL, stride=2, padding=2, output_padding=1)
            )
            layers.append(nn.Tanh() if last else nn.ReLU())
            cin = cout
        self.net = nn.Sequential(*layers)
        _init(self)

    def to_training_domain(self, audio: Tensor) -> Tensor:
        """Real bars ``[B, C, length]`` -> spectrograms ``[B, C, bins, frames]``."""
        return self.codec.encode(audio)

    def forward_training(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        z = self.condition(z, labels)
        h = F.relu(self.project(z).view(z.shape[0], self.base_channels, *self.base))
        return self.net(h)[..., : self.frames]

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.codec.decode(self.forward_training(z, labels))

    def round_trip(self, audio: Tensor) -> Tensor:
        """Real bars -> this generator's spectrograms -> audio, as ``forward`` renders them."""
        return self.codec.decode(self.codec.encode(audio))


def append_minibatch_std(h: Tensor, group: int) -> Tensor:
    """``h`` [B, C, H, W] with one more channel: the feature standard deviation across each group
    of up to ``group`` consecutive examples (Karras et al. 2018), so the critic sees how diverse
    a batch is and a collapsed generator cannot pass. Groups are consecutive and, for an even
    ``B``, never straddle its halves: the trainer scores ``[real; fake]`` in one call."""
    b = h.shape[0]
    g = min(group, b)
    while b % g or (b % 2 == 0 and (b // 2) % g):
        g -= 1
    grouped = h.float().reshape(b // g, g, *h.shape[1:])
    std = (grouped.var(dim=1, correction=0) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [B / g]
    channel = std.repeat_interleave(g).to(h.dtype).view(b, 1, 1, 1).expand(b, 1, *h.shape[2:])
    return torch.cat([h, channel], dim=1)


class SpecGANDiscriminator(nn.Module):
    """spectrogram [B, channels, bins, frames] (+ labels [B]) -> scores [B]."""

    def __init__(
        self,
        bins: int,
        frames: int,
        channels: int = 1,
        model_dim: int = 64,
        num_classes: int = 0,
        negative_slope: float = 0.2,
        minibatch_std: int = 0,
    ):
        super().__init__()
        if minibatch_std < 0:
            raise ValueError(f"minibatch_std must be >= 0, got {minibatch_std}")
        self.minibatch_std = int(minibatch_std)
        self.bins = int(bins)
        self.frames = int(frames)
        self.padded_frames = math.ceil(self.frames / UPSCALE) * UPSCALE
        self.channels = int(channels)
        self.num_classes = int(num_classes)
        self.negative_slope = negative_slope
        d = int(model_dim)
        convs = []
        cin = self.channels
        for i in range(N_LAYERS):
            cout = d << i
            convs.append(nn.Conv2d(cin, cout, KERNEL, stride=2, padding=2))
            cin = cout
        self.convs = nn.ModuleList(convs)
        if self.minibatch_std:
            cin += 1  # the batch-diversity channel
        self.feature_dim = cin * (self.bins // UPSCALE) * (self.padded_frames // UPSCALE)
        self.fc = nn.Linear(self.feature_dim, 1)
        _init(self)
        self.projection = projection_embedding(self.num_classes, self.feature_dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if x.shape[1:] != (self.channels, self.bins, self.frames):
            raise ValueError(
                f"expected spectrograms [B, {self.channels}, {self.bins}, {self.frames}], "
                f"got {list(x.shape)}"
            )
        h = F.pad(x, (0, self.padded_frames - self.frames), value=-1.0)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.negative_slope)
        if self.minibatch_std:
            h = append_minibatch_std(h, self.minibatch_std)
        phi = h.flatten(1)
        score = self.fc(phi).squeeze(1)
        score = add_projection(score, phi, labels, self.projection)
        return score


def build_specgan(
    *,
    length: int,
    channels: int = 1,
    latent_dim: int = 100,
    model_dim: int = 64,
    num_classes: int = 0,
    n_fft: int = 256,
    hop_length: int = 128,
    floor_db: float = -80.0,
    griffin_lim_iters: int = 32,
    embed_dim: int | None = None,
    minibatch_std: int = 0,
    phase: str = "griffin-lim",
) -> tuple[SpecGANGenerator, SpecGANDiscriminator]:
    g = SpecGANGenerator(
        length=length,
        channels=channels,
        latent_dim=latent_dim,
        model_dim=model_dim,
        num_classes=num_classes,
        n_fft=n_fft,
        hop_length=hop_length,
        floor_db=floor_db,
        griffin_lim_iters=griffin_lim_iters,
        embed_dim=embed_dim,
        phase=phase,
    )
    d = SpecGANDiscriminator(
        bins=g.bins,
        frames=g.frames,
        channels=channels,
        model_dim=model_dim,
        num_classes=num_classes,
        minibatch_std=minibatch_std,
    )
    return g, d
