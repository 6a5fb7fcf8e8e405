"""Name -> model builder registry.

A builder is called with keyword arguments ``length, channels, latent_dim, model_dim,
num_classes`` (plus architecture-specific extras) and returns ``(generator, discriminator)``.
Generators expose ``latent_dim``, ``length``, ``channels``, ``num_classes`` and
``sample_latent(n, generator=None, device=None)``; ``generator(z, labels)`` returns audio
``[B, channels, length]``.  Discriminators map ``(x, labels [B] | None)`` to scores ``[B]``.

Training domain.  A generator whose discriminator does not look at audio (SpecGAN) also defines
``to_training_domain(audio) -> x`` (applied once to the real training set) and
``forward_training(z, labels) -> x`` (what the trainer optimises).  Without them the training
domain is the audio itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from torch import nn

from pipeline.models.melgan import build_melgan
from pipeline.models.specgan import build_specgan
from pipeline.models.wavegan import build_wavegan

Builder = Callable[..., tuple[nn.Module, nn.Module]]

ARCHITECTURES: dict[str, Builder] = {
    "wavegan": build_wavegan,
    "melgan": build_melgan,
    "specgan": build_specgan,
}
COMMON_KEYS = ("length", "channels", "latent_dim", "model_dim", "num_classes")


class ModelSettings(Protocol):
    """What :func:`build_models_for` reads from a config (``pipeline.train.TrainConfig`` is one)."""

    arch: str
    length: int
    channels: int
    latent_dim: int
    model_dim: int
    num_classes: int
    extra: dict[str, Any]
    # optional: cluster_classes (self-conditioning), read with getattr


def extra_keys(arch: str) -> list[str]:
    """Architecture-specific keyword arguments accepted by ``arch``'s builder."""
    params = inspect.signature(_builder(arch)).parameters
    return [name for name in params if name not in COMMON_KEYS]


def _builder(arch: str) -> Builder:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {arch!r}; known architectures: {known}") from None


def build_models(
    arch: str,
    *,
    length: int,
    channels: int,
    latent_dim: int = 100,
    model_dim: int = 64,
    num_classes: int = 0,
    **kw,
) -> tuple[nn.Module, nn.Module]:
    """Build ``(generator, discriminator)`` for architecture ``arch``."""
    builder = _builder(arch)
    unknown = sorted(set(kw) - set(extra_keys(arch)))
    if unknown:
        raise ValueError(
            f"{arch} does not take {', '.join(unknown)}; its settings are: "
            f"{', '.join(extra_keys(arch)) or 'none'}"
        )
    return builder(
        length=length,
        channels=channels,
        latent_dim=latent_dim,
        model_dim=model_dim,
        num_classes=num_classes,
        **kw,
    )


def label_count(settings: ModelSettings) -> int:
    """Labels the models embed: the clusters under self-conditioning (``cluster_classes``, an
    optional attribute), else the classes."""
    return len(getattr(settings, "cluster_classes", None) or ()) or settings.num_classes


def build_models_for(settings: ModelSettings) -> tuple[nn.Module, nn.Module]:
    """The (generator, discriminator) pair a config describes; under self-conditioning
    (``cluster_classes``) both are conditioned on the clusters."""
    return build_models(
        settings.arch,
        length=settings.length,
        channels=settings.channels,
        latent_dim=settings.latent_dim,
        model_dim=settings.model_dim,
        num_classes=label_count(settings),
        **settings.extra,
    )
