"""GAN architectures for one-bar audio clips."""

from pipeline.models.registry import ARCHITECTURES, build_models, build_models_for
from pipeline.models.wavegan import (
    PhaseShuffle,
    WaveGANDiscriminator,
    WaveGANGenerator,
    build_wavegan,
    native_length,
    phase_shuffle,
)

__all__ = [
    "ARCHITECTURES",
    "PhaseShuffle",
    "WaveGANDiscriminator",
    "WaveGANGenerator",
    "build_models",
    "build_models_for",
    "build_wavegan",
    "native_length",
    "phase_shuffle",
]
