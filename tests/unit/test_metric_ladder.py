"""The metric ladder: every registered metric orders noise, silence, a tone, untrained generators,
shifted, mis-cut and copied bars against real held-out bars as its role says it should.

Orderings and bands only, no numbers from a run: which way is better and how wide a metric's band
around the held-out reference is are declared in :data:`pipeline.metrics.registry.ROLES`.
``python -m tests.metric_ladder`` prints the same ladder as a table.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.metrics.ndb import PROTOCOLS as NDB_PROTOCOLS
from pipeline.metrics.registry import (
    COPY_DETECTOR,
    DEFECT_DETECTOR,
    METRICS,
    QUALITY,
    ROLES,
    SPEED,
    Headline,
)
from tests.metric_ladder import Ladder, build_ladder, ladder_table, run_ladder

# Rungs no metric of music may rank level with real bars; then those without a loop defect.
NOT_MUSIC = ("noise", "silence", "tone", "untrained_wavegan", "untrained_specgan")
CLEAN_LOOPS = ("noise", "silence", "tone")
RESYNTHESISED = ("resynthesised_specgan",)  # the representation ceiling of each such model

Results = dict[str, dict[str, dict[str, float]]]


@pytest.fixture(scope="module")
def ladder() -> Ladder:
    return build_ladder()


@pytest.fixture(scope="module")
def results(ladder: Ladder) -> Results:
    results = run_ladder(ladder)
    print(ladder_table(results))  # shown with -s, and in the log of a failing test
    return results


def headlines(*roles: str) -> list:
    return [
        pytest.param(metric, headline, id=f"{metric}.{headline.key}")
        for metric, role in ROLES.items()
        if role.role in roles
        for headline in role.headlines
    ]


def value(results: Results, rung: str, metric: str, headline: Headline) -> float | None:
    return results[rung][metric].get(f"generated.{headline.key}")


def reference(results: Results, metric: str, headline: Headline) -> float:
    return results["real"][metric][f"valid.{headline.key}"]


def assert_real_bars_within_their_band(results: Results, metric: str, headline: Headline):
    """Other held-out real bars score as the held-out reference does, within its band."""
    real, ref = value(results, "real", metric, headline), reference(results, metric, headline)
    assert headline.within_band(results["real"][metric]), (real, ref)


def assert_not_flagged(results: Results, rung: str, metric: str, headline: Headline):
    """``rung`` scores within the held-out reference's band, or better than it."""
    other, ref = value(results, rung, metric, headline), reference(results, metric, headline)
    assert headline.within_band(results[rung][metric]) or headline.is_better(other, ref), rung


def test_every_registered_metric_has_a_role_and_each_role_its_headlines():
    assert set(ROLES) == set(METRICS)
    for name, role in ROLES.items():
        if role.role == SPEED:
            assert role.reason and not role.headlines, name  # off the ladder, and why
        else:
            assert role.headlines, name
            assert role.role in (QUALITY, COPY_DETECTOR, DEFECT_DETECTOR), name


def test_the_ladder_is_the_same_every_time():
    small = {"train_tracks_per_style": 1, "valid_tracks_per_style": 1, "styles": ("techno",)}
    first, second = build_ladder(**small), build_ladder(**small)
    assert list(first.rungs) == list(second.rungs)
    for rung in first.rungs:
        np.testing.assert_array_equal(first.rungs[rung], second.rungs[rung])
    np.testing.assert_array_equal(first.train, second.train)
    np.testing.assert_array_equal(first.valid, second.valid)


def test_every_metric_on_the_ladder_ran(results: Results):
    for rung, by_metric in results.items():
        assert set(by_metric) == set(METRICS) - {"real_time_factor"}, rung  # no generator given


@pytest.mark.parametrize(("metric", "headline"), headlines(QUALITY))
def test_real_bars_beat_what_is_not_music_and_score_within_their_band(
    results: Results, metric: str, headline: Headline
):
    if "skipped" in results["real"][metric]:  # fad_vggish without VGGish weights
        pytest.skip(f"{metric}: {results['real'][metric]['skipped']}")
    real = value(results, "real", metric, headline)
    assert real is not None
    for rung in NOT_MUSIC:
        other = value(results, rung, metric, headline)
        if other is None:  # not defined there (only silence may lack a number)
            assert rung == "silence", rung
            continue
        assert headline.is_better(real, other), (rung, real, other)
        assert not headline.within_band(results[rung][metric]), (rung, other)
    assert_real_bars_within_their_band(results, metric, headline)


@pytest.mark.parametrize(("metric", "headline"), headlines(QUALITY))
def test_real_bars_through_our_own_synthesis_beat_what_is_not_music(
    results: Results, metric: str, headline: Headline
):
    """The ceiling rung is music: every quality metric ranks it above noise, silence, a tone
    and the untrained generators, as it ranks real bars."""
    if "skipped" in results["real"][metric]:
        pytest.skip(f"{metric}: {results['real'][metric]['skipped']}")
    for rung in RESYNTHESISED:
        ceiling = value(results, rung, metric, headline)
        assert ceiling is not None, rung
        for other_rung in NOT_MUSIC:
            other = value(results, other_rung, metric, headline)
            if other is not None:
                assert headline.is_better(ceiling, other), (rung, other_rung, ceiling, other)


@pytest.mark.parametrize(("metric", "headline"), headlines(COPY_DETECTOR))
def test_copy_detectors_flag_training_copies_but_not_held_out_bars_or_noise(
    results: Results, metric: str, headline: Headline
):
    real = value(results, "real", metric, headline)
    copies = value(results, "copies", metric, headline)
    assert headline.is_better(real, copies), (real, copies)
    assert not headline.within_band(results["copies"][metric]), copies  # flagged
    assert_real_bars_within_their_band(results, metric, headline)
    for rung in ("noise", "silence", "tone"):  # far from every training bar: not a copy
        assert_not_flagged(results, rung, metric, headline)


@pytest.mark.parametrize(("metric", "headline"), headlines(DEFECT_DETECTOR))
def test_defect_detectors_flag_a_mis_cut_loop_but_not_real_bars_or_clean_loops(
    results: Results, metric: str, headline: Headline
):
    real = value(results, "real", metric, headline)
    miscut = value(results, "miscut", metric, headline)
    assert headline.is_better(real, miscut), (real, miscut)
    assert not headline.within_band(results["miscut"][metric]), miscut
    assert_real_bars_within_their_band(results, metric, headline)
    for rung in CLEAN_LOOPS:  # nothing at the seam to find
        assert_not_flagged(results, rung, metric, headline)


def test_bars_shifted_by_a_16th_fall_between_noise_and_real_bars_on_the_downbeat(
    results: Results,
):
    downbeat = Headline("fraction_downbeat_onset", "higher")
    noise, shifted, real = (
        value(results, r, "rhythm", downbeat) for r in ("noise", "shifted", "real")
    )
    assert noise <= shifted < real
    # A 16th later is still on the 16th grid, and the bars are still at the tempo.
    for key in ("grid_alignment", "fraction_tempo_ok_octave"):
        (on_grid,) = (h for h in ROLES["rhythm"].headlines if h.key == key)
        assert on_grid.within_band(results["shifted"]["rhythm"]), key
    # The fixed embedding sees where in the bar the hits are.
    fixed = Headline("fixed", "lower")
    assert fixed.is_better(
        value(results, "real", "frechet", fixed), value(results, "shifted", "frechet", fixed)
    )
    assert not fixed.within_band(results["shifted"]["frechet"])


def test_a_mis_cut_loop_is_off_the_tempo_and_off_the_grid(results: Results):
    for key in ("grid_alignment", "fraction_tempo_ok_octave"):
        (headline,) = (h for h in ROLES["rhythm"].headlines if h.key == key)
        miscut = value(results, "miscut", "rhythm", headline)
        assert headline.is_better(value(results, "real", "rhythm", headline), miscut), key
        assert not headline.within_band(results["miscut"]["rhythm"]), key


def test_ndb_on_looptest_features_ranks_real_bars_above_noise_silence_and_a_tone(ladder: Ladder):
    """evaluate.ndb_features: looptest (LoopTest's log-mel, whitened bins) orders the ladder too."""
    rungs = ("real", *CLEAN_LOOPS)
    small = dataclasses.replace(ladder, rungs={rung: ladder.rungs[rung] for rung in rungs})
    results = run_ladder(small, ["ndb"], ndb_features="looptest")
    print(ladder_table(results))
    real = results["real"]["ndb"]
    assert real["protocol"] == NDB_PROTOCOLS["looptest"]
    (jsd,) = (h for h in ROLES["ndb"].headlines if h.key == "jsd")
    assert jsd.within_band(real), (real["generated.jsd"], real["valid.jsd"])
    for rung in CLEAN_LOOPS:
        other = results[rung]["ndb"]
        for key in ("ndb", "jsd", "jsd_nats"):  # lower is better
            assert real[f"generated.{key}"] < other[f"generated.{key}"], (rung, key)
        assert real["generated.bins_visited"] > other["generated.bins_visited"], rung
        assert not jsd.within_band(other), rung
