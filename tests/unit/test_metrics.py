"""Metrics with known answers, on synthesised drum bars (8 kHz, 120 bpm, 2 s bars)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.data.synth import STYLES
from pipeline.metrics import embeddings, frechet, kernel_distance
from pipeline.metrics.ndb import NDB_FEATURES, ndb_scores
from pipeline.metrics.ndb import PROTOCOLS as NDB_PROTOCOLS
from pipeline.metrics.novelty import nearest_scores
from pipeline.metrics.realtime import real_time_factor
from pipeline.metrics.registry import METRICS, compute_all
from pipeline.metrics.rhythm import GRID_TOLERANCE_MS, rhythm_of
from pipeline.metrics.seams import seam_click_db
from tests.metric_ladder import drum_bars, steady_tone

SR = 8000
BAR = 2 * SR  # one 4/4 bar at 120 bpm
TRAIN_BARS, VALID_BARS = 6, 3


@pytest.fixture(scope="module")
def corpus() -> dict[str, np.ndarray]:
    """Five styles; training and held-out bars come from different tracks."""
    train = [drum_bars(style, 1, TRAIN_BARS, SR) for style in STYLES]
    valid = [drum_bars(style, 2, VALID_BARS, SR) for style in STYLES]
    labels = np.arange(len(STYLES))
    return {
        "train": np.concatenate(train).astype(np.float32),
        "valid": np.concatenate(valid).astype(np.float32),
        "train_labels": np.repeat(labels, TRAIN_BARS),
        "valid_labels": np.repeat(labels, VALID_BARS),
    }


def options(corpus: dict, **extra) -> dict:
    return {
        "sample_rate": SR,
        "bpm": 120.0,
        "beats_per_bar": 4,
        "bootstrap": 50,
        "seed": 0,
        "train_labels": corpus["train_labels"],
        "valid_labels": corpus["valid_labels"],
        **extra,
    }


def noise_like(bars: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(bars.shape)).astype(np.float32)


DISTANCES = ["novelty", "nearest_neighbour", "frechet", "kernel_distance"]


def test_identical_sets_give_zero_distances_and_full_beatgan_similarity(corpus):
    train = corpus["train"]
    result = compute_all(train.copy(), train, corpus["valid"], options(corpus), DISTANCES)
    novelty = result["novelty"]
    assert novelty["generated.fraction_similar_at_0.1"] == 1.0
    assert novelty["generated.fraction_similar_at_0.05"] == 1.0
    assert novelty["generated.median_score"] == pytest.approx(0.0, abs=1e-6)
    assert novelty["valid.fraction_similar"] == 0.0
    assert result["nearest_neighbour"]["generated.mean_db"] == pytest.approx(0.0, abs=1e-2)
    for embedding in ("fixed", "classifier"):
        assert result["kernel_distance"][f"generated.{embedding}"] == pytest.approx(0.0, abs=1e-6)
        # Fréchet compares the copy at the held-out set's size: a subset of the training bars,
        # closer to them than held-out bars but not at zero.
        frechet_scores = result["frechet"]
        assert frechet_scores["compared_size"] == len(corpus["valid"]) < len(train)
        assert 0 < frechet_scores[f"generated.{embedding}"] < frechet_scores[f"valid.{embedding}"]
    whole = compute_all(train.copy(), train, None, options(corpus), ["frechet"])["frechet"]
    for embedding in ("fixed", "classifier"):
        assert whole[f"generated.{embedding}"] == pytest.approx(0.0, abs=1e-6)
    assert result["frechet"]["valid.fixed"] > 1.0  # held-out real bars are not copies
    assert frechet.frechet_distance(train[:, 0, :64], train[:, 0, :64]) == pytest.approx(0.0)


def test_shifted_copy_is_caught_by_the_shift_tolerant_search_not_by_beatgan(corpus):
    train = corpus["train"]
    shifted = np.roll(train, BAR // 16, axis=-1)  # every bar starts a 16th later in its loop
    result = compute_all(shifted, train, corpus["valid"], options(corpus), DISTANCES[:2])
    assert result["novelty"]["generated.fraction_similar"] == 0.0
    assert result["novelty"]["generated.min_score"] > 0.5
    nearest = result["nearest_neighbour"]
    assert nearest["generated.mean_db"] < 0.01 * nearest["valid.median_db"]
    assert nearest["generated.fraction_shifted_match"] == 1.0
    assert nearest["generated.fraction_closer"] == 1.0
    assert nearest["valid.fraction_closer"] <= 0.5


def test_noise_is_far_from_drums_and_fractions_stay_in_the_unit_interval(corpus):
    train, valid = corpus["train"], corpus["valid"]
    generated = np.concatenate([noise_like(valid), train[::4]])  # mostly noise, a few copies
    result = compute_all(generated, train, valid, options(corpus))
    assert set(result) == set(METRICS) - {"real_time_factor"}  # no generator given
    json.dumps(result, allow_nan=False)
    assert result["fad_vggish"].keys() == {"skipped", "protocol"}  # no VGGish weights given
    for metric, values in result.items():
        assert isinstance(values.pop("protocol"), str), metric
        values.pop("skipped", None)
        for key, value in values.items():
            assert value is None or isinstance(value, int | float), (metric, key)
            if "fraction" in key:
                assert 0.0 <= value <= 1.0, (metric, key, value)

    noise_only = compute_all(noise_like(valid), train, valid, options(corpus), DISTANCES)
    for metric in ("frechet", "kernel_distance"):
        for embedding in ("fixed", "classifier"):
            values = noise_only[metric]
            assert values[f"generated.{embedding}"] > 10 * abs(values[f"valid.{embedding}"])
    nearest = noise_only["nearest_neighbour"]
    assert nearest["generated.min_db"] > nearest["valid.median_db"]
    assert nearest["generated.fraction_closer"] == 0.0
    assert noise_only["novelty"]["generated.fraction_similar"] == 0.0


def test_each_generated_bar_is_counted_once():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((5, 1, 256)).astype(np.float32)
    generated = np.repeat(train[:1], 3, axis=0)  # one bar, many near-identical training bars
    train = np.concatenate([train, train[:1] * 1.001, train[:1] * 0.999])
    scores, index = nearest_scores(generated, train, chunk_size=2)
    assert scores.shape == (3,)
    assert np.all(scores < 1e-5)
    assert set(index) <= {0, 5, 6}


def test_bootstrap_intervals_contain_the_point_estimate_and_are_seeded(corpus):
    train, valid = corpus["train"], corpus["valid"]
    opts = options(corpus, embeddings=["fixed"])
    for scores in (frechet.frechet_scores, kernel_distance.kernel_scores):
        for generated in (valid, noise_like(valid)):
            values = scores(generated, train, valid, opts)
            for name in ("generated.fixed", "valid.fixed"):
                assert values[f"{name}.ci_low"] <= values[name] <= values[f"{name}.ci_high"]
                assert values[f"{name}.ci_low"] < values[f"{name}.ci_high"]
        assert scores(valid, train, valid, opts) == scores(valid, train, valid, opts)


def test_kernel_distance_is_unbiased_for_independent_samples_and_zero_for_the_same_set():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((200, 8)), rng.standard_normal((200, 8))
    assert kernel_distance.kernel_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    same = kernel_distance.kernel_distance(x, y)
    shifted = kernel_distance.kernel_distance(x, y + 1.0)
    assert abs(same) < 0.05 * shifted


@pytest.mark.parametrize("features", NDB_FEATURES)
def test_ndb_finds_mode_collapse(corpus, features):
    train, valid = corpus["train"], corpus["valid"]
    collapsed = np.repeat(train[:TRAIN_BARS], 5, axis=0)  # only the first style's bars
    opts = options(corpus, ndb_bins=6, ndb_features=features)
    values = ndb_scores(collapsed, train, valid, opts)
    assert values["protocol"] == NDB_PROTOCOLS[features]
    assert values["bins"] == 6
    assert values["generated.jsd_nats"] == pytest.approx(values["generated.jsd"] * np.log(2))
    assert values["generated.ndb_fraction"] >= 0.5
    assert values["generated.ndb"] > values["valid.ndb"]
    assert values["generated.jsd"] > 2 * values["valid.jsd"]
    assert values["generated.bins_visited"] < values["bins"]


def test_ndb_names_its_params_key_for_unknown_features(corpus):
    with pytest.raises(ValueError, match=r"evaluate\.ndb_features is 'vggish'.*fixed.*looptest"):
        ndb_scores(corpus["valid"], corpus["train"], None, options(corpus, ndb_features="vggish"))


def test_classifier_scores_and_skipping_without_labels(corpus):
    train, valid = corpus["train"], corpus["valid"]
    opts = options(corpus, generated_labels=corpus["valid_labels"])
    result = compute_all(valid, train, valid, opts, ["classifier", "frechet"])
    scores = result["classifier"]
    assert scores["classes"] == len(STYLES)
    assert scores["generated.accuracy"] >= 0.6
    assert 1.0 < scores["generated.inception_score"] <= len(STYLES)
    assert "generated.classifier" in result["frechet"]

    collapsed = np.repeat(train[:TRAIN_BARS], 2, axis=0)
    assert (
        compute_all(collapsed, train, valid, opts, ["classifier"])["classifier"][
            "generated.inception_score"
        ]
        < 0.5 * scores["generated.inception_score"]
    )

    unlabelled = options(corpus, train_labels=None)
    result = compute_all(valid, train, valid, unlabelled, ["classifier", "frechet"])
    assert "classifier" not in result
    assert "generated.classifier" not in result["frechet"]
    assert "generated.fixed" in result["frechet"]


def test_embedding_registry_takes_a_plug_in(corpus):
    train, valid = corpus["train"], corpus["valid"]
    embeddings.register_embedding("rms", lambda train, options: lambda bars: bars.std(-1))
    embeddings.register_embedding("missing", lambda train, options: None)
    try:
        opts = options(corpus, embeddings=["rms", "missing"])
        values = frechet.frechet_scores(valid, train, valid, opts)
    finally:
        del embeddings.EMBEDDINGS["rms"], embeddings.EMBEDDINGS["missing"]
    assert values["rms.dim"] == 1
    assert "generated.rms" in values
    assert not any("missing" in key for key in values)
    with pytest.raises(ValueError, match="unknown embeddings"):
        frechet.frechet_scores(valid, train, valid, options(corpus, embeddings=["nope"]))


def kick_bars(offset_ms: float, n: int = 4) -> np.ndarray:
    """Decaying 60 Hz kicks on every beat (``offset_ms`` late), a click-free loop."""
    t = np.arange(BAR) / SR
    bar = np.zeros(BAR)
    for beat in range(4):
        start = beat * 0.5 + offset_ms / 1000.0
        local = t - start
        hit = local >= 0
        bar[hit] += np.sin(2 * np.pi * 60 * local[hit]) * np.exp(-local[hit] / 0.08)
    rng = np.random.default_rng(0)
    bars = np.stack([bar + 1e-3 * rng.standard_normal(BAR) for _ in range(n)])
    return bars[:, None, :].astype(np.float32)


def test_rhythm_finds_tempo_downbeat_and_grid(corpus):
    chance = 2.0 * GRID_TOLERANCE_MS / 125.0  # share of a bar within the tolerance of a 16th
    on_grid = rhythm_of(kick_bars(0.0), SR, bpm=120.0)
    assert on_grid["fraction_tempo_ok"] == 1.0
    assert on_grid["tempo_bpm_median"] == pytest.approx(120.0, rel=0.02)
    assert on_grid["fraction_downbeat_onset"] == 1.0
    assert on_grid["onsets_per_bar_mean"] == pytest.approx(4.0)
    assert on_grid["grid_alignment"] > 0.75 / chance  # most onset strength is on the grid

    late = rhythm_of(kick_bars(45.0), SR, bpm=120.0)  # 45 ms from the grid, beyond its tolerance
    assert late["fraction_tempo_ok"] == 1.0  # tempo does not depend on the phase
    assert late["fraction_downbeat_onset"] == 0.0
    assert late["grid_alignment"] < 1.0  # less onset strength near the grid than by chance

    slow = rhythm_of(kick_bars(0.0), SR * 3 // 4, bpm=120.0)  # the same bar played at 90 bpm
    assert slow["fraction_tempo_ok"] == 0.0

    drums = rhythm_of(corpus["valid"], SR, bpm=120.0)
    noise = rhythm_of(noise_like(corpus["valid"]), SR, bpm=120.0)
    assert drums["fraction_tempo_ok_octave"] > noise["fraction_tempo_ok_octave"]
    assert drums["fraction_downbeat_onset"] > noise["fraction_downbeat_onset"]
    assert drums["grid_alignment"] > 2.0 * noise["grid_alignment"]
    assert noise["grid_alignment"] == pytest.approx(1.0, abs=0.2)


def test_rhythm_finds_no_onsets_in_noise_silence_or_a_steady_tone(corpus):
    """Random peaks of noise and the round-off of a steady tone are not hits: no onsets, so no
    tempo and no downbeat; the grid alignment of a bar without onsets is chance (1)."""
    shape = corpus["valid"].shape
    for bars in (noise_like(corpus["valid"]), np.zeros(shape), steady_tone(shape, SR, 0.1)):
        values = rhythm_of(bars.astype(np.float32), SR, bpm=120.0)
        assert values["onsets_per_bar_mean"] == 0.0
        assert values["fraction_downbeat_onset"] == 0.0
        assert values["fraction_tempo_ok_octave"] == 0.0
        assert np.isnan(values["tempo_bpm_median"])
        assert values["grid_alignment"] == pytest.approx(1.0, abs=0.2)


def test_hard_cut_loop_clicks_more_than_a_continuous_one():
    t = np.arange(BAR) / SR
    continuous = np.sin(2 * np.pi * 220.0 * t)  # a whole number of cycles per bar
    hard_cut = np.sin(2 * np.pi * 220.125 * t)  # ends a quarter cycle early: a jump at the seam
    fade = np.ones(BAR)
    ramp = np.linspace(0.0, 1.0, SR // 100)
    fade[: len(ramp)], fade[-len(ramp) :] = ramp, ramp[::-1]
    bars = np.stack([continuous, hard_cut, hard_cut * fade])[:, None, :]
    clicks = seam_click_db(bars, SR, window_ms=2.0, highpass_hz=2000.0)
    assert clicks[1] > clicks[0] + 20.0
    assert clicks[1] > clicks[2] + 20.0
    assert abs(clicks[0]) < 3.0


def test_real_time_factor_times_without_moving_the_generator():
    from pipeline.models.wavegan import WaveGANGenerator

    generator = WaveGANGenerator(length=4096, latent_dim=8, model_dim=2).eval()
    values = real_time_factor(generator, (1, 2), device="cpu", sample_rate=SR, repeats=2)
    assert set(values) == {
        "cpu.batch_1",
        "cpu.batch_1.ms_per_bar",
        "cpu.batch_2",
        "cpu.batch_2.ms_per_bar",
    }
    assert all(v > 0 for v in values.values())
    assert next(generator.parameters()).device == torch.device("cpu")
    bars = np.zeros((2, 1, 4096), np.float32)
    opts = {"sample_rate": SR, "generator": generator, "rtf_batch_sizes": [1], "rtf_repeats": 1}
    result = compute_all(bars, bars, None, opts, ["real_time_factor"])
    assert result["real_time_factor"]["cpu.batch_1"] > 0


def test_unknown_metric_is_an_error(corpus):
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_all(corpus["valid"], corpus["train"], None, options(corpus), ["nope"])
