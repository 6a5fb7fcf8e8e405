"""sample: random bars, loops, latent walks (spherical and linear), the interpolation track at
other tempos, and per-class bars (conditional models) from the trained generator. Every WAV is
tagged for a DAW (``acid`` tempo and beats, ``smpl`` loop over its whole bars:
:mod:`pipeline.export.riff`). The bars the evaluate stage scores, ``sample.score_bars`` of
them from their own latents (a conditional model's classes in the training bars' proportions),
are packed into
``generated.npz``; the ``sample.n_bars`` listening bars are WAVs under ``bars/``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.export.wav import write_bars_wav
from pipeline.fileio import write_json_atomic, write_npz_atomic
from pipeline.grid import bar_samples_at
from pipeline.models import generator_file
from pipeline.models.generator_file import CheckpointError
from pipeline.sample.assemble import crossfade_samples
from pipeline.sample.generate import (
    interpolation_track,
    loops,
    per_class_bars,
    random_bars,
    scored_bars,
)
from pipeline.sample.latent import INTERPOLATIONS
from pipeline.sample.tempo import retempo
from pipeline.stages.common import StageError, log, run_stage, stage_parser

N_LOOPS = 4
# Latent seeds from sample.seed: the listening bars use it, the walks +1, the per-class bars +2
# and the scored bars (generated.npz) +3, so each set is its own draw.
SCORE_SEED_OFFSET = 3
MIN_SCORE_BARS = 2  # the evaluate stage's minimum (spreads and intervals need two)


def main(args: argparse.Namespace, params: dict[str, Any]) -> None:
    section = params["sample"]
    if section["score_bars"] < MIN_SCORE_BARS:
        raise StageError(
            f"sample.score_bars: {section['score_bars']}; the evaluate stage needs at least "
            f"{MIN_SCORE_BARS} generated bars to score (256 gives usable intervals)"
        )
    try:
        model = generator_file.load(args.model)
    except CheckpointError as err:  # truncated, corrupt, unsafe or not a generator file
        raise StageError(str(err)) from None
    generator, grid = model.generator, model.grid
    sr, length = model.settings.sample_rate, model.settings.length
    bpm, beats_per_bar = grid.bpm, grid.beats_per_bar
    fade = crossfade_samples(sr, section["crossfade_ms"])
    out = args.out_dir
    files: list[dict[str, Any]] = []

    def write(relative: str, audio: np.ndarray, kind: str, title: str, **info: Any) -> None:
        row = {"path": relative, "kind": kind, "title": title, "bar_samples": length, "bpm": bpm}
        row.update(info)
        write_bars_wav(out / relative, audio, sr, row["bar_samples"], row["bpm"], beats_per_bar)
        files.append({**row, "bars": audio.shape[-1] // row["bar_samples"]})

    seed = section["seed"]
    bars = random_bars(generator, section["n_bars"], seed)
    for i, bar in enumerate(bars):
        write(f"bars/bar_{i:03d}.wav", bar, "bar", f"Bar {i}")
    n_scored = pack_scored_bars(
        out / "generated.npz",
        generator,
        section["score_bars"],
        seed + SCORE_SEED_OFFSET,
        sr,
        model.class_counts,
    )

    repeats = section["loop_repeats"]
    for i, loop in enumerate(loops(bars[:N_LOOPS], repeats, fade, sr)):
        write(f"loops/loop_{i:03d}.wav", loop, "loop", f"Bar {i} looped {repeats}x")

    # Both interpolations through the same keyframes, so they can be compared by ear.
    walk = {
        "n_bars": section["interpolation_bars"],
        "n_keyframes": section["interpolation_keyframes"],
    }
    tracks = {
        method: interpolation_track(
            generator, **walk, method=method, seed=seed + 1, crossfade=fade, sample_rate=sr
        )
        for method in INTERPOLATIONS
    }
    for method, track in tracks.items():
        write(f"walks/{method}.wav", track, "walk", f"Latent walk ({method})", method=method)
    track = tracks[section["interpolation"]]
    write_bars_wav(out / "interpolation.wav", track, sr, length, bpm, beats_per_bar)

    for target in section["retempo_bpm"]:
        new_length = bar_samples_at(sr, target, beats_per_bar)
        stretched = retempo(track, sr, length, new_length)
        write(
            f"tempo/interpolation_{target:g}bpm.wav",
            stretched,
            "tempo",
            f"Latent walk ({section['interpolation']}) at {target:g} BPM",
            bar_samples=new_length,
            bpm=float(target),
            method=section["interpolation"],
        )

    if model.settings.num_classes:
        per_class = per_class_bars(generator, section["bars_per_class"], seed + 2)
        for c, class_bars in enumerate(per_class):
            for i, bar in enumerate(class_bars):
                write(
                    f"classes/class_{c:02d}/bar_{i:03d}.wav",
                    bar,
                    "class",
                    f"Class {c}, bar {i}",
                    class_index=c,
                )

    seconds = track.shape[1] / sr
    write_json_atomic(
        out / "samples.json",
        {
            "sample_rate": sr,
            "bar_samples": length,
            "bpm": bpm,
            "beats_per_bar": beats_per_bar,
            "n_bars": len(bars),
            "score_bars": n_scored,
            "num_classes": model.settings.num_classes,
            "interpolation": section["interpolation"],
            "interpolation_bars": section["interpolation_bars"],
            "interpolation_seconds": seconds,
            "crossfade_samples": fade,
            "files": files,
        },
    )
    log.info(
        "%d bars (%d more to score), %d loops, %d walks of %.1f s, %d re-tempoed, %d class bars "
        "-> %s",
        len(bars),
        n_scored,
        min(N_LOOPS, len(bars)),
        len(tracks),
        seconds,
        len(section["retempo_bpm"]),
        sum(f["kind"] == "class" for f in files),
        out,
    )


def pack_scored_bars(
    path: Path,
    generator: torch.nn.Module,
    n: int,
    seed: int,
    sample_rate: int,
    class_counts: list[int] | None = None,
) -> int:
    """Generate the ``n`` bars the evaluate stage scores (see :func:`scored_bars`: classes in
    the training bars' proportions ``class_counts``) and pack them into ``path`` with their
    labels (conditional models) and the sample rate; returns ``n``."""
    bars, labels = scored_bars(generator, n, seed, class_counts=class_counts)
    packed = {"bars": bars, "sample_rate": np.int64(sample_rate)}
    if labels is not None:
        packed["labels"] = labels
    write_npz_atomic(path, **packed)
    return len(bars)


def parser() -> argparse.ArgumentParser:
    p = stage_parser(__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
