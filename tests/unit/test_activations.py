"""Chunked, streamed activations: stitching, truth, errors, odd files, frame convention."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import find_peaks

from pipeline.audio.activations import FPS, TrackActivations, compute_activations
from pipeline.audio.io import AudioError, read_audio
from pipeline.audio.resample import resample
from pipeline.data.synth import SynthTrackSpec, render_track

# About 71 s: four 20 s chunks when stitched, one pass when chunk_seconds covers it.
LONG = SynthTrackSpec("house", bpm=124.0, n_bars=36, swing=0.2, seed=3)
SHORT = SynthTrackSpec("techno", bpm=128.0, n_bars=12, seed=1)  # about 24 s
WHOLE = 1e6  # chunk_seconds that covers any test file: one pass


def _write(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    sf.write(path, np.asarray(audio).T, sample_rate, subtype="FLOAT")
    return path


def _peaks(activation: np.ndarray) -> np.ndarray:
    return find_peaks(activation, height=0.3, distance=10)[0]


def _max_near(activation: np.ndarray, seconds: np.ndarray, frames: int) -> np.ndarray:
    index = np.round(np.asarray(seconds) * FPS).astype(int)
    index = index[index < len(activation)]
    return np.array([activation[max(0, i - frames) : i + frames + 1].max() for i in index])


@pytest.fixture(scope="module")
def long_track(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    audio, downbeats, beats = render_track(LONG)
    path = _write(tmp_path_factory.mktemp("act") / "long.wav", audio, 44_100)
    return path, downbeats, beats


@pytest.fixture(scope="module")
def whole(long_track) -> TrackActivations:
    return compute_activations(long_track[0], chunk_seconds=WHOLE)


def test_stitched_chunks_match_one_pass(long_track, whole):
    stitched = compute_activations(long_track[0], chunk_seconds=20.0, overlap_seconds=15.0)
    # Spectral features are frame-local and every chunk sees each kept frame's full windows
    # (the resampled signal and spectrogram are exact), so they agree to float32 rounding.
    for name in ("onset", "onset_low", "chroma"):
        np.testing.assert_allclose(getattr(stitched, name), getattr(whole, name), atol=1e-5)
    # madmom's bidirectional LSTM carries state over tens of seconds on a steady loop: the
    # measured error is 0.07 at beat peaks (0.0005 on average) and does not shrink from 10 to
    # 30 s of overlap (0.073 -> 0.064), so it is the network's long memory, not missing
    # context. What the DBN reads, the peaks, stays put.
    for name in ("beat", "downbeat"):
        a, b = getattr(stitched, name), getattr(whole, name)
        difference = np.abs(a - b)
        print(f"{name}: max abs difference {difference.max():.4f}, mean {difference.mean():.6f}")
        assert difference.max() < 0.1
        assert difference.mean() < 0.002
        peaks, reference = _peaks(a), _peaks(b)
        assert len(peaks) == len(reference) > 30
        # A peak moves only when it is a plateau: its two top frames differ by less than the
        # stitching error, and then by one frame (madmom's peaks are often two frames wide).
        moved = peaks != reference
        print(f"{name}: {moved.sum()} of {len(peaks)} peaks moved by a frame")
        assert np.abs(peaks - reference).max() <= 1
        assert np.all(np.abs(b[peaks[moved]] - b[reference[moved]]) < difference.max())
        assert moved.mean() <= 0.2
    assert stitched.rms_dbfs == pytest.approx(whole.rms_dbfs, abs=1e-9)


def test_activations_peak_at_the_truth(long_track, whole):
    _, downbeats, beats = long_track
    either = whole.beat + whole.downbeat
    # Every true beat has a strong beat activation within 50 ms; the offbeats have none.
    assert np.quantile(_max_near(either, beats, 5), 0.05) > 0.5
    offbeats = (beats[:-1] + beats[1:]) / 2
    assert _max_near(either, offbeats, 2).max() < 0.1
    # Downbeats carry the downbeat activation; the other beats do not.
    assert _max_near(whole.downbeat, downbeats, 5).min() > 0.5
    others = beats[np.min(np.abs(beats[:, None] - downbeats[None, :]), axis=1) > 0.05]
    assert _max_near(whole.downbeat, others, 2).max() < 0.2
    # Onset flux is higher on the beats (kick + bass) than on the offbeats.
    for onset in (whole.onset, whole.onset_low):
        assert np.median(_max_near(onset, beats, 2)) > np.median(_max_near(onset, offbeats, 2))
    assert whole.chroma.shape == (whole.frames, 12) and whole.chroma.max() == pytest.approx(1)


def test_frame_convention_matches_madmom_on_the_whole_file(tmp_path):
    """Length ceil(ceil(n * 44100 / sr) / 441) and values: madmom on the whole resampled file."""
    from madmom.audio.signal import Signal

    from pipeline.audio.downbeats import downbeat_network

    audio = render_track(SHORT, 22_050)[0]
    path = _write(tmp_path / "short.wav", audio, 22_050)
    ours = compute_activations(path, chunk_seconds=WHOLE)
    samples, sample_rate = read_audio(path)
    mono = resample(samples.mean(axis=0), sample_rate, 44_100)
    theirs = downbeat_network()(Signal(mono, sample_rate=44_100))
    n = samples.shape[1]
    assert ours.frames == len(theirs) == math.ceil(math.ceil(n * 44_100 / 22_050) / 441)
    assert ours.frames == math.ceil(ours.duration * FPS)
    np.testing.assert_allclose(ours.beat, theirs[:, 0], atol=1e-3)
    np.testing.assert_allclose(ours.downbeat, theirs[:, 1], atol=1e-3)
    for name in ("onset", "onset_low", "downbeat"):
        assert len(getattr(ours, name)) == ours.frames
    assert (ours.duration, ours.sample_rate, ours.channels) == (n / 22_050, 22_050, 2)
    rms = np.sqrt(np.mean(np.square(samples, dtype=np.float64)))
    assert ours.rms_dbfs == pytest.approx(20 * np.log10(rms), abs=1e-6)


@pytest.fixture(scope="module")
def short_44k(tmp_path_factory) -> TrackActivations:
    path = _write(tmp_path_factory.mktemp("act") / "short.wav", render_track(SHORT)[0], 44_100)
    return compute_activations(path, chunk_seconds=10.0, overlap_seconds=10.0)


@pytest.mark.parametrize("sample_rate", [8_000, 22_050, 48_000])
def test_odd_sample_rates_align_with_44k(tmp_path, short_44k, sample_rate):
    path = _write(tmp_path / "odd.wav", render_track(SHORT, sample_rate)[0], sample_rate)
    odd = compute_activations(path, chunk_seconds=10.0, overlap_seconds=10.0)
    assert odd.sample_rate == sample_rate
    assert abs(odd.frames - short_44k.frames) <= 1
    reference = _peaks(short_44k.beat + short_44k.downbeat)
    moved = [
        np.argmax((odd.beat + odd.downbeat)[p - 3 : p + 4]) - 3
        for p in reference
        if 3 <= p < odd.frames - 3
    ]
    assert len(moved) > 40 and max(np.abs(moved)) <= 1  # same frames, 10 ms at most apart


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_channel_counts_mix_to_the_same_mono(tmp_path, short_44k, channels):
    stereo = render_track(SHORT)[0]
    audio = {1: stereo.mean(axis=0, keepdims=True), 2: stereo, 6: np.tile(stereo, (3, 1))}
    path = _write(tmp_path / "multi.wav", audio[channels], 44_100)
    multi = compute_activations(path, chunk_seconds=10.0, overlap_seconds=10.0)
    assert multi.channels == channels
    np.testing.assert_allclose(multi.beat, short_44k.beat, atol=1e-4)
    np.testing.assert_allclose(multi.onset, short_44k.onset, rtol=1e-4, atol=1e-4)


def test_short_file_one_pass(tmp_path):
    path = _write(tmp_path / "tiny.wav", np.zeros((1, 10), np.float32), 44_100)
    tiny = compute_activations(path)
    assert tiny.frames == 1 and tiny.rms_dbfs == pytest.approx(-240.0)


def _nan_file(path: Path) -> None:
    audio = np.zeros((100_000, 1), np.float32)
    audio[90_000] = np.nan  # past the first read block
    sf.write(path, audio, 44_100, subtype="FLOAT")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda path: None, "file not found"),
        (lambda path: path.write_bytes(b""), "empty file"),
        (lambda path: path.write_bytes(b"RIFF1234WAVE" * 3), "unreadable audio"),
        (lambda path: sf.write(path, np.zeros((0, 1)), 44_100), "no audio frames"),
        (lambda path: sf.write(path, np.zeros((100, 1)), 4_000), "sample rate 4000 Hz outside"),
        (lambda path: sf.write(path, np.zeros((100, 1)), 200_000), "sample rate 200000 Hz"),
        (lambda path: sf.write(path, np.zeros((100, 9)), 44_100), "9 channels"),
        (_nan_file, "NaN or infinite"),
    ],
)
def test_bad_files_name_the_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as info:
        compute_activations(path)
    assert info.value.path == str(path)
    if path.exists():  # the same verdict as read_audio's
        with pytest.raises(AudioError, match=reason):
            read_audio(path)
