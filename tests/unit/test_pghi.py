"""Phase-gradient heap integration: phase from magnitudes alone rebuilds clicks, tones and drums
far better than no phase at all, and the SpecGAN codec uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.audio.pghi import pghi
from pipeline.models.specgan import SpectrogramCodec

N_FFT, HOP, SR = 512, 128, 16000


def _stft(audio: np.ndarray) -> torch.Tensor:
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    signal = torch.from_numpy(np.asarray(audio, dtype=np.float64))
    return torch.stft(signal, N_FFT, HOP, window=window, center=True, return_complex=True)


def _istft(spec: torch.Tensor, length: int) -> np.ndarray:
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    return torch.istft(spec, N_FFT, HOP, window=window, center=True, length=length).numpy()


def _rebuild(audio: np.ndarray, phase: np.ndarray) -> np.ndarray:
    magnitude = _stft(audio).abs()
    return _istft(torch.polar(magnitude, torch.from_numpy(phase)), len(audio))


def spectral_convergence_db(reference: np.ndarray, rebuilt: np.ndarray) -> float:
    """How far the rebuilt signal's STFT magnitudes are from the reference's (dB, lower is
    closer): the usual phase-retrieval error."""
    a, b = _stft(reference).abs(), _stft(rebuilt).abs()
    return 20 * float(np.log10(float((a - b).norm() / a.norm())))


def _drum_loop(seconds: float = 1.0) -> np.ndarray:
    """Kicks (a falling sine) on the beats and noise-burst hats on the off-beats, 120 BPM."""
    rng = np.random.default_rng(3)
    t = np.arange(int(SR * 0.25)) / SR
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    hat = rng.standard_normal(int(SR * 0.03)) * np.exp(-np.arange(int(SR * 0.03)) / 60)
    out = np.zeros(int(SR * seconds))
    for beat in range(int(seconds * 2)):
        start = int(beat * SR / 2)
        out[start : start + len(kick)] += kick[: len(out) - start]
        off = start + SR // 4
        if off + len(hat) <= len(out):
            out[off : off + len(hat)] += 0.3 * np.diff(hat, prepend=0.0)
    return out


def _phase(audio: np.ndarray) -> np.ndarray:
    return pghi(_stft(audio).abs().numpy(), N_FFT, HOP)


@pytest.mark.parametrize(
    "name, audio, limit_db",
    [
        ("tone", 0.5 * np.sin(2 * np.pi * 440.3 * np.arange(SR) / SR), -20.0),
        ("chirp", 0.5 * np.sin(2 * np.pi * (200 + 900 * np.arange(SR) / SR) * np.arange(SR) / SR),
         -20.0),
        ("drums", _drum_loop(), -10.0),
    ],
)  # fmt: skip
def test_pghi_rebuilds_signals_from_magnitudes_alone(name, audio, limit_db):
    pghi_db = spectral_convergence_db(audio, _rebuild(audio, _phase(audio)))
    zero_db = spectral_convergence_db(audio, _rebuild(audio, np.zeros((N_FFT // 2 + 1, 126))))
    random_phase = np.random.default_rng(0).uniform(-np.pi, np.pi, (N_FFT // 2 + 1, 126))
    random_db = spectral_convergence_db(audio, _rebuild(audio, random_phase))
    assert pghi_db < limit_db, name
    assert pghi_db < min(zero_db, random_db) - 6.0, (pghi_db, zero_db, random_db)


def test_pghi_puts_a_click_back_where_it_was():
    click = np.zeros(SR)
    click[5000] = 1.0
    rebuilt = _rebuild(click, _phase(click))
    assert spectral_convergence_db(click, rebuilt) < -28.0  # the frequency-direction gradient
    energy = rebuilt**2
    near = energy[5000 - 64 : 5000 + 64].sum() / energy.sum()
    assert near > 0.8  # zero phase spreads each frame's click over the whole window
    zero = _rebuild(click, np.zeros((N_FFT // 2 + 1, SR // HOP + 1))) ** 2
    assert zero[5000 - 64 : 5000 + 64].sum() / zero.sum() < near - 0.3


def test_pghi_of_silence_and_bad_shapes():
    phase = pghi(np.zeros((N_FFT // 2 + 1, 10)), N_FFT, HOP)
    assert phase.shape == (N_FFT // 2 + 1, 10) and np.isfinite(phase).all()
    with pytest.raises(ValueError, match="expected magnitudes"):
        pghi(np.ones((N_FFT // 2, 10)), N_FFT, HOP)


def test_pghi_is_deterministic():
    audio = _drum_loop(0.5)
    assert np.array_equal(_phase(audio), _phase(audio))


def test_codec_with_pghi_beats_griffin_lim_on_a_click_track():
    """The round trip through the SpecGAN codec keeps transients sharper with PGHI than with
    as many Griffin-Lim iterations from zero phase."""
    audio = torch.from_numpy(_drum_loop(2.0)).float()[None, None]
    length = audio.shape[-1]
    errors = {}
    for phase, iterations in (("griffin-lim", 8), ("pghi", 8), ("pghi", 0)):
        codec = SpectrogramCodec(length, N_FFT, HOP, -80.0, iterations, phase)
        rebuilt = codec.decode(codec.encode(audio))[0, 0].double().numpy()
        errors[(phase, iterations)] = spectral_convergence_db(audio[0, 0].double().numpy(), rebuilt)
    assert errors[("pghi", 8)] < errors[("griffin-lim", 8)] - 3.0, errors
    assert errors[("pghi", 0)] < -8.0, errors


def test_codec_rejects_unknown_phase_and_zero_griffin_lim_iterations():
    with pytest.raises(ValueError, match="phase must be one of"):
        SpectrogramCodec(16000, N_FFT, HOP, -80.0, 8, "magic")
    with pytest.raises(ValueError, match="at least 1"):
        SpectrogramCodec(16000, N_FFT, HOP, -80.0, 0, "griffin-lim")


def test_coefficients_at_the_floor_get_random_phase_and_the_rest_are_integrated():
    audio = _drum_loop(0.5)
    magnitude = _stft(audio).abs().numpy()
    floor = float(np.quantile(magnitude, 0.6))
    phase = pghi(magnitude, N_FFT, HOP, floor=floor)
    unfloored = pghi(magnitude, N_FFT, HOP)
    bins = np.arange(N_FFT // 2 + 1)[:, None]
    random = np.random.default_rng(0).uniform(-np.pi, np.pi, magnitude.shape) + np.pi * bins
    below = magnitude <= floor
    assert np.array_equal(phase[below], random[below])  # not integrated: the seed's phase
    assert not np.allclose(phase[~below], random[~below])
    # The loud coefficients still carry the signal: the rebuild is about as close as without a
    # floor (the quiet 60 % hold little of the energy).
    kept_db = spectral_convergence_db(audio, _rebuild(audio, phase))
    assert kept_db < spectral_convergence_db(audio, _rebuild(audio, unfloored)) + 3.0
    assert kept_db < spectral_convergence_db(audio, _rebuild(audio, random)) - 6.0
