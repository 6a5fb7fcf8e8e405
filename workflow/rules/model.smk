# Training and sampling. Checkpoints live in data/checkpoints/<run> (not a declared output, so
# Snakemake never deletes them) and training resumes from them.


rule train:
    input:
        splits="data/splits",
        code=stage_code("train"),
    output:
        generator="data/models/generator.pt",
        run="data/models/train_run.json",
        losses="data/models/losses.csv",
        progress="data/models/checkpoint_metrics.csv",
    params:
        train=config["train"],
    resources:
        gpu=1 if config["train"]["device"] == "cuda" else 0,
    shell:
        "python -m pipeline.stages.train --params params.yaml --splits-dir {input.splits}"
        " --checkpoint-root data/checkpoints --out-dir data/models"


rule sample:
    input:
        model="data/models/generator.pt",
        code=stage_code("sample"),
    output:
        directory("data/samples"),
    params:
        sample=config["sample"],
    shell:
        "python -m pipeline.stages.sample --params params.yaml --model {input.model} --out-dir {output}"
