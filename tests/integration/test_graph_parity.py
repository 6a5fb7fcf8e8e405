"""The DVC and Snakemake graphs agree, and the check notices a change made on one side only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run

pytestmark = pytest.mark.integration


def parity(root: Path):
    return run(["python", "-m", "pipeline.graph", "--root", str(root)], root, check=False)


def test_checked_in_graphs_agree():
    result = parity(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "agree on 8 stages" in result.stdout


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
        "      - pipeline/stages/split.py\n      - pipeline/params.py\n",
        1,
    )
    dvc_yaml.write_text(text)
    result = parity(tiny_project)
    assert result.returncode == 1
    assert re.search(
        r"split: deps differ; only in dvc.yaml: \['pipeline/params.py'\]", result.stdout
    )


def test_stage_missing_on_one_side_is_caught(tiny_project):
    rules = tiny_project / "workflow/rules/evaluation.smk"
    rules.write_text(rules.read_text().replace("rule evaluate:", "rule evaluate_all:"))
    snakefile = tiny_project / "Snakefile"
    snakefile.write_text(snakefile.read_text())
    result = parity(tiny_project)
    assert result.returncode == 1
    assert "stage 'evaluate' is in dvc.yaml but has no Snakemake rule" in result.stdout
