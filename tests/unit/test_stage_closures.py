"""Change one thing, re-run one thing: what each stage's code closure holds.

The closures are computed by :func:`pipeline.code_deps.stage_code`, which the Snakemake rules
call, and written into dvc.yaml's deps from it (``python -m pipeline.graph`` fails when they are
stale), the metrics folder as one dependency of the stages that import the registry; both are
checked here, dvc.yaml's folder as the files under it.
"""

from __future__ import annotations

import subprocess
import sys

import yaml

from pipeline.code_deps import expand_code_deps, stage_code
from pipeline.metrics import registry
from tests.conftest import REPO

# What training computes while it runs (monitoring.progress), imported by module.
PROGRESS_METRICS = {"novelty", "nearest_neighbour"}
EVALUATION_ONLY = [
    "pipeline/metrics/fad.py",
    "pipeline/metrics/vggish.py",
    "pipeline/metrics/vggish_input.py",
    "pipeline/metrics/ndb.py",
    "pipeline/metrics/classifier.py",
    "pipeline/metrics/wavegan_classifier.py",
    "pipeline/metrics/inception.py",
    "pipeline/metrics/looptest_mel.py",
    "pipeline/metrics/rhythm.py",
    "pipeline/metrics/seams.py",
    "pipeline/metrics/registry.py",
]


def _path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def dvc_code_deps(expand: bool = True) -> dict[str, set[str]]:
    """Each stage's code deps in dvc.yaml; with ``expand``, a folder as the files under it."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    deps = {name: {d for d in stage.get("deps", []) if d.startswith("pipeline/")}
            for name, stage in stages.items()}  # fmt: skip
    return {name: expand_code_deps(code, REPO) if expand else code for name, code in deps.items()}


def test_train_closure_holds_no_evaluation_only_metric() -> None:
    train = set(stage_code("train", REPO))
    evaluation_only = {
        _path(module) for name, module in registry.modules().items() if name not in PROGRESS_METRICS
    }
    assert not (evaluation_only | set(EVALUATION_ONLY)) & train
    assert {"pipeline/metrics/novelty.py", "pipeline/metrics/nearest_neighbour.py"} <= train
    assert not (evaluation_only | set(EVALUATION_ONLY)) & dvc_code_deps()["train"]
    assert "pipeline/metrics" not in dvc_code_deps(expand=False)["train"]


def test_evaluate_and_report_declare_the_metrics_folder_in_dvc_yaml() -> None:
    """A new metric module is in the folder DVC hashes: dvc.yaml does not change."""
    deps = dvc_code_deps(expand=False)
    assert {stage for stage, code in deps.items() if "pipeline/metrics" in code} == {
        "evaluate",
        "report",
    }
    for stage in ("evaluate", "report"):
        assert not [d for d in deps[stage] if d.startswith("pipeline/metrics/")], stage


def test_evaluate_and_report_closures_hold_every_metric() -> None:
    """The registry imports metrics by name at run time; code_deps follows its declaration."""
    metric_files = {_path(module) for module in registry.modules().values()}
    assert len(metric_files) >= 10
    for stage in ("evaluate", "report"):
        assert metric_files <= set(stage_code(stage, REPO)), stage
        assert metric_files <= dvc_code_deps()[stage], stage


def test_touching_an_evaluation_metric_reruns_evaluate_and_report_only() -> None:
    """Which stages a change to each evaluation-only file re-runs, as Snakemake (stage_code)
    and DVC (dvc.yaml's deps) see it: evaluate and report, never train or sample."""
    deps = dvc_code_deps()
    for changed in EVALUATION_ONLY:
        by_dvc = {stage for stage, files in deps.items() if changed in files}
        by_snakemake = {stage for stage in deps if changed in stage_code(stage, REPO)}
        assert by_dvc == by_snakemake == {"evaluate", "report"}, changed


def test_stages_that_read_a_model_file_do_not_import_the_trainer() -> None:
    for stage in ("sample", "evaluate", "report"):
        closure = stage_code(stage, REPO)
        assert not [path for path in closure if path.startswith("pipeline/train/")], stage
        assert "pipeline/models/generator_file.py" in closure or stage == "report"


def test_the_cli_reads_model_files_without_the_trainer() -> None:
    """bargan generate, export and serve read generator.pt through pipeline.models."""
    from pipeline.code_deps import module_closure

    for module in ("pipeline.cli", "pipeline.export.command", "pipeline.serve.command"):
        assert not [p for p in module_closure(module, REPO) if p.startswith("pipeline/train/")]


def test_importing_the_sample_stage_imports_no_training_module() -> None:
    script = (
        "import sys\n"
        "import pipeline.stages.sample, pipeline.stages.evaluate, pipeline.cli\n"
        "import pipeline.models.generator_file\n"
        "print(sorted(m for m in sys.modules if m == 'pipeline.train' "
        "or m.startswith('pipeline.train.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
