# Thin entry point: config is params.yaml (validated like every stage does), rules live by topic.
# `snakemake --cores 8 train` stops after training; `snakemake --cores 8` runs everything.
from pipeline.params import validate_params


configfile: "params.yaml"


validate_params(config, source="params.yaml")


include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluation.smk"


rule all:
    default_target: True
    input:
        "data/metrics/metrics.json",
        "data/report",
