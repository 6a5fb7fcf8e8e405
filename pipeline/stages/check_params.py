"""check_params: validate params.yaml before any other stage runs (and DVC removes its outputs).

DVC deletes a stage's outputs before running its command, so a bad value found by the stage
itself would cost the previous results. This stage sits upstream of every other one (synth
and analyze depend on its output) and fails first. Its output is a constant marker: a valid
edit re-runs only the stages whose params sections changed. Snakemake validates the config
when it parses the Snakefile, before any job, and runs this rule too, so that both executors
write the same outputs.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.fileio import atomic_write
from pipeline.stages.common import log, run_stage, stage_parser

MARKER = "valid\n"


def main(args, params) -> None:
    # run_stage has validated args.params before calling this
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(MARKER))
    log.info("%s is valid", args.params)


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--out", type=Path, required=True, help="marker file written when valid")
    return p


if __name__ == "__main__":
    run_stage(main, parser())
