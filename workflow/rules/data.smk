# Data preparation: demo corpus, downbeat analysis, bar rendering, splits.


rule synth:
    input:
        "pipeline/stages/synth.py",
        "pipeline/data/synth.py",
        "pipeline/data/drums.py",
    output:
        directory("data/raw/demo"),
    params:
        demo=config["demo"],
    shell:
        "python -m pipeline.stages.synth --params params.yaml --out-dir {output}"


rule analyze:
    input:
        audio=config["data"]["audio_dir"],
        code=["pipeline/stages/analyze.py", "pipeline/audio"],
    output:
        directory("data/interim/analysis"),
    params:
        data=config["data"],
        analyze=config["analyze"],
    threads: config["analyze"]["jobs"]
    shell:
        "python -m pipeline.stages.analyze --params params.yaml"
        " --audio-dir {input.audio} --out-dir {output} --cache-dir data/cache"


rule bars:
    input:
        audio=config["data"]["audio_dir"],
        analysis="data/interim/analysis",
        code=["pipeline/stages/bars.py", "pipeline/audio"],
    output:
        directory("data/bars"),
    params:
        bars=config["bars"],
    threads: config["bars"]["jobs"]
    shell:
        "python -m pipeline.stages.bars --params params.yaml --audio-dir {input.audio}"
        " --analysis-dir {input.analysis} --out-dir {output} --cache-dir data/cache"


rule split:
    input:
        bars="data/bars",
        code=["pipeline/stages/split.py", "pipeline/data/splits.py"],
    output:
        directory("data/splits"),
    params:
        split=config["split"],
    shell:
        "python -m pipeline.stages.split --params params.yaml --bars-dir {input.bars} --out-dir {output}"
