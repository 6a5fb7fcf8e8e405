"""GAN training: losses, configuration, checkpoints and the resumable training loop.

The generator file it writes is :mod:`pipeline.models.generator_file`'s; readers of a trained
model import that, not this package."""

from pipeline.models.generator_file import save_generator
from pipeline.train.checkpoint import load_checkpoint, load_generator, save_checkpoint
from pipeline.train.config import TrainConfig
from pipeline.train.loop import NonFiniteLossError, TrainingInterrupted, TrainResult, train_gan
from pipeline.train.losses import LOSSES, GanLoss, get_loss, gradient_penalty

__all__ = [
    "LOSSES",
    "GanLoss",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "get_loss",
    "gradient_penalty",
    "load_checkpoint",
    "load_generator",
    "save_checkpoint",
    "save_generator",
    "train_gan",
]
