"""The headline: each target met or missed on hand-made metrics, intervals over the real
reference, the verdict, and what the evaluate stage logs to MLflow first."""

from __future__ import annotations

import json

import pytest

from pipeline.metrics.headline import (
    HEADLINE_KEY,
    TARGETS,
    Scorecard,
    compute_headline,
    headline_of,
    markdown,
    text_table,
)
from pipeline.metrics.registry import ROLES


def metrics(
    frechet: float = 300.0,
    downbeat: float = 0.9,
    bins: int = 8,
    c2st: float = 0.6,
    similar: float = 0.0,
    nearest_db: float = 14.0,
    ceiling: float = 210.0,
) -> dict:
    """Hand-made compute_all result with its reference rungs; the real reference is fixed, the
    generated bars and the ceiling rung vary."""
    ceiling_frechet = {"generated.fixed": ceiling, "valid.fixed": 200.0}
    return {
        "references": {"ceiling": {"frechet": ceiling_frechet}, "noise": {}},
        "frechet": {
            "generated.fixed": frechet,
            "generated.fixed.ci_low": frechet * 0.8,
            "generated.fixed.ci_high": frechet * 1.25,
            "valid.fixed": 200.0,
            "valid.fixed.ci_low": 150.0,
            "valid.fixed.ci_high": 260.0,
            "generated.classifier": 50.0,
            "valid.classifier": 40.0,
        },
        "rhythm": {
            "generated.fraction_downbeat_onset": downbeat,
            "valid.fraction_downbeat_onset": 1.0,
        },
        "ndb": {"generated.bins_visited": bins, "valid.bins_visited": 10},
        "two_sample": {
            "generated.accuracy": c2st,
            "generated.accuracy.ci_low": c2st - 0.05,
            "generated.accuracy.ci_high": c2st + 0.05,
            "valid.accuracy": 0.55,
        },
        "novelty": {"generated.fraction_similar": similar, "valid.fraction_similar": 0.0},
        "nearest_neighbour": {"generated.median_db": nearest_db, "valid.median_db": 14.5},
    }


def lines(card: Scorecard) -> dict:
    return {line.name: line for line in card.lines}


def test_every_target_met_and_the_verdict_says_so():
    card = compute_headline(metrics())
    assert all(line.met for line in card.lines)
    assert card.verdict == f"learned: {len(TARGETS)} of {len(TARGETS)} targets met"
    got = lines(card)
    assert got["frechet_fixed_ratio"].value == pytest.approx(1.5)
    # the interval: the generated distance's bootstrap interval over the real point value
    assert got["frechet_fixed_ratio"].ci_low == pytest.approx(1.2)
    assert got["frechet_fixed_ratio"].ci_high == pytest.approx(1.875)
    assert got["frechet_fixed_ratio"].shown == "1.50× [1.20×, 1.88×]"
    assert got["frechet_classifier_ratio"].ci_low is None  # no interval given, none made up
    assert got["downbeat_share"].value == pytest.approx(0.9)
    assert got["ndb_bins_share"].value == pytest.approx(0.8)
    # a fraction is the generated number itself, with its own interval
    assert got["two_sample_accuracy"].value == pytest.approx(0.6)
    assert got["two_sample_accuracy"].real == pytest.approx(0.55)
    assert got["two_sample_accuracy"].shown == "60 % [55 %, 65 %]"
    assert got["nearest_train_db_vs_real"].value == pytest.approx(-0.5)
    # the ceiling rung: its own line, and the same comparison beside each generated line
    assert got["ceiling_frechet_fixed_ratio"].value == pytest.approx(1.05)
    assert got["frechet_fixed_ratio"].ceiling == pytest.approx(1.05)
    assert got["frechet_classifier_ratio"].ceiling is None  # the rung has no such number
    assert [line.target for line in card.lines] == [
        "≤ 2×", "≤ 2×", "≥ 80 %", "≥ 50 %", "≤ 80 %", "≤ 1.15×", "≤ 10 %", "≥ -1 dB",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changed", "name"),
    [
        ({"frechet": 500.0}, "frechet_fixed_ratio"),  # 2.5x the real reference
        ({"downbeat": 0.7}, "downbeat_share"),  # 70 % of the real share
        ({"bins": 4}, "ndb_bins_share"),  # 40 % of the real bins
        ({"c2st": 0.9}, "two_sample_accuracy"),  # told from real bars 90 % of the time
        ({"ceiling": 240.0}, "ceiling_frechet_fixed_ratio"),  # the representation smears
        ({"similar": 0.25}, "near_copy_fraction"),
        ({"nearest_db": 12.1}, "nearest_train_db_vs_real"),  # 2.4 dB closer: copying
    ],
)
def test_each_target_can_fail_alone(changed, name):
    card = compute_headline(metrics(**changed))
    assert [line.name for line in card.lines if not line.met] == [name]
    assert card.verdict.startswith(f"not learned yet: {len(TARGETS) - 1} of {len(TARGETS)}")
    assert f"missed: {lines(card)[name].label}" in card.verdict


def test_the_limits_are_inclusive():
    card = compute_headline(metrics(frechet=400.0, downbeat=0.8, bins=5, c2st=0.8, similar=0.1,
                                    nearest_db=13.5, ceiling=230.0))  # fmt: skip
    assert all(line.met for line in card.lines)


def test_missing_metrics_and_a_zero_reference_are_not_measured():
    values = metrics()
    del values["frechet"]["generated.classifier"]
    values["rhythm"]["valid.fraction_downbeat_onset"] = 0.0
    del values["ndb"]
    card = compute_headline(values)
    unmeasured = [line.name for line in card.lines if line.met is None]
    assert unmeasured == ["frechet_classifier_ratio", "downbeat_share", "ndb_bins_share"]
    assert card.verdict.startswith("learned: 5 of 5 targets met; not measured: ")
    assert compute_headline({}).verdict.startswith("not learned yet: 0 of 0 targets met")


def test_targets_take_their_direction_from_the_registry_roles():
    for target in TARGETS:
        keys = {h.key: h.better for h in ROLES[target.metric].headlines}
        assert keys[target.key] == target.better


def test_stored_headline_round_trips_and_tells_what_to_log():
    card = compute_headline(metrics(frechet=700.0))
    stored = json.loads(json.dumps({HEADLINE_KEY: card.to_dict(), **metrics()}))
    assert stored[HEADLINE_KEY]["lines"]["frechet_fixed_ratio"]["target"] == "≤ 2×"
    assert headline_of(stored) == card  # the stored one, not recomputed from the metrics
    assert headline_of(metrics()) == compute_headline(metrics())
    logged = card.mlflow_metrics()
    assert logged["headline.frechet_fixed_ratio"] == pytest.approx(3.5)
    assert logged["headline.frechet_fixed_ratio.ci_high"] == pytest.approx(3.5 * 1.25)
    assert logged["headline.frechet_fixed_ratio.met"] == 0.0
    assert logged["headline.targets_met"] == len(TARGETS) - 1
    table = text_table(card)
    assert table[0].split()[0] == "measure" and "3.50× [2.80×, 4.38×]" in table[1]
    assert markdown(card).startswith(f"**{card.verdict}**")


def test_evaluate_logs_the_headline_first_and_tags_the_verdict():
    from pipeline.stages.evaluate import log_metrics

    class Recorder:
        def __init__(self) -> None:
            self.calls: list = []

        def log(self, step, values):
            self.calls.append(("log", dict(values)))

        def set_tags(self, tags):
            self.calls.append(("tags", dict(tags)))

    values = metrics()
    card = compute_headline(values)
    recorder = Recorder()
    log_metrics(recorder, values, {}, card)  # type: ignore[arg-type]
    (first, headline), (second, tags), (third, rest) = recorder.calls
    assert (first, second, third) == ("log", "tags", "log")
    assert headline == card.mlflow_metrics()
    assert tags["verdict"] == card.verdict
    assert "frechet_generated_fixed" in rest
