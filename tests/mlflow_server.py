"""scripts/mlflow_server.sh started for a test: on a free port of 127.0.0.1, its store in a
temporary folder, waited for until it answers (or its log is shown when it exits or hangs)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO, tool_env
from tests.processes import stop_process_group


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"the MLflow server exited {server.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the MLflow server did not answer in {timeout} s:\n{log.read_text()}")


@contextmanager
def mlflow_server(store: Path, **env: str) -> Iterator[tuple[str, Path]]:
    """``(url, log)`` of the server while the block runs; ``env`` adds to its environment."""
    port = free_port()
    log = store.parent / f"{store.name}.log"
    store.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(REPO / "scripts/mlflow_server.sh"), str(store)],
            env={**tool_env(REPO), "MLFLOW_PORT": str(port), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the script execs mlflow, which starts its workers
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log)
        yield url, log
    finally:
        stop_process_group(server)
