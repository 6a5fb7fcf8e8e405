"""A two-node `torchrun` launch, as on two machines sharing the project folder: two torchrun
agents on this host meet through a c10d rendezvous (one node each, Gloo on the CPU), train
the train stage, checkpoint, and resume when `train.steps` is raised."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import make_project, run, tool_env, write_params

pytestmark = pytest.mark.integration
TRAIN = [
    "-m", "pipeline.stages.train", "--params", "params.yaml", "--splits-dir", "data/splits",
    "--checkpoint-root", "data/checkpoints", "--out-dir", "data/models",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_nodes(root, rdzv_id: str, timeout: int = 300) -> list[str]:
    """Both agents of a 2-node, 1-process-per-node launch; returns each node's output."""
    port = free_port()
    env = {**tool_env(root), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    nodes = []
    for is_host in (1, 0):  # the first agent hosts the rendezvous store
        cmd = [
            sys.executable, "-m", "torch.distributed.run",
            "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
            "--rdzv-id", rdzv_id, "--rdzv-conf", f"is_host={is_host}",
            "--local-addr", "127.0.0.1", "--max-restarts", "0",
            *TRAIN,
        ]  # fmt: skip
        node = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        nodes.append(node)
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=timeout)[0])
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
    for index, (node, output) in enumerate(zip(nodes, outputs, strict=True)):
        assert node.returncode == 0, f"node {index} exited {node.returncode}:\n{output[-4000:]}"
    return outputs


def test_two_node_torchrun_trains_checkpoints_and_resumes(tmp_path):
    root = make_project(tmp_path / "project")
    run(["dvc", "repro", "split"], root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(steps=2, checkpoint_every=2, batch_size=4)
    write_params(root, params)

    outputs = launch_two_nodes(root, "first")
    record = json.loads((root / "data/models/train_run.json").read_text())
    assert record["steps"] == 2 and record["processes"] == 2 and record["resumed_from"] == 0
    (run_dir,) = (root / "data/checkpoints").iterdir()
    checkpoint = run(
        [sys.executable, "-c",
         "import sys; from pipeline.train import load_checkpoint as L; "
         "c = L(sys.argv[1]); print(c['step'])", str(run_dir / "checkpoint.pt")],
        root,
    )  # fmt: skip
    assert checkpoint.stdout.strip() == "2"
    losses = pd.read_csv(root / "data/models/losses.csv")
    assert losses.step.tolist() == [1, 2]

    params["train"]["steps"] = 4  # the same run folder: both nodes resume from step 2
    write_params(root, params)
    outputs = launch_two_nodes(root, "resume")
    assert [p.name for p in (root / "data/checkpoints").iterdir()] == [run_dir.name]
    record = json.loads((root / "data/models/train_run.json").read_text())
    assert record["steps"] == 4 and record["processes"] == 2 and record["resumed_from"] == 2
    assert "resuming from" in "".join(outputs)
    losses = pd.read_csv(root / "data/models/losses.csv")
    assert losses.step.tolist() == [1, 2, 3, 4]
