"""The report's first section: the headline table (did training work?) and held-out real bars'
spectrograms beside generated bars', on one colour scale."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.metrics.headline import headline_of
from pipeline.report.html import escape, img, section
from pipeline.spectrograms import spectrogram_grid_png

COMPARISON_IMAGE = "img/real_vs_generated.png"
REAL_TITLE, GENERATED_TITLE = "held-out real bars", "generated bars"


@dataclass(frozen=True)
class BarComparison:
    """Bars ``[n, channels, samples]`` to show side by side: held-out real and generated."""

    real: np.ndarray
    generated: np.ndarray
    sample_rate: int
    per_column: int = 4

    def columns(self) -> dict[str, np.ndarray]:
        return {REAL_TITLE: _spread(self.real, self.per_column),
                GENERATED_TITLE: _spread(self.generated, self.per_column)}  # fmt: skip


def headline_section(
    metrics: Mapping[str, Any] | None, comparison: BarComparison | None, staging: Path
) -> str:
    """The verdict, the headline table and the spectrogram comparison ('' when there is
    neither metrics nor bars to compare)."""
    parts = [_table(metrics)] if metrics else []
    if comparison is not None:
        parts.append(_comparison(comparison, staging))
    parts = [part for part in parts if part]
    return section("headline", "Did it work?", "".join(parts)) if parts else ""


def _table(metrics: Mapping[str, Any]) -> str:
    card = headline_of(metrics)
    if not card.measured:
        return ""
    header, *rows = card.table()
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        f'<tr class="{_row_class(line.met)}"><th>{escape(row[0])}</th>'
        + "".join(f'<td class="num">{escape(cell)}</td>' for cell in row[1:])
        + "</tr>"
        for line, row in zip(card.lines, rows, strict=True)
    )
    verdict_class = "verdict met" if card.learned else "verdict missed"
    return (
        f'<p class="{verdict_class}">{escape(card.verdict)}</p>'
        f'<table class="metrics headline"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table><p>vs real: generated over held-out real (× or %), the near-copy share itself, "
        "or generated minus real (dB); intervals from the bootstrap of the generated number. "
        "ceiling: the same comparison for the held-out real bars through the model's own "
        "analysis and synthesis, the best any generator in this representation can do.</p>"
    )


def _comparison(comparison: BarComparison, staging: Path) -> str:
    columns = comparison.columns()
    if not any(len(bars) for bars in columns.values()):
        return ""
    path = staging / COMPARISON_IMAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = spectrogram_grid_png(columns, comparison.sample_rate, path)
    shown = " and ".join(f"{len(bars)} {name}" for name, bars in columns.items() if len(bars))
    return (
        "<h3>Real and generated bars</h3>"
        + img(COMPARISON_IMAGE, "Spectrograms of held-out real and generated bars", width, height)
        + f"<p>{escape(shown)}: log-magnitude spectrograms on one colour scale.</p>"
    )


def _spread(bars: np.ndarray, n: int) -> np.ndarray:
    """``n`` bars evenly spaced through ``bars`` (all of them when there are fewer)."""
    if len(bars) <= n:
        return bars
    return bars[np.linspace(0, len(bars) - 1, n).round().astype(int)]


def _row_class(met: bool | None) -> str:
    return "unmeasured" if met is None else "met" if met else "missed"
