"""Frame-wise activations of a recording (madmom's beat/downbeat RNN, onset flux, chroma),
computed in overlapping chunks so that memory does not grow with the length of the file.

Frame convention (madmom's, for every array here): frame ``i`` is centred on sample
``i * 441`` of the signal resampled to 44.1 kHz, i.e. at ``i / FPS`` seconds, and a file of
``n`` samples at ``sr`` Hz has ``ceil(ceil(n * 44100 / sr) / 441)`` frames (madmom's
``end='normal'`` framing of the resampled signal), so ``len == ceil(duration * FPS)`` up to
the resampler's rounding.

How a chunk is made exact:

* the 44.1 kHz signal is resampled from the file with a few input samples of context on each
  side (more than the polyphase filter's half-length) and starting on a sample whose position
  maps onto an output sample exactly, so it equals the whole-file resampling sample for sample;
* the spectrogram features (madmom's, plus onset flux and chroma) are frame-local, so they are
  computed from a signal that covers each kept frame's widest window plus a few frames of
  difference lag: they equal the whole-file features up to float32 rounding;
* only the RNN (a bidirectional LSTM) sees the chunk's edges: each chunk runs it on
  ``overlap_seconds`` of extra frames on both sides and keeps its middle.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.fft
import soundfile as sf
from scipy.signal import resample_poly

from pipeline.audio.io import AudioError, dbfs, head_rms_dbfs, probe_audio, read_blocks

FPS = 100
SAMPLE_RATE = 44_100  # madmom's networks are trained at 44.1 kHz
HOP = SAMPLE_RATE // FPS
FRAME_SIZES = (1024, 2048, 4096)  # madmom's RNNDownBeatProcessor: three STFT resolutions
BANDS_PER_OCTAVE = (3, 6, 12)
ONSET_FRAME_SIZE = 2048  # onset flux: the 2048-sample branch's log-filtered bands
LOW_BAND_HZ = 200.0  # onset_low: bands centred below this (kicks, bass notes)
CHROMA_FMIN, CHROMA_FMAX = 65.0, 2100.0  # C2 .. C7, from the 4096-sample spectrum
_MAX_HALF_WINDOW = max(FRAME_SIZES) // 2
_DIFF_CONTEXT = 4  # frames before a chunk for madmom's spectral differences (lag <= 2)
HEAD_SECONDS = 0.05
_BLOCK_FRAMES = 1024  # STFT frames per FFT batch
_READ_BLOCK = 1 << 16  # file frames per soundfile read


@dataclass(frozen=True)
class TrackActivations:
    """Everything the trackers need, at FPS frames per second (frame i at i / FPS s)."""

    beat: np.ndarray  # float32 [frames]: madmom's P(beat, not downbeat)
    downbeat: np.ndarray  # float32 [frames]: madmom's P(downbeat)
    onset: np.ndarray  # float32 [frames]: log-magnitude spectral flux, half-wave rectified
    onset_low: np.ndarray  # float32 [frames]: the same over bands centred below 200 Hz
    chroma: np.ndarray  # float32 [frames, 12]: C..B energy, max-normalised per frame, at FPS
    duration: float  # seconds
    sample_rate: int  # of the file
    channels: int  # of the file
    rms_dbfs: float  # whole-file RMS level over all channels
    head_dbfs: float = -np.inf  # RMS level of the first HEAD_SECONDS (loops start with a sound)

    @property
    def frames(self) -> int:
        return len(self.beat)


def compute_activations(
    path: Path, chunk_seconds: float = 120.0, overlap_seconds: float = 15.0
) -> TrackActivations:
    """Activations of the audio file at ``path``, read and processed ``chunk_seconds`` at a
    time (plus ``overlap_seconds`` of RNN context on each side); never the whole file at once.

    Raises AudioError (naming the file and the reason) for the files ``read_audio`` rejects.
    """
    path = Path(path)
    reader = _Reader(path)
    with reader:
        ratio = Fraction(SAMPLE_RATE, reader.sample_rate)
        n_out = -(-reader.frames * ratio.numerator // ratio.denominator)  # resample_poly's
        n_frames = -(-n_out // HOP)
        core = max(1, round(chunk_seconds * FPS))
        overlap = max(0, math.ceil(overlap_seconds * FPS))
        out = _Outputs(n_frames)
        for start in range(0, n_frames, core):
            stop = min(start + core, n_frames)
            lo, hi = max(0, start - overlap), min(n_frames, stop + overlap)
            first = max(0, lo - _DIFF_CONTEXT)
            signal = _signal_44k(reader, ratio, first, hi, n_out)
            bands, onset, onset_low, chroma = _features(signal, hi - first)
            del signal
            skip = lo - first
            rnn = _rnn(bands[skip:])
            del bands
            keep = slice(start - first, stop - first)
            out.beat[start:stop] = rnn[start - lo : stop - lo, 0]
            out.downbeat[start:stop] = rnn[start - lo : stop - lo, 1]
            out.onset[start:stop] = onset[keep]
            out.onset_low[start:stop] = onset_low[keep]
            out.chroma[start:stop] = chroma[keep]
        rms_dbfs = reader.rms_dbfs()
    return TrackActivations(
        beat=out.beat,
        downbeat=out.downbeat,
        onset=out.onset,
        onset_low=out.onset_low,
        chroma=out.chroma,
        duration=reader.frames / reader.sample_rate,
        sample_rate=reader.sample_rate,
        channels=reader.channels,
        rms_dbfs=rms_dbfs,
        head_dbfs=head_rms_dbfs(path, HEAD_SECONDS),
    )


class _Outputs:
    def __init__(self, n_frames: int) -> None:
        self.beat = np.zeros(n_frames, np.float32)
        self.downbeat = np.zeros(n_frames, np.float32)
        self.onset = np.zeros(n_frames, np.float32)
        self.onset_low = np.zeros(n_frames, np.float32)
        self.chroma = np.zeros((n_frames, 12), np.float32)


class _Reader:
    """A checked sound file read as mono float32 spans, with the whole-file RMS and the
    finite-sample check accumulated over each sample once (spans overlap, in order)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        header = probe_audio(path)
        self.frames, self.sample_rate = header.frames, header.sample_rate
        self.channels = header.channels
        try:
            self.file = sf.SoundFile(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
            raise AudioError(path, f"unreadable audio ({err})") from err
        self._counted = 0  # samples [0, _counted) are in the RMS sum
        self._sum_squares = 0.0

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def mono(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) mixed to mono, float32."""
        mono = np.empty(stop - start, np.float32)
        done = 0
        for block in self._blocks(start, stop):
            n = len(block)
            np.mean(block, axis=1, out=mono[done : done + n])
            new = block[max(0, self._counted - (start + done)) :]
            self._sum_squares += float(np.einsum("ij,ij->", new, new, dtype=np.float64))
            self._counted = max(self._counted, start + done + n)
            done += n
        return mono[:done]

    def _blocks(self, start: int, stop: int) -> Iterator[np.ndarray]:
        return read_blocks(self.file, self.path, start, stop, _READ_BLOCK)

    def rms_dbfs(self) -> float:
        return dbfs(math.sqrt(self._sum_squares / max(1, self._counted * self.channels)))


def _signal_44k(reader: _Reader, ratio: Fraction, first: int, stop: int, n_out: int) -> np.ndarray:
    """The 44.1 kHz mono signal around frames [first, stop): global samples
    [first * HOP - 2048, (stop - 1) * HOP + 2048), zero outside the file, exactly as the
    whole file resampled at once would have them."""
    begin = first * HOP - _MAX_HALF_WINDOW
    end = (stop - 1) * HOP + _MAX_HALF_WINDOW
    lo, hi = max(0, begin), min(n_out, end)
    up, down = ratio.numerator, ratio.denominator
    if up == down:
        span, offset = reader.mono(lo, hi), lo
    else:
        context = 10 * max(up, down) // up + 2  # resample_poly's filter half-length + margin
        a0 = max(0, lo * down // up - context) // down * down  # a0 * up / down is a whole sample
        a1 = min(reader.frames, -(-hi * down // up) + context)
        span = resample_poly(reader.mono(a0, a1), up, down).astype(np.float32, copy=False)
        offset = a0 * up // down
    signal = np.zeros(end - begin, np.float32)
    signal[lo - begin : hi - begin] = span[lo - offset : hi - offset]
    return signal


def _features(
    signal: np.ndarray, n_frames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """madmom's RNN input [n_frames, 314], onset flux, low onset flux and chroma of frames
    0..n_frames-1 (frame j centred on ``signal[2048 + j * HOP]``)."""
    stacked, onset, onset_low = [], None, None
    chroma = np.zeros((n_frames, 12), np.float32)
    for size, bands_per_octave in zip(FRAME_SIZES, BANDS_PER_OCTAVE, strict=True):
        fb = _filterbank(size, bands_per_octave)
        window = np.hanning(size).astype(np.float32)
        start = _MAX_HALF_WINDOW - size // 2
        frames = np.lib.stride_tricks.sliding_window_view(signal[start:], size)[::HOP][:n_frames]
        logspec = np.empty((n_frames, fb.shape[1]), np.float32)
        for b in range(0, n_frames, _BLOCK_FRAMES):
            block = frames[b : b + _BLOCK_FRAMES] * window
            magnitude = np.abs(scipy.fft.rfft(block, axis=1)[:, : size // 2])
            del block
            logspec[b : b + _BLOCK_FRAMES] = np.log10(magnitude @ fb + 1.0)
            if size == FRAME_SIZES[-1]:
                power = np.square(magnitude)
                chroma[b : b + _BLOCK_FRAMES] = power @ _chroma_matrix(size)
        diff = _positive_diff(logspec, _diff_frames(size))
        if size == ONSET_FRAME_SIZE:
            onset = diff.sum(axis=1)
            onset_low = diff[:, _low_bands(size, bands_per_octave)].sum(axis=1)
        stacked += [logspec, diff]
    chroma /= np.maximum(chroma.max(axis=1, keepdims=True), 1e-10)
    return np.hstack(stacked), onset, onset_low, chroma


def _positive_diff(logspec: np.ndarray, lag: int) -> np.ndarray:
    diff = np.zeros_like(logspec)
    np.maximum(logspec[lag:] - logspec[:-lag], 0.0, out=diff[lag:])
    return diff


def _rnn(bands: np.ndarray) -> np.ndarray:
    """madmom's RNN ensemble on its input features -> [frames, (beat, downbeat)]."""
    from pipeline.audio.downbeats import downbeat_network

    network = downbeat_network().processors[1]
    output = np.asarray(network(bands), np.float32).reshape(len(bands), -1)  # 1 frame: 1-D
    return output[:, 1:]  # column 0 is P(no beat)


_CACHE: dict[tuple, np.ndarray] = {}


def _filterbank(size: int, bands_per_octave: int) -> np.ndarray:
    key = ("fb", size, bands_per_octave)
    if key not in _CACHE:
        from madmom.audio.filters import LogarithmicFilterbank
        from madmom.audio.stft import fft_frequencies

        frequencies = fft_frequencies(size // 2, SAMPLE_RATE)
        fb = LogarithmicFilterbank(
            frequencies, num_bands=bands_per_octave, fmin=30, fmax=17000, norm_filters=True
        )
        _CACHE[key] = np.asarray(fb, np.float32)
        _CACHE[("centres", size, bands_per_octave)] = np.asarray(fb.center_frequencies)
    return _CACHE[key]


def _low_bands(size: int, bands_per_octave: int) -> np.ndarray:
    _filterbank(size, bands_per_octave)
    return np.flatnonzero(_CACHE[("centres", size, bands_per_octave)] < LOW_BAND_HZ)


def _diff_frames(size: int) -> int:
    """madmom's lag for its spectral difference (diff_ratio 0.5 of a Hann window)."""
    window = np.hanning(size)
    sample = int(np.argmax(window > 0.5 * window.max()))
    return max(1, round((size / 2 - sample) / HOP))


def _chroma_matrix(size: int) -> np.ndarray:
    """[size // 2, 12]: each STFT bin in CHROMA_FMIN..CHROMA_FMAX to its nearest pitch class."""
    key = ("chroma", size)
    if key not in _CACHE:
        frequencies = np.arange(size // 2) * SAMPLE_RATE / size
        matrix = np.zeros((size // 2, 12), np.float32)
        inside = np.flatnonzero((frequencies >= CHROMA_FMIN) & (frequencies <= CHROMA_FMAX))
        pitch = np.round(12 * np.log2(frequencies[inside] / 440.0)).astype(int) + 9  # A = 9
        matrix[inside, pitch % 12] = 1.0
        _CACHE[key] = matrix
    return _CACHE[key]
