"""Synthesised instrument voices for the demo corpus (pure numpy/scipy).

Every voice returns a float64 one-shot at unit-ish peak level; gains, panning
and velocity are applied by the mixer in :mod:`pipeline.data.synth`.
Randomness (timbre variation) comes only from the ``rng`` passed in, so
rendering is deterministic for a given seed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

__all__ = [
    "bass_note",
    "clap",
    "crash",
    "hat_closed",
    "hat_open",
    "kick",
    "midi_to_hz",
    "snare",
]


@lru_cache(maxsize=64)
def _sos(kind: str, freq: float | tuple[float, float], sr: int, order: int = 2) -> np.ndarray:
    """Cached Butterworth second-order sections."""
    nyq = 0.5 * sr
    if isinstance(freq, tuple):
        wn: float | list[float] = [min(f / nyq, 0.99) for f in freq]
    else:
        wn = min(freq / nyq, 0.99)
    return signal.butter(order, wn, btype=kind, output="sos")


def _filt(
    x: np.ndarray, kind: str, freq: float | tuple[float, float], sr: int, order: int = 2
) -> np.ndarray:
    return signal.sosfilt(_sos(kind, freq, sr, order), x)


def _norm(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    return x / peak if peak > 0 else x


def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(round(seconds * sr)) / sr


def kick(sr: int, rng: np.random.Generator, length: float = 0.45) -> np.ndarray:
    """Pitch-swept sine (~150 -> ~48 Hz) with a short noise/tone click."""
    t = _t(length, sr)
    f_start = rng.uniform(130.0, 180.0)
    f_end = rng.uniform(42.0, 55.0)
    sweep = rng.uniform(0.025, 0.045)
    freq = f_end + (f_start - f_end) * np.exp(-t / sweep)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    decay = rng.uniform(0.22, 0.32)
    body = np.sin(phase) * np.exp(-t / decay)
    body = np.tanh(1.6 * body)  # a little saturation for punch
    click_env = np.exp(-t / 0.0025)
    click = _filt(rng.standard_normal(t.size), "highpass", 1500.0, sr) * click_env
    click += 0.5 * np.sin(2 * np.pi * 1800.0 * t) * np.exp(-t / 0.0015)
    out = body + rng.uniform(0.35, 0.55) * click
    attack = np.minimum(1.0, t / 0.0005)
    fade = np.minimum(1.0, (length - t) / 0.02)
    return _norm(out * attack * fade)


def snare(sr: int, rng: np.random.Generator, length: float = 0.3) -> np.ndarray:
    """Two detuned tones plus band-passed noise with a longer tail."""
    t = _t(length, sr)
    f0 = rng.uniform(170.0, 230.0)
    tone = (np.sin(2 * np.pi * f0 * t) + 0.6 * np.sin(2 * np.pi * 1.48 * f0 * t)) * np.exp(
        -t / 0.05
    )
    noise = _filt(rng.standard_normal(t.size), "bandpass", (1200.0, 9000.0), sr)
    noise = _norm(noise) * np.exp(-t / rng.uniform(0.08, 0.13))
    out = 0.55 * _norm(tone) + noise
    attack = np.minimum(1.0, t / 0.0008)
    fade = np.minimum(1.0, (length - t) / 0.02)
    return _norm(out * attack * fade)


def clap(sr: int, rng: np.random.Generator, length: float = 0.35) -> np.ndarray:
    """Four rapid noise bursts then a band-passed reverberant tail, plus a faint tone."""
    t = _t(length, sr)
    noise = _filt(rng.standard_normal(t.size), "bandpass", (900.0, 5000.0), sr)
    env = np.zeros_like(t)
    spacing = rng.uniform(0.008, 0.012)
    for k in range(3):
        start = k * spacing
        env += np.where(t >= start, np.exp(-(t - start) / 0.004), 0.0)
    tail_start = 3 * spacing
    env += 0.8 * np.where(t >= tail_start, np.exp(-(t - tail_start) / rng.uniform(0.06, 0.1)), 0.0)
    tone = 0.15 * np.sin(2 * np.pi * rng.uniform(900.0, 1200.0) * t) * np.exp(-t / 0.03)
    fade = np.minimum(1.0, (length - t) / 0.02)
    return _norm((_norm(noise) * env + tone) * fade)


def _metal(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """808-style inharmonic square cluster for hats/cymbals."""
    base = rng.uniform(300.0, 360.0)
    ratios = (2.0, 3.0, 4.16, 5.43, 6.79, 8.21)
    return sum(
        np.sign(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 2 * np.pi))) for r in ratios
    )


def hat_closed(sr: int, rng: np.random.Generator, length: float = 0.09) -> np.ndarray:
    """High-passed noise + metallic cluster, ~25-40 ms decay."""
    t = _t(length, sr)
    raw = rng.standard_normal(t.size) + 0.4 * _metal(t, rng) / 6.0
    x = _filt(raw, "highpass", 7000.0, sr, order=4)
    env = np.exp(-t / rng.uniform(0.018, 0.03))
    fade = np.minimum(1.0, (length - t) / 0.01)
    return _norm(x * env * fade)


def hat_open(sr: int, rng: np.random.Generator, length: float = 0.45) -> np.ndarray:
    """Like the closed hat with a ~200 ms decay."""
    t = _t(length, sr)
    raw = rng.standard_normal(t.size) + 0.5 * _metal(t, rng) / 6.0
    x = _filt(raw, "highpass", 6000.0, sr, order=4)
    env = np.exp(-t / rng.uniform(0.14, 0.22))
    fade = np.minimum(1.0, (length - t) / 0.05)
    return _norm(x * env * fade)


def crash(sr: int, rng: np.random.Generator, length: float = 1.6) -> np.ndarray:
    """Stereo (2, n) crash: decorrelated high-passed noise + metal, long decay."""
    t = _t(length, sr)
    chans = []
    for _ in range(2):
        raw = rng.standard_normal(t.size) + 0.3 * _metal(t, rng) / 6.0
        x = _filt(raw, "highpass", 4000.0, sr, order=2)
        chans.append(x)
    x = np.stack(chans)
    env = np.exp(-t / rng.uniform(0.45, 0.7))
    env *= 1.0 + 1.5 * np.exp(-t / 0.01)  # bright initial splash
    attack = np.minimum(1.0, t / 0.001)
    fade = np.minimum(1.0, (length - t) / 0.1)
    return _norm(x * env * attack * fade)


def midi_to_hz(note: float) -> float:
    """MIDI note number -> frequency in Hz (A4 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def bass_note(
    sr: int,
    freq: float,
    duration: float,
    *,
    wave: str = "saw",
    cutoff: float = 600.0,
    env_amount: float = 2.0,
    drive: float = 1.0,
    decay: float = 0.25,
    glide_from: float | None = None,
) -> np.ndarray:
    """Saw/square/sine bass note (+ sub octave) through a low-pass with a filter envelope.

    ``duration`` is the gate length; a 30 ms release is appended.  The filter
    envelope is done by cross-fading two low-passed copies (cutoff and
    ``cutoff * (1 + env_amount)``), which is cheap and click free.
    """
    release = 0.03
    n = max(round((duration + release) * sr), 16)
    t = np.arange(n) / sr
    if glide_from is not None:
        f = freq + (glide_from - freq) * np.exp(-t / 0.04)
    else:
        f = np.full(n, freq)
    phase = np.cumsum(f) / sr
    frac = phase % 1.0
    if wave == "saw":
        osc = 2.0 * frac - 1.0
    elif wave == "square":
        osc = np.where(frac < 0.5, 1.0, -1.0)
    elif wave == "sine":
        osc = np.sin(2 * np.pi * phase)
    else:
        raise ValueError(f"unknown wave {wave!r}")
    osc = osc + 0.6 * np.sin(np.pi * phase)  # sub-octave sine for weight
    if drive > 1.0:
        osc = np.tanh(drive * osc) / np.tanh(drive)
    dark = _filt(osc, "lowpass", cutoff, sr, order=2)
    bright = _filt(osc, "lowpass", cutoff * (1.0 + env_amount), sr, order=2)
    fenv = np.exp(-t / 0.06)
    x = dark + (bright - dark) * fenv
    gate = np.clip((duration + release - t) / release, 0.0, 1.0)
    amp = np.minimum(1.0, t / 0.003) * (0.55 + 0.45 * np.exp(-t / decay)) * gate
    return x * amp
