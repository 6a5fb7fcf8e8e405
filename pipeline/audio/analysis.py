"""Per-track timing analysis: pick the best timing source and express it as a warp map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import downbeats
from pipeline.audio.asd import (
    AppleDoubleStub,
    AsdError,
    bar_beats,
    check_frame_count,
    read_asd,
    warp_points,
)
from pipeline.audio.io import AudioError, read_audio
from pipeline.audio.warp import MAX_BEATS_PER_BAR, WarpMap

SILENCE_DBFS = -60.0
TRACKERS = {"madmom": downbeats.track_madmom, "librosa": downbeats.track_librosa}


@dataclass(frozen=True)
class AnalyzeOptions:
    method: str = "madmom"  # madmom | librosa
    prefer_asd: bool = True
    meters: tuple[int, ...] = (3, 4)
    min_bpm: float = 80.0
    max_bpm: float = 180.0


@dataclass(frozen=True)
class Override:
    """A user's correction for a track a tracker gets wrong: steady tempo from a downbeat."""

    bpm: float
    first_downbeat: float
    meter: int


def analyze_track(
    path: Path, options: AnalyzeOptions, override: Override | None = None
) -> tuple[WarpMap, dict[str, Any]]:
    """Analyse one recording: override, else .asd markers, else beat tracking.

    Raises AudioError when the track cannot be used at all (an unusable override included).
    An unusable .asd is recorded in ``fallback_reason`` and beat tracking takes over.
    """
    audio, sample_rate = read_audio(path)
    duration = audio.shape[1] / sample_rate
    info: dict[str, Any] = {
        "duration": duration,
        "sample_rate": sample_rate,
        "channels": audio.shape[0],
        "asd_path": "",  # the .asd found beside the audio, used or not
        "fallback_reason": "",  # why a present .asd (or the preferred tracker) was not used
    }
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if 20 * np.log10(rms + 1e-12) < SILENCE_DBFS:
        raise AudioError(path, f"silent (RMS below {SILENCE_DBFS:g} dBFS)")

    if override is not None:
        try:
            warp = WarpMap.constant_tempo(
                override.bpm, override.first_downbeat, override.meter, duration
            )
            override_info = _warp_info(warp, duration)
        except ValueError as err:
            raise AudioError(path, f"override unusable: {err}") from None
        return warp, {**info, **override_info, "method": "override"}

    if options.prefer_asd:
        asd_path = find_asd(path)
        if asd_path is not None:
            info["asd_path"] = str(asd_path)
            try:
                warp = asd_warp_map(asd_path, audio.shape[1])
                asd_info = _warp_info(warp, duration)
            except AppleDoubleStub:
                info["fallback_reason"] = (
                    f"{asd_path.name} skipped: macOS AppleDouble stub, not Ableton analysis"
                )
            except (OSError, ValueError) as err:  # AsdError is a ValueError
                reason = err.reason if isinstance(err, AsdError) else str(err)
                info["fallback_reason"] = f"{asd_path.name} not used: {reason}"
            else:
                return warp, {**info, **asd_info, "method": "asd"}

    mono = audio.mean(axis=0)
    order = [options.method] + [name for name in TRACKERS if name != options.method]
    errors = []
    for name in order:
        try:
            tracked = TRACKERS[name](
                mono, sample_rate, list(options.meters), options.min_bpm, options.max_bpm
            )
        except Exception as err:  # a tracker failing on odd audio must not stop the others
            errors.append(f"{name} failed: {err}")
            continue
        reasons = [info["fallback_reason"], *errors]
        info["fallback_reason"] = "; ".join(r for r in reasons if r)
        return tracked.warp, {
            **info,
            "method": tracked.method,
            "bpm": tracked.bpm,
            "meter": tracked.warp.beats_per_bar,
            "tempo_cv": tracked.tempo_cv,
            "tempo_drift": tracked.tempo_drift,
            "confidence": tracked.confidence,
        }
    raise AudioError(path, "; ".join(errors))


def find_asd(audio_path: Path) -> Path | None:
    """Live writes ``song.wav.asd``; ``song.asd`` beside ``song.wav`` also occurs.

    A macOS AppleDouble stub (``._song.wav.asd``) is returned only when no real file is there,
    so that the caller can record why it was skipped.
    """
    names = (audio_path.name + ".asd", audio_path.stem + ".asd")
    for name in (*names, *("._" + n for n in names)):
        candidate = audio_path.with_name(name)
        if candidate.is_file():
            return candidate
    return None


def asd_warp_map(asd_path: Path, audio_frames: int) -> WarpMap:
    """Warp map from an Ableton .asd, checked against the audio.

    Raises AppleDoubleStub for a macOS ``._`` stub, AsdError (a ValueError) naming the reason
    for anything else unusable, OSError when the file cannot be read.
    """
    clip = read_asd(asd_path)
    if not clip.has_markers:  # nothing to trust, whichever audio it belongs to
        raise AsdError(str(asd_path), f"no warp markers (saved flag {int(clip.saved)})")
    check_frame_count(clip, audio_frames)
    seconds, beats = warp_points(clip)
    beats_per_bar = bar_beats(clip)
    if not (beats_per_bar.is_integer() and 1 <= beats_per_bar <= MAX_BEATS_PER_BAR):
        num, den = clip.time_signature
        raise AsdError(
            str(asd_path),
            f"TimeSignature {num:g}/{den:g} gives {beats_per_bar:g} beats per bar, not a whole "
            f"number in 1..{MAX_BEATS_PER_BAR}",
        )
    return WarpMap(seconds, beats, int(beats_per_bar))


def _warp_info(warp: WarpMap, duration: float) -> dict[str, Any]:
    """Tempo statistics of a map that came from markers or an override (exact by definition)."""
    bar_lines = warp.bar_starts(duration)
    bpm = warp.local_bpm(warp.beats)
    return {
        "bpm": float(np.median(bpm)),
        "meter": warp.beats_per_bar,
        "tempo_cv": float(np.std(bpm) / np.median(bpm)),
        "tempo_drift": float((bpm[-1] - bpm[0]) / np.median(bpm)),
        "confidence": 1.0,
        "n_bar_lines": len(bar_lines),
    }
