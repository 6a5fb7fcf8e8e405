"""Real `dvc repro` over the whole graph on a tiny demo corpus, then incremental re-runs."""

from __future__ import annotations

import io
import json
import platform
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from pipeline.data.splits import load_split
from pipeline.environment import lock_digest, mlflow_tags
from pipeline.grid import BarGrid
from tests.conftest import run, tiny_params, write_params

pytestmark = pytest.mark.integration
EXP_SHOW = ["dvc", "exp", "show", "--only-changed", "--drop", r".*/.*|params\.yaml"]
STAGES = [
    "check_params",
    "synth",
    "analyze",
    "bars",
    "split",
    "train",
    "sample",
    "evaluate",
    "report",
]


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def test_dvc_repro_runs_every_stage_then_only_what_changed(tiny_project):
    root = tiny_project
    first = run(["dvc", "repro"], root)
    ran = ran_stages(first.stdout)
    # fetch (fetch.dataset: none here) runs once, after check_params, beside the demo chain
    assert [stage for stage in ran if stage != "fetch"] == STAGES
    assert ran.count("fetch") == 1 and ran.index("fetch") > ran.index("check_params")

    params = yaml.safe_load((root / "params.yaml").read_text())
    grid = params["bars"]
    bar_samples = round(grid["sample_rate"] * 60 / grid["bpm"] * grid["beats_per_bar"])

    # bars: exact length, the grid record, manifest with source timing and stretch ratios
    assert BarGrid.read(root / "data/bars/grid.json") == BarGrid(
        grid["sample_rate"], grid["bpm"], grid["beats_per_bar"], grid["channels"]
    )
    assert json.loads((root / "data/bars/grid.json").read_text())["bar_samples"] == bar_samples
    manifest = pd.read_csv(root / "data/bars/bars.csv")
    assert len(manifest) >= 9  # 3 tracks x 5 bars, minus edge bars the tracker may miss
    assert (manifest.end_s > manifest.start_s).all()
    truth = pd.read_csv(root / "data/raw/demo/truth.csv")
    expected_stretch = truth.set_index("path").bpm / grid["bpm"]  # target/source duration
    stretch = manifest.groupby("path").stretch.median()
    assert np.allclose(stretch, expected_stretch[stretch.index], rtol=0.03)
    with np.load(root / "data/bars" / manifest.bars_file.iloc[0]) as packed:
        assert packed["bars"].shape[1:] == (1, bar_samples)

    # split: grouped by track, every bar exactly once; the grid record carried along
    grid_json = (root / "data/bars/grid.json").read_bytes()
    assert (root / "data/splits/grid.json").read_bytes() == grid_json
    split_manifest = pd.read_csv(root / "data/splits/manifest.csv")
    assert (split_manifest.groupby("track").split.nunique() == 1).all()
    with (
        np.load(root / "data/splits/train.npz") as train,
        np.load(root / "data/splits/valid.npz") as valid,
    ):
        assert len(train["bars"]) + len(valid["bars"]) == len(manifest)
        assert len(valid["bars"]) > 0

    # metrics over checkpoints: the untrained generator (step 0) and each preview after it
    progress = pd.read_csv(root / "data/models/checkpoint_metrics.csv")
    assert progress.step.tolist() == [0, 2] and progress.step.dtype.kind == "i"
    for key in (
        "novelty.generated.median_score",
        "nearest_neighbour.generated.median_db",
        "novelty.valid.median_score",
    ):
        assert progress[key].notna().all()
    plots = run(["dvc", "plots", "show", "--json"], root)
    assert "checkpoint_metrics.csv" in plots.stdout

    # samples: bars, loops and an interpolation track of interpolation_bars bars
    samples = root / "data/samples"
    assert len(list((samples / "bars").glob("*.wav"))) == params["sample"]["n_bars"]
    track, sr = sf.read(samples / "interpolation.wav")
    assert sr == grid["sample_rate"]
    assert len(track) == params["sample"]["interpolation_bars"] * bar_samples

    # metrics: a DVC metrics file with novelty numbers beside a real-data reference
    metrics = json.loads((root / "data/metrics/metrics.json").read_text())
    novelty = metrics["novelty"]
    assert novelty["generated.count"] == params["sample"]["score_bars"]
    assert metrics["counts"]["generated"] == params["sample"]["score_bars"]
    for key in ("generated.fraction_similar", "valid.fraction_similar"):
        assert 0.0 <= novelty[key] <= 1.0
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], root).stdout)
    headline = shown[""]["data"]["data/metrics/headline.json"]["data"]
    assert (
        headline["near_copy_fraction"]
        == metrics["headline"]["lines"]["near_copy_fraction"]["value"]
    )
    # the headline leads metrics.json, the report (with real vs generated bars) and MLflow
    assert next(iter(metrics)) == "headline" and metrics["headline"]["targets_measured"] >= 4
    page = (root / "data/report/index.html").read_text()
    assert page.index(metrics["headline"]["verdict"]) < page.index("<table")
    assert (root / "data/report/img/real_vs_generated.png").is_file()
    # tiny_params self-condition: clusters within every class, named on the report's run table
    config = json.loads((root / "data/models/train_run.json").read_text())["config"]
    _, train_labels, _ = load_split(root / "data/splits/train.npz")
    assert len(config["cluster_classes"]) > config["num_classes"] > 0
    assert sorted(set(config["cluster_classes"])) == sorted(set(train_labels.tolist()))
    assert sum(config["cluster_counts"]) == len(train_labels)
    assert "clusters (self-conditioning)" in page

    # MLflow: one run with params, losses and the evaluation metrics
    import mlflow

    run_info = json.loads((root / "data/models/train_run.json").read_text())
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    logged = mlflow.get_run(run_info["mlflow_run_id"])
    assert logged.data.params["train.model_dim"] == "4"
    assert "loss_d" in logged.data.metrics
    assert "novelty_generated_fraction_similar" in logged.data.metrics
    assert "headline.near_copy_fraction" in logged.data.metrics
    assert logged.data.tags["verdict"] == metrics["headline"]["verdict"]
    # the environment is part of the result: train_run.json, the MLflow run and metrics.json
    environment = run_info["environment"]
    assert environment["lock_sha256"] == lock_digest() != "none"
    assert environment["lock_matches"] is True, environment["lock_differences"]
    assert environment["torch"] == torch.__version__
    assert environment["python"] == platform.python_version()
    assert environment["device"].startswith("cpu")
    assert {k: v for k, v in logged.data.tags.items() if k.startswith("env.")} == mlflow_tags(
        environment
    )
    assert metrics["environment"]["lock_sha256"] == lock_digest()
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(logged.info.run_id, "audio")}
    assert "audio/interpolation.wav" in artifacts

    # nothing changed: nothing runs
    second = run(["dvc", "repro"], root)
    assert ran_stages(second.stdout) == []

    # a train parameter changed: train and what follows re-run, nothing before it
    params["train"]["lr_g"] = params["train"]["lr_g"] / 2
    write_params(root, params)
    third = run(["dvc", "repro"], root)
    # (the params check runs first: params.yaml changed)
    assert ran_stages(third.stdout) == ["check_params", "train", "sample", "evaluate", "report"]


def test_experiments_and_commits_compare_the_headline_metrics(tiny_project):
    """The headline metrics file is tracked by git, so experiments and commits compare."""
    root = tiny_project
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "add", "-A"], root)
    run([*git, "commit", "-qm", "project"], root)
    run(["dvc", "repro"], root)
    # the run's only trace in git: the lock, the metrics and DVC's ignore of the cached
    # ceiling.npz beside them (every other output is ignored or cached)
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], root).stdout
    changed = {line[3:] for line in status.splitlines()}
    metrics_files = ["data/metrics/.gitignore", "data/metrics/headline.json",
                     "data/metrics/metrics.json"]  # fmt: skip
    assert changed == {"dvc.lock", *metrics_files}
    assert (root / "data/metrics/.gitignore").read_text().split() == ["/ceiling.npz"]
    run(["git", "add", "-A"], root)
    run([*git, "commit", "-qm", "baseline"], root)
    tracked = run(["git", "ls-files", "data/metrics"], root).stdout.split()
    assert tracked == metrics_files

    run(["dvc", "exp", "run", "-S", "train.steps=4"], root)
    # the README's command: what differs between the experiment and the baseline, without the
    # dependency hashes
    shown = run([*EXP_SHOW, "--csv"], root).stdout
    table = pd.read_csv(io.StringIO(shown))
    assert {"frechet_fixed_ratio", "nearest_train_db_vs_real", "train.steps"} <= set(table)
    assert not [column for column in table if "/" in column]
    experiments = table[table.Experiment.notna()]  # the workspace and the baseline have none
    assert experiments["train.steps"].tolist() == [4]
    assert set(table["train.steps"]) == {tiny_params()["train"]["steps"], 4}  # the baseline's
    assert table.frechet_fixed_ratio.notna().all()

    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], root).stdout)
    changed = diff["data/metrics/headline.json"]
    assert changed["frechet_fixed_ratio"]["old"] is not None  # HEAD's value was found
    assert changed["frechet_fixed_ratio"]["new"] is not None


def test_dvc_exp_run_sets_numbers_as_dvc_writes_them(tiny_project):
    """`dvc exp run -S train.lr_g=1e-5` rewrites params.yaml as `lr_g: 1e-05`, which YAML 1.2
    (DVC) reads as a number and YAML 1.1 (PyYAML) as a string: every stage, the schema check
    and the Snakefile must read the number."""
    root = tiny_project
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "add", "-A"], root)
    run([*git, "commit", "-qm", "project"], root)
    run(["dvc", "exp", "run", "-S", "train.lr_g=1e-5", "-S", "train.steps=2"], root)

    text = (root / "params.yaml").read_text()
    assert re.search(r"^ +lr_g: 1e-05$", text, re.MULTILINE)  # as DVC wrote it
    assert yaml.safe_load(text)["train"]["lr_g"] == "1e-05"  # the YAML 1.1 trap is really there
    record = json.loads((root / "data/models/train_run.json").read_text())
    assert record["config"]["lr_g"] == 1e-05 and record["steps"] == 2

    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    experiments = [
        exp["data"]
        for baseline in shown
        for branch in baseline.get("experiments") or []
        for exp in branch["revs"]
    ]
    assert len(experiments) == 1
    train = experiments[0]["params"]["params.yaml"]["data"]["train"]
    assert train["lr_g"] == 1e-05 and train["steps"] == 2

    # the same params file under Snakemake: the Snakefile's check and the check_params rule
    run(["snakemake", "--cores", "1", "--forceall", "data/params.valid"], root)
