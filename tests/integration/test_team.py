"""Team use: training on any machine logs to a shared MLflow server (the README's
scripts/mlflow_server.sh, started here on 127.0.0.1 with its basic-auth app: no request
without a user and password), and a DVC remote carries every stage output into a fresh clone,
where nothing needs recomputing."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, make_project, run, tool_env
from tests.mlflow_server import free_port
from tests.mlflow_server import mlflow_server as start_mlflow_server

pytestmark = pytest.mark.integration


ADMIN = ("admin", secrets.token_urlsafe(16))
TRAINER = ("trainer", secrets.token_urlsafe(16))


def request(url: str, data: dict | None = None, user: tuple[str, str] | None = None):
    """The HTTP status and JSON body of a GET (or, with ``data``, a POST) to the server."""
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    if user is not None:
        token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode(errors="replace")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """scripts/mlflow_server.sh on a free port of 127.0.0.1, its store in a temporary folder,
    with the admin's first password from the environment and one ordinary user, the trainer."""
    store = tmp_path_factory.mktemp("shared") / "mlflow-server"
    with start_mlflow_server(store, MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN[1]) as (url, log):
        status, answer = request(
            f"{url}/api/2.0/mlflow/users/create",
            {"username": TRAINER[0], "password": TRAINER[1]},
            user=ADMIN,
        )
        assert status == 200, f"creating a user: {status} {answer}\n{log.read_text()}"
        yield url, store


def credentials(user: tuple[str, str]) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory, mlflow_server):
    """A tiny project run once with `dvc repro` by the trainer, logging to the shared server,
    committed."""
    url, _ = mlflow_server
    root = make_project(tmp_path_factory.mktemp("team") / "project")
    run(["dvc", "repro"], root, extra_env={"MLFLOW_TRACKING_URI": url, **credentials(TRAINER)})
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"], root)
    return root


def test_the_server_refuses_requests_without_a_valid_password(mlflow_server):
    url, store = mlflow_server
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=5"
    create = f"{url}/api/2.0/mlflow/experiments/create"
    assert request(search)[0] == 401
    assert request(create, {"name": "anonymous"})[0] == 401
    assert request(search, user=(TRAINER[0], "not-" + TRAINER[1]))[0] == 401
    assert request(search, user=("nobody", TRAINER[1]))[0] == 401
    status, answer = request(create, {"name": "the-trainers"}, user=TRAINER)
    assert status == 200 and answer["experiment_id"], answer
    status, answer = request(search, user=TRAINER)
    assert status == 200
    assert "the-trainers" in {e["name"] for e in answer["experiments"]}
    # the users live in the store's folder, the admin's password only in this test's environment
    assert (store / "basic_auth.db").is_file() and not (store / "admin-password").exists()


def test_binding_beyond_loopback_without_authentication_warns(tmp_path):
    # A backend URI that MLflow refuses makes it exit before it binds any address.
    env = {
        **tool_env(REPO),
        "MLFLOW_AUTH": "none",
        "MLFLOW_HOST": "0.0.0.0",
        "MLFLOW_PORT": str(free_port()),
        "MLFLOW_BACKEND_URI": "unsupported://nowhere",
    }
    done = subprocess.run(
        [str(REPO / "scripts/mlflow_server.sh"), str(tmp_path / "store")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "WARNING: MLflow server on 0.0.0.0" in done.stderr
    assert "no authentication" in done.stderr

    bad = subprocess.run(
        [str(REPO / "scripts/mlflow_server.sh"), str(tmp_path / "store")],
        env={**env, "MLFLOW_AUTH": "open"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "scripts/mlflow_server.sh: MLFLOW_AUTH must be basic or none, not 'open'"
    ]


def test_training_logs_params_metrics_and_artifacts_to_the_shared_server(
    trained_project, mlflow_server, monkeypatch
):
    from mlflow.tracking import MlflowClient

    url, store = mlflow_server
    for name, value in credentials(TRAINER).items():
        monkeypatch.setenv(name, value)
    root = trained_project
    record = json.loads((root / "data/models/train_run.json").read_text())
    assert record["mlflow_tracking_uri"] == url
    client = MlflowClient(url)
    logged = client.get_run(record["mlflow_run_id"])
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert logged.data.params["train.steps"] == str(params["train"]["steps"])
    assert "loss_d" in logged.data.metrics and "headline.targets_met" in logged.data.metrics
    # the run's name fits the UI's run column; its folder is a tag
    name = logged.data.tags["mlflow.runName"]
    train = params["train"]
    assert len(name) <= 18 and name.startswith(f"{train['arch']}-d{train['model_dim']}-")
    folder_digest = Path(logged.data.tags["run_dir"]).name.rsplit("-", 1)[1]
    assert folder_digest.startswith(name.rsplit("-", 1)[1])
    # the experiment opens on its runs, not on MLflow 3's GenAI traces page
    experiment = client.get_experiment(logged.info.experiment_id)
    assert experiment.name == params["train"]["experiment"]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    # artifacts went through the server into its folder: nothing under the project
    listed = {a.path for a in client.list_artifacts(logged.info.run_id, "audio")}
    assert "audio/interpolation.wav" in listed
    stored = [p for p in (store / "artifacts").rglob("interpolation.wav")]
    assert len(stored) == 1
    assert stored[0].read_bytes() == (root / "data/samples/interpolation.wav").read_bytes()
    assert not (root / "mlartifacts").exists() and not (root / "mlflow.db").exists()


def file_hashes(root: Path, paths: list[str]) -> dict[str, str]:
    hashes = {}
    for name in paths:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            hashes[file.relative_to(root).as_posix()] = hashlib.md5(file.read_bytes()).hexdigest()
    return hashes


def test_dvc_push_then_pull_into_a_fresh_clone_gives_the_outputs_without_recomputing(
    trained_project, tmp_path
):
    root = trained_project
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], root)
    pushed = run(["dvc", "push"], root)
    assert "pushed" in pushed.stdout
    run(["git", "add", ".dvc/config"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "remote"], root)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    outputs = sorted({o["path"] for s in lock["stages"].values() for o in s.get("outs", [])})
    assert "data/models/generator.pt" in outputs and "data/report" in outputs
    assert file_hashes(clone, outputs) == file_hashes(root, outputs)

    status = run(["dvc", "status"], clone)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    again = run(["dvc", "repro"], clone)
    assert "Running stage" not in again.stdout, again.stdout
