"""The report's first section: the headline table (did training work?) with how many bars were
scored, and the spread of the scored bars: one generated bar per class (or per region of the
fixed features) beside a real bar of the same class or region, all on one colour scale
(:mod:`pipeline.report.spread` chooses them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.metrics.counts import counts_of
from pipeline.metrics.headline import headline_of
from pipeline.report.html import escape, img, section
from pipeline.report.spread import CEILING_TITLE, BarComparison
from pipeline.spectrograms import DB_RANGE, spectrogram_grid_png

COMPARISON_IMAGE = "img/real_vs_generated.png"


def headline_section(
    metrics: Mapping[str, Any] | None, comparison: BarComparison | None, staging: Path
) -> str:
    """The verdict, the headline table and the spectrogram comparison ('' when there is
    neither metrics nor bars to compare)."""
    parts = [_table(metrics, comparison)] if metrics else []
    if comparison is not None:
        parts.append(_comparison(comparison, staging))
    parts = [part for part in parts if part]
    return section("headline", "Did it work?", "".join(parts)) if parts else ""


def _table(metrics: Mapping[str, Any], comparison: BarComparison | None) -> str:
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
        "or generated minus real (dB); [low, high]: the "
        f"{escape(_confidence(metrics))}bootstrap interval of the generated number over its "
        "bars. ceiling: the same comparison for the held-out real bars through the model's own "
        "analysis and synthesis, the best any generator in this representation can do. "
        f"{escape(_scored(metrics, comparison))}</p>"
    )


def _scored(metrics: Mapping[str, Any], comparison: BarComparison | None) -> str:
    """How many bars the numbers come from (metrics.json's ``counts``; else the comparison's)."""
    counts = counts_of(metrics)
    generated = counts.get("generated", comparison.n_scored if comparison else None)
    if generated is None:
        return ""
    text = f"Scored on {generated} generated bars"
    real = [f"{counts[k]} {name}" for k, name in (("train", "training"), ("valid", "held-out"))
            if k in counts]  # fmt: skip
    return text + (f" against {' and '.join(real)} real bars." if real else ".")


def _confidence(metrics: Mapping[str, Any]) -> str:
    """``95 % `` when metrics.json records the confidence of its intervals, else ''."""
    for values in metrics.values():
        if isinstance(values, Mapping) and isinstance(values.get("confidence"), int | float):
            return f"{100 * values['confidence']:.3g} % "
    return ""


def _comparison(comparison: BarComparison, staging: Path) -> str:
    columns = comparison.columns()
    if not any(bar is not None for bars in columns.values() for bar in bars):
        return ""
    path = staging / COMPARISON_IMAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = spectrogram_grid_png(
        columns, comparison.sample_rate, path, comparison.row_labels()
    )
    if comparison.by == "class":
        how = (
            "One generated bar per class, the one nearest its class's centre in the fixed "
            f"features, chosen from the {comparison.n_scored} scored bars, beside the held-out "
            "real bar nearest the same class's centre (a training bar where no held-out bar "
            "has the class)"
        )
        if comparison.n_groups > len(comparison.rows):
            how += f"; the first {len(comparison.rows)} of {comparison.n_groups} classes"
    else:
        how = (
            f"One generated bar per region of the {comparison.n_scored} scored bars (k-means "
            "on the fixed features, largest region first), the one nearest the region's "
            "centre, beside the real held-out bar nearest that centre among those in the region"
        )
    if CEILING_TITLE in columns:
        how += (
            f"; {CEILING_TITLE}: the held-out bar through the model's own analysis and "
            "synthesis, the best this representation can render it"
        )
    low, high = DB_RANGE
    return (
        "<h3>The spread: real and generated bars</h3>"
        + img(COMPARISON_IMAGE, "Spectrograms of real and generated bars", width, height)
        + f"<p>{escape(how)}; log-magnitude spectrograms, every panel on one colour scale "
        f"({low:g} to {high:g} dB re full scale).</p>"
    )


def _row_class(met: bool | None) -> str:
    return "unmeasured" if met is None else "met" if met else "missed"
