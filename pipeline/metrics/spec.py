"""How a metric declares itself, and running declared metrics: no metric's code is imported here.

Every metric module ends with one ``SPEC = MetricSpec(...)``: its name (the entry in
``evaluate.metrics``), its function ``(generated, train, valid, options) -> flat dict``, the
options it reads with their defaults (the ``evaluate`` keys of params.yaml of the same names;
``tests/unit/test_metric_specs.py`` fails when params.yaml or the schema drift from them),
whose protocol its numbers follow, and its role with its headline keys.
:mod:`pipeline.metrics.registry` finds the modules that declare a spec and imports one only when
its metric is asked for; :func:`compute` runs specs directly (the progress metrics of training
import just the two they compute).

Every metric reports the generated bars beside the same number for held-out real bars (``valid``
against ``train``), so each value has a real-data reference. Besides its declared options a
metric may read the bar grid (``sample_rate``, ``bpm``, ``beats_per_bar``), the labels
(``train_labels``, ``valid_labels``, ``generated_labels``; metrics that need them skip), the
generator (``generator``, for the real-time factor) and ``cache``.

A metric that cannot run here returns an empty dict and is left out of the result, or
``{"skipped": why}``, kept so the reader sees why it has no number. Every result carries its
``protocol``; a metric whose protocol depends on its options (the classifier's, NDB's) returns
it in its result, which then wins. It is text, so :func:`numeric_metrics` (what is logged to
MLflow) leaves it out.

Roles: what a metric is for. The ladder test (``tests/unit/test_metric_ladder.py``) holds each
role to its ordering:

- ``quality``: real held-out bars score better than noise, silence, a tone and an untrained
  generator, and within their own band;
- ``copy detector``: training bars fed back are flagged (worse than real bars, past the band),
  held-out real bars are not, and noise is not;
- ``defect detector``: a mis-cut loop scores worse than real bars; noise, silence and a tone
  (no defect to find) do not;
- ``speed``: not a measure of the bars; not on the ladder.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pipeline.params import flatten

log = logging.getLogger("bargan")

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]], dict[str, Any]]

PROTOCOL_KEY = "protocol"
SKIPPED_KEY = "skipped"
NOT_COMPARABLE = "not comparable with papers' numbers"

QUALITY = "quality"
COPY_DETECTOR = "copy detector"
DEFECT_DETECTOR = "defect detector"
SPEED = "speed"
Role = Literal["quality", "copy detector", "defect detector", "speed"]


@dataclass(frozen=True)
class Headline:
    """``generated.<key>`` beside ``valid.<key>``: which way is better, and the band around the
    held-out reference. ``band`` None: the bootstrap intervals (``<key>.ci_low`` /
    ``.ci_high``) of the two numbers overlap; else ``|value - reference| <= band``, times
    ``|reference|`` when ``relative``. A headline a run cannot compute (class accuracy without
    the generated bars' labels) is absent from its result."""

    key: str
    better: Literal["lower", "higher"]
    band: float | None = None
    relative: bool = False

    def is_better(self, value: float, other: float) -> bool:
        """``value`` strictly better than ``other``."""
        return value < other if self.better == "lower" else value > other

    def within_band(self, values: Mapping[str, Any], name: str = "generated") -> bool:
        """Is ``{name}.<key>`` within the band of ``valid.<key>`` (one metric's result)?"""
        value, reference = values.get(f"{name}.{self.key}"), values.get(f"valid.{self.key}")
        if value is None or reference is None:
            return False
        if self.band is None:
            low, high = (values.get(f"{name}.{self.key}.ci_{end}") for end in ("low", "high"))
            ref_low, ref_high = (
                values.get(f"valid.{self.key}.ci_{end}") for end in ("low", "high")
            )
            if None in (low, high, ref_low, ref_high):
                return False
            return low <= ref_high and ref_low <= high
        scale = abs(reference) if self.relative else 1.0
        return abs(value - reference) <= self.band * scale


@dataclass(frozen=True)
class MetricSpec:
    """One metric, declared once in its own module (``SPEC``).

    ``options``: the ``evaluate`` params it reads, with their defaults (what it uses when a
    caller leaves one out). ``protocol``: whose protocol its numbers follow (the default one
    when its result may name another). ``role``, ``headlines``: what it is for and the keys a
    reader looks at first. ``reason``: why a ``speed`` metric is not on the ladder."""

    name: str
    function: Metric
    options: Mapping[str, Any]
    protocol: str
    role: Role
    headlines: tuple[Headline, ...] = ()
    reason: str = ""
    module: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.module:
            object.__setattr__(self, "module", self.function.__module__)

    def headline(self, key: str) -> Headline:
        for headline in self.headlines:
            if headline.key == key:
                return headline
        raise KeyError(f"{self.name}.{key} is not a headline key of {self.module}.SPEC")

    def run(
        self,
        generated: np.ndarray,
        train: np.ndarray,
        valid: np.ndarray | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The function on ``options`` over this spec's defaults."""
        return self.function(generated, train, valid, {**self.options, **options})


def _finite_or_none(value: Any) -> Any:
    """NaN/inf are not JSON numbers: they become null (and are not logged to MLflow)."""
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def compute(
    specs: Iterable[MetricSpec],
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """Run the given metrics; features are computed once and shared."""
    # Features, embeddings and searches are cached by array identity: for this call only, or
    # across calls in a cache the caller passes (the keys hold the arrays; keep them unchanged).
    options = {**options, "cache": {} if options.get("cache") is None else options["cache"]}
    results: dict[str, dict[str, Any]] = {}
    for spec in specs:
        values = spec.run(generated, train, valid, options)
        if not values:
            log.info(
                "metric %s skipped: what it needs (labels, generator) is not available", spec.name
            )
            continue
        if SKIPPED_KEY in values:
            log.info("metric %s skipped: %s", spec.name, values[SKIPPED_KEY])
        results[spec.name] = {key: _finite_or_none(value) for key, value in values.items()}
        results[spec.name][PROTOCOL_KEY] = values.get(PROTOCOL_KEY) or spec.protocol
    return results


def numeric_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """:func:`compute`'s result as flat ``{"metric.key": number}``, for logging and tables;
    nulls (non-finite values) and non-numbers (``protocol``, ``skipped``) are left out."""
    return {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float)}
