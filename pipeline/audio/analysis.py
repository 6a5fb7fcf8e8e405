"""Per-track timing analysis: pick the best timing source and express it as a warp map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import beats as beat_grid
from pipeline.audio import downbeats, loops, tracker, trust
from pipeline.audio import meter as meter_module
from pipeline.audio.activations import FPS, TrackActivations, compute_activations
from pipeline.audio.asd import (
    AppleDoubleStub,
    AsdError,
    bar_beats,
    check_frame_count,
    read_asd,
    warp_points,
)
from pipeline.audio.io import AudioError, dbfs, probe_audio, read_audio, stream_rms_dbfs
from pipeline.audio.warp import MAX_BEATS_PER_BAR, Section, Timing, WarpMap

SILENCE_DBFS = -60.0


@dataclass(frozen=True)
class AnalyzeOptions:
    method: str = "madmom"  # madmom | librosa | clip (no tracking: pipeline.audio.clips)
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
) -> tuple[Timing | None, dict[str, Any]]:
    """Analyse one recording: override, else .asd markers, else beat tracking.

    Raises AudioError when the track cannot be used at all (an unusable override included).
    An unusable .asd is recorded in ``fallback_reason`` and beat tracking takes over.
    The madmom path streams the file (memory does not grow with its length).
    Method ``clip`` checks the file and tracks nothing (timing None): the bars stage takes the
    recording whole as one example (:mod:`pipeline.audio.clips`), overrides and .asd unused.
    """
    header = probe_audio(path)
    duration = header.frames / header.sample_rate
    info: dict[str, Any] = {
        "duration": duration,
        "sample_rate": header.sample_rate,
        "channels": header.channels,
        "asd_path": "",  # the .asd found beside the audio, used or not
        "fallback_reason": "",  # why a present .asd (or the preferred tracker) was not used
    }

    if options.method == "clip":
        _refuse_silence(path, stream_rms_dbfs(path))
        return None, {**info, "method": "clip", "confidence": 1.0, "trust": 1.0}

    if override is not None:
        _refuse_silence(path, stream_rms_dbfs(path))
        try:
            warp = WarpMap.constant_tempo(
                override.bpm, override.first_downbeat, override.meter, duration
            )
            override_info = _warp_info(warp, duration)
        except ValueError as err:
            raise AudioError(path, f"override unusable: {err}") from None
        return Timing.single(warp), {**info, **override_info, "method": "override"}

    if options.prefer_asd:
        asd_path = find_asd(path)
        if asd_path is not None:
            info["asd_path"] = str(asd_path)
            try:
                warp = asd_warp_map(asd_path, header.frames)
                asd_info = _warp_info(warp, duration)
            except AppleDoubleStub:
                info["fallback_reason"] = (
                    f"{asd_path.name} skipped: macOS AppleDouble stub, not Ableton analysis"
                )
            except (OSError, ValueError) as err:  # AsdError is a ValueError
                reason = err.reason if isinstance(err, AsdError) else str(err)
                info["fallback_reason"] = f"{asd_path.name} not used: {reason}"
            else:
                _refuse_silence(path, stream_rms_dbfs(path))
                return Timing.single(warp), {**info, **asd_info, "method": "asd"}

    order = [options.method] + [name for name in TRACKERS if name != options.method]
    errors = []
    for name in order:
        try:
            timing, tracked = TRACKERS[name](path, options)
        except AudioError:
            raise
        except Exception as err:  # a tracker failing on odd audio must not stop the others
            errors.append(f"{name} failed: {err}")
            continue
        reasons = [info["fallback_reason"], *errors]
        info["fallback_reason"] = "; ".join(r for r in reasons if r)
        return timing, {**info, **tracked}
    raise AudioError(path, "; ".join(errors))


def track_with_madmom(path: Path, options: AnalyzeOptions) -> tuple[Timing, dict[str, Any]]:
    """Streamed activations, then sections of bars (pipeline.audio.tracker) and their trust."""
    acts = compute_activations(path)
    _refuse_silence(path, acts.rms_dbfs)
    return track_activations(acts, options)


def track_activations(
    acts: TrackActivations, options: AnalyzeOptions
) -> tuple[Timing, dict[str, Any]]:
    """Sections of bars and their trust from a recording's activations (no audio read).

    A recording that reads as a loop (pipeline.audio.loops) gets the loop's grid instead of
    the tracked sections: bar line at the file start, whole bars."""
    evidence = tracker.Evidence(
        FPS, acts.beat, acts.downbeat, acts.onset_low, acts.chroma, acts.onset
    )
    meters = tuple(options.meters)
    limits = (meters, options.min_bpm, options.max_bpm)
    level = (acts.head_dbfs, acts.rms_dbfs)
    try:
        tracking = tracker.track_sections(evidence, acts.duration, *limits)
    except ValueError:
        loop = loops.fit_loop(acts.duration, None, None, acts.onset, FPS, level, *limits)
        if loop is None:
            raise
        return _loop_timing(acts, evidence, loop, tracking=None)
    longest = max(tracking.sections, key=lambda s: s.span.end - s.span.start)
    loop = loops.fit_loop(
        acts.duration, tracking.beat_times, longest.meter, acts.onset, FPS, level, *limits
    )
    if loop is not None:
        return _loop_timing(acts, evidence, loop, tracking)
    spans = [s.span for s in tracking.sections]
    phase = [trust.phase_confidence(s.phase_margin) for s in tracking.sections]
    bar_rows = _bar_trust(spans, evidence, acts.onset, acts.duration, phase)
    lines = longest.span.bar_starts(acts.duration)
    bar_bpm = 60.0 * longest.meter / np.diff(lines) if len(lines) >= 2 else np.zeros(0)
    return Timing(tuple(spans)), {
        **_tracking_info(tracking, evidence),
        "bpm": longest.bpm,
        "meter": longest.meter,
        "tempo_cv": float(np.std(bar_bpm) / np.median(bar_bpm)) if len(bar_bpm) else 0.0,
        "tempo_drift": float((bar_bpm[-1] - bar_bpm[0]) / np.median(bar_bpm))
        if len(bar_bpm)
        else 0.0,
        "n_sections": len(spans),
        "phase_margin": longest.phase_margin,
        "loop": False,
        "loop_reason": "",
        **_trust_info(bar_rows, spans, acts.duration),
    }


def _loop_timing(
    acts: TrackActivations,
    evidence: tracker.Evidence,
    loop: loops.LoopFit,
    tracking: tracker.Tracking | None,
) -> tuple[Timing, dict[str, Any]]:
    """The loop's grid: one steady section from the file start to its end."""
    warp = WarpMap.constant_tempo(loop.bpm, 0.0, loop.meter, acts.duration)
    spans = [Section(warp, 0.0, acts.duration)]
    bar_rows = _bar_trust(spans, evidence, acts.onset, acts.duration, phase=None)
    beats = warp.seconds_at(np.arange(loop.bars * loop.meter))
    untracked = {
        "method": "madmom",
        "confidence": float(np.mean(beat_grid.evidence_at(evidence.any_beat, beats, FPS))),
        "section_summary": "",
        "steady": True,
        "octave_changed": False,
        "offbeat_ratio": 1.0,
    }
    return Timing(tuple(spans)), {
        **(untracked if tracking is None else _tracking_info(tracking, evidence)),
        "bpm": loop.bpm,
        "meter": loop.meter,
        "tempo_cv": 0.0,
        "tempo_drift": 0.0,
        "n_sections": 1,
        "loop": True,
        "loop_reason": loop.reason,
        **_trust_info(bar_rows, spans, acts.duration),
    }


def _tracking_info(tracking: tracker.Tracking, evidence: tracker.Evidence) -> dict[str, Any]:
    """What the tracker saw, whichever grid is used."""
    beat_evidence = beat_grid.evidence_at(evidence.any_beat, tracking.beat_times, FPS)
    return {
        "method": "madmom",
        "confidence": float(np.mean(beat_evidence)),
        "section_summary": "; ".join(
            f"{s.span.start:.2f}-{s.span.end:.2f}s {s.bpm:.2f} BPM, {s.meter} beats a bar"
            for s in tracking.sections
        ),
        "steady": all(s.steady for s in tracking.sections),
        "octave_changed": tracking.octave_changed,
        "offbeat_ratio": tracking.offbeat_ratio,
    }


def _trust_info(
    bar_rows: list[dict[str, float]], spans: list[Section], duration: float
) -> dict[str, Any]:
    trust_values = np.array([row["trust"] for row in bar_rows])
    return {
        "trust": float(np.median(trust_values)) if len(trust_values) else 0.0,
        "n_bar_lines": int(sum(len(s.bar_starts(duration)) for s in spans)),
        "bar_trust": bar_rows,
    }


def track_with_librosa(path: Path, options: AnalyzeOptions) -> tuple[Timing, dict[str, Any]]:
    """The fallback tracker on the whole signal (loaded whole: only used when madmom fails)."""
    audio, sample_rate = read_audio(path)
    _refuse_silence(path, dbfs(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))))
    tracked = downbeats.track_librosa(
        audio.mean(axis=0), sample_rate, list(options.meters), options.min_bpm, options.max_bpm
    )
    return Timing.single(tracked.warp), {
        "method": tracked.method,
        "bpm": tracked.bpm,
        "meter": tracked.warp.beats_per_bar,
        "tempo_cv": tracked.tempo_cv,
        "tempo_drift": tracked.tempo_drift,
        "confidence": tracked.confidence,
        "n_sections": 1,
    }


TRACKERS = {"madmom": track_with_madmom, "librosa": track_with_librosa}


def _refuse_silence(path: Path, rms_dbfs: float) -> None:
    if rms_dbfs < SILENCE_DBFS:
        raise AudioError(path, f"silent (RMS below {SILENCE_DBFS:g} dBFS)")


def _bar_trust(
    spans: list[Section],
    evidence: tracker.Evidence,
    onset: np.ndarray,
    duration: float,
    phase: list[float] | None,
) -> list[dict[str, float]]:
    """Trust of every bar line of every section (pipeline.audio.trust), one row each.
    ``phase``: per section, the confidence in its bar phase as a whole, which caps the
    downbeat clarity of each of its bars; None for a loop, whose bar lines come from the file
    itself: its downbeat evidence is not asked."""
    frame_times = np.arange(len(onset)) / FPS
    bpm_per_frame = np.full(len(onset), _median_bpm(spans[0]))
    for span in spans:
        bpm_per_frame[frame_times >= span.start] = _median_bpm(span)
    other = trust.independent_beats(onset, FPS, bpm_per_frame)
    rows = []
    for index, span in enumerate(spans):
        warp = span.warp
        lines = span.bar_starts(duration)
        if len(lines) < 2:
            continue
        beat_positions = np.round(warp.beat_at(lines))[:, None] + np.arange(warp.beats_per_bar)
        bar_beats = warp.seconds_at(beat_positions)
        score = meter_module.downbeat_evidence(
            bar_beats.ravel(), FPS, evidence.downbeat, evidence.onset_low, evidence.chroma
        ).reshape(bar_beats.shape)
        parts = trust.bar_trust(bar_beats, evidence.any_beat, FPS, other, score)
        if phase is None:
            downbeat = np.ones(len(lines))
        else:
            downbeat = np.minimum(parts.downbeat, phase[index])
        bar = np.minimum(np.minimum(parts.beat_support, parts.agreement), downbeat)
        for i, start in enumerate(lines):
            rows.append(
                {
                    "start_s": float(start),
                    "trust": float(bar[i]),
                    "beat_support": float(parts.beat_support[i]),
                    "agreement": float(parts.agreement[i]),
                    "downbeat_clarity": float(downbeat[i]),
                }
            )
    return rows


def _median_bpm(span: Section) -> float:
    """A section's typical tempo: 60 over its warp map's median beat length."""
    seconds, beats = span.warp.seconds, span.warp.beats
    return 60.0 / float(np.median(np.diff(seconds) / np.diff(beats)))


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
