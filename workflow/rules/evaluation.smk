# Metrics of the generated bars, logged into the training's MLflow run.


rule evaluate:
    input:
        samples="data/samples",
        splits="data/splits",
        run="data/models/train_run.json",
        code=["pipeline/stages/evaluate.py", "pipeline/metrics"],
    output:
        "data/metrics/metrics.json",
    params:
        evaluate=config["evaluate"],
    shell:
        "python -m pipeline.stages.evaluate --params params.yaml --samples-dir {input.samples}"
        " --splits-dir {input.splits} --train-run {input.run} --out {output}"
