"""Log-magnitude spectrograms of bars on one fixed dB scale, drawn as a grid: the training
previews (one column of generated bars) and the report's comparison (held-out real bars beside
generated ones) use the same picture, so they can be compared by eye.

Matplotlib's object API with the Agg canvas (no pyplot state), PNGs without a timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

N_FFT = 512
DB_RANGE = (-90.0, 0.0)  # colour scale: dB relative to a full-scale sine
DPI = 80


def log_spectrograms(bars: np.ndarray, n_fft: int = N_FFT) -> np.ndarray:
    """``[n, channels, samples]`` -> ``[n, bins, frames]``: STFT magnitude (Hann window, hop
    ``n_fft / 4``) of each bar mixed to mono, in dB relative to a full-scale sine."""
    mono = torch.from_numpy(np.asarray(bars, dtype=np.float32).mean(axis=1))
    n_fft = min(n_fft, 2 ** int(np.log2(mono.shape[-1])))
    spec = torch.stft(
        mono, n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True
    )
    return (20 * torch.log10(spec.abs().clamp_min(1e-5) / (n_fft / 2))).numpy()


def spectrogram_grid_png(
    columns: Mapping[str, np.ndarray], sample_rate: int, path: Path
) -> tuple[int, int]:
    """One column per named set of bars ``[n, channels, samples]`` (its name as the title), one
    row per bar, all on :data:`DB_RANGE`. Returns (width, height) in pixels."""
    sets = {name: bars for name, bars in columns.items() if len(bars)}
    if not sets:
        raise ValueError("no bars to draw")
    rows = max(len(bars) for bars in sets.values())
    width = 8.0 if len(sets) == 1 else 4.6 * len(sets)
    fig = Figure(figsize=(width + 0.8, 0.5 + 1.5 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, len(sets), squeeze=False, sharex=True, sharey=True)
    image = None
    for column, (name, bars) in enumerate(sets.items()):
        extent = (0.0, bars.shape[-1] / sample_rate, 0.0, sample_rate / 2000.0)
        for row, db in enumerate(log_spectrograms(bars)):
            image = axes[row, column].imshow(
                db, origin="lower", aspect="auto", extent=extent, vmin=DB_RANGE[0],
                vmax=DB_RANGE[1], cmap="magma", interpolation="nearest",
            )  # fmt: skip
        for row in range(len(bars), rows):
            axes[row, column].set_visible(False)
        if name:
            axes[0, column].set_title(name, fontsize=10)
        axes[-1, column].set_xlabel("seconds")
    for row in range(rows):
        axes[row, 0].set_ylabel("kHz")
    fig.colorbar(image, ax=axes, label="dB re full scale", shrink=0.9)
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    width_px, height_px = (round(float(v)) for v in fig.get_size_inches() * DPI)
    return width_px, height_px
