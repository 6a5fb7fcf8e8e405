"""Re-rendering an assembled track at another tempo with Rubber Band (the bar length at a
tempo is :func:`pipeline.grid.bar_samples_at`).

The whole track goes through ONE Rubber Band call with a time map whose anchors are every bar
line (``k * T`` -> ``k * T'``), so bar ``k`` of the result starts at ``k * T'`` and no error
builds up over the track (a plain ``--tempo`` stretch rounds once and drifts). Stretching the
assembled track rather than each bar keeps the crossfaded seams and the transients across them
intact: Rubber Band sees the music continuously.

A track longer than one segment (``SEGMENT_SAMPLES``) is streamed (:func:`retempo_stream`):
each segment of whole bars is rendered with a few bars of the audio on either side and cut at
its bar lines, so memory does not grow with the track and the joins fall where Rubber Band saw
the music continuously.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import pyrubberband

from pipeline.audio.render import RUBBERBAND_OPTIONS
from pipeline.sample.assemble import equal_power_fades

# The same Rubber Band settings as the bar renderer. The R3 engine (``--fine``) was measured
# smearing drum onsets by up to 50 ms at 8-16 kHz; R2 keeps them within ~10 ms.


def retempo(
    track: np.ndarray, sample_rate: int, bar_samples: int, new_bar_samples: int
) -> np.ndarray:
    """Re-render a ``[channels, n*T]`` track of whole bars (``T = bar_samples``) at a new bar
    length ``T'``: returns ``[channels, n*T']`` with bar ``k`` starting at ``k*T'``.

    Pitch is kept (time-stretch, not resampling). Raises ``ValueError`` when the track is not a
    whole number of bars.
    """
    track = np.atleast_2d(np.asarray(track, dtype=np.float32))
    channels, frames = track.shape
    if bar_samples < 1 or new_bar_samples < 1:
        raise ValueError("bar lengths must be positive")
    if frames == 0 or frames % bar_samples:
        raise ValueError(
            f"track of {frames} samples is not a whole number of {bar_samples}-sample bars"
        )
    n_bars = frames // bar_samples
    if new_bar_samples == bar_samples:
        return track.copy()
    time_map = [(k * bar_samples, k * new_bar_samples) for k in range(n_bars + 1)]
    out = pyrubberband.timemap_stretch(track.T, sample_rate, time_map, dict(RUBBERBAND_OPTIONS))
    out = np.asarray(out, dtype=np.float32).reshape(-1, channels).T
    length = n_bars * new_bar_samples
    if out.shape[1] < length:
        out = np.pad(out, ((0, 0), (0, length - out.shape[1])))
    return np.ascontiguousarray(out[:, :length])


SEGMENT_SAMPLES = 1 << 23  # samples (all channels) of one Rubber Band call: 32 MB as float32
CONTEXT_FRAMES = 16384  # audio rendered on either side of a segment and then dropped
JOIN_MS = 20.0  # two renders meet out of phase: crossfade from one into the other over this


def segment_bars(bar_samples: int, channels: int) -> int:
    """Bars of one streamed Rubber Band segment."""
    return max(1, SEGMENT_SAMPLES // (bar_samples * channels))


def retempo_stream(
    pieces: Iterable[np.ndarray],
    sample_rate: int,
    bar_samples: int,
    new_bar_samples: int,
    segment: int | None = None,
) -> Iterator[np.ndarray]:
    """:func:`retempo` of the concatenation of ``pieces`` (each ``[channels, m*T]``, whole
    bars), yielded as pieces of whole new bars. A track of at most ``segment`` bars (default
    :func:`segment_bars`) plus one context goes through one call, exactly as :func:`retempo`;
    a longer one is rendered ``segment`` bars at a time, each with the context bars around it,
    and each join crossfades (equal power, ``JOIN_MS``) from the render before it, which ran
    on past the join, into the render after it: their phases differ, so a cut would click."""
    held: np.ndarray | None = None
    lead = 0  # bars at the start of `held` that were yielded already (context before)
    context = max(1, math.ceil(CONTEXT_FRAMES / bar_samples))
    fade = min(round(sample_rate * JOIN_MS / 1000), new_bar_samples)
    fade_in, fade_out = equal_power_fades(fade)
    run_on = None  # the previous render's audio just past the join
    for piece in pieces:
        piece = np.atleast_2d(np.asarray(piece, dtype=np.float32))
        held = piece if held is None else np.concatenate([held, piece], axis=1)
        if segment is None:
            segment = segment_bars(bar_samples, held.shape[0])
        while held.shape[1] // bar_samples > lead + segment + context:
            window = held[:, : (lead + segment + context) * bar_samples]
            out = retempo(window, sample_rate, bar_samples, new_bar_samples)
            end = (lead + segment) * new_bar_samples
            yield _joined(out[:, lead * new_bar_samples : end], run_on, fade_in, fade_out)
            run_on = out[:, end : end + fade].copy()
            held = held[:, (lead + segment - context) * bar_samples :]
            lead = context
    if held is not None:
        out = retempo(held, sample_rate, bar_samples, new_bar_samples)
        yield _joined(out[:, lead * new_bar_samples :], run_on, fade_in, fade_out)


def _joined(
    piece: np.ndarray, run_on: np.ndarray | None, fade_in: np.ndarray, fade_out: np.ndarray
) -> np.ndarray:
    if run_on is not None:
        n = run_on.shape[1]
        piece[:, :n] = run_on * fade_out + piece[:, :n] * fade_in
    return piece
