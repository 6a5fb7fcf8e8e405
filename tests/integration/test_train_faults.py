"""The train and sample stages under faults, as real processes with real signals: a second
trainer on the same run folder, SIGTERM to the trainer (in the training loop, before it, after
it) or to the program that started it, a run folder holding a checkpoint of other settings, and
a truncated generator file. Every failure is one line naming the file; no traceback; a stopped
training's MLflow run ends KILLED."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.fileio import write_npz_atomic
from pipeline.grid import BarGrid
from pipeline.train import load_checkpoint
from tests.conftest import REPO, tiny_params, tiny_train_config, tool_env, write_params
from tests.mlflow_server import mlflow_server
from tests.tcp_proxy import HoldingProxy

pytestmark = pytest.mark.integration

SR, BPM, BEATS = 8000, 240.0, 2  # 4000-sample bars
STOPPED = re.compile(
    r"SIGTERM: stopped at step (\d+); checkpoint saved to (\S+); run the same command to resume"
)


def _env() -> dict[str, str]:
    env = tool_env(REPO)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Splits for the train stage (random bars, two classes) and params for a training that
    runs until it is stopped."""
    grid = BarGrid(SR, BPM, BEATS, 1)
    splits = tmp_path / "splits"
    rng = np.random.default_rng(0)
    for name, n in (("train", 16), ("valid", 4)):
        bars = rng.integers(-8000, 8000, (n, 1, grid.bar_samples), dtype=np.int16)
        labels = np.arange(n) % 2
        write_npz_atomic(splits / f"{name}.npz", bars=bars, labels=labels, sample_rate=SR)
    (splits / "info.json").write_text(json.dumps({"classes": ["a", "b"]}))
    grid.write(splits / "grid.json")
    params = tiny_params()
    params["train"].update(steps=1_000_000, checkpoint_every=5, preview_every=0, log_every=50)
    write_params(tmp_path, params)
    return tmp_path


def _train_cmd() -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline.stages.train",
        "--params",
        "params.yaml",
        "--splits-dir",
        "splits",
        "--checkpoint-root",
        "checkpoints",
        "--out-dir",
        "models",
    ]


def _start(cmd: list[str], root: Path, stderr, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=root, env={**_env(), **env}, stdout=subprocess.DEVNULL, stderr=stderr
    )


def _run_status(tracking_uri: str, run_dir: Path) -> str:
    from mlflow.tracking import MlflowClient

    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    return MlflowClient(tracking_uri).get_run(run_id).info.status


def _wait_for_checkpoint(root: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    """The run folder, once the trainer has written its step-0 checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((root / "checkpoints").glob("*/checkpoint.pt"))
        if found:
            return found[0].parent
        assert proc.poll() is None, f"trainer exited with {proc.returncode} before training"
        time.sleep(0.2)
    raise AssertionError("no checkpoint within the timeout")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan whose new parent has not reaped it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _assert_stopped_with_checkpoint(root: Path, stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    match = STOPPED.search(stderr)
    assert match, stderr
    step, path = int(match[1]), root / match[2]  # relative to the working folder
    assert step >= 1 and path.name == "checkpoint.pt"
    assert load_checkpoint(path)["step"] == step


def test_a_second_trainer_stops_at_once_and_sigterm_checkpoints(project: Path) -> None:
    log = project / "first.log"
    with log.open("w") as err:
        first = _start(_train_cmd(), project, err)
    try:
        run_dir = _wait_for_checkpoint(project, first)
        second = subprocess.run(
            _train_cmd(), cwd=project, env=_env(), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        lines = _lines(second.stderr)
        assert len(lines) == 1, second.stderr
        folder = str(run_dir.relative_to(project))  # as the stage was given it
        assert folder in lines[0] and f"PID {first.pid}" in lines[0], lines[0]
        assert first.poll() is None  # the first trainer goes on

        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 143
    finally:
        first.kill()
    _assert_stopped_with_checkpoint(project, log.read_text())
    # stopped by a signal: KILLED, as MLflow calls it, not FAILED
    assert _run_status(f"sqlite:///{project / 'mlflow.db'}", run_dir) == "KILLED"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_the_trainer_stops_when_the_program_that_started_it_dies(project: Path) -> None:
    """SIGTERM to the parent (as to `dvc repro`) leaves no orphan trainer behind."""
    parent_code = (
        "import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
        "print(p.pid, flush=True); p.wait()"
    )
    log = project / "trainer.log"
    with log.open("w") as err:
        parent = subprocess.Popen(
            [sys.executable, "-c", parent_code, *_train_cmd()],
            cwd=project,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    trainer = int(parent.stdout.readline())
    try:
        _wait_for_checkpoint(project, parent)
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 60
        while _alive(trainer) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(trainer), "the trainer outlived its parent"
    finally:
        if _alive(trainer):
            os.kill(trainer, signal.SIGKILL)
        parent.kill()
    _assert_stopped_with_checkpoint(project, log.read_text())


@pytest.fixture(scope="module")
def server_port(tmp_path_factory) -> int:
    """A real MLflow server (scripts/mlflow_server.sh, no authentication, on 127.0.0.1)."""
    with mlflow_server(tmp_path_factory.mktemp("server") / "store", MLFLOW_AUTH="none") as (
        url,
        _,
    ):
        yield int(url.rsplit(":", 1)[1])


def _stopped_at_request(project: Path, server_port: int, request: bytes, log: Path) -> int:
    """Train through a proxy to the server that holds the first request containing ``request``;
    SIGTERM the trainer while it waits for that answer, then let the request through. Returns
    the trainer's exit status."""
    proxy = HoldingProxy(server_port, request)
    try:
        with log.open("w") as err:
            trainer = _start(_train_cmd(), project, err, MLFLOW_TRACKING_URI=proxy.url)
        try:
            while not proxy.held.wait(timeout=0.5):
                assert trainer.poll() is None, log.read_text()
            trainer.send_signal(signal.SIGTERM)
            proxy.release()
            return trainer.wait(timeout=120)
        finally:
            trainer.kill()
    finally:
        proxy.close()


def test_sigterm_before_training_began_is_the_stop_line(project: Path, server_port: int) -> None:
    log = project / "trainer.log"
    # the trainer's first look at the MLflow experiment, before the training loop
    assert _stopped_at_request(project, server_port, b"experiments/get-by-name", log) == 143
    lines = _lines(log.read_text())
    assert "Traceback" not in log.read_text()
    assert lines[-1].endswith(
        "SIGTERM: stopped before training began (nothing trained in this run); "
        "run the same command to resume"
    ), lines


def test_sigterm_after_training_ended_is_the_stop_line_and_the_run_is_killed(
    project: Path, server_port: int
) -> None:
    params = tiny_params()
    params["train"].update(steps=6, checkpoint_every=5, preview_every=0, log_every=50)
    write_params(project, params)
    log = project / "trainer.log"
    # losses.csv is uploaded once training has ended, before train_run.json is written
    assert _stopped_at_request(project, server_port, b"losses.csv", log) == 143
    text = log.read_text()
    assert "Traceback" not in text
    [run_dir] = (project / "checkpoints").iterdir()
    checkpoint = run_dir.relative_to(project) / "checkpoint.pt"
    assert _lines(text)[-1].endswith(
        "SIGTERM: stopped after training ended at step 6, before its outputs were written; "
        f"checkpoint saved to {checkpoint}; run the same command to resume"
    ), text
    assert not (project / "models/train_run.json").exists()
    assert _run_status(f"http://127.0.0.1:{server_port}", run_dir) == "KILLED"


def test_a_run_folder_with_a_checkpoint_of_other_settings_is_one_line(project: Path) -> None:
    """A checkpoint from other settings in the run folder these settings name (copied there,
    or written by another version): one line naming the folder and the settings."""
    params = tiny_params()
    params["train"].update(steps=2, checkpoint_every=1, preview_every=0)
    folders = []
    for lr_g in (1e-4, 2e-4):
        params["train"]["lr_g"] = lr_g
        write_params(project, params)
        done = subprocess.run(
            _train_cmd(), cwd=project, env=_env(), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        new = set((project / "checkpoints").iterdir()) - set(folders)
        folders += sorted(new)
    first, second = folders
    for path in second.glob("checkpoint*.pt"):
        path.unlink()
    (second / "checkpoint.pt").write_bytes((first / "checkpoint.pt").read_bytes())
    result = subprocess.run(
        _train_cmd(), cwd=project, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    lines = [line for line in _lines(result.stderr) if line.startswith("ERROR")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].endswith(
        f"{second.relative_to(project)}: cannot resume: its checkpoint was trained with other "
        "settings (lr_g 0.0001 there, 0.0002 now); restore them, or delete the folder to start "
        "again"
    ), lines[0]


def test_a_truncated_generator_file_is_one_line_from_the_sample_stage(
    project: Path, tmp_path: Path
) -> None:
    from pipeline.train import train_gan

    config = tiny_train_config(length=4000, steps=1)
    data = np.random.default_rng(0).normal(0, 0.1, (8, 1, 4000)).astype(np.float32)
    generator = train_gan(data, None, config, tmp_path / "run").generator_path
    truncated = tmp_path / "generator.pt"
    truncated.write_bytes(generator.read_bytes()[:2000])
    cmd = [sys.executable, "-m", "pipeline.stages.sample", "--params", "params.yaml"]
    result = subprocess.run(
        [*cmd, "--model", str(truncated), "--out-dir", "samples"],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = _lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert str(truncated) in lines[0] and "truncated or corrupt" in lines[0], lines[0]
    assert not (project / "samples").exists()
