from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio.render import BarFilters, BarGrid, render_bars
from pipeline.audio.warp import WarpMap


def test_warp_map_interpolates_and_extrapolates():
    warp = WarpMap(np.array([1.0, 2.0, 2.5]), np.array([0.0, 2.0, 3.0]), 4)
    assert warp.beat_at(1.5) == pytest.approx(1.0)
    assert warp.beat_at(0.0) == pytest.approx(-2.0)  # first segment: 2 beats per second
    assert warp.beat_at(3.0) == pytest.approx(4.0)  # last segment: 2 beats per second
    assert warp.seconds_at(warp.beat_at(2.2)) == pytest.approx(2.2)
    assert warp.local_bpm(0.5) == pytest.approx(120.0)
    assert WarpMap.from_dict(warp.to_dict()).beat_at(1.7) == pytest.approx(warp.beat_at(1.7))


def test_warp_map_rejects_non_monotone():
    with pytest.raises(ValueError, match="strictly increasing"):
        WarpMap(np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 2.0]), 4)


def test_bar_starts_only_complete_bars():
    warp = WarpMap.constant_tempo(120.0, 0.3, 4, 10.0)  # 2 s bars from 0.3 s
    assert np.allclose(warp.bar_starts(10.0), [0.3, 2.3, 4.3, 6.3, 8.3])


def clicks(bpm: float, offset: float, seconds: float, sr: int) -> np.ndarray:
    """Stereo clicks on every beat, loud on downbeats."""
    audio = np.zeros((2, int(seconds * sr)), np.float32)
    n = 0
    while (start := int((offset + n * 60 / bpm) * sr)) < audio.shape[1] - 400:
        burst = np.hanning(400) * np.sin(2 * np.pi * 1000 * np.arange(400) / sr)
        audio[:, start : start + 400] += (0.9 if n % 4 == 0 else 0.3) * burst
        n += 1
    return audio


def onset(bar: np.ndarray) -> int:
    env = np.abs(bar[0])
    return int(np.argmax(env > 0.3 * env.max()))


@pytest.mark.parametrize("source_bpm", [96.0, 150.0])
def test_render_puts_downbeats_on_the_grid(source_bpm):
    sr = 22050
    audio = clicks(source_bpm, 0.77, 14.0, sr)
    grid = BarGrid(sample_rate=8000, bpm=120, beats_per_bar=4, channels=1)
    warp = WarpMap.constant_tempo(source_bpm, 0.77, 4, 14.0)
    rendered = render_bars(audio, sr, warp, grid, BarFilters(normalize_dbfs=None))
    expected_bars = int((14.0 - 0.77) / (4 * 60 / source_bpm))
    assert rendered.bars.shape == (expected_bars, 1, 16000)
    # Rubber Band's phase vocoder places transients on its hop grid: a few ms of jitter, no drift.
    onsets_ms = np.array([onset(bar) for bar in rendered.bars]) / 8.0
    assert onsets_ms.max() < 15.0
    assert np.median(onsets_ms) < 8.0
    assert rendered.rows[0]["stretch"] == pytest.approx(source_bpm / 120, rel=1e-6)


def test_render_follows_tempo_change():
    sr = 16000
    first, second = 100.0, 140.0
    bar1, bar2 = 240 / first, 240 / second
    audio = np.concatenate(
        [clicks(first, 0.5, 0.5 + 3 * bar1, sr), clicks(second, 0.0, 3 * bar2 + 0.1, sr)], axis=1
    )
    seconds = np.array([0.5, 0.5 + 12 * 60 / first, 0.5 + 3 * bar1 + 12 * 60 / second])
    warp = WarpMap(seconds, np.array([0.0, 12.0, 24.0]), 4)
    rendered = render_bars(
        audio, sr, warp, BarGrid(8000, 120, 4, 1), BarFilters(normalize_dbfs=None)
    )
    assert len(rendered.bars) == 6
    assert all(onset(bar) < 0.015 * 8000 for bar in rendered.bars)
    assert [round(r["local_bpm"]) for r in rendered.rows] == [100] * 3 + [140] * 3


def test_filters_record_reasons():
    sr = 8000
    audio = clicks(120, 0.0, 12.0, sr)
    audio[:, 4 * sr : 6 * sr] = 0  # bar 3 silent
    warp = WarpMap.constant_tempo(120, 0.0, 4, 12.0)
    grid = BarGrid(8000, 120, 4, 2)
    rendered = render_bars(audio, sr, warp, grid, BarFilters(silence_dbfs=-50))
    assert [r["bar_index"] for r in rendered.rejects] == [2]
    assert "silent" in rendered.rejects[0]["reason"]
    strict = render_bars(audio, sr, warp, grid, BarFilters(min_stretch=1.5, max_stretch=2.0))
    assert len(strict.bars) == 0 and all("stretch ratio" in r["reason"] for r in strict.rejects)
    # spiky clicks cannot reach -20 dBFS RMS without clipping: the peak limiter wins
    peaks = np.abs(rendered.bars).max(axis=(1, 2))
    assert np.allclose(peaks, 0.999, atol=1e-3)


def test_loudness_normalisation_reaches_target():
    noise = np.random.default_rng(0).normal(0, 0.01, (1, 8000 * 9)).astype(np.float32)
    warp = WarpMap.constant_tempo(120, 0.0, 4, 9.0)
    rendered = render_bars(noise, 8000, warp, BarGrid(8000, 120, 4, 1), BarFilters())
    rms = np.sqrt(np.mean(rendered.bars.astype(np.float64) ** 2, axis=(1, 2)))
    assert np.allclose(20 * np.log10(rms), -20, atol=0.2)


def test_meter_mismatch_is_an_error():
    warp = WarpMap.constant_tempo(120, 0.0, 3, 10.0)
    with pytest.raises(ValueError, match="3 beats per bar"):
        render_bars(
            np.zeros((1, 80000), np.float32), 8000, warp, BarGrid(8000, 120, 4, 1), BarFilters()
        )


def test_tempo_unstable_bar_is_rejected():
    sr = 8000
    audio = clicks(120, 0.0, 12.0, sr)
    # bar 2 (beats 4-8) has one beat 30 % longer than the others
    seconds = np.array([0.0, 2.0, 2.5, 3.15, 3.65, 4.15, 12.0])
    beats = np.array([0.0, 4.0, 5.0, 6.0, 7.0, 8.0, 8.0 + (12.0 - 4.15) * 2])
    warp = WarpMap(seconds, beats, 4)
    rendered = render_bars(audio, sr, warp, BarGrid(8000, 120, 4, 1), BarFilters())
    assert [r["bar_index"] for r in rendered.rejects] == [1]
    assert "tempo unstable within the bar" in rendered.rejects[0]["reason"]
    assert all(r["tempo_change"] < 0.01 for r in rendered.rows)


def test_near_duplicate_bars_are_dropped_when_asked():
    sr = 8000
    audio = clicks(120, 0.0, 10.0, sr)  # every bar identical
    noise = np.random.default_rng(1).normal(0, 0.05, (2, 2 * sr)).astype(np.float32)
    audio[:, 4 * sr : 6 * sr] += noise  # bar 3 differs
    warp = WarpMap.constant_tempo(120, 0.0, 4, 10.0)
    grid = BarGrid(8000, 120, 4, 1)
    kept = render_bars(audio, sr, warp, grid, BarFilters(dedupe_threshold=None))
    deduped = render_bars(audio, sr, warp, grid, BarFilters(dedupe_threshold=0.2))
    assert len(kept.bars) == 5
    assert [r["bar_index"] for r in deduped.rows] == [0, 2]
    assert all("near-duplicate of bar 0" in r["reason"] for r in deduped.rejects)
