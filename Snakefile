# Thin entry point: config is params.yaml (validated like every stage does), rules live by topic.
# `snakemake --cores 8 train` stops after training; `snakemake --cores 8` runs everything.
from pathlib import Path as _Path

from snakemake.utils import update_config as _update_config

from pipeline.code_deps import stage_code as _stage_code
from pipeline.params import validate_params
from pipeline.yamlio import parse_yaml as _parse_yaml

# params.yaml read as DVC reads it (YAML 1.2: `1e-05` is a number; `configfile:` reads YAML 1.1,
# where it is a string); values given with --config on the command line still win.
_params = _parse_yaml(_Path("params.yaml").read_text())
_update_config(_params, config)
config.clear()
config.update(_params)
validate_params(config, source="params.yaml")


def stage_code(stage: str) -> list[str]:
    """The .py files the stage program imports, one input each: editing any re-runs the rule.
    dvc.yaml lists the same files (`python -m pipeline.graph --write-deps`)."""
    return _stage_code(stage, root=workflow.basedir)


include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluation.smk"


rule all:
    default_target: True
    input:
        "data/metrics/metrics.json",
        "data/report",
        "data/raw/fetched",  # as `dvc repro` runs every stage
