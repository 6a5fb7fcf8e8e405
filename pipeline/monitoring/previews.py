"""Audio previews of the generator during training: a few bars from fixed latents and their
spectrograms, logged to MLflow."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from pipeline.monitoring.mlflow_logger import MlflowBatchLogger
from pipeline.sample.generate import generate_bars, random_latents
from pipeline.train.config import TrainConfig

PREVIEW_SEED = 12345  # the same latents at every preview, so the pictures show progress


def preview_logger(
    mlflow_log: MlflowBatchLogger, config: TrainConfig, n_bars: int
) -> Callable[[int, nn.Module], None]:
    """``on_preview`` for :func:`train_gan`: writes ``n_bars`` generated bars (fixed latents) as
    wav files and one spectrogram image, and logs them under ``previews/step_NNNNNNN``."""

    def on_preview(step: int, generator: nn.Module) -> None:
        y = torch.arange(n_bars) % config.num_classes if config.num_classes else None
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
            paths.append(_spectrogram_image(audio, config.sample_rate, folder / "spectrograms.png"))
            for path in paths:
                mlflow_log.log_artifact(path, f"previews/step_{step:07d}")

    return on_preview


def _spectrogram_image(audio: np.ndarray, sample_rate: int, path: Path) -> Path:
    """One row per bar (first channel): log-magnitude STFT in dB."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x = torch.from_numpy(audio[:, 0])
    n_fft = 512
    spec = torch.stft(
        x, n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True
    )
    db = 20 * torch.log10(spec.abs().clamp_min(1e-5) / (n_fft / 2))
    fig, axes = plt.subplots(len(audio), 1, figsize=(8, 1.6 * len(audio)), squeeze=False)
    extent = (0.0, audio.shape[-1] / sample_rate, 0.0, sample_rate / 2000.0)
    for ax, image in zip(axes[:, 0], db.numpy(), strict=True):
        ax.imshow(image, origin="lower", aspect="auto", extent=extent, vmin=-90, vmax=0)
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
