"""WaveGAN's inception classifier: a CNN on log-mel spectrograms, trained on the dataset labels.

Follows ``eval/inception/train.py`` of github.com/chrisdonahue/wavegan (Donahue et al. 2019):

- features: mono audio at 16 kHz, STFT with a 1024-sample periodic Hann window and hop 128
  (zero-padded at the end: 128 frames of a 16384-sample clip), magnitudes, 128 mel bins from 40
  to 7800 Hz (TensorFlow's ``linear_to_mel_weight_matrix``: HTK mel scale, unnormalised
  triangles), ``log(mel + 1e-6)``;
- network: batch norm over the mel bins, then four times [batch norm, 5x5 conv with 128
  channels, ReLU, 2x2 max pool] down to 8x8, flatten, batch norm, dense to the class logits (the
  reference defines a dropout rate but applies none).

Where this differs, and why: bars of other lengths are resampled to 16 kHz and framed with the
hop that gives the same 128 frames (exactly 128 samples for a 16384-sample clip); training is Adam
(lr 1e-3, batches of 64) for a fixed number of epochs instead of plain SGD at 1e-4 for ~100k steps
with the checkpoint of best validation accuracy, which a small dataset in an evaluate stage cannot
afford; batch-norm statistics are re-estimated over the whole training split after training,
where the reference's moving averages (momentum 0.99) would not settle in so few steps. The
width (128 channels in the reference) is a parameter, for small test sets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from pipeline.audio.resample import resample

SAMPLE_RATE = 16000
WINDOW = 1024
N_FRAMES = 128
N_MELS = 128
MEL_LOW_HZ = 40.0
MEL_HIGH_HZ = 7800.0
LOG_OFFSET = 1e-6
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
BN_EPSILON = 1e-3  # TensorFlow's batch_normalization default


def mel_matrix(
    n_mels: int = N_MELS,
    n_fft: int = WINDOW,
    sample_rate: int = SAMPLE_RATE,
    low_hz: float = MEL_LOW_HZ,
    high_hz: float = MEL_HIGH_HZ,
) -> np.ndarray:
    """``[n_fft // 2 + 1, n_mels]`` as TensorFlow's ``linear_to_mel_weight_matrix``: the DC bin
    weighs nothing, triangles are linear in mel (HTK: ``1127 ln(1 + f / 700)``)."""

    def mel(hz: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)

    bins = n_fft // 2 + 1
    spectrum_mel = mel(np.linspace(0.0, sample_rate / 2, bins)[1:])[:, None]
    edges = np.linspace(mel(low_hz), mel(high_hz), n_mels + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (spectrum_mel - lower) / (centre - lower)
    falling = (upper - spectrum_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, n_mels)), weights]).astype(np.float32)


def to_16k_mono(bars: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[N, samples]`` or ``[N, channels, samples]`` at ``sample_rate`` -> ``[N, samples']``
    mono at 16 kHz."""
    audio = np.asarray(bars, dtype=np.float32)
    if audio.ndim == 3:
        audio = audio.mean(1)
    if audio.ndim != 2:
        raise ValueError(f"bars must be [N, samples] or [N, channels, samples], got {audio.shape}")
    return resample(audio, int(sample_rate), SAMPLE_RATE)


class LogMel(nn.Module):
    """``[B, samples]`` at 16 kHz -> ``[B, n_mels, 128]`` log-mel frames (``stop_gradient`` in
    the reference: it has no parameters)."""

    def __init__(self, length: int):
        super().__init__()
        starts = np.round(np.arange(N_FRAMES) * length / N_FRAMES).astype(np.int64)
        self.pad = int(starts[-1] + WINDOW - length)
        self.register_buffer("index", torch.from_numpy(starts[:, None] + np.arange(WINDOW)))
        self.register_buffer("window", torch.hann_window(WINDOW, periodic=True))
        self.register_buffer("mel", torch.from_numpy(mel_matrix()))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        frames = nn.functional.pad(audio, (0, self.pad))[:, self.index] * self.window
        magnitude = torch.fft.rfft(frames, dim=-1).abs()  # [B, frames, 513]
        return torch.log(magnitude @ self.mel + LOG_OFFSET).transpose(1, 2)


class WaveganCNN(nn.Module):
    """The reference's ``model``: log-mel -> four conv blocks -> logits."""

    def __init__(self, length: int, n_classes: int, channels: int = 128):
        super().__init__()
        self.features = LogMel(length)
        self.input_norm = nn.BatchNorm1d(N_MELS, eps=BN_EPSILON)
        blocks: list[nn.Module] = []
        for block in range(4):
            if block:  # the first block's norm is input_norm, over the mel bins
                blocks.append(nn.BatchNorm2d(channels, eps=BN_EPSILON))
            blocks += [
                nn.Conv2d(channels if block else 1, channels, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
        self.blocks = nn.Sequential(*blocks)
        size = N_MELS // 16 * N_FRAMES // 16 * channels
        self.head = nn.Sequential(
            nn.Flatten(), nn.BatchNorm1d(size, eps=BN_EPSILON), nn.Linear(size, n_classes)
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(self.features(audio)).unsqueeze(1)
        return self.head(self.blocks(x))


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def _batches(order: np.ndarray) -> Iterator[torch.Tensor]:
    """Indices of consecutive batches of ``order``."""
    for start in range(0, len(order), BATCH_SIZE):
        yield torch.from_numpy(order[start : start + BATCH_SIZE])


class WaveganClassifier:
    """The CNN fitted on labelled bars; probabilities of other bars of the same grid."""

    def __init__(
        self,
        sample_rate: int,
        epochs: int = 20,
        channels: int = 128,
        seed: int = 0,
        device: str | None = None,
    ):
        self.sample_rate = int(sample_rate)
        self.epochs = int(epochs)
        self.channels = int(channels)
        self.seed = int(seed)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.classes = np.array([])
        self.model: WaveganCNN | None = None

    def fit(self, bars: np.ndarray, labels: np.ndarray) -> WaveganClassifier:
        audio = to_16k_mono(bars, self.sample_rate)
        self.classes, targets = np.unique(np.asarray(labels), return_inverse=True)
        if len(self.classes) < 2 or len(audio) < 2:
            raise ValueError("the classifier needs two or more classes")
        rng = np.random.default_rng(self.seed)
        samples = torch.from_numpy(audio)
        y = torch.from_numpy(targets.astype(np.int64))
        with torch.random.fork_rng(devices=[]), _deterministic(self.device):
            torch.manual_seed(self.seed)
            model = WaveganCNN(audio.shape[1], len(self.classes), self.channels).to(self.device)
            optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
            model.train()
            for _ in range(self.epochs):
                for index in _batches(rng.permutation(len(audio))):
                    if len(index) < 2:  # batch norm cannot train on one example
                        continue
                    logits = model(samples[index].to(self.device))
                    loss = nn.functional.cross_entropy(logits, y[index].to(self.device))
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
            self._recalibrate(model, samples)
        self.model = model.eval()
        return self

    @torch.no_grad()
    def _recalibrate(self, model: WaveganCNN, samples: torch.Tensor) -> None:
        """Batch-norm statistics as the average over batches of the training split."""
        for norm in model.modules():
            if isinstance(norm, nn.modules.batchnorm._BatchNorm):
                norm.reset_running_stats()
                norm.momentum = None  # cumulative average
        model.train()
        for index in _batches(np.arange(len(samples))):
            if len(index) > 1:
                model(samples[index].to(self.device))

    @torch.no_grad()
    def probabilities(self, bars: np.ndarray) -> np.ndarray:
        """``[N, n_classes]``, columns in the order of :attr:`classes`."""
        if self.model is None:
            raise RuntimeError("fit the classifier first")
        samples = torch.from_numpy(to_16k_mono(bars, self.sample_rate))
        with _deterministic(self.device):
            parts = [
                torch.softmax(self.model(samples[index].to(self.device)), dim=1).double().cpu()
                for index in _batches(np.arange(len(samples)))
            ]
        return torch.cat(parts).numpy() if parts else np.zeros((0, len(self.classes)))
