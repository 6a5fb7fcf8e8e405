"""Audio previews of the generator during training: a few bars from fixed latents and their
spectrograms, logged to MLflow."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from torch import nn

from pipeline.monitoring.mlflow_logger import MlflowBatchLogger
from pipeline.sample.generate import class_labels, generate_bars, random_latents
from pipeline.spectrograms import spectrogram_grid_png
from pipeline.train.config import TrainConfig

PREVIEW_SEED = 12345  # the same latents at every preview, so the pictures show progress


def preview_logger(
    mlflow_log: MlflowBatchLogger, config: TrainConfig, n_bars: int
) -> Callable[[int, nn.Module], None]:
    """``on_preview`` for :func:`train_gan`: writes ``n_bars`` generated bars (fixed latents) as
    wav files and one spectrogram image, and logs them under ``previews/step_NNNNNNN``."""

    def on_preview(step: int, generator: nn.Module) -> None:
        y = class_labels(generator, n_bars)  # every class in turn (conditional models)
        latents = random_latents(generator, n_bars, PREVIEW_SEED)
        audio = np.clip(generate_bars(generator, latents, y), -1, 1)  # [n, C, T]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            paths = []
            for i, bar in enumerate(audio):
                label = f"_class{int(y[i])}" if y is not None else ""
                path = folder / f"bar{i:02d}{label}.wav"
                sf.write(path, bar.T, config.sample_rate, subtype="PCM_16")
                paths.append(path)
            paths.append(folder / "spectrograms.png")
            spectrogram_grid_png({"": audio}, config.sample_rate, paths[-1])
            for path in paths:
                mlflow_log.log_artifact(path, f"previews/step_{step:07d}")

    return on_preview
