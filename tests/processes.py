"""Stopping what a test started in its own process group (a server, a daemon)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to ``proc``'s group (started with ``start_new_session=True``), SIGKILL after
    ``timeout`` seconds; returns once ``proc`` has exited."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
