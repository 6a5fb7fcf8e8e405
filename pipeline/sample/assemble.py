"""Assembling bars into loops and tracks at the target tempo, with click-free seams.

Bar ``k`` of a track starts exactly at sample ``k * T`` and the track is ``n * T`` samples long,
so the grid is kept. At each seam the incoming bar fades in over a few milliseconds while the
outgoing bar fades out *past its end*. A generated bar has no audio after its last sample, so
the outgoing side is continued by linear prediction (Burg's method on the bar's last
``LPC_CONTEXT_MS``): the continuation starts where the bar ends with the same value, slope and
waveform, like the "handle" a DAW crossfades into. The fade curves are equal-power
(``sin² + cos² = 1``) and flat at both ends, so neither the seam nor the end of the fade has a
jump or a kink. (Mirroring the tail about the seam, the earlier approach, keeps the value but
reverses the slope: on tonal bars that kink measured as a click ~100x the surrounding
high-band energy.)
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter, lfiltic

DEFAULT_CROSSFADE_MS = 5.0
LPC_ORDER = 32
LPC_CONTEXT_MS = 30.0
MAX_EXTENSION_GAIN = 2.0  # a continuation louder than this x the tail's peak is not trusted


def crossfade_samples(sample_rate: int, ms: float = DEFAULT_CROSSFADE_MS) -> int:
    """A crossfade duration in samples."""
    return max(0, round(sample_rate * ms / 1000.0))


def concatenate_bars(
    bars: np.ndarray, crossfade: int = 64, sample_rate: int | None = None
) -> np.ndarray:
    """``[n, channels, T]`` bars -> ``[channels, n*T]``: each bar starts exactly at ``k*T``;
    each seam gets an equal-power crossfade of ``crossfade`` samples (at most ``T/4``) from a
    predicted continuation of the previous bar into the next bar. ``sample_rate`` sets how much
    of the previous bar the prediction looks at (``LPC_CONTEXT_MS``; 256 samples if unknown)."""
    n, channels, length = bars.shape
    out = bars.transpose(1, 0, 2).reshape(channels, n * length).astype(np.float32)
    fade = min(crossfade, length // 4)
    if fade < 2 or n < 2:
        return out
    context = 256 if sample_rate is None else round(sample_rate * LPC_CONTEXT_MS / 1000)
    context = min(length, max(context, 2 * LPC_ORDER, fade + 1))
    fade_in, fade_out = equal_power_fades(fade)
    for k in range(1, n):
        seam = k * length
        continuation = continue_audio(bars[k - 1][:, -context:], fade)
        incoming = out[:, seam : seam + fade]
        out[:, seam : seam + fade] = incoming * fade_in + continuation * fade_out
    return out


def loop_bar(
    bar: np.ndarray, repeats: int, crossfade: int = 64, sample_rate: int | None = None
) -> np.ndarray:
    """A ``[channels, T]`` bar repeated ``repeats`` times with crossfaded seams."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    single = concatenate_bars(bar[None], crossfade, sample_rate)
    if repeats == 1:
        return single
    length = bar.shape[-1]
    fade = min(crossfade, length // 4)
    if fade < 2:
        return np.tile(single, (1, repeats))
    # Every seam of a loop is the same bar into itself: compute one seam, reuse it.
    two = concatenate_bars(np.stack([bar, bar]), crossfade, sample_rate)
    out = np.tile(single, (1, repeats))
    for k in range(1, repeats):
        out[:, k * length : k * length + fade] = two[:, length : length + fade]
    return out


def seamless_bar(
    bar: np.ndarray, crossfade: int = 64, sample_rate: int | None = None
) -> np.ndarray:
    """A ``[channels, T]`` bar made to loop on its own: the second bar of :func:`loop_bar`
    ``(bar, 2)``, whose start is crossfaded from the predicted continuation of the bar's end.
    Played in a loop (a DAW's loop points at ``0`` and ``T - 1``) its wrap is that seam."""
    length = bar.shape[-1]
    return np.ascontiguousarray(loop_bar(bar, 2, crossfade, sample_rate)[:, length:])


def equal_power_fades(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fade_in, fade_out)`` over ``n`` samples: ``sin``/``cos`` of a raised-cosine ramp, so
    ``fade_in² + fade_out² = 1`` and both curves are flat where they meet the signals
    (the sample before the fade has weight 0/1 and the one after it 1/0)."""
    u = np.arange(1, n + 1, dtype=np.float64) / (n + 1)
    ramp = (1.0 - np.cos(np.pi * u)) / 2.0
    angle = np.pi / 2.0 * ramp
    return np.sin(angle).astype(np.float32), np.cos(angle).astype(np.float32)


def continue_audio(tail: np.ndarray, n: int, order: int = LPC_ORDER) -> np.ndarray:
    """``n`` samples that plausibly follow ``tail`` (``[channels, m]``), per channel, by
    linear prediction (Burg). Falls back to a point reflection about the last sample (same
    value and slope) when the prediction is unusable (silence, too short, unstable)."""
    tail = np.atleast_2d(np.asarray(tail, dtype=np.float64))
    out = np.empty((tail.shape[0], n), dtype=np.float32)
    for c, x in enumerate(tail):
        out[c] = _predict(x, n, order)
    return out


def _predict(x: np.ndarray, n: int, order: int) -> np.ndarray:
    peak = float(np.abs(x).max()) if len(x) else 0.0
    order = min(order, len(x) // 2)
    if peak > 0.0 and order >= 1:
        a = burg_lpc(x, order)
        p = len(a) - 1
        if p >= 1:
            state = lfiltic([1.0], a, x[::-1][:p])
            ahead, _ = lfilter([1.0], a, np.zeros(n), zi=state)
            if np.isfinite(ahead).all() and np.abs(ahead).max() <= MAX_EXTENSION_GAIN * peak:
                return ahead
    return _reflect(x, n)


def _reflect(x: np.ndarray, n: int) -> np.ndarray:
    """Point reflection about the last sample: ``y[j] = 2 x[-1] - x[-2-j]`` (continuous in
    value and slope); the last value is held where ``x`` is shorter than ``n``."""
    if len(x) < 2:
        return np.full(n, x[-1] if len(x) else 0.0)
    mirrored = x[-2::-1][:n]
    if len(mirrored) < n:
        mirrored = np.concatenate([mirrored, np.full(n - len(mirrored), mirrored[-1])])
    return 2.0 * x[-1] - mirrored


def burg_lpc(x: np.ndarray, order: int) -> np.ndarray:
    """Prediction polynomial ``[1, a1, ..., ap]`` of ``x`` by Burg's method (stable by
    construction: every reflection coefficient has magnitude <= 1). Stops early when the
    prediction error vanishes."""
    x = np.asarray(x, dtype=np.float64)
    a = np.ones(1)
    forward, backward = x[1:].copy(), x[:-1].copy()
    for _ in range(order):
        denominator = forward @ forward + backward @ backward
        if denominator <= 1e-18 or len(forward) < 2:
            break
        k = -2.0 * (forward @ backward) / denominator
        a = np.concatenate([a, [0.0]])
        a = a + k * a[::-1]
        forward, backward = (forward + k * backward)[1:], (backward + k * forward)[:-1]
    return a
