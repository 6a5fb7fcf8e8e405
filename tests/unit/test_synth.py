"""Unit tests for the synthesised demo corpus (pipeline.data.synth)."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from pipeline.data.synth import (
    LICENCE,
    STYLE_BPM_RANGES,
    STYLES,
    TRUTH_COLUMNS,
    SynthTrackSpec,
    beat_to_seconds,
    make_corpus,
    random_specs,
    render_track,
)

SR = 44100
PEAK = 10 ** (-1 / 20)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def _onset_ratios(audio: np.ndarray, times: np.ndarray, sr: int, win: float = 0.03) -> np.ndarray:
    """RMS in ``win`` after each time divided by RMS in ``win`` before it (mono mix)."""
    mono = audio.mean(axis=0)
    w = int(win * sr)
    out = []
    for t in times:
        i = round(t * sr)
        after = _rms(mono[i : i + w])
        before = _rms(mono[max(i - w, 0) : i]) if i > 0 else 0.0
        out.append(after / max(before, 1e-9))
    return np.array(out)


# --------------------------------------------------------------------------- styles


def test_styles_and_labels() -> None:
    assert STYLES[:5] == ("techno", "house", "breakbeat", "halftime", "metal")
    assert len(set(STYLES)) == len(STYLES)
    for i, style in enumerate(STYLES):
        assert SynthTrackSpec(style, 120.0, 2).label == i
        lo, hi = STYLE_BPM_RANGES[style]
        assert 90.0 <= lo < hi <= 175.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"style": "polka"},
        {"bpm": 0.0},
        {"bpm_end": -1.0},
        {"n_bars": 0},
        {"beats_per_bar": 1},
        {"swing": 0.6},
        {"humanize_ms": -1.0},
        {"lead_in_seconds": -0.1},
    ],
)
def test_invalid_spec_rejected(kwargs: dict) -> None:
    base = {"style": "techno", "bpm": 120.0, "n_bars": 2}
    with pytest.raises(ValueError):
        SynthTrackSpec(**{**base, **kwargs})


# --------------------------------------------------------------------------- rendering


def test_determinism() -> None:
    spec = SynthTrackSpec(
        "house", 124.0, 4, swing=0.2, humanize_ms=5.0, lead_in_seconds=0.8, seed=7
    )
    a1, d1, b1 = render_track(spec)
    a2, d2, b2 = render_track(spec)
    assert a1.tobytes() == a2.tobytes()
    assert np.array_equal(d1, d2) and np.array_equal(b1, b2)
    a3, d3, _ = render_track(dataclasses.replace(spec, seed=8))
    assert a3.shape == a1.shape
    assert not np.array_equal(a1, a3)
    assert np.array_equal(d1, d3)  # the grid depends on tempo/lead-in only


@pytest.mark.parametrize("style", STYLES)
def test_shape_level_and_stereo(style: str) -> None:
    spec = SynthTrackSpec(style, 128.0, 4, lead_in_seconds=0.6, seed=1)
    audio, downbeats, _ = render_track(spec, sample_rate=SR)
    assert audio.dtype == np.float32
    assert audio.ndim == 2 and audio.shape[0] == 2
    assert np.isfinite(audio).all()
    assert np.max(np.abs(audio)) == pytest.approx(PEAK, abs=1e-4)
    # mild panning: channels differ but are strongly correlated
    assert not np.allclose(audio[0], audio[1])
    corr = np.corrcoef(audio[0], audio[1])[0, 1]
    assert 0.5 < corr < 0.9999
    # the audio covers the last (closing) downbeat plus a ring-out
    duration = audio.shape[1] / SR
    assert downbeats[-1] + 0.5 < duration < downbeats[-1] + 2.0
    # something audible every bar
    for t0, t1 in itertools.pairwise(downbeats):
        assert _rms(audio[:, int(t0 * SR) : int(t1 * SR)]) > 0.02


def test_sample_rate_parameter() -> None:
    spec = SynthTrackSpec("techno", 130.0, 2, seed=3)
    a44, d44, _ = render_track(spec, 44100)
    a22, d22, _ = render_track(spec, 22050)
    assert abs(a22.shape[1] * 2 - a44.shape[1]) <= 2
    assert np.array_equal(d44, d22)


@pytest.mark.parametrize("style", STYLES)
def test_downbeat_grid_constant_tempo(style: str) -> None:
    spec = SynthTrackSpec(style, 137.0, 6, lead_in_seconds=0.913, seed=11)
    _, downbeats, beats = render_track(spec)
    # n_bars bars, delimited by n_bars + 1 downbeats (the last is the closing hit)
    assert len(downbeats) == spec.n_bars + 1
    assert downbeats[0] == pytest.approx(spec.lead_in_seconds, abs=1e-12)
    np.testing.assert_allclose(np.diff(downbeats), 60.0 / 137.0 * 4, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.diff(beats), 60.0 / 137.0, rtol=0, atol=1e-9)
    # every downbeat is a beat; lead-in beats precede the first downbeat without a downbeat
    assert np.isin(np.round(downbeats, 9), np.round(beats, 9)).all()
    assert (beats >= 0).all()
    assert ((beats < downbeats[0] - 1e-9).sum()) < spec.beats_per_bar


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("beats_per_bar", [4, 3])
def test_onset_energy_at_downbeats(style: str, beats_per_bar: int) -> None:
    spec = SynthTrackSpec(
        style,
        float(np.mean(STYLE_BPM_RANGES[style])),
        5,
        beats_per_bar=beats_per_bar,
        swing=0.15 if style != "metal" else 0.0,
        lead_in_seconds=0.77,
        seed=5,
    )
    audio, downbeats, _ = render_track(spec)
    ratios = _onset_ratios(audio, downbeats, SR)
    assert ratios.min() > 1.2, ratios  # every downbeat is an onset ...
    assert np.median(ratios) > 2.0, ratios  # ... and typically a strong one (> +6 dB)
    # the downbeat windows are louder than the average of the track
    mono = audio.mean(axis=0)
    track_rms = _rms(mono[int(downbeats[0] * SR) : int(downbeats[-1] * SR)])
    w = int(0.03 * SR)
    db_rms = [_rms(mono[int(t * SR) : int(t * SR) + w]) for t in downbeats]
    assert np.median(db_rms) > 1.15 * track_rms


def test_onset_energy_survives_humanisation() -> None:
    spec = SynthTrackSpec(
        "techno", 130.0, 6, swing=0.05, humanize_ms=4.0, lead_in_seconds=0.5, seed=2
    )
    audio, downbeats, _ = render_track(spec)
    # jitter is clipped to 2.5 sd = 10 ms: compare 30 ms windows 15 ms either side of the grid
    ratios = _onset_ratios(audio, downbeats - 0.012, SR, win=0.03)
    assert np.median(ratios) > 1.5, ratios


def test_swing_and_humanisation_change_audio_not_grid() -> None:
    spec = SynthTrackSpec("house", 122.0, 4, lead_in_seconds=0.5, seed=4)
    a0, d0, b0 = render_track(spec)
    for change in ({"swing": 0.3}, {"humanize_ms": 6.0}):
        a1, d1, b1 = render_track(dataclasses.replace(spec, **change))
        assert not np.array_equal(a0, a1)
        assert np.array_equal(d0, d1) and np.array_equal(b0, b1)


def test_three_four() -> None:
    spec = SynthTrackSpec("breakbeat", 126.0, 7, beats_per_bar=3, lead_in_seconds=1.1, seed=9)
    audio, downbeats, beats = render_track(spec)
    assert len(downbeats) == 8
    assert downbeats[0] == pytest.approx(1.1)
    np.testing.assert_allclose(np.diff(downbeats), 3 * 60.0 / 126.0, atol=1e-9)
    np.testing.assert_allclose(np.diff(beats), 60.0 / 126.0, atol=1e-9)
    first = int(np.argmin(np.abs(beats - downbeats[0])))
    np.testing.assert_allclose(beats[first::3], downbeats, atol=1e-9)
    assert audio.shape[1] / SR > downbeats[-1]


def _reference_time(spec: SynthTrackSpec, b: float, steps: int = 200_000) -> float:
    """Numerically integrate 60 / bpm(beat) with bpm linear in beat position."""
    n = spec.n_bars * spec.beats_per_bar
    x = np.linspace(0.0, b, steps + 1)
    bpm = spec.bpm + (spec.end_bpm - spec.bpm) * x / n
    y = 60.0 / bpm
    return spec.lead_in_seconds + float(np.sum((y[1:] + y[:-1]) * 0.5 * np.diff(x)))


@pytest.mark.parametrize(("bpm", "bpm_end", "bpb"), [(120.0, 150.0, 4), (140.0, 110.0, 3)])
def test_tempo_change_truth(bpm: float, bpm_end: float, bpb: int) -> None:
    spec = SynthTrackSpec(
        "techno", bpm, 8, beats_per_bar=bpb, bpm_end=bpm_end, lead_in_seconds=0.6, seed=6
    )
    audio, downbeats, beats = render_track(spec)
    n = spec.n_bars * bpb
    assert len(downbeats) == spec.n_bars + 1
    assert downbeats[0] == pytest.approx(0.6)
    # exact closed form vs numerical integration of the tempo curve
    for k in (1, n // 2, n):
        assert beat_to_seconds(spec, k) == pytest.approx(_reference_time(spec, k), abs=1e-6)
    np.testing.assert_allclose(downbeats, beat_to_seconds(spec, np.arange(spec.n_bars + 1) * bpb))
    ibi = np.diff(beats[beats >= downbeats[0] - 1e-9])
    assert len(ibi) == n
    if bpm_end > bpm:
        assert (np.diff(ibi) < 0).all()
    else:
        assert (np.diff(ibi) > 0).all()
    # local tempo at start/end matches bpm / bpm_end (mid-beat tempo of the first/last beat)
    assert 60.0 / ibi[0] == pytest.approx(bpm + (bpm_end - bpm) * 0.5 / n, rel=1e-3)
    assert 60.0 / ibi[-1] == pytest.approx(bpm_end - (bpm_end - bpm) * 0.5 / n, rel=1e-3)
    first = int(np.argmin(np.abs(beats - downbeats[0])))
    np.testing.assert_allclose(beats[first::bpb], downbeats, atol=1e-9)
    assert np.median(_onset_ratios(audio, downbeats, SR)) > 2.0


def test_lead_in_zero_and_long() -> None:
    _, d, b = render_track(SynthTrackSpec("metal", 150.0, 2, lead_in_seconds=0.0, seed=1))
    assert d[0] == 0.0 and b[0] == 0.0
    # a lead-in longer than a bar still holds no downbeat before the first one
    spec = SynthTrackSpec("techno", 175.0, 2, beats_per_bar=3, lead_in_seconds=1.5, seed=3)
    _, d, b = render_track(spec)
    assert d[0] == pytest.approx(1.5)
    assert (b < d[0] - 1e-9).sum() <= 2


# --------------------------------------------------------------------------- specs & corpus


def test_random_specs() -> None:
    specs = random_specs(3, STYLES, (90.0, 175.0), 8, seed=42)
    assert len(specs) == 3 * len(STYLES)
    assert [s.style for s in specs] == [st for st in STYLES for _ in range(3)]
    for s in specs:
        lo, hi = STYLE_BPM_RANGES[s.style]
        assert lo <= s.bpm <= hi
        assert 0.0 <= s.swing <= 0.5 and s.humanize_ms >= 0.0
        assert 0.3 <= s.lead_in_seconds <= 1.5
        assert s.n_bars == 8 and s.beats_per_bar == 4 and s.bpm_end is None
    assert specs == random_specs(3, STYLES, (90.0, 175.0), 8, seed=42)
    assert specs != random_specs(3, STYLES, (90.0, 175.0), 8, seed=43)
    assert len({s.seed for s in specs}) == len(specs)
    # narrower user range: the intersection is respected
    for s in random_specs(5, ["techno", "house"], (125.0, 127.0), 4, seed=1):
        assert 125.0 <= s.bpm <= 127.0
    # disjoint ranges fall back to the user range
    for s in random_specs(5, ["metal"], (90.0, 100.0), 4, seed=1):
        assert 90.0 <= s.bpm <= 100.0
    with pytest.raises(ValueError):
        random_specs(1, ["polka"], (90.0, 175.0), 4, seed=1)


def test_make_corpus_roundtrip(tmp_path: Path) -> None:
    specs = [
        *random_specs(2, ["techno", "halftime"], (90.0, 175.0), 3, seed=5),
        SynthTrackSpec(
            "metal", 150.0, 3, beats_per_bar=3, bpm_end=160.0, lead_in_seconds=0.4, seed=1
        ),
    ]
    table = make_corpus(tmp_path / "c", specs, sample_rate=22050)
    assert list(table.columns) == list(TRUTH_COLUMNS)
    assert list(table.path) == [
        "techno/techno_000.wav",
        "techno/techno_001.wav",
        "halftime/halftime_000.wav",
        "halftime/halftime_001.wav",
        "metal/metal_000.wav",
    ]
    loaded = pd.read_csv(tmp_path / "c" / "truth.csv")
    pd.testing.assert_frame_equal(loaded, table, check_dtype=False)
    assert (loaded.licence == LICENCE).all()
    assert list(loaded.label) == [STYLES.index(s) for s in loaded["style"]]
    assert list(loaded.bpm_end) == [s.end_bpm for s in specs]
    assert not list((tmp_path / "c").rglob("*.tmp*"))

    for spec, row in zip(specs, loaded.itertuples(), strict=True):
        info = sf.info(tmp_path / "c" / row.path)
        assert info.samplerate == 22050 and info.channels == 2 and info.subtype == "PCM_16"
        assert info.frames / 22050 == pytest.approx(row.duration)
        audio, downbeats, beats = render_track(spec, 22050)
        parsed = np.array([float(x) for x in row.downbeats.split()])
        np.testing.assert_allclose(parsed, downbeats, atol=1e-6)
        np.testing.assert_allclose([float(x) for x in row.beats.split()], beats, atol=1e-6)
        assert row.first_downbeat == pytest.approx(spec.lead_in_seconds)
        assert row.n_bars == spec.n_bars and row.beats_per_bar == spec.beats_per_bar
        data, _ = sf.read(tmp_path / "c" / row.path, dtype="float32", always_2d=True)
        np.testing.assert_allclose(data.T, audio, atol=1.5 / 32768)

    # deterministic bytes
    make_corpus(tmp_path / "d", specs[:2], sample_rate=22050)
    for rel in table.path[:2]:
        assert (tmp_path / "c" / rel).read_bytes() == (tmp_path / "d" / rel).read_bytes()
