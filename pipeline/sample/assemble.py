"""Assembling bars into loops and tracks at the target tempo, with click-free seams."""

from __future__ import annotations

import numpy as np


def concatenate_bars(bars: np.ndarray, crossfade: int = 64) -> np.ndarray:
    """``[n, channels, T]`` bars -> ``[channels, n*T]``: each bar starts exactly at ``k*T``;
    seams get a short equal-power crossfade taken from the previous bar's tail (the sample
    count stays ``n*T``, so the grid is kept)."""
    n, channels, length = bars.shape
    out = bars.transpose(1, 0, 2).reshape(channels, n * length).astype(np.float32)
    fade = min(crossfade, length // 4)
    if fade < 2 or n < 2:
        return out
    t = np.linspace(0.0, np.pi / 2, fade, dtype=np.float32)
    fade_in, fade_out = np.sin(t), np.cos(t)
    for k in range(1, n):
        seam = k * length
        incoming = out[:, seam : seam + fade].copy()
        # The outgoing bar has no audio past its end; its tail mirrored about the seam
        # continues it without a jump (it starts with the bar's last sample) while it fades out.
        tail = bars[k - 1][:, -fade:][:, ::-1]
        out[:, seam : seam + fade] = incoming * fade_in + tail * fade_out
    return out


def loop_bar(bar: np.ndarray, repeats: int, crossfade: int = 64) -> np.ndarray:
    """A ``[channels, T]`` bar repeated ``repeats`` times with crossfaded seams."""
    return concatenate_bars(np.repeat(bar[None], repeats, axis=0), crossfade)
