"""What every architecture shares: the generator's settings, its latent prior and optional
label embedding appended to the latent, and the projection discriminator's class term
(Miyato & Koyama 2018)."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn


class ConditionalGenerator(nn.Module):
    """Base of every generator: ``length``, ``channels``, ``latent_dim``, ``model_dim``,
    ``num_classes``, ``embed_dim`` and ``label_embedding``, :meth:`sample_latent` and
    :meth:`condition`.

    A subclass calls :meth:`add_label_embedding` where its layers begin: where that happens
    fixes the parameters' creation order (so the weights a seed gives) and the state_dict's
    key order, which saved generator files depend on.
    """

    latent_prior: ClassVar[Literal["uniform", "normal"]] = "uniform"

    def __init__(
        self, length: int, channels: int, latent_dim: int, model_dim: int, num_classes: int
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.length = int(length)
        self.channels = int(channels)
        self.latent_dim = int(latent_dim)
        self.model_dim = int(model_dim)
        self.num_classes = int(num_classes)

    def add_label_embedding(self, embed_dim: int | None = None) -> int:
        """Create the label embedding (``num_classes > 0``; ``embed_dim`` defaults to
        ``min(50, latent_dim)``) and return the width of the conditioned latent."""
        if self.num_classes > 0:
            self.embed_dim = int(embed_dim if embed_dim is not None else min(50, self.latent_dim))
            self.label_embedding: nn.Embedding | None = nn.Embedding(
                self.num_classes, self.embed_dim
            )
        else:
            self.embed_dim = 0
            self.label_embedding = None
        return self.latent_dim + self.embed_dim

    def condition(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """``z`` with the label embedding appended (``z`` itself when unconditional)."""
        return condition_latent(z, labels, self.label_embedding)

    def round_trip(self, audio: Tensor) -> Tensor:
        """Real bars ``[B, C, length]`` through this generator's own representation and back
        (analysis, then the synthesis its ``forward`` ends with): the best any generator of this
        kind can sound. A waveform generator has no representation between it and the audio,
        so the bars come back unchanged."""
        return audio

    def sample_latent(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``n`` latent vectors from the prior: uniform in [-1, 1] or standard normal."""
        if device is None:
            device = generator.device if generator is not None else next(self.parameters()).device
        if self.latent_prior == "normal":
            return torch.randn(n, self.latent_dim, generator=generator, device=device)
        return torch.rand(n, self.latent_dim, generator=generator, device=device) * 2.0 - 1.0


def condition_latent(z: Tensor, labels: Tensor | None, embedding: nn.Embedding | None) -> Tensor:
    """``z`` with the label embedding appended; ``z`` itself for unconditional generators."""
    if embedding is None:
        return z
    if labels is None:
        raise ValueError("conditional generator (num_classes > 0) needs labels")
    return torch.cat([z, embedding(labels)], dim=1)


def projection_embedding(num_classes: int, feature_dim: int) -> nn.Embedding | None:
    """A projection critic's class embedding over ``feature_dim`` features, initialised
    N(0, 1/feature_dim) so the class term starts on the scale of the plain score; ``None``
    for unconditional critics."""
    if num_classes <= 0:
        return None
    projection = nn.Embedding(num_classes, feature_dim)
    nn.init.normal_(projection.weight, std=feature_dim**-0.5)
    return projection


def add_projection(
    score: Tensor, features: Tensor, labels: Tensor | None, projection: nn.Embedding | None
) -> Tensor:
    """``score + <embed(label), features>`` per example; ``score`` for unconditional critics."""
    if projection is None:
        return score
    if labels is None:
        raise ValueError("conditional discriminator (num_classes > 0) needs labels")
    return score + (projection(labels) * features).sum(dim=1)
