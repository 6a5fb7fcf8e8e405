"""Class conditioning shared by every architecture: a label embedding appended to the
generator's latent, and the projection discriminator's term (Miyato & Koyama 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def condition_latent(z: Tensor, labels: Tensor | None, embedding: nn.Embedding | None) -> Tensor:
    """``z`` with the label embedding appended; ``z`` itself for unconditional generators."""
    if embedding is None:
        return z
    if labels is None:
        raise ValueError("conditional generator (num_classes > 0) needs labels")
    return torch.cat([z, embedding(labels)], dim=1)


def add_projection(
    score: Tensor, features: Tensor, labels: Tensor | None, projection: nn.Embedding | None
) -> Tensor:
    """``score + <embed(label), features>`` per example; ``score`` for unconditional critics."""
    if projection is None:
        return score
    if labels is None:
        raise ValueError("conditional discriminator (num_classes > 0) needs labels")
    return score + (projection(labels) * features).sum(dim=1)
