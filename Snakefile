# Thin entry point: config is params.yaml (validated like every stage does), rules live by topic.
# `snakemake --cores 8 train` stops after training; `snakemake --cores 8` runs everything.
from pipeline.code_deps import stage_code as _stage_code
from pipeline.params import validate_params


configfile: "params.yaml"


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
