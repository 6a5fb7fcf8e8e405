"""profiles/slurm on a real one-node SLURM cluster (tests/slurm_cluster.py): Snakemake's SLURM
executor submits data preparation, one job per track, and SLURM runs and accounts for them.

Needs the Debian packages slurmctld, slurmd, slurm-client, slurmdbd, munge and mariadb-server
(`scripts/ensure_system_deps.sh --test`), root, and snakemake-executor-plugin-slurm (the dev
extra). Outside CI it is skipped without them; in CI (CI set) their absence fails it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import time

import pytest

from tests.conftest import REPO, tool_env
from tests.slurm_cluster import conflicts, missing_programs, slurm_cluster

PROFILE = REPO / "profiles" / "slurm"
PLUGIN = "snakemake_executor_plugin_slurm"


def _unmet() -> list[str]:
    unmet = [f"{name} (not installed)" for name in missing_programs()]
    if importlib.util.find_spec(PLUGIN) is None:
        unmet.append("snakemake-executor-plugin-slurm (pip install -e '.[dev]')")
    if os.geteuid() != 0:
        unmet.append("root (slurmd runs the jobs)")
    return unmet + conflicts()


UNMET = _unmet()
# Outside CI a machine may lack SLURM; in CI (CI=true) a missing cluster must fail, not skip.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(UNMET) and not os.environ.get("CI"),
        reason=f"no SLURM test cluster here: {'; '.join(UNMET)}",
    ),
]


def snakemake(root, cluster, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    # First state check 1 s after a submission, not 40 s (the plugin's default, right for a
    # real cluster); the plugin then adds 10 s per check until a job finishes.
    cmd = [
        "snakemake",
        "--profile",
        str(PROFILE),
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "1",
        *args,
    ]
    result = subprocess.run(
        cmd,
        cwd=root,
        env=cluster.env(tool_env(root)),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-6000:]}\n{cluster.logs()}"
        )
    return result


def rule_of(comment: str) -> str:
    """The rule a job ran, from the comment the executor gives it: rule_<name>[_wildcards_…]."""
    match = re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", comment)
    assert match, comment
    return match.group(1)


def test_slurm_profile_runs_data_preparation_as_cluster_jobs(tiny_project, tmp_path):
    assert not UNMET, f"no SLURM test cluster here: {'; '.join(UNMET)}"
    root = tiny_project
    with slurm_cluster(tmp_path / "slurm") as cluster:
        start = time.monotonic()
        result = snakemake(root, cluster, "data/bars")
        took = time.monotonic() - start
        accounted = cluster.accounting()
        queued = cluster.queue()

        # the training job's resources come from the profile (dry run: nothing is submitted,
        # the test cluster has no GPU)
        plan = snakemake(root, cluster, "--dry-run", "train").stdout
        assert len(cluster.accounting()) == len(accounted)

    recordings = sorted(
        p.relative_to(root / "data/raw/demo").as_posix()
        for p in (root / "data/raw/demo").rglob("*.wav")
    )
    assert len(recordings) == 3
    log = result.stdout + result.stderr
    (tmp_path / "snakemake.log").write_text(log)

    # every rule ran as its own SLURM job: per-track jobs once per recording
    rules = sorted(rule_of(job["comment"]) for job in accounted)
    # (check_params is a local rule: it ran beside Snakemake, not as a job)
    assert "localrule check_params:" in log and (root / "data/params.valid").is_file()
    expected = {"synth": 1, "analyze_track": 3, "analyze": 1, "bars_track": 3, "bars": 1}
    assert rules == sorted(r for r, n in expected.items() for _ in range(n)), log
    # ... each under this run's name, on the node, and all completed, as sacct and squeue see it
    assert len({job["name"] for job in accounted}) == 1
    assert {(job["state"], job["exit_code"]) for job in accounted} == {("COMPLETED", "0:0")}
    assert {job["nodes"] for job in accounted} == {cluster.node}
    assert {job["id"]: job["state"] for job in queued} == {
        job["id"]: "COMPLETED" for job in accounted
    }
    assert {job["partition"] for job in queued} == {cluster.partition}
    track_jobs = [job for job in accounted if rule_of(job["comment"]).endswith("_track")]
    tracks = sorted(job["comment"].split("_wildcards_", 1)[1] for job in track_jobs)
    assert tracks == sorted(2 * [path.replace("/", "_") for path in recordings])

    # the outputs are there
    for stage in ("analyze", "bars"):
        done = sorted(
            p.relative_to(root / f"data/cache/snakemake/{stage}").as_posix()
            for p in (root / f"data/cache/snakemake/{stage}").rglob("*.done")
        )
        assert done == [f"{path}.done" for path in recordings]
    assert (root / "data/bars/bars.csv").is_file()
    assert len(list((root / "data/bars/audio").glob("*.npz"))) == len(recordings)

    # train asks for one GPU, 8 CPUs, 32 GB and 12 hours
    train = plan[plan.index("rule train:") :]
    resources = train[train.index("resources:") :].splitlines()[0]
    for declared in ("mem_mb=32000", "runtime=720", "cpus_per_task=8", "gpu=1"):
        assert re.search(rf"\b{declared}\b", resources), resources
    print(f"data preparation on SLURM: {len(accounted)} jobs in {took:.0f} s")
