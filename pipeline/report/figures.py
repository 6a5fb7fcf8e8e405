"""PNG figures for the report: training-loss curves (its spectrograms are
:mod:`pipeline.spectrograms`', the picture the training previews use).

Matplotlib's object API with the Agg canvas (no pyplot, no display, no global state), and PNGs
written without a timestamp so the same audio gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.fileio import atomic_write

DPI = 100
PNG_METADATA = {"Software": None}


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
