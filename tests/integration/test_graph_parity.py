"""The DVC and Snakemake graphs agree, and the check notices a change made on one side only."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from pipeline.code_deps import stage_code
from tests.conftest import REPO, run

pytestmark = pytest.mark.integration


def parity(root: Path):
    return run(["python", "-m", "pipeline.graph", "--root", str(root)], root, check=False)


def test_checked_in_graphs_agree():
    result = parity(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "agree on 10 stages" in result.stdout


def test_changed_snakemake_command_is_caught(tiny_project):
    rules = tiny_project / "workflow/rules/model.smk"
    rules.write_text(
        rules.read_text().replace(
            "--checkpoint-root data/checkpoints", "--checkpoint-root data/ckpt"
        )
    )
    result = parity(tiny_project)
    assert result.returncode == 1
    assert "train: commands differ" in result.stdout


def test_dependency_added_in_dvc_only_is_caught(tiny_project):
    dvc_yaml = tiny_project / "dvc.yaml"
    text = dvc_yaml.read_text()
    text = text.replace(
        "      - pipeline/stages/split.py\n",
        "      - pipeline/stages/split.py\n      - pipeline/cli.py\n",
        1,
    )
    dvc_yaml.write_text(text)
    result = parity(tiny_project)
    assert result.returncode == 1
    assert re.search(r"split: deps differ; only in dvc.yaml: \['pipeline/cli.py'\]", result.stdout)
    assert (
        "split: dvc.yaml declares code the stage does not import: ['pipeline/cli.py']"
        in result.stdout
    )


def test_undeclared_import_is_caught_and_write_deps_declares_it(tiny_project):
    stage = tiny_project / "pipeline/stages/split.py"
    assert "pipeline/cache.py" not in stage_code("split", tiny_project)
    stage.write_text("import pipeline.cache  # noqa: F401\n" + stage.read_text())
    dvc_yaml = tiny_project / "dvc.yaml"
    before = dvc_yaml.read_text()

    result = parity(tiny_project)
    assert result.returncode == 1
    assert re.search(
        r"split: imports code that dvc.yaml does not declare: \[[^\]]*'pipeline/cache.py'",
        result.stdout,
    )
    assert "python -m pipeline.graph --write-deps" in result.stdout
    assert "only in Snakemake" in result.stdout  # the rules picked the import up by themselves

    fixed = run(
        ["python", "-m", "pipeline.graph", "--root", str(tiny_project), "--write-deps"],
        tiny_project,
        check=False,
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "code deps rewritten for split" in fixed.stdout
    diff = difflib.unified_diff(before.splitlines(), dvc_yaml.read_text().splitlines(), n=0)
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["+      - pipeline/cache.py"]


def test_fan_out_rule_with_other_code_is_caught(tiny_project):
    rules = tiny_project / "workflow/rules/data.smk"
    text = rules.read_text()
    fan_out = text.index("rule analyze_track:")
    own_code = 'code=stage_code("analyze")'
    at = text.index(own_code, fan_out)
    rules.write_text(text[:at] + 'code=stage_code("split")' + text[at + len(own_code) :])
    result = parity(tiny_project)
    assert result.returncode == 1
    assert "analyze_track: code inputs differ from its stage's" in result.stdout


def test_stage_missing_on_one_side_is_caught(tiny_project):
    rules = tiny_project / "workflow/rules/evaluation.smk"
    rules.write_text(rules.read_text().replace("rule evaluate:", "rule evaluate_all:"))
    snakefile = tiny_project / "Snakefile"
    snakefile.write_text(snakefile.read_text())
    result = parity(tiny_project)
    assert result.returncode == 1
    assert "stage 'evaluate' is in dvc.yaml but has no Snakemake rule" in result.stdout


NEW_METRIC = '''"""A metric added the way the README says: its module, nothing else in the code."""

from pipeline.metrics import new_metric_helper
from pipeline.metrics.spec import NOT_COMPARABLE, QUALITY, MetricSpec

OPTIONS = {"new_window_ms": 20.0}


def new_metric_scores(generated, train, valid, options):
    return {"generated.score": new_metric_helper.score(generated)}


SPEC = MetricSpec(
    name="new_metric",
    function=new_metric_scores,
    options=OPTIONS,
    protocol=f"ours: a test; {NOT_COMPARABLE}",
    role=QUALITY,
)
'''


def test_new_metric_module_needs_no_write_deps(tiny_project):
    """The acceptance: adding a metric touches its own module (and params), not dvc.yaml. DVC
    sees the module in the metrics folder, Snakemake in the closure it computes when parsing."""
    metrics = tiny_project / "pipeline/metrics"
    (metrics / "new_metric.py").write_text(NEW_METRIC)
    (metrics / "new_metric_helper.py").write_text("def score(bars):\n    return 0.0\n")
    dvc_yaml = tiny_project / "dvc.yaml"
    before = dvc_yaml.read_text()

    added = {"pipeline/metrics/new_metric.py", "pipeline/metrics/new_metric_helper.py"}
    for stage in ("evaluate", "report"):
        assert added <= set(stage_code(stage, tiny_project)), stage
    assert not added & set(stage_code("train", tiny_project))

    result = parity(tiny_project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "agree on 10 stages" in result.stdout

    rewritten = run(
        ["python", "-m", "pipeline.graph", "--root", str(tiny_project), "--write-deps"],
        tiny_project,
        check=False,
    )
    assert rewritten.returncode == 0, rewritten.stdout + rewritten.stderr
    assert "code deps rewritten for no stage" in rewritten.stdout
    assert dvc_yaml.read_text() == before


def _replace_deps(tiny_project: Path, stage: str, old: str, new: str) -> None:
    dvc_yaml = tiny_project / "dvc.yaml"
    text = dvc_yaml.read_text()
    start = text.index(f"\n  {stage}:\n")
    end = text.index("    outs:", start)
    body = text[start:end]
    assert old in body, (stage, old)
    dvc_yaml.write_text(text[:start] + body.replace(old, new, 1) + text[end:])


def test_metrics_folder_declared_by_train_is_caught(tiny_project):
    """Train imports its progress metrics by file: the folder would re-run it for any metric."""
    _replace_deps(
        tiny_project, "train", "      - pipeline/metrics/novelty.py\n", "      - pipeline/metrics\n"
    )
    result = parity(tiny_project)
    assert result.returncode == 1
    assert (
        "train: dvc.yaml declares folders the stage does not import lazily: ['pipeline/metrics']"
        in result.stdout
    )


def test_metric_files_listed_instead_of_the_folder_are_caught(tiny_project):
    """The old per-file form would need --write-deps for every new metric."""
    files = "".join(
        f"      - {path}\n"
        for path in stage_code("evaluate", tiny_project)
        if path.startswith("pipeline/metrics/")
    )
    _replace_deps(tiny_project, "evaluate", "      - pipeline/metrics\n", files)
    result = parity(tiny_project)
    assert result.returncode == 1
    assert (
        "evaluate: dvc.yaml lists the files of lazily imported packages instead of their "
        "folders: ['pipeline/metrics']" in result.stdout
    )


def test_metrics_folder_missing_is_caught(tiny_project):
    _replace_deps(tiny_project, "report", "      - pipeline/metrics\n", "")
    result = parity(tiny_project)
    assert result.returncode == 1
    assert re.search(
        r"report: imports code that dvc.yaml does not declare: \[[^\]]*'pipeline/metrics/fad.py'",
        result.stdout,
    )
    assert re.search(
        r"report: deps differ; only in dvc.yaml: \[\], only in Snakemake", result.stdout
    )
