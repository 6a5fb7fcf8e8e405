"""PNG figures for the report: spectrograms of generated audio and training-loss curves.

Matplotlib's object API with the Agg canvas (no pyplot, no display, no global state), and PNGs
written without a timestamp so the same audio gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.signal import stft

from pipeline.fileio import atomic_write

DYNAMIC_RANGE_DB = 80.0
DPI = 100
PNG_METADATA = {"Software": None}


def spectrogram_png(
    audio: np.ndarray,
    sample_rate: int,
    path: Path,
    bar_samples: int | None = None,
    title: str | None = None,
) -> tuple[int, int]:
    """Log-magnitude spectrogram of ``audio`` (``[channels, frames]`` or 1-D, mixed to mono) as
    a PNG; dashed lines mark bar lines when ``bar_samples`` is given. Returns (width, height)
    in pixels."""
    mono = np.atleast_2d(np.asarray(audio, dtype=np.float64)).mean(axis=0)
    seconds = len(mono) / sample_rate
    window = int(2 ** np.round(np.log2(max(64, sample_rate * 0.032))))
    window = min(window, max(16, len(mono)))
    _, _, spec = stft(mono, fs=sample_rate, nperseg=window, noverlap=window * 3 // 4)
    db = 20 * np.log10(np.abs(spec) + 1e-10)
    db = np.maximum(db, db.max() - DYNAMIC_RANGE_DB)

    width = float(np.clip(2.0 + 1.6 * seconds, 4.0, 11.0))
    fig = Figure(figsize=(width, 2.2), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0.0, seconds, 0.0, sample_rate / 2000.0),
        interpolation="nearest",
    )
    if bar_samples and len(mono) > bar_samples:
        for k in range(1, len(mono) // bar_samples + 1):
            ax.axvline(k * bar_samples / sample_rate, color="#00e5ff", lw=0.8, ls="--", alpha=0.8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("kHz")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return _save(fig, path)


def loss_curves_png(losses: pd.DataFrame, path: Path) -> tuple[int, int]:
    """One small panel per numeric column of ``losses`` against ``step`` (or the row number)."""
    x = losses["step"] if "step" in losses else pd.Series(np.arange(len(losses)), name="row")
    columns = [
        c
        for c in losses.columns
        if c != "step" and pd.api.types.is_numeric_dtype(losses[c]) and losses[c].notna().any()
    ]
    if not columns:
        raise ValueError("no numeric loss columns to plot")
    n = len(columns)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(3.6 * cols, 2.4 * rows), dpi=DPI)
    FigureCanvasAgg(fig)
    for i, column in enumerate(columns):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(x, losses[column], lw=1.2, color=f"C{i}")
        ax.set_title(column, fontsize=9)
        ax.set_xlabel(x.name or "step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout(pad=0.4)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> tuple[int, int]:
    width, height = (round(float(v)) for v in fig.get_size_inches() * fig.dpi)
    atomic_write(
        Path(path),
        lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, metadata=PNG_METADATA),
        suffix=".png",
    )
    return width, height
