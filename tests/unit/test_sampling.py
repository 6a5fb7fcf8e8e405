"""Sampling: latent walks, loops and tracks on the grid, per-class bars, tempo re-rendering,
click-free seams, and the sample stage's outputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter1d

from pipeline.audio.io import read_audio
from pipeline.grid import BarGrid, bar_samples_at, tempo_of
from pipeline.models.generator_file import build_generator, save_generator
from pipeline.models.generator_file import load as load_generator
from pipeline.sample.assemble import (
    concatenate_bars,
    continue_audio,
    crossfade_samples,
    equal_power_fades,
    loop_bar,
)
from pipeline.sample.generate import (
    class_labels,
    class_mix,
    generate_bars,
    interpolation_track,
    per_class_bars,
    random_bars,
    random_latents,
    scored_bars,
    walk_bars,
)
from pipeline.sample.latent import latent_walk, lerp, slerp
from pipeline.sample.tempo import retempo, retempo_stream
from pipeline.sample.track import TrackSpec, default_keyframes, make_track, track_pieces
from pipeline.stages.common import StageError
from pipeline.train.config import TrainConfig
from tests.conftest import seam_clicks_db, tiny_params
from tests.wav_tags import read_wav_tags

SR = 8000
BAR = 4000  # 0.5 s bars
CLICK_THRESHOLD_DB = 5.0  # seam high-band energy at most about 3x the audio around it


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _config(**kw) -> TrainConfig:
    base = dict(sample_rate=SR, length=BAR, channels=1, latent_dim=8, model_dim=4, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def _generator(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    generator = build_generator(_config(**kw)).eval()
    generator.requires_grad_(False)
    return generator


def tonal_bars(n: int, length: int, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Bars that do not meet at their edges: a low tone with its own pitch, phase and DC offset
    per bar, over a quiet noise floor (what makes a hard cut click)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / sr
    bars = np.empty((n, channels, length), np.float32)
    for k in range(n):
        for c in range(channels):
            tone = 0.4 * np.sin(2 * np.pi * rng.uniform(70, 600) * t + rng.uniform(0, 2 * np.pi))
            bars[k, c] = tone + rng.uniform(-0.2, 0.2) + 1e-3 * rng.standard_normal(length)
    return bars


def hard_cut(bars: np.ndarray) -> np.ndarray:
    n, channels, length = bars.shape
    return bars.transpose(1, 0, 2).reshape(channels, n * length)


# --- latent walks ------------------------------------------------------------------------------
def test_slerp_endpoints_are_the_keyframes_and_the_norm_moves_linearly():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(5, 64, generator=g) * 2 - 1, torch.rand(5, 64, generator=g) * 3 - 1.5
    torch.testing.assert_close(slerp(a, b, torch.zeros(5)), a, atol=1e-6, rtol=0)
    torch.testing.assert_close(slerp(a, b, torch.ones(5)), b, atol=1e-6, rtol=0)
    for t in (0.25, 0.5, 0.9):
        mid = slerp(a, b, torch.full((5,), t))
        expected = (1 - t) * a.norm(dim=1) + t * b.norm(dim=1)
        torch.testing.assert_close(mid.norm(dim=1), expected, atol=1e-5, rtol=1e-5)
    # Equal norms: slerp stays on the sphere, lerp cuts through it.
    b_same = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)
    half = torch.full((5,), 0.5)
    torch.testing.assert_close(slerp(a, b_same, half).norm(dim=1), a.norm(dim=1))
    assert (lerp(a, b_same, half).norm(dim=1) < 0.9 * a.norm(dim=1)).all()


def test_slerp_of_parallel_and_identical_rows_is_finite():
    a = torch.rand(3, 16) + 0.1
    for b in (a.clone(), 2.5 * a):
        out = slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[0], a[0])
        torch.testing.assert_close(out[2], b[2])


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_latent_walk_passes_through_every_keyframe(method):
    keyframes = torch.rand(4, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    walk = latent_walk(keyframes, 3 * 5 + 1, method)  # keyframes at steps 0, 5, 10, 15
    assert walk.shape == (16, 32)
    for i, step in enumerate((0, 5, 10, 15)):
        torch.testing.assert_close(walk[step], keyframes[i], atol=1e-6, rtol=0)
    if method == "slerp":  # norms stay between the neighbouring keyframes' norms
        norms, key_norms = walk.norm(dim=1), keyframes.norm(dim=1)
        for seg in range(3):
            lo, hi = sorted((key_norms[seg].item(), key_norms[seg + 1].item()))
            assert (norms[seg * 5 : seg * 5 + 6] >= lo - 1e-5).all()
            assert (norms[seg * 5 : seg * 5 + 6] <= hi + 1e-5).all()
    with pytest.raises(ValueError, match="unknown interpolation"):
        latent_walk(keyframes, 4, "cubic")


# --- lengths on the grid ---------------------------------------------------------------------
def test_loops_and_tracks_are_whole_bars_and_keep_the_grid():
    bars = tonal_bars(3, BAR, SR, channels=2)
    fade = crossfade_samples(SR, 5.0)
    track = concatenate_bars(bars, fade, SR)
    assert track.shape == (2, 3 * BAR) and track.dtype == np.float32
    for k in range(3):  # outside the fades every bar sits exactly at k * BAR
        start = k * BAR + (fade if k else 0)
        np.testing.assert_array_equal(
            track[:, start : (k + 1) * BAR], bars[k][:, start - k * BAR :]
        )
    for repeats in (1, 2, 5):
        loop = loop_bar(bars[0], repeats, fade, SR)
        assert loop.shape == (2, repeats * BAR)
    np.testing.assert_allclose(
        loop_bar(bars[0], 4, fade, SR)[:, BAR : 2 * BAR], loop[:, BAR : 2 * BAR]
    )


def test_walk_tracks_from_a_generator_are_whole_bars():
    generator = _generator()
    for n_bars in (2, 5):
        track = interpolation_track(
            generator, n_bars, 2, "slerp", seed=3, crossfade=40, sample_rate=SR
        )
        assert track.shape == (1, n_bars * BAR)
    made = make_track(generator, SR, TrackSpec(n_bars=3, bpm=None, beats_per_bar=1))
    assert made.audio.shape == (1, 3 * BAR) and made.bpm == pytest.approx(120.0)
    slower = make_track(generator, SR, TrackSpec(n_bars=3, bpm=100, beats_per_bar=1))
    assert slower.audio.shape == (1, 3 * 4800) and slower.source_bpm == pytest.approx(120.0)
    single = make_track(generator, SR, TrackSpec(n_bars=1))
    assert single.audio.shape == (1, BAR)
    assert default_keyframes(16) == 5 and default_keyframes(2) == 2


def test_equal_power_fades_are_equal_power_and_flat_at_the_ends():
    fade_in, fade_out = equal_power_fades(64)
    np.testing.assert_allclose(fade_in**2 + fade_out**2, 1.0, atol=1e-6)
    assert fade_in[0] < 0.01 and fade_out[-1] < 0.01
    assert np.all(np.diff(fade_in) >= 0)
    assert fade_in[1] - fade_in[0] < fade_in[33] - fade_in[32]  # flat start, steep middle


def test_continuation_predicts_a_tone():
    t = np.arange(600) / SR
    tone = np.sin(2 * np.pi * 220 * t + 0.3)
    ahead = continue_audio(tone[None, :400], 200)
    np.testing.assert_allclose(ahead[0, :64], tone[400:464], atol=1e-3)
    np.testing.assert_allclose(ahead[0], tone[400:600], atol=1e-2)  # 25 ms ahead
    silent = continue_audio(np.zeros((1, 100)), 10)
    np.testing.assert_array_equal(silent, 0)


# --- click-free seams --------------------------------------------------------------------------
def test_seam_clicks_flag_a_step_but_not_a_continuous_signal():
    t = np.arange(4 * BAR) / SR
    smooth = np.sin(2 * np.pi * 150 * t) + 1e-3 * np.random.default_rng(0).standard_normal(len(t))
    stepped = smooth.copy()
    stepped[2 * BAR :] += 0.3
    assert seam_clicks_db(smooth, SR, BAR).max() < CLICK_THRESHOLD_DB
    clicks = seam_clicks_db(stepped, SR, BAR)
    assert clicks[1] > 20 and clicks[0] < CLICK_THRESHOLD_DB and clicks[2] < CLICK_THRESHOLD_DB


@pytest.mark.parametrize("sr", [8000, 16000, 44100])
def test_crossfaded_seams_do_not_click_where_hard_cuts_do(sr):
    length = sr // 2
    bars = tonal_bars(6, length, sr, channels=2, seed=sr)
    hard = seam_clicks_db(hard_cut(bars), sr, length)
    smooth = seam_clicks_db(concatenate_bars(bars, crossfade_samples(sr, 5.0), sr), sr, length)
    assert hard.max() > CLICK_THRESHOLD_DB + 13, hard  # 20x the threshold's energy
    assert smooth.max() < CLICK_THRESHOLD_DB, smooth
    looped = seam_clicks_db(loop_bar(bars[0], 4, crossfade_samples(sr, 5.0), sr), sr, length)
    assert looped.max() < CLICK_THRESHOLD_DB, looped


# --- per-class bars ----------------------------------------------------------------------------
def test_per_class_bars_render_the_same_latents_as_every_class():
    generator = _generator(num_classes=3)
    per_class = per_class_bars(generator, 2, seed=5)
    assert per_class.shape == (3, 2, 1, BAR)
    latents = random_latents(generator, 2, 5)
    for c in range(3):
        expected = generate_bars(generator, latents, torch.full((2,), c))
        np.testing.assert_allclose(per_class[c], expected, atol=1e-6)
    assert not np.allclose(per_class[0], per_class[1])
    # random bars cycle through the classes; a fixed class is honoured
    assert class_labels(generator, 5).tolist() == [0, 1, 2, 0, 1]
    np.testing.assert_allclose(random_bars(generator, 2, 5, class_index=2), per_class[2], atol=1e-6)
    assert walk_bars(generator, 3, 2, "linear", seed=1, class_index=1).shape == (3, 1, BAR)
    with pytest.raises(ValueError, match="out of range"):
        class_labels(generator, 2, class_index=3)


def test_scored_bars_are_balanced_over_the_classes_and_the_same_in_any_batch_size():
    generator = _generator(num_classes=3)
    bars, labels = scored_bars(generator, 8, seed=4, batch_size=3)  # batches of 3, 3 and 2
    assert bars.shape == (8, 1, BAR) and bars.dtype == np.float32
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]  # every class 2 or 3 times
    whole, same_labels = scored_bars(generator, 8, seed=4)  # one batch
    np.testing.assert_allclose(bars, whole, atol=1e-6)
    assert same_labels.tolist() == labels.tolist()
    # the latents come from the seed alone: bar i is latent i rendered as class labels[i]
    latents = random_latents(generator, 8, 4)
    np.testing.assert_allclose(
        bars, generate_bars(generator, latents, torch.from_numpy(labels)), atol=1e-6
    )
    assert not np.allclose(scored_bars(generator, 8, seed=5)[0], bars)
    unconditional, none = scored_bars(_generator(), 3, seed=4)
    assert unconditional.shape == (3, 1, BAR) and none is None


def test_scored_bars_follow_the_training_class_mix():
    generator = _generator(num_classes=3)
    bars, labels = scored_bars(generator, 10, seed=4, class_counts=[60, 30, 10])
    assert np.bincount(labels).tolist() == [6, 3, 1]
    # the same latents as in turn: only the classes asked for differ
    in_turn, _ = scored_bars(generator, 10, seed=4)
    latents = random_latents(generator, 10, 4)
    np.testing.assert_allclose(
        bars, generate_bars(generator, latents, torch.from_numpy(labels)), atol=1e-6
    )
    assert not np.allclose(bars, in_turn)
    with pytest.raises(ValueError, match="2 class counts for a generator with 3 classes"):
        class_labels(generator, 4, class_counts=[1, 1])


@pytest.mark.parametrize(
    ("n", "counts", "expected"),
    [
        (10, [60, 30, 10], [6, 3, 1]),
        (5, [1, 1, 1], [2, 2, 1]),  # ties: the first classes get the remainder
        (7, [0, 5, 2], [0, 5, 2]),  # a class without training bars gets none
        (3, [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]),
        (256, [85, 1588, 115, 547, 128, 212], [8, 152, 11, 53, 12, 20]),  # third-party splits
    ],
)
def test_class_mix_rounds_each_share_by_largest_remainder(n, counts, expected):
    labels = class_mix(n, counts)
    assert labels.dtype == torch.long and len(labels) == n
    assert np.bincount(labels.numpy(), minlength=len(counts)).tolist() == expected


def test_class_mix_interleaves_the_classes():
    labels = class_mix(12, [2, 1, 1]).tolist()
    assert labels == [0, 1, 2, 0, 0, 1, 2, 0, 0, 1, 2, 0]
    for prefix in (4, 8):  # every prefix holds each class near its share
        counts = np.bincount(labels[:prefix], minlength=3)
        assert np.all(np.abs(counts - prefix * np.array([0.5, 0.25, 0.25])) <= 1), labels


@pytest.mark.parametrize("counts", [[], [0, 0], [3, -1], [[1, 2]]])
def test_class_mix_refuses_counts_without_a_positive_total(counts):
    with pytest.raises(ValueError, match="class counts"):
        class_mix(4, counts)


def test_per_class_bars_need_a_conditional_generator():
    generator = _generator()
    with pytest.raises(ValueError, match="conditional"):
        per_class_bars(generator, 2, seed=0)
    with pytest.raises(ValueError, match="not conditional"):
        class_labels(generator, 2, class_index=0)
    assert class_labels(generator, 2) is None


# --- tempo -------------------------------------------------------------------------------------
def drum_bars(n: int, length: int, sr: int, seed: int = 0) -> np.ndarray:
    """A loud decaying noise burst on every downbeat, softer ones on the other beats."""
    rng = np.random.default_rng(seed)
    bars = np.zeros((n, 1, length), np.float32)
    beat = length // 4
    decay = np.exp(-np.arange(beat) / sr * 60)
    for k in range(n):
        for b in range(4):
            gain = 0.8 if b == 0 else 0.25
            bars[k, 0, b * beat : (b + 1) * beat] += gain * rng.standard_normal(beat) * decay
    return bars


def downbeat_errors_ms(audio: np.ndarray, sr: int, bar: int, n_bars: int) -> np.ndarray:
    """Onset of each downbeat relative to its bar line (ms): where the 2 ms energy first rises
    above a quarter of its maximum within ±50 ms of the bar line."""
    energy = uniform_filter1d(np.atleast_2d(audio)[0].astype(np.float64) ** 2, round(0.002 * sr))
    window = round(0.05 * sr)
    errors = []
    for k in range(n_bars):
        lo = max(0, k * bar - window)
        segment = energy[lo : k * bar + window]
        errors.append(lo + int(np.argmax(segment > 0.25 * segment.max())) - k * bar)
    return np.asarray(errors) / sr * 1000


def test_tempo_arithmetic():
    assert bar_samples_at(8000, 120, 4) == 16000
    assert bar_samples_at(8000, 100, 4) == 19200
    assert tempo_of(16000, 8000, 4) == pytest.approx(120.0)
    assert bar_samples_at(44100, 133, 3) == round(44100 * 60 / 133 * 3)
    with pytest.raises(ValueError):
        bar_samples_at(8000, 0, 4)


def test_retempo_lands_every_bar_on_the_new_grid():
    old, n = bar_samples_at(SR, 120, 4), 8
    track = hard_cut(drum_bars(n, old, SR))
    assert np.abs(downbeat_errors_ms(track, SR, old, n)).max() <= 1.0
    for bpm in (100, 141):
        new = bar_samples_at(SR, bpm, 4)
        out = retempo(track, SR, old, new)
        assert out.shape == (1, n * new)
        errors = downbeat_errors_ms(out, SR, new, n)
        assert np.abs(errors).max() <= 10.0, errors
        assert np.abs(errors).mean() <= 5.0, errors


def test_retempo_keeps_channels_and_checks_whole_bars():
    stereo = np.repeat(hard_cut(drum_bars(3, 8000, SR)), 2, axis=0)
    out = retempo(stereo, SR, 8000, 9000)
    assert out.shape == (2, 27000) and out.dtype == np.float32
    np.testing.assert_array_equal(retempo(stereo, SR, 8000, 8000), stereo)
    with pytest.raises(ValueError, match="whole number"):
        retempo(stereo[:, :-1], SR, 8000, 9000)


def test_retempo_stream_renders_a_long_track_in_segments_on_the_grid():
    old, new, n = bar_samples_at(SR, 120, 4), bar_samples_at(SR, 100, 4), 13
    track = hard_cut(drum_bars(n, old, SR, seed=4))
    whole = retempo(track, SR, old, new)
    pieces = [track[:, i : i + 3 * old] for i in range(0, track.shape[1], 3 * old)]
    # within one segment (plus its context): one Rubber Band call, exactly retempo's result
    one = list(retempo_stream(pieces, SR, old, new, segment=n))
    assert len(one) == 1
    np.testing.assert_array_equal(one[0], whole)
    # segments of 4 bars, each rendered with 2 bars of context on either side
    segmented = list(retempo_stream(pieces, SR, old, new, segment=4))
    assert [p.shape[1] // new for p in segmented] == [4, 4, 5]
    out = np.concatenate(segmented, axis=1)
    assert out.shape == whole.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, : 4 * new], whole[:, : 4 * new])
    errors = downbeat_errors_ms(out, SR, new, n)
    assert np.abs(errors).max() <= 10.0, errors
    # two renders meet out of phase at a join; tonal bars (crossfaded, no clicks of their own)
    # hear it: 28 dB when the joins were cut, not crossfaded
    tonal = concatenate_bars(tonal_bars(n, old, SR, seed=2), crossfade_samples(SR, 5.0), SR)
    parts = [tonal[:, i : i + 3 * old] for i in range(0, tonal.shape[1], 3 * old)]
    joined = np.concatenate(list(retempo_stream(parts, SR, old, new, segment=4)), axis=1)
    joins = seam_clicks_db(joined, SR, new)[[3, 7]]  # the seams at bars 4 and 8
    assert joins.max() < CLICK_THRESHOLD_DB, joins


def test_track_pieces_are_the_track_made_in_one_pass():
    """The streamed track (pieces of 64 bars, Rubber Band in one call up to a segment) has the
    same samples as the whole walk generated, crossfaded and re-tempoed at once."""
    generator = _generator(num_classes=3)
    fade = crossfade_samples(SR, 5.0)
    for spec in (
        TrackSpec(n_bars=150, bpm=100, beats_per_bar=1, class_index=2, seed=1),
        TrackSpec(n_bars=130, method="linear", beats_per_bar=1, n_keyframes=7),
        TrackSpec(n_bars=1, seed=4),
    ):
        pieces = list(track_pieces(generator, SR, spec))
        if spec.n_bars == 1:
            bars = random_bars(generator, 1, spec.seed, 0)
        else:
            keyframes = spec.n_keyframes or default_keyframes(spec.n_bars)
            bars = walk_bars(
                generator, spec.n_bars, keyframes, spec.method, spec.seed, spec.class_index
            )
        expected = concatenate_bars(bars, fade, SR)
        if spec.bpm is not None:
            expected = retempo(expected, SR, BAR, bar_samples_at(SR, spec.bpm, 1))
        if spec.bpm is None:  # generated and crossfaded 64 bars at a time
            assert len(pieces) == -(-spec.n_bars // 64)
        np.testing.assert_array_equal(np.concatenate(pieces, axis=1), expected)


# --- the sample stage --------------------------------------------------------------------------
def test_sample_stage_writes_bars_loops_walks_tempos_and_classes(tmp_path: Path):
    from pipeline.stages import sample as stage

    config = _config(num_classes=2)
    torch.manual_seed(0)
    grid = BarGrid(SR, 120.0, 1, 1)  # 4000 samples at 8 kHz: one beat at 120 BPM
    assert grid.bar_samples == BAR
    # trained on 30 bars of class 0 and 10 of class 1, as the train stage records them
    metadata = {**grid.timing(), "classes": ["a", "b"], "class_counts": [30, 10]}
    model = save_generator(tmp_path / "generator.pt", build_generator(config), config, metadata)
    params = tiny_params()
    del params["bars"]  # the grid comes from the generator file
    params["sample"].update(
        n_bars=2, score_bars=5, interpolation_bars=3, interpolation_keyframes=2, loop_repeats=2,
        retempo_bpm=[75], bars_per_class=2, crossfade_ms=5,
    )  # fmt: skip
    out = tmp_path / "samples"
    stage.main(argparse.Namespace(model=model, out_dir=out), params)

    info = json.loads((out / "samples.json").read_text())
    assert info["bpm"] == pytest.approx(120.0) and info["num_classes"] == 2
    kinds = {}
    for row in info["files"]:
        audio, sr = read_audio(out / row["path"])
        assert sr == SR and audio.shape[1] == row["bars"] * row["bar_samples"]
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
        # Tagged for a DAW: its tempo, its beats (1 per bar here) and a loop over all its bars.
        tags = read_wav_tags(out / row["path"])
        assert tags.acid["tempo"] == pytest.approx(row["bpm"], abs=1e-4), row
        assert tags.acid["beats"] == row["bars"] and tags.acid["meter"] == (1, 4)
        assert not tags.acid["one_shot"] and tags.acid["stretch"]
        loop = tags.smpl["loops"]
        assert loop == [dict(cue=0, type=0, start=0, end=audio.shape[1] - 1, fraction=0, count=0)]
        assert tags.smpl["period_ns"] == 125_000  # 1e9 / 8000
    assert kinds == {"bar": 2, "loop": 2, "walk": 2, "tempo": 1, "class": 4}
    tempo_row = next(r for r in info["files"] if r["kind"] == "tempo")
    assert tempo_row["bar_samples"] == bar_samples_at(SR, 75, 1) and tempo_row["bars"] == 3
    assert (out / "classes" / "class_01" / "bar_001.wav").is_file()
    assert read_audio(out / "interpolation.wav")[0].shape == (1, 3 * BAR)
    assert read_wav_tags(out / "interpolation.wav").acid["beats"] == 3
    # The listening bars are WAVs; the scored bars (generated.npz) are score_bars of their own
    # draw (seed + 3), in the training bars' class mix: 3.75 and 1.25 of 5, rounded to 4 and 1.
    assert info["n_bars"] == 2 and info["score_bars"] == 5
    with np.load(out / "generated.npz") as packed:
        assert packed["bars"].shape == (5, 1, BAR) and int(packed["sample_rate"]) == SR
        assert sorted(packed["labels"].tolist()) == [0, 0, 0, 0, 1]
        generator = load_generator(model).generator
        seed = params["sample"]["seed"] + 3
        expected, labels = scored_bars(generator, 5, seed, class_counts=[30, 10])
        assert packed["labels"].tolist() == labels.tolist()
        np.testing.assert_allclose(packed["bars"], expected, atol=1e-6)
    listening = random_bars(generator, 2, params["sample"]["seed"])
    np.testing.assert_allclose(
        read_audio(out / "bars" / "bar_001.wav")[0], listening[1], atol=1 / 16000
    )

    params["sample"]["score_bars"] = 1
    with pytest.raises(StageError, match=r"sample\.score_bars: 1;.*at least 2"):
        stage.main(argparse.Namespace(model=model, out_dir=tmp_path / "one"), params)
    assert not (tmp_path / "one").exists()  # refused before anything was written
