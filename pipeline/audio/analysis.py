"""Per-track timing analysis: pick the best timing source and express it as a warp map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import downbeats
from pipeline.audio.io import AudioError, read_audio
from pipeline.audio.warp import WarpMap

SILENCE_DBFS = -60.0
TRACKERS = {"madmom": downbeats.track_madmom, "librosa": downbeats.track_librosa}


@dataclass(frozen=True)
class AnalyzeOptions:
    method: str = "madmom"  # madmom | librosa
    prefer_asd: bool = True
    meters: tuple[int, ...] = (3, 4)
    min_bpm: float = 80.0
    max_bpm: float = 180.0


def analyze_track(path: Path, options: AnalyzeOptions) -> tuple[WarpMap, dict[str, Any]]:
    """Analyse one recording. Raises AudioError when the track cannot be used at all."""
    audio, sample_rate = read_audio(path)
    duration = audio.shape[1] / sample_rate
    info: dict[str, Any] = {
        "duration": duration,
        "sample_rate": sample_rate,
        "channels": audio.shape[0],
        "fallback_reason": "",
    }
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if 20 * np.log10(rms + 1e-12) < SILENCE_DBFS:
        raise AudioError(path, f"silent (RMS below {SILENCE_DBFS:g} dBFS)")

    if options.prefer_asd:
        asd_path = find_asd(path)
        if asd_path is not None:
            try:
                warp = asd_warp_map(asd_path, audio.shape[1])
            except ValueError as err:
                info["fallback_reason"] = f"asd not used: {err}"
            else:
                return warp, {**info, **_asd_info(warp, duration), "asd_path": str(asd_path)}

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
    """Live writes ``song.wav.asd``; ``song.asd`` beside ``song.wav`` also occurs."""
    for candidate in (
        audio_path.with_name(audio_path.name + ".asd"),
        audio_path.with_suffix(".asd"),
    ):
        if candidate.is_file():
            return candidate
    return None


def asd_warp_map(asd_path: Path, audio_frames: int) -> WarpMap:
    """Warp map from an Ableton .asd, checked against the audio; ValueError says why not."""
    from pipeline.audio import asd

    clip = asd.read_asd(asd_path)
    asd.check_frame_count(clip, audio_frames)
    if not clip.has_markers:
        raise asd.AsdError(f"{asd_path}: no warp markers (never saved with markers)")
    seconds, beats = asd.warp_points(clip)
    beats_per_bar = clip.beats_per_bar
    if beats_per_bar != int(beats_per_bar):
        raise asd.AsdError(f"{asd_path}: time signature gives {beats_per_bar} beats per bar")
    return WarpMap(seconds, beats, int(beats_per_bar))


def _asd_info(warp: WarpMap, duration: float) -> dict[str, Any]:
    bar_lines = warp.bar_starts(duration)
    bpm = warp.local_bpm(warp.beats)
    return {
        "method": "asd",
        "bpm": float(np.median(bpm)),
        "meter": warp.beats_per_bar,
        "tempo_cv": float(np.std(bpm) / np.median(bpm)),
        "tempo_drift": float((bpm[-1] - bpm[0]) / np.median(bpm)),
        "confidence": 1.0,
        "n_bar_lines": len(bar_lines),
    }
