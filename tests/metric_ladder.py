"""A fixed ladder of inputs that every quality metric must order: noise < music.

Real bars are rendered directly on the grid by the demo drum synthesiser (no beat tracking, no
time stretching): one bar per ``60 * beats_per_bar / bpm`` seconds from the first downbeat, the
first bars of a few tracks per style, training and held-out bars from different tracks (seeds).
The rungs, each scored as the "generated" set against the training bars beside the held-out
reference:

- ``noise``: white noise at the real bars' RMS;
- ``silence``: zeros;
- ``tone``: a steady 220 Hz sine at the real bars' RMS (a whole number of cycles per bar);
- ``untrained_<arch>``: a freshly initialised (seeded) generator of each architecture;
- ``resynthesised_<arch>``: the ``real`` bars through the analysis and synthesis of each
  architecture that has a representation between it and audio (SpecGAN's spectrogram and phase
  reconstruction, with params.yaml's settings): the representation ceiling;
- ``shifted``: other held-out real bars rolled by a 16th (on the grid, off the downbeat);
- ``miscut``: the ``real`` tracks played slower and cut to the bar length, so each loop skips the
  end of its bar and clicks at the seam (for the seam click detector);
- ``real``: other held-out real bars (the ``valid`` reference is a third set of tracks);
- ``copies``: the training bars themselves (for the copy detectors).

Used by the unit test of the ladder and by ``python -m tests.metric_ladder`` (prints every
headline on every rung).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.data.synth import STYLES, SynthTrackSpec, render_track
from pipeline.grid import bar_samples_at
from pipeline.metrics.references import rms, round_trip_bars, white_noise
from pipeline.metrics.registry import compute_all, specs
from pipeline.models import build_models
from pipeline.models.conditioning import ConditionalGenerator
from pipeline.params import load_params

SAMPLE_RATE = 8000
BPM = 120.0
BEATS_PER_BAR = 4
TONE_HZ = 220.0
MISCUT_TEMPO = 11.0 / 12.0  # the miscut rung's tracks play at this share of the tempo
ARCHITECTURES = ("wavegan", "specgan")
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
# Tracks: training, the valid reference, and the two held-out rungs (real, shifted) all differ.
TRAIN_SEED, VALID_SEED, REAL_SEED, SHIFTED_SEED = 1, 2, 3, 4


def drum_bars(
    style: str,
    seed: int,
    n_bars: int,
    sample_rate: int = SAMPLE_RATE,
    bpm: float = BPM,
    beats_per_bar: int = BEATS_PER_BAR,
) -> np.ndarray:
    """``n_bars`` consecutive mono bars ``[n, 1, T]`` of one synthesised track, cut on its grid."""
    spec = SynthTrackSpec(
        style=style,
        bpm=bpm,
        n_bars=n_bars,
        beats_per_bar=beats_per_bar,
        lead_in_seconds=0.0,
        seed=seed,
    )
    audio, _, _ = render_track(spec, sample_rate)
    bar = bar_samples_at(sample_rate, bpm, beats_per_bar)
    mono = audio.mean(0)
    return np.stack([mono[i * bar : (i + 1) * bar] for i in range(n_bars)])[:, None, :]


def real_bars(
    seed: int,
    tracks_per_style: int,
    bars_per_track: int = 1,
    styles: Sequence[str] = STYLES,
    sample_rate: int = SAMPLE_RATE,
    bpm: float = BPM,
    beats_per_bar: int = BEATS_PER_BAR,
) -> tuple[np.ndarray, np.ndarray]:
    """(bars ``[styles * tracks * bars, 1, T]`` float32, style labels): the first bars of
    ``tracks_per_style`` tracks of each style, seeded ``seed * 1000 + track``. A track's last
    bar is always a fill; it is rendered and left out."""
    bars, labels = [], []
    for style in styles:
        for track in range(tracks_per_style):
            grid = (sample_rate, bpm, beats_per_bar)
            bars.append(drum_bars(style, seed * 1000 + track, bars_per_track + 1, *grid)[:-1])
            labels += [STYLES.index(style)] * bars_per_track
    return np.concatenate(bars).astype(np.float32), np.asarray(labels)


def steady_tone(
    shape: tuple[int, ...], sample_rate: int, level: float, hz: float = TONE_HZ
) -> np.ndarray:
    """A sine with RMS ``level``, rounded to a whole number of cycles per bar (it loops cleanly)."""
    length = shape[-1]
    cycles = max(1, round(hz * length / sample_rate))
    tone = np.sqrt(2.0) * level * np.sin(2.0 * np.pi * cycles * np.arange(length) / length)
    return np.broadcast_to(tone, shape).astype(np.float32)


def shifted_by_16th(bars: np.ndarray, beats_per_bar: int = BEATS_PER_BAR) -> np.ndarray:
    """Looped bars that start a 16th later: every hit moves one 16th later in the bar."""
    return np.roll(bars, bars.shape[-1] // (4 * beats_per_bar), axis=-1)


def untrained_output(
    arch: str, n: int, length: int, channels: int = 1, model_dim: int = 4, seed: int = 0
) -> np.ndarray:
    """``n`` bars from a freshly initialised (seeded) generator of architecture ``arch``."""
    torch.manual_seed(seed)
    generator, _ = build_models(
        arch, length=length, channels=channels, latent_dim=16, model_dim=model_dim
    )
    generator.eval()
    latents = generator.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return generator(latents).float().numpy()


def resynthesised(bars: np.ndarray) -> dict[str, np.ndarray]:
    """``{"resynthesised_<arch>": bars through arch's round trip}`` for every architecture whose
    generator has a representation between it and audio, with params.yaml's model settings."""
    settings = load_params(PARAMS)["train"]["model"]
    rungs = {}
    for arch in ARCHITECTURES:
        generator, _ = build_models(
            arch,
            length=bars.shape[2],
            channels=bars.shape[1],
            model_dim=4,  # the weights play no part in a round trip
            **settings.get(arch, {}),
        )
        if type(generator).round_trip is not ConditionalGenerator.round_trip:
            rungs[f"resynthesised_{arch}"] = round_trip_bars(generator.eval(), bars)
    return rungs


@dataclass(frozen=True)
class Ladder:
    """Training bars, the held-out reference (``valid``) and the rungs to score against them."""

    train: np.ndarray
    train_labels: np.ndarray
    valid: np.ndarray
    valid_labels: np.ndarray
    rungs: dict[str, np.ndarray]
    sample_rate: int = SAMPLE_RATE
    bpm: float = BPM
    beats_per_bar: int = BEATS_PER_BAR
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # per rung, as asked of it

    def options(self, **extra: Any) -> dict[str, Any]:
        """Metric options for this ladder (small bootstrap; labels for the classifier)."""
        return {
            "sample_rate": self.sample_rate,
            "bpm": self.bpm,
            "beats_per_bar": self.beats_per_bar,
            "bootstrap": 50,
            "seed": 0,
            "train_labels": self.train_labels,
            "valid_labels": self.valid_labels,
            **extra,
        }


def build_ladder(
    train_tracks_per_style: int = 4,
    valid_tracks_per_style: int = 3,
    bars_per_track: int = 2,
    styles: Sequence[str] = STYLES,
    sample_rate: int = SAMPLE_RATE,
    bpm: float = BPM,
    beats_per_bar: int = BEATS_PER_BAR,
    architectures: Sequence[str] = ARCHITECTURES,
    model_dim: int = 4,
    seed: int = 0,
) -> Ladder:
    """The ladder at this size; the same arguments always give the same arrays."""
    grid = {"sample_rate": sample_rate, "bpm": bpm, "beats_per_bar": beats_per_bar}
    train, train_labels = real_bars(
        TRAIN_SEED, train_tracks_per_style, bars_per_track, styles, **grid
    )
    held_out = (valid_tracks_per_style, 1, styles)
    valid, valid_labels = real_bars(VALID_SEED, *held_out, **grid)
    real, real_labels = real_bars(REAL_SEED, *held_out, **grid)
    shifted, _ = real_bars(SHIFTED_SEED, *held_out, **grid)
    level = rms(valid)
    rungs = {
        "noise": white_noise(valid.shape, level, seed),
        "silence": np.zeros_like(valid),
        "tone": steady_tone(valid.shape, sample_rate, level),
    }
    for arch in architectures:
        rungs[f"untrained_{arch}"] = untrained_output(
            arch, len(valid), valid.shape[2], valid.shape[1], model_dim, seed
        )
    rungs["shifted"] = shifted_by_16th(shifted, beats_per_bar)
    # Cut at the wrong tempo, a loop skips the end of its bar and jumps back to the downbeat.
    slow = {**grid, "bpm": bpm * MISCUT_TEMPO}
    rungs["miscut"] = real_bars(REAL_SEED, *held_out, **slow)[0][..., : real.shape[2]]
    rungs.update(resynthesised(real))
    rungs["real"] = real
    rungs["copies"] = train
    return Ladder(
        train=train,
        train_labels=train_labels,
        valid=valid,
        valid_labels=valid_labels,
        rungs=rungs,
        # A rung the size of the held-out sets is "asked for" their classes in order.
        labels={rung: train_labels if rung == "copies" else real_labels for rung in rungs},
        **grid,
    )


def run_ladder(
    ladder: Ladder, names: Sequence[str] | None = None, **options: Any
) -> dict[str, dict[str, dict[str, float]]]:
    """``{rung: compute_all(rung, train, valid)}``: each rung scored as the generated set, with
    the classes it stands for as ``generated_labels``; training and held-out features are
    computed once for all rungs."""
    shared = ladder.options(cache={}, **options)
    return {
        rung: compute_all(
            bars,
            ladder.train,
            ladder.valid,
            {**shared, "generated_labels": ladder.labels.get(rung)},
            names,
        )
        for rung, bars in ladder.rungs.items()
    }


def ladder_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Each headline (rows) on each rung (columns), with the held-out reference last."""
    rungs = list(results)
    first = results[rungs[0]]
    rows = [["metric.key", "better", *rungs, "valid"]]
    for spec in specs():
        metric = spec.name
        if metric not in first:
            continue
        for headline in spec.headlines:
            row = [f"{metric}.{headline.key}", headline.better]
            for rung in rungs:
                row.append(_format(results[rung][metric].get(f"generated.{headline.key}")))
            row.append(_format(first[metric].get(f"valid.{headline.key}")))
            rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i > 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.01 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.2e}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Every metric's headline on the ladder")
    parser.add_argument("--train-tracks", type=int, default=4, help="training tracks per style")
    parser.add_argument("--valid-tracks", type=int, default=3, help="held-out tracks per style")
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE)
    args = parser.parse_args(argv)
    ladder = build_ladder(args.train_tracks, args.valid_tracks, sample_rate=args.sample_rate)
    print(ladder_table(run_ladder(ladder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
