"""The one spectrogram picture: log magnitude on one fixed dB scale (re a full-scale sine).

The training previews (one column of generated bars), the report's comparison (held-out real bars
beside generated ones, :func:`spectrogram_grid_png`) and the report's picture of each audio file
(:func:`spectrogram_png`, bar lines dashed) all draw :func:`log_spectrograms` on
:data:`DB_RANGE` with one colour map, so any two can be compared by eye.

Matplotlib's object API with the Agg canvas (no pyplot state), PNGs without a timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.fileio import atomic_write

N_FFT = 512
DB_RANGE = (-90.0, 0.0)  # colour scale: dB relative to a full-scale sine
DPI = 80
CMAP = "magma"
PNG_METADATA = {"Software": None}  # no timestamp: the same audio gives the same bytes
# A column of :func:`spectrogram_grid_figure`: bars [n, channels, samples], or bars and gaps.
Column = np.ndarray | Sequence[np.ndarray | None]


def log_spectrograms(bars: np.ndarray, n_fft: int = N_FFT) -> np.ndarray:
    """``[n, channels, samples]`` -> ``[n, bins, frames]``: STFT magnitude (Hann window, hop
    ``n_fft / 4``) of each bar mixed to mono, in dB relative to a full-scale sine."""
    mono = torch.from_numpy(np.asarray(bars, dtype=np.float32).mean(axis=1))
    n_fft = min(n_fft, 2 ** int(np.log2(mono.shape[-1])))
    spec = torch.stft(
        mono, n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True
    )
    return (20 * torch.log10(spec.abs().clamp_min(1e-5) / (n_fft / 2))).numpy()


def spectrogram_grid_figure(
    columns: Mapping[str, Column], sample_rate: int, row_labels: Sequence[str] | None = None
) -> Figure:
    """One column per named set of bars (its name as the title), one row per bar, every panel
    on :data:`DB_RANGE` with one colour bar. A column is an array ``[n, channels, samples]`` or
    a sequence of ``[channels, samples]`` bars in which None leaves an empty, marked panel;
    ``row_labels`` name the rows beside the first column."""
    sets = {name: list(bars) for name, bars in columns.items()}
    sets = {name: bars for name, bars in sets.items() if any(b is not None for b in bars)}
    if not sets:
        raise ValueError("no bars to draw")
    rows = max(len(bars) for bars in sets.values())
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    width = 8.0 if len(sets) == 1 else 4.6 * len(sets)
    fig = Figure(figsize=(width + 0.8, 0.5 + 1.5 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, len(sets), squeeze=False, sharex=True, sharey=True)
    image = None
    for column, (name, bars) in enumerate(sets.items()):
        for row, bar in enumerate(bars):
            ax = axes[row, column]
            if bar is None:
                ax.set_facecolor("#eeeeee")
                ax.text(0.5, 0.5, "none", transform=ax.transAxes, ha="center", va="center",
                        color="#666666", fontsize=9)  # fmt: skip
                continue
            extent = (0.0, bar.shape[-1] / sample_rate, 0.0, sample_rate / 2000.0)
            image = ax.imshow(
                log_spectrograms(bar[None])[0], origin="lower", aspect="auto", extent=extent,
                vmin=DB_RANGE[0], vmax=DB_RANGE[1], cmap=CMAP, interpolation="nearest",
            )  # fmt: skip
        for row in range(len(bars), rows):
            axes[row, column].set_visible(False)
        if name:
            axes[0, column].set_title(name, fontsize=10)
        axes[-1, column].set_xlabel("seconds")
    for row in range(rows):
        label = "kHz" if row_labels is None else f"{row_labels[row]}\nkHz"
        axes[row, 0].set_ylabel(label, fontsize=9 if row_labels else None)
    fig.colorbar(image, ax=axes, label="dB re full scale", shrink=0.9)
    return fig


def spectrogram_grid_png(
    columns: Mapping[str, Column],
    sample_rate: int,
    path: Path,
    row_labels: Sequence[str] | None = None,
) -> tuple[int, int]:
    """:func:`spectrogram_grid_figure` as a PNG. Returns (width, height) in pixels."""
    fig = spectrogram_grid_figure(columns, sample_rate, row_labels)
    fig.savefig(path, format="png", dpi=DPI, metadata=PNG_METADATA)
    width_px, height_px = (round(float(v)) for v in fig.get_size_inches() * DPI)
    return width_px, height_px


def spectrogram_png(
    audio: np.ndarray,
    sample_rate: int,
    path: Path,
    bar_samples: int | None = None,
    title: str | None = None,
) -> tuple[int, int]:
    """The spectrogram of one piece of audio (``[channels, frames]`` or 1-D, mixed to mono) on
    :data:`DB_RANGE`, written atomically; dashed lines mark bar lines when ``bar_samples`` is
    given. Returns (width, height) in pixels."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    seconds = audio.shape[-1] / sample_rate
    width = float(np.clip(2.0 + 1.6 * seconds, 4.0, 11.0))
    fig = Figure(figsize=(width, 2.2), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(
        log_spectrograms(audio[None])[0], origin="lower", aspect="auto", cmap=CMAP,
        extent=(0.0, seconds, 0.0, sample_rate / 2000.0), vmin=DB_RANGE[0], vmax=DB_RANGE[1],
        interpolation="nearest",
    )  # fmt: skip
    if bar_samples and audio.shape[-1] > bar_samples:
        for k in range(1, audio.shape[-1] // bar_samples + 1):
            ax.axvline(k * bar_samples / sample_rate, color="#00e5ff", lw=0.8, ls="--", alpha=0.8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("kHz")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    atomic_write(
        Path(path),
        lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, metadata=PNG_METADATA),
        suffix=".png",
    )
    width_px, height_px = (round(float(v)) for v in fig.get_size_inches() * DPI)
    return width_px, height_px
