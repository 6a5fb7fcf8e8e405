"""A generator trained on clusters (self-conditioning, :mod:`pipeline.train.clusters`) used as
one conditioned on classes: ``ClusterConditioned(generator, ...)(z, class)``.

Each bar's cluster is drawn within its class, in proportion to the cluster's training bars, by
the latent's first coordinate (its inverse distribution function: where ``z[0]`` falls among the
class's clusters); that coordinate is then stretched back over the whole prior, so the inner
generator sees latents from its own prior and a bar stays a function of ``(z, class)``: the same
latent and class make the same bar, on any machine, in ONNX too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

CLUSTER_COORDINATE = 0  # the latent coordinate that picks the cluster


class ClusterConditioned(nn.Module):
    """``generator`` (conditioned on ``len(cluster_classes)`` clusters) as a generator of
    ``num_classes`` classes (0: unconditional); ``cluster_classes[i]`` is cluster i's class and
    ``cluster_counts[i]`` its training bars. A class without clusters (no training bars) is
    drawn from every cluster, in proportion to their bars."""

    def __init__(
        self,
        generator: nn.Module,
        cluster_classes: Sequence[int],
        cluster_counts: Sequence[int],
        num_classes: int,
    ) -> None:
        super().__init__()
        if len(cluster_classes) != len(cluster_counts) or not cluster_classes:
            raise ValueError(
                f"{len(cluster_classes)} cluster classes and {len(cluster_counts)} counts: "
                "need one class and one count per cluster"
            )
        if any(n <= 0 for n in cluster_counts):
            raise ValueError(f"every cluster needs training bars, got counts {cluster_counts}")
        self.generator = generator
        self.num_classes = int(num_classes)
        self.length, self.channels = generator.length, generator.channels
        self.latent_dim, self.model_dim = generator.latent_dim, generator.model_dim
        self.latent_prior = generator.latent_prior
        if hasattr(generator, "codec"):
            self.codec = generator.codec
        rows = [
            [i for i, c in enumerate(cluster_classes) if c == k] or list(range(len(cluster_counts)))
            for k in range(max(self.num_classes, 1))
        ]
        width = max(len(row) for row in rows)
        cluster = torch.zeros(len(rows), width, dtype=torch.long)
        upper = torch.ones(len(rows), width, dtype=torch.float64)
        for r, row in enumerate(rows):
            weights = torch.tensor([cluster_counts[i] for i in row], dtype=torch.float64)
            cluster[r, : len(row)] = torch.tensor(row)
            upper[r, : len(row)] = weights.cumsum(0) / weights.sum()
            upper[r, len(row) - 1 :] = 1.0
        lower = torch.cat([torch.zeros(len(rows), 1, dtype=torch.float64), upper[:, :-1]], dim=1)
        self.register_buffer("cluster", cluster, persistent=False)
        self.register_buffer("upper", upper.float(), persistent=False)
        self.register_buffer("lower", lower.float(), persistent=False)
        self.register_buffer("last", torch.tensor([len(row) - 1 for row in rows]), persistent=False)

    @property
    def cluster_count(self) -> int:
        return int(self.generator.num_classes)

    def route(self, z: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(z', clusters)``: each latent's cluster within its class, and the latent with its
        first coordinate stretched back over the prior."""
        if self.num_classes and labels is None:
            raise ValueError("conditional generator (num_classes > 0) needs labels")
        rows = (
            labels if self.num_classes else torch.zeros(len(z), dtype=torch.long, device=z.device)
        )
        u = self._to_unit(z[:, CLUSTER_COORDINATE].float())
        upper, lower = self.upper[rows], self.lower[rows]
        k = torch.minimum((u.unsqueeze(1) >= upper).sum(dim=1), self.last[rows]).unsqueeze(1)
        low, high = lower.gather(1, k).squeeze(1), upper.gather(1, k).squeeze(1)
        stretched = ((u - low) / (high - low).clamp_min(1e-12)).clamp(0.0, 1.0)
        coordinate = self._from_unit(stretched).to(z.dtype).unsqueeze(1)
        z = torch.cat([z[:, :CLUSTER_COORDINATE], coordinate, z[:, CLUSTER_COORDINATE + 1 :]], 1)
        return z, self.cluster[rows].gather(1, k).squeeze(1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator(*self.route(z, labels))

    def forward_training(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The inner generator's output before synthesis (spectrogram models)."""
        return self.generator.forward_training(*self.route(z, labels))

    def round_trip(self, audio: Tensor) -> Tensor:
        return self.generator.round_trip(audio)

    def sample_latent(self, *args, **kwargs) -> Tensor:
        """Latents from the inner generator's prior (its ``sample_latent``)."""
        return self.generator.sample_latent(*args, **kwargs)

    def _to_unit(self, x: Tensor) -> Tensor:
        if self.latent_prior == "normal":
            return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
        return ((x + 1.0) / 2.0).clamp(0.0, 1.0)

    def _from_unit(self, u: Tensor) -> Tensor:
        if self.latent_prior == "normal":
            return math.sqrt(2.0) * torch.erfinv((2.0 * u - 1.0).clamp(-1 + 1e-6, 1 - 1e-6))
        return 2.0 * u - 1.0


def as_class_generator(generator: nn.Module, settings: Any) -> nn.Module:
    """``generator`` as its users take it, conditioned on classes: under self-conditioning
    (``settings.cluster_classes``, with ``cluster_counts`` and ``num_classes``: a training config
    or a generator file's settings) wrapped in :class:`ClusterConditioned`, else itself."""
    if not settings.cluster_classes:
        return generator
    return ClusterConditioned(
        generator, settings.cluster_classes, settings.cluster_counts, settings.num_classes
    )


def hold_cluster(generator: nn.Module, latents: Tensor, keyframes: Tensor) -> Tensor:
    """A latent walk's ``latents`` with the coordinate that picks the cluster held at the first
    keyframe's value, so a walk through a :class:`ClusterConditioned` generator stays in one
    cluster (as it stays in one class) and morphs instead of jumping between clusters; the
    latents as they are for any other generator."""
    if not isinstance(generator, ClusterConditioned):
        return latents
    held = latents.clone()
    held[:, CLUSTER_COORDINATE] = keyframes[0, CLUSTER_COORDINATE]
    return held
