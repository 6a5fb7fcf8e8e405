"""How far to trust a tracked bar grid, without ground truth.

Three pieces of evidence per bar, each in 0..1:

* ``beat_support``: the beat activation under the bar's beats, relative to the activation's
  typical peak in this track (madmom fires where beats are, weakly on music without drums;
  a grid that drifted or locked to the off-beat sits where it does not fire);
* ``agreement``: the share of the bar's beats that an independent tracker (the dynamic
  programme on spectral flux, a signal madmom's network never sees) puts within 70 ms
  of the beat or of the half-beat (flux peaks on syncopations: half a beat apart is the same
  grid; the off-beat question is settled by beats.offbeat_shift);
* ``downbeat``: how clearly the bar's first beat carries more downbeat evidence than its other
  beats, over the bar and its neighbours (a phase error puts the bar line on an ordinary beat).

A bar's trust is the smallest of the three: any one failing is reason enough to doubt it.
A track's trust is the median of its bars'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.audio import beat_dp
from pipeline.audio.beats import evidence_at

AGREEMENT_WINDOW = 0.07  # seconds, the usual beat-tracking tolerance
FULL_SUPPORT = 0.6  # share of the activation's typical peak at which a beat is fully supported
PEAK_PERCENTILE = 95  # the typical peak: this percentile of the activation over the track
DOWNBEAT_CONTEXT_BARS = 4  # bars on either side pooled for the downbeat evidence
DOWNBEAT_LEAD = 0.5  # a downbeat leading the next-best beat by this much is fully clear
# A section's bar phase (meter.phase_margin, over the whole section) is doubted below
# PHASE_MARGIN_FULL and not believed at PHASE_MARGIN_NONE: a whole track with every bar line
# on the wrong beat keeps a clear downbeat bar by bar but not a clear lead over the section.
# Calibrated with bench/prep_accuracy.py --set on the third-party and dev corpora: (0.5, 1.5),
# (0.75, 1.75), (1, 2) gave kept-bar precision 0.841, 0.854, 0.858 and recall 0.723, 0.711,
# 0.687 on the third-party corpus, the dev corpus the same at the first two (0.982, 0.908).
PHASE_MARGIN_NONE, PHASE_MARGIN_FULL = 0.75, 1.75


@dataclass(frozen=True)
class BarTrust:
    beat_support: np.ndarray  # one value per bar
    agreement: np.ndarray
    downbeat: np.ndarray

    @property
    def trust(self) -> np.ndarray:
        return np.minimum(np.minimum(self.beat_support, self.agreement), self.downbeat)


def independent_beats(
    onset: np.ndarray, fps: float, bpm_per_frame: np.ndarray | float
) -> np.ndarray:
    """Beat times (seconds) from the dynamic-programming tracker on spectral flux, with
    librosa's default tightness (loose: the flux, not the tempo, places the beats)."""
    return beat_dp.beat_frames(onset, fps, bpm_per_frame, tightness=100.0) / fps


def bar_trust(
    bar_beats: np.ndarray,
    activation: np.ndarray,
    fps: float,
    other_beats: np.ndarray,
    downbeat_score: np.ndarray,
) -> BarTrust:
    """Trust of each bar from its beats.

    ``bar_beats``: ``[bars, meter]`` beat times, first column the bar lines;
    ``activation``: madmom's beat activation per frame; ``other_beats``: the independent
    tracker's beat times; ``downbeat_score``: ``[bars, meter]`` standardised downbeat evidence
    at the same beats (pipeline.audio.meter.downbeat_evidence).
    """
    bars, meter = bar_beats.shape
    if bars == 0:
        empty = np.zeros(0)
        return BarTrust(empty, empty, empty)
    support = evidence_at(activation, bar_beats.ravel(), fps).reshape(bars, meter)
    peak = max(float(np.percentile(activation, PEAK_PERCENTILE)), 1e-3)
    beat_support = np.clip(support.mean(axis=1) / (FULL_SUPPORT * peak), 0.0, 1.0)
    if len(other_beats) >= 2:
        grid = np.sort(np.concatenate([other_beats, (other_beats[:-1] + other_beats[1:]) / 2]))
        index = np.clip(np.searchsorted(grid, bar_beats.ravel()), 1, len(grid) - 1)
        nearest = np.minimum(
            np.abs(grid[index] - bar_beats.ravel()), np.abs(grid[index - 1] - bar_beats.ravel())
        )
        agreement = (nearest <= AGREEMENT_WINDOW).reshape(bars, meter).mean(axis=1)
    else:
        agreement = np.zeros(bars)
    return BarTrust(beat_support, agreement, _downbeat_clarity(downbeat_score))


def _downbeat_clarity(score: np.ndarray) -> np.ndarray:
    """Per bar, pooled over its neighbours: the downbeat's evidence minus the best other
    beat's, mapped to 0..1 (0 at a tie or worse, 1 at a lead of DOWNBEAT_LEAD or more)."""
    bars, meter = score.shape
    if meter == 1:
        return np.ones(bars)
    context = DOWNBEAT_CONTEXT_BARS
    cumulative = np.vstack([np.zeros((1, meter)), np.cumsum(score, axis=0)])
    out = np.zeros(bars)
    for bar in range(bars):
        lo, hi = max(0, bar - context), min(bars, bar + context + 1)
        mean = (cumulative[hi] - cumulative[lo]) / (hi - lo)
        out[bar] = np.clip((mean[0] - mean[1:].max()) / DOWNBEAT_LEAD, 0.0, 1.0)
    return out


def phase_confidence(margin: float) -> float:
    """0..1 from a section's phase margin: 0 at PHASE_MARGIN_NONE or less, 1 at
    PHASE_MARGIN_FULL or more, linear between."""
    span = PHASE_MARGIN_FULL - PHASE_MARGIN_NONE
    return float(np.clip((margin - PHASE_MARGIN_NONE) / span, 0.0, 1.0))
