"""Metric registry: name -> function(generated, train, valid, options) -> flat dict of numbers.

Every metric reports the generated bars beside the same number for held-out real bars (``valid``
against ``train``), so each value has a real-data reference. ``options`` carries typed values
(stages read params.yaml, the library never does):

- grid: ``sample_rate``, ``bpm``, ``beats_per_bar``;
- novelty: ``novelty_thresholds``, ``chunk_size``; nearest neighbour: ``n_mels``,
  ``max_shift_16ths``, ``reference_quantile``;
- distances: ``embeddings`` (names in :data:`pipeline.metrics.embeddings.EMBEDDINGS`),
  ``bootstrap``, ``confidence``, ``seed``; NDB: ``ndb_features`` (``fixed`` |
  ``looptest``), ``ndb_bins``, ``ndb_alpha``;
- labels (optional; metrics that need them skip): ``train_labels``, ``valid_labels``,
  ``generated_labels``; classifier: ``classifier`` (``mlp`` | ``wavegan``), ``classifier_hidden``
  (mlp), ``classifier_epochs`` and ``classifier_channels`` (wavegan), ``inception_splits``;
- rhythm: ``tempo_tolerance``, ``downbeat_tolerance_ms``, ``grid_tolerance_ms``; seams:
  ``click_window_ms``, ``click_highpass_hz``, ``click_threshold_db``;
- real-time factor (skips without a generator): ``generator``, ``rtf_batch_sizes``,
  ``rtf_repeats``, ``rtf_device``;
- FAD on VGGish (reports ``skipped`` without weights): ``vggish_weights``.

A metric that cannot run here returns an empty dict and is left out of the result, or
``{"skipped": why}``, kept so the reader sees why it has no number. Every metric's result carries
its ``protocol`` (:data:`PROTOCOLS`): whose evaluation protocol its numbers follow, or that they
are ours and not comparable with papers' numbers; a metric whose protocol depends on its options
(the classifier's, on the classifier chosen; NDB's, on its features) returns it in its result,
which then wins. It is text, so :func:`numeric_metrics` (what is logged to MLflow) leaves it out.

:data:`ROLES` says what each metric is for and which of its keys a reader looks at first (its
headlines, each with the direction that is better and the band around the held-out reference
inside which a number counts as "as good as real"). Every metric has a role; the unit test of the
ladder (:mod:`pipeline.metrics.ladder`) holds each role to its ordering:

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.metrics.classifier import PROTOCOLS as CLASSIFIER_PROTOCOLS
from pipeline.metrics.classifier import classifier_scores
from pipeline.metrics.fad import PROTOCOL as FAD_PROTOCOL
from pipeline.metrics.fad import fad_scores
from pipeline.metrics.frechet import frechet_scores
from pipeline.metrics.kernel_distance import kernel_scores
from pipeline.metrics.ndb import PROTOCOLS as NDB_PROTOCOLS
from pipeline.metrics.ndb import ndb_scores
from pipeline.metrics.nearest_neighbour import nearest_neighbour_scores
from pipeline.metrics.novelty import beatgan_novelty
from pipeline.metrics.realtime import real_time_factor_scores
from pipeline.metrics.rhythm import rhythm_scores
from pipeline.metrics.seams import seam_click_scores
from pipeline.params import flatten

log = logging.getLogger("bargan")

Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]], dict[str, Any]]

METRICS: dict[str, Metric] = {
    "novelty": beatgan_novelty,
    "nearest_neighbour": nearest_neighbour_scores,
    "frechet": frechet_scores,
    "kernel_distance": kernel_scores,
    "ndb": ndb_scores,
    "classifier": classifier_scores,
    "rhythm": rhythm_scores,
    "seam_clicks": seam_click_scores,
    "real_time_factor": real_time_factor_scores,
    "fad_vggish": fad_scores,
}

PROTOCOL_KEY = "protocol"
SKIPPED_KEY = "skipped"
NOT_COMPARABLE = "not comparable with papers' numbers"
PROTOCOLS: dict[str, str] = {
    "novelty": "BeatGAN novelty (nearest training bar, normalised squared error on samples)",
    "nearest_neighbour": f"ours: shift-tolerant nearest training bar on log-mel, dB; "
    f"{NOT_COMPARABLE}",
    "frechet": f"ours: Fréchet distance on our log-mel + onset features and on a dataset "
    f"classifier's hidden layer; {NOT_COMPARABLE}",
    "kernel_distance": f"ours: KID's unbiased polynomial-kernel MMD² (Bińkowski et al. 2018) on "
    f"the Fréchet embeddings; {NOT_COMPARABLE}",
    "ndb": NDB_PROTOCOLS["fixed"],  # the default; the result says which features were used
    "classifier": CLASSIFIER_PROTOCOLS["mlp"],  # the default; the result says which was used
    "rhythm": f"ours: onset, tempo and 16th-grid statistics of looped bars; {NOT_COMPARABLE}",
    "seam_clicks": f"ours: high-passed energy at the loop seam; {NOT_COMPARABLE}",
    "real_time_factor": "seconds of audio generated per second of compute, on the device used",
    "fad_vggish": FAD_PROTOCOL,
}


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
class MetricRole:
    """What a metric is for, its headline numbers, and (for ``speed``) why it is not on the
    ladder."""

    role: Role
    headlines: tuple[Headline, ...] = ()
    reason: str = ""


# Bands hold two sets of held-out bars from different tracks (15 bars each on the ladder) and
# leave out every rung that is not music.
ROLES: dict[str, MetricRole] = {
    "novelty": MetricRole(
        COPY_DETECTOR,
        (Headline("fraction_similar", "lower", band=0.2),),
    ),
    "nearest_neighbour": MetricRole(
        COPY_DETECTOR,
        (
            Headline("median_db", "higher", band=0.5, relative=True),
            Headline("fraction_closer", "lower", band=0.3),
        ),
    ),
    "frechet": MetricRole(QUALITY, (Headline("fixed", "lower"), Headline("classifier", "lower"))),
    "kernel_distance": MetricRole(
        QUALITY, (Headline("fixed", "lower"), Headline("classifier", "lower"))
    ),
    "ndb": MetricRole(
        QUALITY,
        (
            Headline("jsd", "lower", band=0.15),
            Headline("bins_visited", "higher", band=0.34, relative=True),
        ),
    ),
    "classifier": MetricRole(
        QUALITY,
        (
            Headline("inception_score", "higher", band=0.25, relative=True),
            Headline("accuracy", "higher", band=0.25),
        ),
    ),
    "rhythm": MetricRole(
        QUALITY,
        (
            Headline("fraction_downbeat_onset", "higher", band=0.2),
            Headline("grid_alignment", "higher", band=0.25, relative=True),
            Headline("fraction_tempo_ok_octave", "higher", band=0.25),
        ),
    ),
    "seam_clicks": MetricRole(
        DEFECT_DETECTOR,
        (Headline("click_db_median", "lower", band=3.0),),
    ),
    "real_time_factor": MetricRole(
        SPEED,
        reason="times generation (seconds of audio per second of compute): it measures the "
        "generator's speed, not its bars, and has no held-out reference",
    ),
    "fad_vggish": MetricRole(QUALITY, (Headline("fad", "lower"),)),
}


def _finite_or_none(value: Any) -> Any:
    """NaN/inf are not JSON numbers: they become null (and are not logged to MLflow)."""
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def compute_all(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
    names: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the named metrics (all by default); features are computed once and shared."""
    names = list(names or METRICS)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {sorted(METRICS)}")
    # Features, embeddings and searches are cached by array identity: for this call only, or
    # across calls in a cache the caller passes (keeping those arrays alive and unchanged).
    options = {**options, "cache": {} if options.get("cache") is None else options["cache"]}
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        values = METRICS[name](generated, train, valid, options)
        if not values:
            log.info("metric %s skipped: what it needs (labels, generator) is not available", name)
            continue
        if SKIPPED_KEY in values:
            log.info("metric %s skipped: %s", name, values[SKIPPED_KEY])
        results[name] = {key: _finite_or_none(value) for key, value in values.items()}
        results[name][PROTOCOL_KEY] = values.get(PROTOCOL_KEY) or PROTOCOLS[name]
    return results


def numeric_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """:func:`compute_all`'s result as flat ``{"metric.key": number}``, for logging and tables;
    nulls (non-finite values) and non-numbers (``protocol``, ``skipped``) are left out."""
    return {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float)}
