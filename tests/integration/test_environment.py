"""The environment: built from the lock, checked by `bargan doctor` before any stage runs.

The broken pair is the real one: torchaudio 2.11.1, published after torch 2.11.0 and built for
another torch, which `torchaudio==2.11.*` resolved to beside torch 2.11.0 on 2026-12-07. It is
installed (hash-checked, from PyPI) into a virtual environment that sees this one's packages
behind it, so nothing else has to be downloaded again.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import torch

from pipeline.environment import REBUILD_COMMAND
from pipeline.hardware import cpu_has_bf16_units
from tests.conftest import REPO

pytestmark = pytest.mark.integration
BROKEN_TORCHAUDIO = (
    "torchaudio==2.11.1 "
    "--hash=sha256:0173b5b51e1368aa88de3cbe4e98508b5e9df4d8d59356c4e1fbc830c96191ef\n"
)
# what `make run` needs besides the code, which the overlay environment imports from REPO
MAKE_FILES = (
    "Makefile",
    "pyproject.toml",
    "requirements.lock",
    "requirements-build.lock",
    "scripts",
    ".dvc/config",
    "dvc.yaml",
    "params.yaml",
)


def doctor(python: str | Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pipeline.cli", "doctor", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_doctor_passes_in_the_environment_built_from_the_lock():
    result = doctor(sys.executable)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[-1] == "bargan doctor: ready"
    checks = {line.split()[1]: line for line in lines[:-1]}
    for name in ("torch", "torchaudio", "madmom", "rubberband", "lock", "gpu", "librosa"):
        assert checks[name].startswith("ok"), checks[name]
    assert "installed packages match the lock" in checks["lock"]
    assert "downbeat models run" in checks["madmom"]
    if not torch.cuda.is_available():  # the precision train.amp: auto picks on this CPU
        units = "with" if cpu_has_bf16_units() else "without"
        assert f"none (CPU {units} bf16 units: train.amp auto trains in" in checks["gpu"]


@pytest.fixture(scope="module")
def broken_pair(tmp_path_factory) -> Path:
    """A virtual environment whose torchaudio is 2.11.1 and everything else this one's; returns
    its folder."""
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        pytest.skip("the pinned torchaudio 2.11.1 wheel is the manylinux x86_64 one")
    env = tmp_path_factory.mktemp("broken") / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    here = sysconfig.get_paths()["purelib"]
    overlay = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # processed after the overlay's own packages: its torchaudio wins, the rest comes from here
    (Path(overlay) / "zz_base_environment.pth").write_text(
        f"import site; site.addsitedir({here!r})\n"
    )
    requirement = env / "broken.txt"
    requirement.write_text(BROKEN_TORCHAUDIO)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--require-hashes", "-r", str(requirement)],
        check=True,
        timeout=600,
    )  # fmt: skip
    return env


def test_doctor_names_a_torchaudio_built_for_another_torch(broken_pair):
    result = doctor(broken_pair / "bin" / "python", "--brief")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1
    assert re.fullmatch(
        r"bargan doctor: not ready: torchaudio: 2\.11\.1 does not load beside torch 2\.11\.0\S* "
        r"\(undefined symbol \S+\) \(and 1 more above\); fix: " + re.escape(REBUILD_COMMAND),
        lines[-1],
    ), lines[-1]
    assert re.fullmatch(
        r"FAIL\s+lock\s+torchaudio 2\.11\.1 installed, the lock says 2\.11\.0", lines[-2]
    )
    assert all(not line.startswith("ok") for line in lines)  # --brief: only the problems


def test_make_run_stops_at_the_doctor_before_any_stage(broken_pair, tmp_path):
    project = tmp_path / "project"
    for name in MAKE_FILES:
        source, target = REPO / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    for stamp in (".bargan-installed", ".bargan-project"):  # newer than the lock and
        (broken_pair / stamp).touch()  # pyproject.toml: make leaves the environment as it is
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(
        ["make", "run", f"VENV={broken_pair}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    verdicts = [line for line in output.splitlines() if line.startswith("bargan doctor:")]
    assert len(verdicts) == 1 and "not ready: torchaudio: 2.11.1" in verdicts[0]
    assert "Traceback" not in output
    assert "dvc repro" not in output and not (project / "data").exists()
