"""The stage runner's shared parts: ids, error naming, the process pool."""

from __future__ import annotations

import errno
from pathlib import Path
from urllib.parse import unquote

import pytest

from pipeline.stages.common import describe_os_error, parallel_map, track_id


@pytest.mark.parametrize(
    "relative", ["techno/x.wav", "techno__x.wav", "a b/%41 #?.wav", "ä/ü.flac", "x"]
)
def test_track_ids_are_file_names_that_give_the_path_back(relative):
    root = Path("/corpus")
    track = track_id(root / relative, root)
    assert "/" not in track and unquote(track) == relative


def test_flattened_lookalikes_get_different_ids():
    root = Path("/corpus")
    assert track_id(root / "techno/x.wav", root) != track_id(root / "techno__x.wav", root)


def _fails_on_two(x: int) -> int:
    if x == 2:
        raise ValueError("bad value")
    return x


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_error_in_a_worker_names_its_item(jobs):
    with pytest.raises(ValueError, match="bad value") as caught:
        list(parallel_map(_fails_on_two, [1, 2, 3], jobs, "test"))
    assert caught.value.__notes__ == ["while processing 2"]


def test_a_full_disk_is_one_line_with_the_file_and_what_to_do():
    message = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "out/x.npz"))
    assert message.startswith("out/x.npz: No space left on device")
    assert "free space" in message and "\n" not in message
    assert describe_os_error(PermissionError(13, "Permission denied", "a.csv")) == (
        "a.csv: Permission denied"
    )


def test_stages_pin_one_thread_count_whatever_omp_num_threads_says():
    """Snakemake sets OMP_NUM_THREADS=1 in its jobs and DVC does not; a stage program uses
    BARGAN_CPU_THREADS (default: every CPU) either way, so both write the same bytes."""
    import os
    import subprocess
    import sys

    code = (
        "import torch, threadpoolctl; from pipeline.stages.common import pin_cpu_threads; "
        "n = pin_cpu_threads(); "
        "blas = {p['num_threads'] for p in threadpoolctl.threadpool_info()}; "
        "print(n, torch.get_num_threads(), sorted(blas))"
    )

    def threads(**env: str) -> str:
        environment = {k: v for k, v in os.environ.items() if k != "BARGAN_CPU_THREADS"}
        result = subprocess.run(
            [sys.executable, "-c", code], env={**environment, **env},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return (result.stdout + result.stderr).strip()

    every = os.cpu_count()
    assert threads(OMP_NUM_THREADS="1") == f"{every} {every} [{every}]"
    assert threads(BARGAN_CPU_THREADS="1") == "1 1 [1]"
    assert "BARGAN_CPU_THREADS='two': expected a whole number" in threads(BARGAN_CPU_THREADS="two")
