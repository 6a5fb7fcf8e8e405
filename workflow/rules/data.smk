# Data preparation: the params check, a fetched public dataset, demo corpus, downbeat analysis, bar rendering, splits.
# check_params writes the marker synth and analyze depend on, as in dvc.yaml (Snakemake has
# also validated params.yaml when it parsed the Snakefile).
#
# analyze and bars fan out: one `*_track` job per recording fills the per-track result cache
# (data/cache), then the aggregate rule runs the same command as DVC's stage and finds every
# track already done. The aggregate rules are what `python -m pipeline.graph` compares.
# code=stage_code(...) (Snakefile): the .py files the stage program imports, one input each.
from pathlib import Path

from pipeline.audio.io import find_audio_files

AUDIO_DIR = config["data"]["audio_dir"]
TRACK_DONE = "data/cache/snakemake/{stage}/{path}.done"


# a second's work: on a cluster it runs where Snakemake runs, not as a queued job
localrules:
    check_params,
    fetch,


rule check_params:
    input:
        params="params.yaml",
        schema="workflow/schemas/params.schema.yaml",
        code=stage_code("check_params"),
    output:
        "data/params.valid",
    shell:
        "python -m pipeline.stages.check_params --params params.yaml --out {output}"


# downloads run where Snakemake runs (cluster nodes often have no internet), like DVC's stage
checkpoint fetch:
    input:
        valid="data/params.valid",
        registry="datasets",
        code=stage_code("fetch"),
    output:
        fetched=directory("data/raw/fetched"),  # first: recordings() reads output[0]
        models=directory("data/pretrained"),
    params:
        fetch=config["fetch"],
    shell:
        "python -m pipeline.stages.fetch --params params.yaml --registry-dir {input.registry}"
        " --download-dir data/downloads --out-dir {output.fetched} --models-dir {output.models}"


checkpoint synth:
    input:
        valid="data/params.valid",
        code=stage_code("synth"),
    output:
        directory("data/raw/demo"),
    params:
        demo=config["demo"],
    shell:
        "python -m pipeline.stages.synth --params params.yaml --out-dir {output}"


def recordings():
    """Paths of the recordings under AUDIO_DIR (after the demo corpus is built or the dataset
    fetched, if it is one of those)."""
    for made in (checkpoints.synth, checkpoints.fetch):
        if Path(AUDIO_DIR) == Path(made.rule.output[0]):
            made.get()
    root = Path(AUDIO_DIR)
    return [path.relative_to(root).as_posix() for path in find_audio_files(root)]


def per_track(stage):
    return lambda wildcards: expand(TRACK_DONE, stage=stage, path=recordings())


rule analyze_track:
    input:
        audio=f"{AUDIO_DIR}/{{path}}",
        code=stage_code("analyze"),
    output:
        touch(TRACK_DONE.replace("{stage}", "analyze")),
    params:
        data=config["data"],
        analyze=config["analyze"],
    shell:
        "python -m pipeline.stages.analyze --params params.yaml --audio-dir {params.data[audio_dir]:q}"
        " --out-dir data/interim/analysis --cache-dir data/cache --only {wildcards.path:q}"


rule analyze:
    input:
        valid="data/params.valid",
        audio=AUDIO_DIR,
        code=stage_code("analyze"),
        tracks=per_track("analyze"),
    output:
        directory("data/interim/analysis"),
    params:
        data=config["data"],
        analyze=config["analyze"],
    shell:
        "python -m pipeline.stages.analyze --params params.yaml"
        " --audio-dir {input.audio:q} --out-dir {output} --cache-dir data/cache"


rule bars_track:
    input:
        audio=f"{AUDIO_DIR}/{{path}}",
        analysis="data/interim/analysis",
        code=stage_code("bars"),
    output:
        touch(TRACK_DONE.replace("{stage}", "bars")),
    params:
        bars=config["bars"],
        audio_dir=AUDIO_DIR,
    shell:
        "python -m pipeline.stages.bars --params params.yaml --audio-dir {params.audio_dir:q}"
        " --analysis-dir {input.analysis} --out-dir data/bars --cache-dir data/cache"
        " --only {wildcards.path:q}"


rule bars:
    input:
        audio=AUDIO_DIR,
        analysis="data/interim/analysis",
        code=stage_code("bars"),
        tracks=per_track("bars"),
    output:
        directory("data/bars"),
    params:
        bars=config["bars"],
    shell:
        "python -m pipeline.stages.bars --params params.yaml --audio-dir {input.audio:q}"
        " --analysis-dir {input.analysis} --out-dir {output} --cache-dir data/cache"


rule split:
    input:
        bars="data/bars",
        code=stage_code("split"),
    output:
        directory("data/splits"),
    params:
        split=config["split"],
    shell:
        "python -m pipeline.stages.split --params params.yaml --bars-dir {input.bars} --out-dir {output}"
