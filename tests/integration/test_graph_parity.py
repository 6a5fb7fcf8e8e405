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
