"""synth: the bundled demo corpus of procedurally synthesised drum-and-bass loops."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.synth import make_corpus, random_specs
from pipeline.stages.common import log, run_stage, stage_parser


def main(args, params) -> None:
    section = params["demo"]
    specs = random_specs(
        section["tracks_per_style"],
        section["styles"],
        tuple(section["bpm_range"]),
        section["bars_per_track"],
        section["seed"],
    )
    truth = make_corpus(args.out_dir, specs, section["sample_rate"])
    log.info("%d demo tracks (%s) -> %s", len(truth), ", ".join(section["styles"]), args.out_dir)


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
