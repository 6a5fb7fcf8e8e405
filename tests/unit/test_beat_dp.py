"""Our dynamic-programming beat tracker gives librosa's beats, without librosa's start-up cost."""

from __future__ import annotations

import librosa.beat
import numpy as np
import pytest

from pipeline.audio.beat_dp import beat_frames

FPS = 100


def envelope(bpm_curve: np.ndarray, seed: int, offbeats: float = 0.3) -> np.ndarray:
    """Pulses at the beats of a tempo curve (one value per frame), weaker ones between them,
    noise everywhere: an onset envelope whose beats are known."""
    rng = np.random.default_rng(seed)
    phase = np.cumsum(bpm_curve / 60.0 / FPS)
    signal = 0.05 * rng.random(len(bpm_curve))
    beat = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
    half = np.flatnonzero(np.diff(np.floor(phase + 0.5)) > 0) + 1
    signal[beat] += 1.0 + 0.2 * rng.random(len(beat))
    signal[half] += offbeats * rng.random(len(half))
    return signal


def librosa_beats(onset: np.ndarray, bpm, tightness: float) -> np.ndarray:
    _, frames = librosa.beat.beat_track(
        onset_envelope=onset,
        sr=FPS * 441,
        hop_length=441,
        bpm=bpm,
        tightness=tightness,
        trim=False,
        units="frames",
    )
    return np.asarray(frames)


CURVES = {
    "steady 128": lambda n: np.full(n, 128.0),
    "ramp 110-135": lambda n: np.linspace(110.0, 135.0, n),
    "step 96-128": lambda n: np.where(np.arange(n) < n // 2, 96.0, 128.0),
    "fast 197": lambda n: np.full(n, 197.0),
}


@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("tightness", [50.0, 100.0, 400.0])
def test_same_beats_as_librosa(curve: str, tightness: float) -> None:
    bpm = CURVES[curve](6000)
    onset = envelope(bpm, seed=len(curve))
    expected = librosa_beats(onset, bpm, tightness)
    assert len(expected) > 50
    np.testing.assert_array_equal(beat_frames(onset, FPS, bpm, tightness), expected)
    scalar = float(bpm[0])  # one tempo for the whole envelope, as a scalar
    np.testing.assert_array_equal(
        beat_frames(onset, FPS, scalar, tightness), librosa_beats(onset, scalar, tightness)
    )


def test_beats_follow_the_pulses_not_the_offbeats() -> None:
    bpm = np.full(3000, 120.0)
    onset = envelope(bpm, seed=1, offbeats=0.6)
    found = beat_frames(onset, FPS, bpm)
    on_pulse = onset[found] > 0.9
    assert on_pulse.mean() > 0.95
    assert np.median(np.diff(found)) == 50


def test_silence_gives_no_beats_and_bad_tempo_is_refused() -> None:
    assert len(beat_frames(np.zeros(500), FPS, 120.0)) == 0
    with pytest.raises(ValueError, match="positive"):
        beat_frames(np.ones(500), FPS, 0.0)
