"""sample: random bars, loops and a latent-interpolation track from the trained generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.audio.io import write_audio
from pipeline.fileio import write_json_atomic, write_npz_atomic
from pipeline.sample.generate import generate_bars, interpolation_track, loops, random_latents
from pipeline.stages.common import log, run_stage, stage_parser
from pipeline.train.checkpoint import load_generator

N_LOOPS = 4


def main(args, params) -> None:
    section = params["sample"]
    generator, config = load_generator(args.model, device="cpu")
    sr = config.sample_rate
    bars = generate_bars(generator, random_latents(generator, section["n_bars"], section["seed"]))
    out = args.out_dir
    for i, bar in enumerate(bars):
        write_audio(out / "bars" / f"bar_{i:03d}.wav", bar, sr)
    write_npz_atomic(out / "generated.npz", bars=bars, sample_rate=np.int64(sr))
    for i, loop in enumerate(loops(bars[:N_LOOPS], section["loop_repeats"])):
        write_audio(out / "loops" / f"loop_{i:03d}.wav", loop, sr)
    track = interpolation_track(
        generator,
        section["interpolation_bars"],
        section["interpolation_keyframes"],
        section["interpolation"],
        section["seed"] + 1,
    )
    write_audio(out / "interpolation.wav", track, sr)
    seconds = track.shape[1] / sr
    write_json_atomic(
        out / "samples.json",
        {
            "sample_rate": sr,
            "bar_samples": config.length,
            "n_bars": len(bars),
            "interpolation_bars": section["interpolation_bars"],
            "interpolation_seconds": seconds,
        },
    )
    log.info(
        "%d bars, %d loops, %.1f s interpolation track -> %s",
        len(bars),
        min(N_LOOPS, len(bars)),
        seconds,
        out,
    )


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
