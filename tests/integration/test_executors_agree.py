"""DVC and Snakemake are two ways to run one graph: on the same project they write the same
bytes, and after either has run, the other finds nothing to do (DVC after the one command the
README names, `dvc commit -f`, which records Snakemake's outputs in dvc.lock)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_project, run

pytestmark = pytest.mark.integration

UP_TO_DATE = "Data and pipelines are up to date"


def output_files(root: Path) -> list[Path]:
    """Every file of every stage output dvc.lock records (not the per-track cache, the
    checkpoints or Snakemake's own bookkeeping, which are no stage's outputs)."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    files = []
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            path = root / out["path"]
            files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [f for f in files if f.name != ".snakemake_timestamp"]


def comparable_bytes(path: Path, root: Path) -> bytes:
    """The file's bytes, less the two records of the run itself that differ between any two
    runs: the MLflow run (its id, its store) and the measured real-time factor (a timing)."""
    data = path.read_bytes()
    record = json.loads((root / "data/models/train_run.json").read_text())
    if path.name == "train_run.json":
        return json.dumps({k: v for k, v in record.items() if not k.startswith("mlflow_")}).encode()
    if path.name == "metrics.json":
        metrics = json.loads(data)
        assert metrics.pop("real_time_factor")
        return json.dumps(metrics).encode()
    if path.name == "index.html":
        text = data.decode().replace(record["mlflow_run_id"], "RUN")
        text, found = re.subn(r"<h3>real_time_factor</h3>.*?</table>", "", text, flags=re.S)
        assert found == 1
        return text.encode()
    return data


def digests(root: Path) -> dict[str, str]:
    return {
        f.relative_to(root).as_posix(): hashlib.md5(comparable_bytes(f, root)).hexdigest()
        for f in output_files(root)
    }


def test_dvc_and_snakemake_write_the_same_bytes_and_accept_each_others_outputs(tmp_path):
    by_snakemake = make_project(tmp_path / "snakemake")
    by_dvc = make_project(tmp_path / "dvc")
    run(["snakemake", "--cores", "2"], by_snakemake)
    first = run(["dvc", "repro"], by_dvc)
    assert "Running stage 'check_params'" in first.stdout

    # Snakemake's outputs, recorded by DVC without running anything: the same bytes as DVC's
    run(["dvc", "commit", "-f"], by_snakemake)
    assert UP_TO_DATE in run(["dvc", "status"], by_snakemake).stdout
    assert "Running stage" not in run(["dvc", "repro"], by_snakemake).stdout
    produced = digests(by_dvc)
    assert len(produced) > 40 and "data/params.valid" in produced
    assert digests(by_snakemake) == produced

    # DVC's outputs satisfy Snakemake (it only notes the jobs it has no record of, the
    # per-track ones among them), and a Snakemake pass leaves DVC up to date
    dry = run(["snakemake", "-n", "--cores", "1"], by_dvc)
    said = dry.stdout + dry.stderr
    assert "Nothing to be done" in said and "Job stats" not in said
    noted = re.search(r"Rules with missing metadata: (.*)", said)
    assert noted and {"analyze_track", "bars_track"} <= set(noted[1].split())
    assert not (by_dvc / "data/cache/snakemake").exists()  # the markers are not needed
    run(["snakemake", "--cores", "2"], by_dvc)
    assert UP_TO_DATE in run(["dvc", "status"], by_dvc).stdout

    # outputs DVC restored (a clone's dvc pull) have checkout times, not the graph's order:
    # snakemake --touch marks them up to date, running nothing and changing no byte
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], by_dvc)
    run(["git", "add", "-A"], by_dvc)
    run([*git, "commit", "-qm", "run"], by_dvc)
    run(["dvc", "push"], by_dvc)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(by_dvc), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    pulled = {f: f.read_bytes() for f in output_files(clone)}  # a run would change run ids
    run(["snakemake", "--touch", "--cores", "1"], clone)
    dry = run(["snakemake", "-n", "--cores", "1"], clone)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert UP_TO_DATE in run(["dvc", "status"], clone).stdout
    assert {f: f.read_bytes() for f in output_files(clone)} == pulled
    assert digests(clone) == produced
