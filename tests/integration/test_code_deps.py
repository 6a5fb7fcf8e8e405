"""Stage code dependencies: the import closure of a stage program, tracked by both executors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from pipeline.code_deps import (
    expand_code_deps,
    module_closure,
    rewrite_code_deps,
    stage_code,
    stage_deps,
    stage_module,
)
from tests.conftest import REPO, run


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_closure_follows_every_kind_of_import(tmp_path):
    write(
        tmp_path,
        {
            "pipeline/__init__.py": "",
            "pipeline/stages/__init__.py": "",
            "pipeline/stages/job.py": (
                "import numpy\n"
                "import pipeline.a.deep\n"
                "from pipeline.b import helper, CONSTANT\n"
                "from . import sibling\n"
                "def later():\n"
                "    from pipeline.lazy import thing\n"
            ),
            "pipeline/stages/sibling.py": "from ..c import name\n",
            "pipeline/stages/unused.py": "",
            "pipeline/a/__init__.py": "",
            "pipeline/a/deep.py": "",
            "pipeline/b/__init__.py": "CONSTANT = 1\n",
            "pipeline/b/helper.py": "from .other import x\n",
            "pipeline/b/other.py": "",
            "pipeline/b/unused.py": "",
            "pipeline/c.py": "",
            "pipeline/lazy.py": "",
            "pipeline/not_imported.py": "",
        },
    )
    assert stage_code("job", tmp_path) == [
        "pipeline/__init__.py",
        "pipeline/a/__init__.py",
        "pipeline/a/deep.py",
        "pipeline/b/__init__.py",
        "pipeline/b/helper.py",
        "pipeline/b/other.py",
        "pipeline/c.py",
        "pipeline/lazy.py",
        "pipeline/stages/__init__.py",
        "pipeline/stages/job.py",
        "pipeline/stages/sibling.py",
    ]
    assert stage_code("pipeline.stages.job", tmp_path) == stage_code("job", tmp_path)
    with pytest.raises(ModuleNotFoundError):
        module_closure("pipeline.stages.missing", tmp_path)


def test_closure_follows_a_declared_lazy_import(tmp_path):
    """A module that imports by name at run time (the metric registry) declares what it may
    import; the modules of that package that define the declared name join the closure."""
    write(
        tmp_path,
        {
            "pipeline/__init__.py": "",
            "pipeline/stages/__init__.py": "",
            "pipeline/stages/job.py": "from pipeline.plugins import registry\n",
            "pipeline/plugins/__init__.py": "",
            "pipeline/plugins/registry.py": (
                'LAZY_IMPORTS = {"package": "pipeline.plugins", "declaring": "SPEC"}\n'
            ),
            "pipeline/plugins/one.py": "from pipeline.helper import x\nSPEC = 1\n",
            "pipeline/plugins/two.py": "SPEC: int = 2\n",
            "pipeline/plugins/not_a_plugin.py": "def f():\n    SPEC = 3\n",
            "pipeline/helper.py": "",
        },
    )
    assert stage_code("job", tmp_path) == [
        "pipeline/__init__.py",
        "pipeline/helper.py",
        "pipeline/plugins/__init__.py",
        "pipeline/plugins/one.py",
        "pipeline/plugins/registry.py",
        "pipeline/plugins/two.py",
        "pipeline/stages/__init__.py",
        "pipeline/stages/job.py",
    ]


def test_dvc_declares_a_lazily_imported_package_as_its_folder(tmp_path):
    """dvc.yaml's form of a closure: the folder of a package imported through LAZY_IMPORTS
    stands for every file of the closure under it; a stage that imports some modules of the
    package directly keeps them as files; a folder expands to its sources only."""
    write(
        tmp_path,
        {
            "pipeline/__init__.py": "",
            "pipeline/stages/__init__.py": "",
            "pipeline/stages/job.py": "from pipeline.plugins import registry\n",
            "pipeline/stages/direct.py": "from pipeline.plugins import one\n",
            "pipeline/plugins/__init__.py": "",
            "pipeline/plugins/registry.py": (
                'LAZY_IMPORTS = {"package": "pipeline.plugins", "declaring": "SPEC"}\n'
            ),
            "pipeline/plugins/one.py": "from pipeline.helper import x\nSPEC = 1\n",
            "pipeline/plugins/two.py": "SPEC = 2\n",
            "pipeline/plugins/sub/__init__.py": "",
            "pipeline/plugins/__pycache__/one.cpython-312.py": "",
            "pipeline/helper.py": "",
        },
    )
    assert stage_deps("job", tmp_path) == [
        "pipeline/__init__.py",
        "pipeline/helper.py",
        "pipeline/plugins",
        "pipeline/stages/__init__.py",
        "pipeline/stages/job.py",
    ]
    assert (
        stage_deps("direct", tmp_path)
        == stage_code("direct", tmp_path)
        == [
            "pipeline/__init__.py",
            "pipeline/helper.py",
            "pipeline/plugins/__init__.py",
            "pipeline/plugins/one.py",
            "pipeline/stages/__init__.py",
            "pipeline/stages/direct.py",
        ]
    )
    assert expand_code_deps(["pipeline/plugins", "pipeline/helper.py"], tmp_path) == {
        "pipeline/helper.py",
        "pipeline/plugins/__init__.py",
        "pipeline/plugins/one.py",
        "pipeline/plugins/registry.py",
        "pipeline/plugins/sub/__init__.py",
        "pipeline/plugins/two.py",
    }
    assert set(stage_code("job", tmp_path)) <= expand_code_deps(
        stage_deps("job", tmp_path), tmp_path
    )


def test_dvcignore_keeps_caches_out_of_code_folders():
    """DVC hashes a code folder dep (pipeline/metrics) whole: only its sources may count."""
    ignored = (REPO / ".dvcignore").read_text().splitlines()
    assert "__pycache__/" in ignored and "*.pyc" in ignored


def test_every_stage_program_has_code_deps():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        module = stage_module(" ".join(stage["cmd"].split()))
        assert module == f"pipeline.stages.{name}"
        code = stage_code(name, REPO)
        assert f"pipeline/stages/{name}.py" in code
        assert "pipeline/stages/common.py" in code  # every stage runs through run_stage


def test_rewrite_touches_only_code_dep_lines():
    text = (
        "# header\n"
        "stages:\n"
        "  a:\n"
        "    cmd: python -m pipeline.stages.a\n"
        "    deps:\n"
        "      - data/in            # data stays\n"
        "      - pipeline/old.py\n"
        "      - pipeline/folder\n"
        "      - ${x.y}\n"
        "    params:\n"
        "      - a\n"
        "\n"
        "  b:\n"
        "    cmd: >-\n"
        "      python -m pipeline.stages.b\n"
        "      --flag\n"
        "\n"
        "    outs:\n"
        "      - out\n"
        "plots:\n"
        "  - pipeline/not/a/dep.csv\n"
    )
    new = rewrite_code_deps(text, {"a": ["pipeline/x.py", "pipeline/y.py"], "b": ["pipeline/z.py"]})
    assert new == (
        "# header\n"
        "stages:\n"
        "  a:\n"
        "    cmd: python -m pipeline.stages.a\n"
        "    deps:\n"
        "      - data/in            # data stays\n"
        "      - pipeline/x.py\n"
        "      - pipeline/y.py\n"
        "      - ${x.y}\n"
        "    params:\n"
        "      - a\n"
        "\n"
        "  b:\n"
        "    cmd: >-\n"
        "      python -m pipeline.stages.b\n"
        "      --flag\n"
        "    deps:\n"
        "      - pipeline/z.py\n"
        "\n"
        "    outs:\n"
        "      - out\n"
        "plots:\n"
        "  - pipeline/not/a/dep.csv\n"
    )
    assert rewrite_code_deps(new, {"a": ["pipeline/x.py", "pipeline/y.py"]}) == new


@pytest.mark.integration
def test_editing_an_imported_library_file_reruns_the_stage_in_both_tools(tiny_project):
    """The acceptance check: a file two imports away from the stage program (synth ->
    stages/common.py -> params.py), in no stage's hand-written deps before they were derived."""
    root = tiny_project
    library_file = root / "pipeline/params.py"
    assert "pipeline/params.py" in stage_code("synth", root)
    run(["dvc", "repro", "synth"], root)
    run(["snakemake", "--cores", "1", "--touch", "synth"], root)  # DVC made the outputs
    assert "up to date" in run(["dvc", "status", "synth"], root).stdout
    before = run(["snakemake", "-n", "synth"], root)
    assert "Nothing to be done" in before.stdout + before.stderr

    library_file.write_text(library_file.read_text() + "# an edit\n")
    later = time.time() + 2  # newer than the outputs whatever the filesystem's mtime grain
    os.utime(library_file, (later, later))

    status = run(["dvc", "status", "synth"], root).stdout
    assert "synth:" in status
    assert "modified:" in status and "pipeline/params.py" in status
    dry_run = run(["snakemake", "-n", "synth"], root)
    log = dry_run.stdout + dry_run.stderr
    assert "checkpoint synth:" in log
    assert "reason: Updated input files: pipeline/params.py" in log
