# Metrics of the generated bars and the listening report, logged into the training's MLflow run.


rule evaluate:
    input:
        samples="data/samples",
        splits="data/splits",
        run="data/models/train_run.json",
        model="data/models/generator.pt",
        pretrained="data/pretrained",  # fetch.models: new weights re-run evaluate
        code=stage_code("evaluate"),
    output:
        metrics="data/metrics/metrics.json",
        headline="data/metrics/headline.json",
        ceiling="data/metrics/ceiling.npz",
    params:
        evaluate=config["evaluate"],
    shell:
        "python -m pipeline.stages.evaluate --params params.yaml --samples-dir {input.samples}"
        " --splits-dir {input.splits} --train-run {input.run} --model {input.model}"
        " --out {output.metrics} --headline {output.headline} --ceiling {output.ceiling}"


rule report:
    input:
        samples="data/samples",
        splits="data/splits",
        metrics="data/metrics/metrics.json",
        ceiling="data/metrics/ceiling.npz",
        run="data/models/train_run.json",
        losses="data/models/losses.csv",
        code=stage_code("report"),
    output:
        directory("data/report"),
    shell:
        "python -m pipeline.stages.report --params params.yaml --samples-dir {input.samples}"
        " --splits-dir {input.splits} --metrics {input.metrics} --ceiling {input.ceiling}"
        " --train-run {input.run} --out-dir {output}"
