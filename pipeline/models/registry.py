"""Name -> model builder registry.

A builder is called with keyword arguments ``length, channels, latent_dim, model_dim,
num_classes`` (plus architecture-specific extras) and returns ``(generator, discriminator)``.
Generators expose ``latent_dim``, ``length``, ``channels``, ``num_classes`` and
``sample_latent(n, generator=None, device=None)``; discriminators map
``(audio [B, C, T], labels [B] | None)`` to scores ``[B]``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from pipeline.models.wavegan import build_wavegan

Builder = Callable[..., tuple[nn.Module, nn.Module]]

ARCHITECTURES: dict[str, Builder] = {
    "wavegan": build_wavegan,
}


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
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {arch!r}; known architectures: {known}") from None
    return builder(
        length=length,
        channels=channels,
        latent_dim=latent_dim,
        model_dim=model_dim,
        num_classes=num_classes,
        **kw,
    )
