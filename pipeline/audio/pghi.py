"""Phase from STFT magnitude by phase-gradient heap integration (PGHI; Průša, Balazs &
Søndergaard, IEEE/ACM TASLP 2017), as TiFGAN (Marafioti et al., ICML 2019) rebuilt the phase of
its generated log-magnitude spectrograms: no iterations, sharp transients.

For a Gaussian window ``g(l) = exp(-pi l^2 / lam)`` the STFT is, up to a factor, an analytic
function of ``x - i lam omega``, so the Cauchy-Riemann equations tie the phase gradient to the
gradient of the log-magnitude ``s`` (phase referenced to the window centre):

    d phase / dx     = (1 / lam) ds/domega + 2 pi omega
    d phase / domega = -lam ds/dx

Discretised on the grid (hop ``a`` samples, ``M = n_fft`` bins per cycle, centred differences),
the phase advances per hop by ``(a M / lam) (s[m+1] - s[m-1]) / 2 + 2 pi a m / M`` and per bin by
``-(lam / (a M)) (s[n+1] - s[n-1]) / 2``. A Hann window of length ``M`` behaves like the Gaussian
with ``lam = 0.25645 M^2`` (the paper's value). The phase is then integrated from the largest
coefficient outward, always continuing from the largest coefficient already reached (a max-heap),
so the integration follows ridges and onsets rather than crossing the noise floor; coefficients
more than ``tolerance_db`` below the largest get random phase. A further island of coefficients
(not reachable above the tolerance) starts again from its own largest coefficient.

Phases are returned in :func:`torch.stft`'s convention (``center=True``: frame ``n`` is centred on
sample ``n a``, its DFT taken from the frame start), i.e. the centre-referenced phase plus
``pi m``.
"""

from __future__ import annotations

import heapq

import numpy as np

HANN_LAMBDA = 0.25645  # lam / M^2 of the Gaussian that a Hann window of length M behaves like
DEFAULT_TOLERANCE_DB = 100.0


def phase_gradients(
    log_magnitude: np.ndarray, n_fft: int, hop: int, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """(phase advance per hop, phase advance per bin), both ``[bins, frames]``, from the natural
    log of the magnitudes ``[bins, frames]`` (bins ``0 .. n_fft / 2``)."""
    s = np.asarray(log_magnitude, dtype=np.float64)
    bins = s.shape[0]
    ds_dm = np.gradient(s, axis=0) if bins > 1 else np.zeros_like(s)
    ds_dn = np.gradient(s, axis=1) if s.shape[1] > 1 else np.zeros_like(s)
    m = np.arange(bins, dtype=np.float64)[:, None]
    per_hop = (hop * n_fft / lam) * ds_dm + 2.0 * np.pi * hop * m / n_fft
    per_bin = -(lam / (hop * n_fft)) * ds_dn
    return per_hop, per_bin


def pghi(
    magnitude: np.ndarray,
    n_fft: int,
    hop: int,
    lam: float | None = None,
    tolerance_db: float = DEFAULT_TOLERANCE_DB,
    seed: int = 0,
    floor: float = 0.0,
) -> np.ndarray:
    """Phases ``[bins, frames]`` (``torch.stft`` convention) for magnitudes ``[bins, frames]``,
    ``bins = n_fft / 2 + 1``; ``lam`` defaults to the Hann window's Gaussian equivalent.
    Coefficients at or below ``floor`` (an absolute magnitude: a representation's floor, where
    the level says nothing) get random phase like those below the tolerance."""
    mag = np.asarray(magnitude, dtype=np.float64)
    if mag.ndim != 2 or mag.shape[0] != n_fft // 2 + 1:
        raise ValueError(f"expected magnitudes [{n_fft // 2 + 1}, frames], got {list(mag.shape)}")
    if lam is None:
        lam = HANN_LAMBDA * n_fft * n_fft
    bins = mag.shape[0]
    peak = float(mag.max(initial=0.0))
    rng = np.random.default_rng(seed)
    phase = rng.uniform(-np.pi, np.pi, size=mag.shape)
    if peak <= 0.0:
        return phase
    lowest = peak * 10.0 ** (-tolerance_db / 20.0)
    log_mag = np.log(np.maximum(mag, lowest))
    per_hop, per_bin = phase_gradients(log_mag, n_fft, hop, lam)
    _integrate(mag, per_hop, per_bin, phase, mag > max(lowest, floor))
    return phase + np.pi * np.arange(bins)[:, None]  # centre-referenced -> frame-start


def _integrate(
    mag: np.ndarray,
    per_hop: np.ndarray,
    per_bin: np.ndarray,
    phase: np.ndarray,
    todo_mask: np.ndarray,
) -> None:
    """Heap integration in place over the cells of ``todo_mask`` (flat Python lists: a per-cell
    loop over numpy scalars is several times slower)."""
    bins, frames = mag.shape
    magnitude = mag.ravel().tolist()
    d_hop = per_hop.ravel().tolist()
    d_bin = per_bin.ravel().tolist()
    out = phase.ravel().tolist()
    todo = todo_mask.ravel().tolist()
    remaining = int(todo_mask.sum())
    order = np.argsort(-mag.ravel(), kind="stable").tolist()  # island seeds, largest first
    next_seed = 0
    heap: list[tuple[float, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    while remaining:
        while not todo[order[next_seed]]:
            next_seed += 1
        start = order[next_seed]
        todo[start] = False
        remaining -= 1
        out[start] = 0.0
        push(heap, (-magnitude[start], start))
        while heap:
            _, i = pop(heap)
            m, n = divmod(i, frames)
            p = out[i]
            if n + 1 < frames and todo[i + 1]:
                j = i + 1
                out[j] = p + 0.5 * (d_hop[i] + d_hop[j])
                todo[j] = False
                remaining -= 1
                push(heap, (-magnitude[j], j))
            if n > 0 and todo[i - 1]:
                j = i - 1
                out[j] = p - 0.5 * (d_hop[i] + d_hop[j])
                todo[j] = False
                remaining -= 1
                push(heap, (-magnitude[j], j))
            if m + 1 < bins and todo[i + frames]:
                j = i + frames
                out[j] = p + 0.5 * (d_bin[i] + d_bin[j])
                todo[j] = False
                remaining -= 1
                push(heap, (-magnitude[j], j))
            if m > 0 and todo[i - frames]:
                j = i - frames
                out[j] = p - 0.5 * (d_bin[i] + d_bin[j])
                todo[j] = False
                remaining -= 1
                push(heap, (-magnitude[j], j))
    phase[...] = np.asarray(out, dtype=np.float64).reshape(bins, frames)
