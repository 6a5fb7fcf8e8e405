"""Rendering a track onto the target grid and cutting it into bars.

The whole track is stretched in ONE Rubber Band time-map call whose anchors are every beat of
the warp map, so tempo drift is followed and bar k of the output starts exactly at sample
``k * bar_samples``. Resampling happens first, with an anti-aliased polyphase filter.
"""

from __future__ import annotations

import errno
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyrubberband

from pipeline.audio.io import dbfs, to_channels
from pipeline.audio.resample import resample
from pipeline.audio.warp import Section, Timing, WarpMap, as_timing
from pipeline.grid import BarGrid

# Crispness 6 (no phase smearing, transients kept sharp) lands the downbeats of the rendered
# bars 7.8 ms from ground truth (median, bench/prep_accuracy.py) against 9.1 ms for the default.
RUBBERBAND_OPTIONS = {"--crisp": "6"}
CLIP_LEVEL = 0.999
MAX_CLIPPED_FRACTION = 0.001


@dataclass(frozen=True)
class BarFilters:
    min_stretch: float = 0.5
    max_stretch: float = 2.0
    silence_dbfs: float = -50.0
    normalize_dbfs: float | None = -20.0
    max_tempo_change: float = 0.15  # relative tempo range allowed inside one bar
    dedupe_threshold: float | None = None  # spectral distance below which a bar repeats one
    min_trust: float = 0.0  # bars whose tracking trust (pipeline.audio.trust) is lower go


@dataclass
class RenderedTrack:
    bars: np.ndarray  # float32 [n_kept, channels, bar_samples]
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per kept bar
    rejects: list[dict[str, Any]] = field(default_factory=list)  # one per rejected bar


def render_bars(
    audio: np.ndarray,
    sample_rate: int,
    timing: Timing | WarpMap,
    grid: BarGrid,
    filters: BarFilters,
    bar_trust: list[dict[str, float]] | None = None,
) -> RenderedTrack:
    """Stretch a ``[channels, frames]`` recording onto ``grid`` and cut bars, applying filters.

    Each section of the timing is rendered on its own; a section whose meter is not the grid's
    is rejected with its reason. ``bar_trust`` (from analyze: ``start_s``, ``trust`` and its
    parts per bar line) adds those columns and applies ``filters.min_trust``; without it (warp
    markers, overrides) every bar is trusted.
    """
    timing = as_timing(timing)
    if grid.beats_per_bar not in timing.meters:
        meters = "/".join(str(m) for m in sorted(set(timing.meters)))
        raise ValueError(f"track has {meters} beats per bar, target grid has {grid.beats_per_bar}")
    duration = audio.shape[1] / sample_rate
    y = resample(to_channels(audio, grid.channels), sample_rate, grid.sample_rate)
    trust_at = _trust_lookup(bar_trust)
    kept, rows, rejects = [], [], []
    kept_spectra: list[np.ndarray] = []  # for the near-duplicate check, one per kept bar
    bar_index = 0
    for number, section in enumerate(timing.sections):
        meter = section.warp.beats_per_bar
        if meter != grid.beats_per_bar:
            rejects.append(
                _section_reject(
                    number, section, f"{meter} beats per bar, grid has {grid.beats_per_bar}"
                )
            )
            continue
        bar_lines = section.bar_starts(duration)
        if len(bar_lines) < 2:
            rejects.append(_section_reject(number, section, "no complete bar inside it"))
            continue
        n_bars = len(bar_lines) - 1
        stretched = stretch_to_grid(y, grid, section.warp, bar_lines)
        bars = stretched.reshape(grid.channels, n_bars, grid.bar_samples).transpose(1, 0, 2)
        first_beat = float(np.round(section.warp.beat_at(bar_lines[0])))
        for index in range(n_bars):
            start, end = float(bar_lines[index]), float(bar_lines[index + 1])
            bar = bars[index]
            row = {
                "bar_index": bar_index,
                "section": number,
                "start_s": start,
                "end_s": end,
                "local_bpm": 60.0 * grid.beats_per_bar / (end - start),
                "stretch": grid.bar_seconds / (end - start),
                "tempo_change": _tempo_change(
                    section.warp, first_beat + index * grid.beats_per_bar
                ),
                "rms_dbfs": dbfs(np.sqrt(np.mean(np.square(bar, dtype=np.float64)))),
                "peak": float(np.abs(bar).max()),
                **trust_at(start),
            }
            bar_index += 1
            reason = _reject_reason(bar, row, filters)
            spectrum = None
            if not reason and filters.dedupe_threshold is not None:
                spectrum = _magnitudes(bar)
                reason = _duplicate_of(spectrum, kept_spectra, rows, filters.dedupe_threshold)
            if reason:
                rejects.append({**row, "reason": reason})
                continue
            kept.append(normalize(bar, filters.normalize_dbfs))
            rows.append(row)
            if spectrum is not None:
                kept_spectra.append(spectrum)
    if bar_index == 0:
        raise ValueError("no complete bar inside the recording")
    shape = (0, grid.channels, grid.bar_samples)
    stacked = np.stack(kept).astype(np.float32) if kept else np.zeros(shape, np.float32)
    return RenderedTrack(stacked, rows, rejects)


def _trust_lookup(bar_trust: list[dict[str, float]] | None):
    """start second -> the trust columns of the bar starting there (1.0 when not measured)."""
    if not bar_trust:
        return lambda start: {"trust": 1.0}
    starts = np.array([entry["start_s"] for entry in bar_trust])

    def lookup(start: float) -> dict[str, float]:
        nearest = int(np.argmin(np.abs(starts - start)))
        if abs(starts[nearest] - start) > 1e-3:
            return {"trust": 0.0}  # a bar line analyze did not score: not trusted
        return {k: v for k, v in bar_trust[nearest].items() if k != "start_s"}

    return lookup


def _section_reject(number: int, section: Section, reason: str) -> dict[str, Any]:
    return {
        "bar_index": -1,
        "section": number,
        "start_s": section.start,
        "end_s": section.end,
        "reason": f"section {number} ({section.start:.1f}-{section.end:.1f} s): {reason}",
    }


def stretch_to_grid(
    y: np.ndarray, grid: BarGrid, warp: WarpMap, bar_lines: np.ndarray
) -> np.ndarray:
    """One Rubber Band time-map render of ``y`` (already at the grid's rate) between the first
    and last bar lines; returns exactly ``(len(bar_lines) - 1) * bar_samples`` frames."""
    first_beat = float(np.round(warp.beat_at(bar_lines[0])))
    n_bars = len(bar_lines) - 1
    beat_index = np.arange(n_bars * grid.beats_per_bar + 1)
    source = warp.seconds_at(first_beat + beat_index) * grid.sample_rate
    source = np.round(source).astype(np.int64)
    target = np.round(beat_index * grid.bar_samples / grid.beats_per_bar).astype(np.int64)
    start, stop = int(source[0]), min(int(source[-1]), y.shape[1])
    source = np.minimum(source - start, stop - start)
    time_map = [(int(s), int(t)) for s, t in zip(source, target, strict=True)]
    time_map = _strictly_increasing(time_map)
    segment = y[:, start:stop]
    # a fresh dict each call: pyrubberband writes --time and --timemap into the one it is given
    options = dict(RUBBERBAND_OPTIONS)
    try:
        out = pyrubberband.timemap_stretch(segment.T, grid.sample_rate, time_map, options)
    except (RuntimeError, subprocess.SubprocessError) as err:  # soundfile's errors included
        # pyrubberband hands audio to the rubberband program through files in the temp folder
        raise OSError(
            errno.EIO,
            f"Rubber Band could not write or read its scratch audio ({err}); "
            "the usual cause is a full disk",
            tempfile.gettempdir(),
        ) from err
    out = np.atleast_2d(np.asarray(out, dtype=np.float32).T)
    if out.shape[0] != grid.channels:  # mono comes back 1-D
        out = out.reshape(grid.channels, -1)
    length = n_bars * grid.bar_samples
    if out.shape[1] < length:
        out = np.pad(out, ((0, 0), (0, length - out.shape[1])))
    return out[:, :length]


def _strictly_increasing(time_map: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop anchors that rounding made non-increasing (Rubber Band rejects them)."""
    cleaned = [time_map[0]]
    for source, target in time_map[1:]:
        if source > cleaned[-1][0] and target > cleaned[-1][1]:
            cleaned.append((source, target))
    last_source, last_target = time_map[-1]
    if cleaned[-1] != (last_source, last_target):
        cleaned[-1] = (max(cleaned[-1][0], last_source), last_target)
    return cleaned


def _tempo_change(warp: WarpMap, bar_beat: float) -> float:
    """Relative tempo range over the beats of one bar, (max - min) / median."""
    bpm = warp.local_bpm(bar_beat + np.arange(warp.beats_per_bar) + 0.5)
    return float((bpm.max() - bpm.min()) / np.median(bpm))


def _duplicate_of(
    spectrum: np.ndarray,
    kept_spectra: list[np.ndarray],
    rows: list[dict[str, Any]],
    threshold: float,
) -> str:
    """Reason when a bar (its ``_magnitudes``) nearly repeats a kept bar of the same track.

    Compared on magnitude spectrograms, ``sum((|A| - |B|)^2) / sum(|A|^2)`` with A the kept bar:
    the phase vocoder re-renders identical source bars with a few ms of transient jitter, which
    a sample-wise score would call entirely different.
    """
    for reference, row in zip(kept_spectra, rows, strict=True):
        energy = float(np.sum(np.square(reference)))
        score = float(np.sum(np.square(reference - spectrum))) / max(energy, 1e-12)
        if score <= threshold:
            return f"near-duplicate of bar {row['bar_index']} (spectral distance {score:.3f})"
    return ""


def _magnitudes(bar: np.ndarray, frame: int = 1024) -> np.ndarray:
    """Loudness-normalised magnitude spectrogram of a ``[channels, T]`` bar (mono mix)."""
    mono = bar.mean(axis=0).astype(np.float64)
    mono = mono / max(np.sqrt(np.mean(np.square(mono))), 1e-12)
    hop = frame // 2
    frames = np.lib.stride_tricks.sliding_window_view(mono, frame)[::hop] * np.hanning(frame)
    return np.abs(np.fft.rfft(frames, axis=1))


def _reject_reason(bar: np.ndarray, row: dict[str, Any], filters: BarFilters) -> str:
    if row["trust"] < filters.min_trust:
        return f"untrusted tracking: trust {row['trust']:.2f} below {filters.min_trust}"
    if row["tempo_change"] > filters.max_tempo_change:
        return (
            f"tempo unstable within the bar: changes {row['tempo_change']:.1%} "
            f"(max {filters.max_tempo_change:.0%})"
        )
    if not filters.min_stretch <= row["stretch"] <= filters.max_stretch:
        return (
            f"stretch ratio {row['stretch']:.3f} outside "
            f"[{filters.min_stretch}, {filters.max_stretch}]"
        )
    return level_reason(bar, row["rms_dbfs"], filters)


def level_reason(bar: np.ndarray, rms_dbfs: float, filters: BarFilters) -> str:
    """Why a bar is too quiet or clipped to train on, or ""."""
    if rms_dbfs < filters.silence_dbfs:
        return f"silent: RMS {rms_dbfs:.1f} dBFS below {filters.silence_dbfs}"
    clipped = float(np.mean(np.abs(bar) >= CLIP_LEVEL))
    if clipped > MAX_CLIPPED_FRACTION:
        return f"clipping: {clipped:.2%} of samples at full scale"
    return ""


def normalize(bar: np.ndarray, target_dbfs: float | None) -> np.ndarray:
    if target_dbfs is None:
        return bar
    rms = np.sqrt(np.mean(np.square(bar, dtype=np.float64)))
    gain = 10 ** (target_dbfs / 20) / max(rms, 1e-9)
    peak = np.abs(bar).max() * gain
    if peak > CLIP_LEVEL:  # never clip to reach the loudness target
        gain *= CLIP_LEVEL / peak
    return (bar * gain).astype(np.float32)
