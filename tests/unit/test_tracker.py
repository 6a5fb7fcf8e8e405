"""The madmom tracker (pipeline.audio.tracker and its parts) on small synthesised signals with
exact truth, one group of tests per failure class: late downbeats, off-beat drums, tempo
changes, steady loops, long files, tempo octaves and trust. Nothing is mocked: madmom runs."""

from __future__ import annotations

from pathlib import Path

import mir_eval
import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import beats as beat_grid
from pipeline.audio import meter, trust
from pipeline.audio.activations import FPS, compute_activations
from pipeline.audio.analysis import AnalyzeOptions, analyze_track
from pipeline.audio.io import write_audio
from pipeline.audio.render import BarFilters, render_bars
from pipeline.data.synth import SynthTrackSpec, render_track
from pipeline.grid import BarGrid

SR = 22050
F_WINDOW = 0.07  # seconds, mir_eval's usual beat tolerance


def _write(directory: Path, name: str, audio: np.ndarray) -> Path:
    path = directory / f"{name}.wav"
    write_audio(path, np.asarray(audio, np.float32), SR)
    return path


def _analyze(path: Path, **options):
    timing, info = analyze_track(path, AnalyzeOptions(**options))
    return timing, info, timing.bar_starts(info["duration"])


def _nearest_error(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(found[:, None] - truth[None, :]).min(axis=1)


def _f(truth: np.ndarray, found: np.ndarray) -> float:
    return float(mir_eval.beat.f_measure(truth, found, f_measure_threshold=F_WINDOW))


def _bar_beats(lines: np.ndarray, beat: float, meter_: int) -> np.ndarray:
    return lines[:, None] + beat * np.arange(meter_)[None, :]


# --------------------------------------------------------------------------- 1. late downbeat


@pytest.fixture(scope="module")
def late_tracks(tmp_path_factory):
    """4/4 techno whose first downbeat comes three beats into the file (a partial bar or a
    drum pickup before it): the first beat heard is not beat 1."""
    directory = tmp_path_factory.mktemp("late")
    tracks = []
    for seed in (0, 1):
        spec = SynthTrackSpec("techno", 126, 12, lead_in_seconds=3 * 60 / 126, seed=seed)
        audio, downbeats, beats = render_track(spec, SR)
        tracks.append((_write(directory, f"late{seed}", audio), downbeats, beats))
    return tracks


@pytest.mark.parametrize("which", [0, 1])
def test_late_downbeat_bar_lines_on_true_downbeats(late_tracks, which):
    path, downbeats, beats = late_tracks[which]
    assert beats[0] < downbeats[0] - 0.5  # audible beats before beat 1: a pickup of the bar
    _, info, found = _analyze(path)
    assert info["meter"] == 4
    assert np.median(_nearest_error(found, downbeats)) < 0.04
    assert _f(downbeats, found) >= 0.9
    assert found[0] > downbeats[0] - 0.04  # no bar line in the pickup


def test_steady_track_is_one_section(late_tracks):
    _, info, _ = _analyze(late_tracks[0][0])
    assert info["n_sections"] == 1
    assert info["steady"] is True
    assert info["bpm"] == pytest.approx(126, rel=0.01)


# --------------------------------------------------------------------------- 2. off-beat drums


def _click_track(bpm: float, bars: int, lead: float) -> tuple[np.ndarray, np.ndarray]:
    """Kick (60 Hz thump) on every beat, a louder open hat (bright noise) on every off-beat."""
    rng = np.random.default_rng(7)
    beat = 60.0 / bpm
    n = int((lead + bars * 4 * beat + 1.0) * SR)
    audio = np.zeros(n, np.float64)
    t = np.arange(int(0.25 * SR)) / SR
    kick = 0.5 * np.sin(2 * np.pi * (60 * t + 40 * (1 - np.exp(-t / 0.02)))) * np.exp(-t / 0.12)
    noise = rng.standard_normal(int(0.2 * SR))
    hat = np.diff(noise, prepend=0.0) * np.exp(-np.arange(len(noise)) / SR / 0.06)
    hat *= 0.9 / np.abs(hat).max()
    beats = lead + beat * np.arange(bars * 4)
    for time in beats:
        start = round(time * SR)
        audio[start : start + len(kick)] += kick
        off = round((time + beat / 2) * SR)
        audio[off : off + len(hat)] += hat[: max(0, n - off)]
    audio *= 0.9 / np.abs(audio).max()
    return audio[None, :].astype(np.float32), beats


@pytest.fixture(scope="module")
def offbeat_click(tmp_path_factory):
    audio, beats = _click_track(124, 12, 0.6)
    return _write(tmp_path_factory.mktemp("click"), "click", audio), beats


def test_offbeat_hats_louder_than_kicks_grid_stays_on_kicks(offbeat_click):
    path, beats = offbeat_click
    _, info, found = _analyze(path)
    assert info["bpm"] == pytest.approx(124, rel=0.01)
    assert info["offbeat_ratio"] > 1.0
    # every bar line on a kick (any of them: the bars of a click track have no beat 1)
    assert np.median(_nearest_error(found, beats)) < 0.04
    assert len(found) >= 10


def test_house_offbeat_open_hats_bar_lines_on_downbeats(tmp_path):
    spec = SynthTrackSpec("house", 122, 12, swing=0.2, seed=3)
    audio, downbeats, _ = render_track(spec, SR)
    _, info, found = _analyze(_write(tmp_path, "house", audio))
    assert info["offbeat_ratio"] > 1.0
    assert np.median(_nearest_error(found, downbeats)) < 0.04
    assert _f(downbeats, found) >= 0.9


def _pulse_signal(times: np.ndarray, frames: int, height: float = 1.0) -> np.ndarray:
    signal = np.full(frames, 0.02)
    for time in times:
        frame = round(time * FPS)
        if 0 <= frame < frames:
            signal[max(0, frame - 1) : frame + 2] += (
                height * np.array([0.5, 1.0, 0.5])[: min(3, frames - max(0, frame - 1))]
            )
    return signal


def test_offbeat_shift_moves_a_half_beat_grid_and_keeps_a_right_one():
    period, first = 0.5, 1.0
    truth = first + period * np.arange(32)
    frames = int((truth[-1] + 2) * FPS)
    # beat activation: strong on the beats, weaker on the off-beats (hats fool it a little)
    activation = _pulse_signal(truth, frames) + _pulse_signal(truth + period / 2, frames, 0.4)
    low = _pulse_signal(truth, frames)  # kicks and bass only on the beats
    wrong = truth + period / 2
    moved, ratio = beat_grid.offbeat_shift(wrong, [activation, low], FPS)
    assert ratio < 1 / beat_grid.OFFBEAT_MARGIN
    assert np.max(np.abs(moved[:-1] - truth[1:])) < 1e-9
    assert moved[-1] == pytest.approx(truth[-1] + period)
    kept, ratio = beat_grid.offbeat_shift(truth, [activation, low], FPS)
    assert ratio > 1.5
    assert np.array_equal(kept, truth)


# --------------------------------------------------------------------------- 3. tempo change


@pytest.fixture(
    scope="module",
    params=[(0, 1), (4, 5), (2, 3)],
    ids=["seeds0-1", "seeds4-5", "seeds2-3"],
)
def tempo_change(request, tmp_path_factory):
    """16 bars at 118 BPM cut at their closing downbeat, then 16 bars at 139.5 BPM."""
    seed_a, seed_b = request.param
    first = SynthTrackSpec("techno", 118, 16, lead_in_seconds=0.5, seed=seed_a)
    second = SynthTrackSpec("techno", 139.5, 16, lead_in_seconds=0.0, seed=seed_b)
    audio_a, downbeats_a, _ = render_track(first, SR)
    audio_b, downbeats_b, _ = render_track(second, SR)
    cut = round(downbeats_a[-1] * SR)
    change = cut / SR
    audio = np.concatenate([audio_a[:, :cut], audio_b], axis=1)
    truth = np.concatenate([downbeats_a[:-1], change + downbeats_b])
    path = _write(tmp_path_factory.mktemp("change"), "change", audio)
    return path, truth, change


def test_tempo_change_gives_two_sections(tempo_change):
    path, truth, change = tempo_change
    timing, info, found = _analyze(path)
    assert info["n_sections"] == 2, info["section_summary"]
    sections = sorted(timing.sections, key=lambda s: s.start)
    bpm = [float(np.median(s.warp.local_bpm(s.warp.beats[:-1]))) for s in sections]
    assert bpm[0] == pytest.approx(118, rel=0.01)
    assert bpm[1] == pytest.approx(139.5, rel=0.01)
    assert abs(sections[0].end - change) < 60 / 139.5
    assert abs(sections[1].start - change) < 60 / 139.5
    assert _f(truth, found) >= 0.9
    assert np.median(_nearest_error(found, truth)) < 0.04


# --------------------------------------------------------------------------- 4. steady loop


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """One bar of a (humanised) techno pattern tiled 16 times: an exactly steady tempo."""
    spec = SynthTrackSpec("techno", 124, 4, humanize_ms=4.0, lead_in_seconds=0.0, seed=6)
    audio, downbeats, _ = render_track(spec, SR)
    bar = round(downbeats[1] * SR)
    tiled = np.tile(audio[:, :bar], (1, 16))
    truth = np.arange(17) * bar / SR
    bpm = 4 * 60 * SR / bar
    return _write(tmp_path_factory.mktemp("loop"), "loop", tiled), tiled, truth, bpm


def test_tiled_loop_is_steady_straight_and_keeps_every_bar(loop):
    path, audio, truth, bpm = loop
    timing, info, found = _analyze(path)
    assert info["steady"] is True
    assert info["n_sections"] == 1
    warp = timing.sections[0].warp
    local = warp.local_bpm(warp.beats[:-1] + 0.5)
    assert np.ptp(local) / np.median(local) < 1e-6
    assert np.median(local) == pytest.approx(bpm, rel=0.005)
    assert np.median(_nearest_error(found, truth)) < 0.04
    grid = BarGrid(sample_rate=SR, bpm=124, beats_per_bar=4, channels=1)
    rendered = render_bars(audio, SR, timing, grid, BarFilters(), info["bar_trust"])
    assert not [r for r in rendered.rejects if "tempo" in r["reason"]], rendered.rejects
    assert len(rendered.rows) == len(found) - 1 >= 14


def test_regularise_puts_quantised_jittered_beats_on_a_line():
    rng = np.random.default_rng(0)
    truth = 0.37 + (60 / 123.4) * np.arange(96)
    observed = np.round((truth + rng.normal(0, 0.002, len(truth))) * FPS) / FPS
    line, steady = beat_grid.regularise(observed)
    assert steady
    assert np.max(np.abs(line - truth)) < 0.001
    assert np.ptp(np.diff(line)) < 1e-9


def test_regularise_keeps_a_ramp():
    rng = np.random.default_rng(1)
    beats = np.arange(64, dtype=np.float64)
    start, end = 120.0, 132.0  # +10 % over 64 beats, linear in beat position
    k = (end - start) / (64 * start)
    truth = 0.5 + 60 / (start * k) * np.log1p(k * beats)
    observed = np.round((truth + rng.normal(0, 0.002, len(truth))) * FPS) / FPS
    smooth, steady = beat_grid.regularise(observed)
    assert not steady
    tempo = 60 / np.diff(smooth)
    true_tempo = 60 / np.diff(truth)
    assert np.median(np.abs(tempo / true_tempo - 1)) < 0.01
    assert np.median(tempo[-8:]) / np.median(tempo[:8]) > 1.07


# --------------------------------------------------------------------------- 5. long file


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """About four minutes of a 16-bar techno track tiled, written in blocks."""
    spec = SynthTrackSpec("techno", 128, 16, lead_in_seconds=0.0, seed=8)
    audio, downbeats, _ = render_track(spec, SR)
    block = audio[:, : round(downbeats[-1] * SR)].mean(axis=0)
    path = tmp_path_factory.mktemp("long") / "long.wav"
    repeats = int(np.ceil(240 / (len(block) / SR)))
    with sf.SoundFile(path, "w", SR, 1, "PCM_16") as out:
        for _ in range(repeats):
            out.write(block.astype(np.float32))
    return path, repeats * len(block) / SR


def test_chunked_activations_equal_one_chunk(long_file):
    path, duration = long_file
    assert duration > 230
    chunked = compute_activations(path, chunk_seconds=60, overlap_seconds=10)
    whole = compute_activations(path, chunk_seconds=10_000, overlap_seconds=0)
    assert chunked.frames == whole.frames
    np.testing.assert_allclose(chunked.onset, whole.onset, atol=1e-4)
    np.testing.assert_allclose(chunked.chroma, whole.chroma, atol=1e-4)
    # only the bidirectional LSTM sees the chunk edges: measured max difference 0.058
    assert np.max(np.abs(chunked.beat - whole.beat)) < 0.1
    assert np.max(np.abs(chunked.downbeat - whole.downbeat)) < 0.1
    assert np.mean(np.abs(chunked.beat - whole.beat)) < 0.005
    plan = np.full(whole.frames, 128.0)
    beats_chunked = beat_grid.track(chunked.beat + chunked.downbeat, FPS, plan)
    beats_whole = beat_grid.track(whole.beat + whole.downbeat, FPS, plan)
    assert len(beats_chunked) == len(beats_whole)
    assert np.max(np.abs(beats_chunked - beats_whole)) <= 1  # frames (10 ms)
    assert np.mean(beats_chunked == beats_whole) > 0.95


def test_long_file_analysis_finds_the_tempo(long_file):
    path, _ = long_file
    _, info, _ = _analyze(path)
    assert info["bpm"] == pytest.approx(128, rel=0.01)
    assert info["meter"] == 4
    assert info["n_bar_lines"] >= 0.9 * 240 / (4 * 60 / 128)


# --------------------------------------------------------------------------- 6. tempo octave


@pytest.mark.parametrize(
    "style,bpm,bars,seed",
    [
        ("techno", 195, 16, 9),
        ("house", 190, 16, 9),
        ("techno", 87, 10, 9),
        ("house", 87, 10, 9),
        pytest.param(
            "breakbeat",
            195,
            16,
            0,
            marks=pytest.mark.xfail(
                strict=True,
                reason="tracker bug: 129.96 BPM (2/3 of 195, a dotted pulse of the break), "
                "octave_changed False, F 0.41, trust 0.25; at 190 BPM it is right",
            ),
        ),
        pytest.param(
            "metal",
            195,
            16,
            0,
            marks=pytest.mark.xfail(
                strict=True,
                reason="tracker bug: 114.27 BPM in 3 beats a bar (about 7/12 of 195), not "
                "steady, F 0.14, trust 0.00; at 190 and 200 BPM it is right; seed 9 passes",
            ),
        ),
    ],
)
def test_tempo_outside_or_at_edge_of_prior_is_found(tmp_path, style, bpm, bars, seed):
    audio, downbeats, _ = render_track(SynthTrackSpec(style, bpm, bars, seed=seed), SR)
    _, info, found = _analyze(_write(tmp_path, "octave", audio))
    assert info["bpm"] == pytest.approx(bpm, rel=0.01)
    assert _f(downbeats, found) >= 0.9


# --------------------------------------------------------------------------- 7. trust


@pytest.fixture(scope="module")
def clean(late_tracks):
    """The activations of a clean 126 BPM track, its true bar lines and the independent beats."""
    path, downbeats, _ = late_tracks[1]
    acts = compute_activations(path)
    other = trust.independent_beats(acts.onset, FPS, 126.0)
    return acts, downbeats[:-1], other


def _median_trust(acts, lines: np.ndarray, other: np.ndarray) -> float:
    bar_beats = _bar_beats(lines, 60 / 126, 4)
    score = meter.downbeat_evidence(
        bar_beats.ravel(), FPS, acts.downbeat, acts.onset_low, acts.chroma
    ).reshape(bar_beats.shape)
    parts = trust.bar_trust(bar_beats, acts.beat + acts.downbeat, FPS, other, score)
    return float(np.median(parts.trust))


def test_true_bars_are_trusted_and_shifted_bars_are_not(clean):
    acts, lines, other = clean
    beat = 60 / 126
    right = _median_trust(acts, lines, other)
    late = _median_trust(acts, lines[:-1] + beat, other)  # bar line on beat 2
    half = _median_trust(acts, lines[:-1] + beat / 2, other)  # grid on the off-beats
    assert right >= 0.8
    assert late <= right - 0.5
    assert half <= right - 0.5


def test_clean_track_analysis_is_trusted(late_tracks):
    _, info, _ = _analyze(late_tracks[1][0])
    assert info["trust"] >= 0.8
    rows = info["bar_trust"]
    assert len(rows) == info["n_bar_lines"]
    assert np.median([row["trust"] for row in rows]) >= 0.8


def test_evidence_at_is_the_window_maximum_inside_the_signal() -> None:
    """The largest value within two frames of each time, the window cut at the signal's ends,
    0 where it lies wholly outside (times before the start, after the end, mid-frame)."""
    rng = np.random.default_rng(3)
    signal = rng.standard_normal(50)
    seconds = np.array([-0.05, -0.03, -0.02, 0.0, 0.004, 0.126, 0.25, 0.49, 0.5, 0.51, 0.52, 0.6])
    expected = []
    for frame in np.round(seconds * 100).astype(int):
        window = signal[max(0, frame - 2) : max(0, frame + 3)]
        expected.append(window.max() if len(window) else 0.0)
    np.testing.assert_array_equal(beat_grid.evidence_at(signal, seconds, 100), expected)
