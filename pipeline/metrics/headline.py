"""The headline: did training work? A few numbers of :func:`compute_all`'s result, each held
against the held-out real bars and a target, and a one-line verdict.

- quality: the Fréchet distances of generated bars as a multiple of the held-out real bars'
  (interval: the generated distance's bootstrap interval over the real point value); the share
  of bars with an onset on the downbeat and the NDB bins visited, each as a share of the real
  bars' number; the accuracy of a classifier telling generated from held-out real bars (50 %:
  indistinguishable);
- the representation ceiling: the held-out real bars through the model's own analysis and
  synthesis (:mod:`pipeline.metrics.references`), scored as generated bars are; the best any
  generator in this representation can do. Every line shows the ceiling's number beside the
  generated one, and the ceiling's Fréchet distance has its own target;
- memorisation: the BeatGAN near-copy fraction, and how much closer generated bars sit to their
  nearest training bar than held-out real bars do (dB; well below zero means copying).

The targets are :data:`TARGETS`, here and nowhere else; the better direction of each number is
the one its metric's spec declares for its key (``SPEC.headlines`` in the metric's module). The
evaluate stage stores
:meth:`Scorecard.to_dict` under ``"headline"`` in metrics.json; the summary, the report and the
MLflow run lead with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from pipeline.metrics.references import CEILING, REFERENCES_KEY
from pipeline.metrics.registry import spec

Compare = Literal["ratio", "share", "fraction", "difference_db"]
HEADLINE_KEY = "headline"


@dataclass(frozen=True)
class Target:
    """``generated.<key>`` of ``metric`` compared with ``valid.<key>``: as their ratio (shown as
    a multiple or a share), as the generated fraction itself, or as their difference in dB; it
    meets the target when that number is at or past ``limit`` in the better direction.
    ``scored``: whose number it is, the generated bars' or a reference rung's (``ceiling``)."""

    name: str  # JSON key and MLflow metric name (headline.<name>)
    label: str
    metric: str
    key: str
    compare: Compare
    limit: float
    scored: str = "generated"

    @property
    def better(self) -> Literal["lower", "higher"]:
        return spec(self.metric).headline(self.key).better


TARGETS: tuple[Target, ...] = (
    Target("frechet_fixed_ratio", "Fréchet distance, fixed features", "frechet", "fixed",
           "ratio", 2.0),
    Target("frechet_classifier_ratio", "Fréchet distance, classifier features", "frechet",
           "classifier", "ratio", 2.0),
    Target("downbeat_share", "bars with an onset on the downbeat", "rhythm",
           "fraction_downbeat_onset", "share", 0.8),
    Target("ndb_bins_share", "NDB bins visited", "ndb", "bins_visited", "share", 0.5),
    Target("two_sample_accuracy", "two-sample classifier accuracy (50 % = indistinguishable)",
           "two_sample", "accuracy", "fraction", 0.8),
    Target("ceiling_frechet_fixed_ratio", "best possible in this representation (held-out bars "
           "through the model's synthesis), Fréchet fixed", "frechet", "fixed", "ratio", 1.15,
           scored=CEILING),
    Target("near_copy_fraction", "near-copies (BeatGAN fraction similar)", "novelty",
           "fraction_similar", "fraction", 0.1),
    Target("nearest_train_db_vs_real", "distance to the nearest training bar", "nearest_neighbour",
           "median_db", "difference_db", -1.0),
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One headline number: the generated and real values it comes from, the comparison (with
    its interval where the metric has one), the target and whether it is met (None: the run
    could not measure it)."""

    name: str
    label: str
    compare: Compare
    better: Literal["lower", "higher"]
    limit: float
    generated: float | None = None
    real: float | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    met: bool | None = None
    ceiling: float | None = None  # the same comparison for the ceiling rung

    @property
    def target(self) -> str:
        sign = "≤" if self.better == "lower" else "≥"
        return f"{sign} {_format(self.compare, self.limit, exact=True)}"

    @property
    def shown(self) -> str:
        """The comparison as text, with its interval: ``4.89× [4.1×, 5.8×]``."""
        if self.value is None:
            return "–"
        text = _format(self.compare, self.value)
        if self.ci_low is not None and self.ci_high is not None:
            text += (
                f" [{_format(self.compare, self.ci_low)}, {_format(self.compare, self.ci_high)}]"
            )
        return text


@dataclass(frozen=True)
class Scorecard:
    lines: tuple[Line, ...]

    @property
    def measured(self) -> list[Line]:
        return [line for line in self.lines if line.met is not None]

    @property
    def met(self) -> int:
        return sum(1 for line in self.lines if line.met)

    @property
    def missed(self) -> list[Line]:
        return [line for line in self.lines if line.met is False]

    @property
    def learned(self) -> bool:
        """Every measured target met (and at least one measured)."""
        return bool(self.measured) and not self.missed

    @property
    def verdict(self) -> str:
        """``learned: 8 of 8 targets met``, or which targets were missed (and not measured)."""
        missed = self.missed
        count = f"{self.met} of {len(self.measured)} targets met"
        if self.learned:
            text = f"learned: {count}"
        else:
            text = f"not learned yet: {count}"
            if missed:
                text += "; missed: " + ", ".join(
                    f"{line.label} {_format(line.compare, line.value)} (target {line.target})"
                    for line in missed
                )
        unmeasured = [line.label for line in self.lines if line.met is None]
        if unmeasured:
            text += "; not measured: " + ", ".join(unmeasured)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "targets_met": self.met,
            "targets_measured": len(self.measured),
            "lines": {line.name: {**asdict(line), "target": line.target} for line in self.lines},
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Scorecard:
        fields = Line.__dataclass_fields__
        return cls(
            tuple(
                Line(**{k: v for k, v in {"name": name, **values}.items() if k in fields})
                for name, values in record["lines"].items()
            )
        )

    def mlflow_metrics(self) -> dict[str, float]:
        """``headline.<name>`` (with ``.ci_low`` / ``.ci_high``, and ``.met`` as 0/1) and the
        counts; unmeasured numbers are left out."""
        numbers = {f"headline.{key}": float(value) for key, value in self.numbers().items()}
        for line in self.lines:
            for suffix, value in ((".ci_low", line.ci_low), (".ci_high", line.ci_high),
                                  (".met", line.met)):  # fmt: skip
                if value is not None:
                    numbers[f"headline.{line.name}{suffix}"] = float(value)
        return numbers

    def numbers(self) -> dict[str, float | int]:
        """The few numbers that decide whether a run is better (DVC's headline metrics file):
        the target counts and each measured headline value."""
        numbers: dict[str, float | int] = {
            "targets_met": self.met,
            "targets_measured": len(self.measured),
        }
        numbers.update({line.name: line.value for line in self.lines if line.value is not None})
        return numbers

    def table(self) -> list[list[str]]:
        """Rows of text (a header first): measure, generated, real, vs real, target, met."""
        rows = [["measure", "generated", "held-out real", "vs real", "ceiling", "target", "met"]]
        for line in self.lines:
            met = "–" if line.met is None else ("yes" if line.met else "NO")
            raw = [_number(line.generated), _number(line.real)]
            ceiling = _format(line.compare, line.ceiling)
            rows.append([line.label, *raw, line.shown, ceiling, line.target, met])
        return rows


def compute_headline(
    metrics: Mapping[str, Any], targets: tuple[Target, ...] = TARGETS
) -> Scorecard:
    """The headline of :func:`pipeline.metrics.registry.compute_all`'s result (a metrics.json
    without its ``headline``, with its ``references`` when there are any): one :class:`Line`
    per target."""
    references = metrics.get(REFERENCES_KEY) or {}
    ceiling = references.get(CEILING) or {}
    lines = []
    for target in targets:
        scored = metrics if target.scored == "generated" else references.get(target.scored) or {}
        line = _line(target, scored.get(target.metric) or {})
        if target.scored == "generated":
            line = replace(line, ceiling=_line(target, ceiling.get(target.metric) or {}).value)
        lines.append(line)
    return Scorecard(tuple(lines))


def headline_of(metrics: Mapping[str, Any]) -> Scorecard:
    """The headline stored in a metrics.json, or computed from its metrics (older files)."""
    stored = metrics.get(HEADLINE_KEY)
    if isinstance(stored, Mapping) and isinstance(stored.get("lines"), Mapping):
        return Scorecard.from_dict(stored)
    return compute_headline(metrics)


def text_table(card: Scorecard, indent: str = "  ") -> list[str]:
    """:meth:`Scorecard.table` as aligned text lines."""
    rows = card.table()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def markdown(card: Scorecard) -> str:
    """The verdict and the table in Markdown (the MLflow run's description)."""
    rows = card.table()
    lines = [f"**{card.verdict}**", "", "| " + " | ".join(rows[0]) + " |"]
    lines.append("|" + "---|" * len(rows[0]))
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _line(target: Target, values: Mapping[str, Any]) -> Line:
    generated = _finite(values.get(f"generated.{target.key}"))
    real = _finite(values.get(f"valid.{target.key}"))
    low = _finite(values.get(f"generated.{target.key}.ci_low"))
    high = _finite(values.get(f"generated.{target.key}.ci_high"))
    value = ci_low = ci_high = None
    if target.compare == "fraction":
        value, ci_low, ci_high = generated, low, high
    elif generated is not None and real is not None:
        if target.compare == "difference_db":
            value = generated - real
        elif real > 0:
            value = generated / real
            if low is not None and high is not None:
                ci_low, ci_high = low / real, high / real
    met = None
    if value is not None:
        met = value <= target.limit if target.better == "lower" else value >= target.limit
    return Line(target.name, target.label, target.compare, target.better, target.limit,
                generated, real, value, ci_low, ci_high, met)  # fmt: skip


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _format(compare: Compare, value: float | None, exact: bool = False) -> str:
    """A comparison as text; ``exact`` (targets) drops the rounding."""
    if value is None:
        return "–"
    if compare == "ratio":
        if exact:
            return f"{value:g}×"
        return (
            f"{value:.2f}×" if value < 10 else f"{value:.1f}×" if value < 100 else f"{value:,.0f}×"
        )
    if compare in ("share", "fraction"):
        return f"{100 * value:g} %" if exact else f"{100 * value:.0f} %"
    return f"{value:+g} dB" if exact else f"{value:+.1f} dB"


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return str(int(value)) if value == int(value) and abs(value) < 1e9 else f"{value:.4g}"
