"""pipeline.audio.loops: when a recording is read as a loop, and the grid it then gets."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import loops

FPS = 100.0


def onset_envelope(duration: float, hits: np.ndarray, lead: float = 0.0) -> np.ndarray:
    """A spectral-flux-like envelope: a decaying peak at every hit time (plus ``lead``)."""
    envelope = np.zeros(int(np.ceil(duration * FPS)))
    for time in np.asarray(hits) + lead:
        frame = round(time * FPS)
        if 0 <= frame < len(envelope):
            envelope[frame : frame + 4] += np.array([1.0, 0.5, 0.25, 0.1])[: len(envelope) - frame]
    return envelope


def pattern(bpm: float, bars: int, meter: int = 4) -> np.ndarray:
    """Kick on every beat, a hat on every half-beat, an accent varying over the bar."""
    beat = 60.0 / bpm
    return np.arange(bars * meter * 2) * beat / 2


LOUD_START = (-12.0, -15.0)  # first 50 ms, whole file: dBFS
SILENT_START = (-90.0, -15.0)


def fit(duration, beats, meter, onset, level=LOUD_START, meters=(3, 4)):
    return loops.fit_loop(duration, beats, meter, onset, FPS, level, meters, 80.0, 180.0)


def test_a_two_bar_loop_gets_its_bar_lines_from_the_file():
    bpm, bars = 124.0, 2
    duration = bars * 4 * 60 / bpm
    tracked = np.arange(0.27, duration, 60 / bpm)  # the tracker locked to the off-beats
    result = fit(duration, tracked, 4, onset_envelope(duration, pattern(bpm, bars)))
    assert result is not None
    assert (result.bars, result.meter) == (2, 4)
    assert result.bpm == pytest.approx(bpm, rel=1e-9)
    assert "2 bar(s) of 4 beats" in result.reason


def test_a_tracked_tempo_twice_the_loops_is_brought_to_whole_bars_in_range():
    bpm, bars = 110.0, 2
    duration = bars * 4 * 60 / bpm
    tracked = np.arange(0.0, duration, 30 / bpm)  # every half-beat: 220 BPM, out of range
    result = fit(duration, tracked, 4, onset_envelope(duration, pattern(bpm, bars)))
    assert result is not None and result.bpm == pytest.approx(bpm)


def test_a_dotted_pulse_lock_is_read_at_the_loops_tempo():
    bpm, bars = 150.0, 2
    duration = bars * 4 * 60 / bpm
    tracked = np.arange(0.0, duration, 1.5 * 60 / bpm)  # every dotted quarter: 100 BPM
    result = fit(duration, tracked, 4, onset_envelope(duration, pattern(bpm, bars)))
    assert result is not None and (result.bars, result.bpm) == (2, pytest.approx(bpm))


def test_a_silent_lead_in_means_the_file_was_not_cut_on_a_bar_line():
    bpm, bars = 124.0, 2
    duration = bars * 4 * 60 / bpm + 0.3
    onset = onset_envelope(duration, pattern(bpm, bars), lead=0.3)
    beats = np.arange(0.3, duration, 60 / bpm)
    assert fit(duration, beats, 4, onset, SILENT_START) is None
    assert not loops.starts_with_sound(*SILENT_START)


def test_beats_between_the_grid_and_its_half_beats_say_it_is_not_a_loop():
    bpm, bars = 124.0, 2
    duration = bars * 4 * 60 / bpm
    quarter_off = np.arange(0.25, duration, 60 / bpm) + 60 / bpm / 4
    assert fit(duration, quarter_off, 4, onset_envelope(duration, pattern(bpm, bars))) is None


def test_a_long_recording_that_does_not_repeat_is_not_a_loop():
    bpm = 120.0
    duration = 32 * 4 * 60 / bpm  # 32 bars, 64 s
    rng = np.random.default_rng(0)
    hits = np.sort(rng.uniform(0, duration, 400))
    onset = onset_envelope(duration, np.concatenate([[0.0], hits]))
    assert fit(duration, np.arange(0, duration, 0.5), 4, onset) is None


def test_tiles_decide_the_meter_when_the_length_fits_both():
    # one bar of 3/4 tiled four times: 12 beats, which three bars of 4/4 would also fill
    bpm, meter = 140.0, 3
    tile = meter * 60 / bpm
    accents = np.array([0.0, 60 / bpm * 1.5])  # an uneven figure that repeats every bar
    hits = np.concatenate([accents + k * tile for k in range(4)])
    duration = 4 * tile
    onset = onset_envelope(duration, np.concatenate([hits, np.arange(0, duration, 60 / bpm)]))
    assert loops.repeats(onset, FPS, duration) == 4
    result = fit(duration, np.arange(0, duration, 60 / bpm), 4, onset)
    assert result is not None and (result.bars, result.meter) == (4, 3)
    assert "repeats 4 times" in result.reason


def test_a_file_too_short_to_track_is_read_as_one_bar_of_four():
    duration = 1.9  # one bar at 126 BPM
    onset = onset_envelope(duration, pattern(126.3, 1))
    result = loops.fit_loop(duration, None, None, onset, FPS, LOUD_START, (3, 4), 80.0, 180.0)
    assert result is not None and (result.bars, result.meter) == (1, 4)
    long = onset_envelope(7.5, [0.0])
    assert loops.fit_loop(7.5, None, None, long, FPS, LOUD_START, (4,), 80, 180) is None
    assert loops.fit_loop(duration, None, None, onset, FPS, SILENT_START, (4,), 80, 180) is None


def test_phase_offset_is_small_on_the_grid_its_half_beats_and_octaves():
    beat = 0.5
    on = np.arange(0, 10, beat)
    assert loops.phase_offset(on, beat) < 0.01
    assert loops.phase_offset(on + beat / 2, beat) < 0.01
    assert loops.phase_offset(np.arange(0, 10, beat * 2), beat) < 0.01
    assert loops.phase_offset(on + beat / 4, beat) == pytest.approx(0.25)
