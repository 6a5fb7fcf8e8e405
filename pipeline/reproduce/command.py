"""``bargan reproduce PRESET``: print the plan; without ``--dry-run``, apply the preset to
params.yaml, run the graph with ``dvc repro`` and end with the paper's table beside ours.

A run longer than :data:`~pipeline.reproduce.plan.CPU_STEP_LIMIT` steps on a machine without
CUDA is refused unless ``--allow-cpu`` is given: it would take days.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

from pipeline.params import FETCHED_DIR, REPO_ROOT, ParamsError, deep_merge
from pipeline.presets import load_preset, overlay_file, with_name
from pipeline.reproduce.plan import CPU_STEP_LIMIT, Plan, comparison_table, format_plan, load_plan
from pipeline.yamlio import YAMLError, parse_yaml


class ReproduceError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="a preset in presets/ (python -m pipeline.presets list)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument(
        "--allow-cpu",
        action="store_true",
        help=f"start a run of more than {CPU_STEP_LIMIT} steps without a CUDA device",
    )
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--metrics", type=Path, default=Path("data/metrics/metrics.json"))


def cpu_refusal(plan: Plan, cuda_available: bool, allow_cpu: bool) -> str | None:
    """Why this run must not start here, or None."""
    steps = int(plan.train["steps"])
    if cuda_available or allow_cpu or steps <= CPU_STEP_LIMIT:
        return None
    hours = ", ".join(f"{e.hours:.1f} h on one {e.device}" for e in plan.estimates)
    return (
        f"preset {plan.preset} trains {steps} steps and this machine has no CUDA device; "
        f"that is days on a CPU ({hours or 'no GPU measurement'}); "
        "run it on a GPU, or pass --allow-cpu to start anyway"
    )


def describe_dataset(name: str) -> list[str]:
    """The registry entry's title, licence and, per archive, size and published checksum."""
    from pipeline.data.registry import RegistryError, load_dataset, registry_dir

    try:
        entry = load_dataset(name, registry_dir(REPO_ROOT / "datasets"))
    except RegistryError as err:
        raise ReproduceError(str(err)) from err
    sizes = [a.size for a in entry.archives]
    total = f"{sum(sizes) / 1e9:.2f} GB" if None not in sizes else "size not published"
    lines = [f"{entry.title}; {total}; licence: {entry.licence['name']}"]
    for archive in entry.archives:
        c = archive.checksum
        lines.append(f"{archive.filename}: {c.algorithm} {c.value} (published in {c.source})")
    return lines


def apply_reproduction(params_path: Path, preset: str, dataset: str | None) -> None:
    """The preset applied to the params file and, when it names a registry dataset,
    ``fetch.dataset`` and ``data.audio_dir`` pointed at it: validated as a whole and written
    once, so a problem leaves the file as it was (comments and other lines are kept)."""
    overlay = with_name(load_preset(preset)[0], preset)
    if dataset:
        deep_merge(overlay, {"fetch": {"dataset": dataset}, "data": {"audio_dir": FETCHED_DIR}})
    try:
        overlay_file(params_path, overlay, source=f"{params_path} with preset {preset}")
    except ParamsError as err:
        raise ReproduceError(" ".join(str(err).split())) from err


def format_environment() -> str:
    """The environment the run would be made in (the fingerprint every result records), with
    a warning when the installed packages differ from the lock."""
    from pipeline.environment import describe, fingerprint

    lines = [f"  {line}" for line in describe(fingerprint())]
    return "\n".join(["environment (recorded with the results):", *lines])


def check_params_file(params: Path, project: Path) -> None:
    """``dvc repro`` in ``project`` runs the stages of its dvc.yaml, which read
    ``project/params.yaml`` (their ``params:`` keys and every command's ``--params``): a preset
    written into any other file would not be the settings that run, so that is refused."""
    if not (project / "dvc.yaml").is_file():
        raise ReproduceError(f"{project}: no dvc.yaml here; run bargan reproduce in the project")
    expected = project / "params.yaml"
    try:
        same = os.path.samefile(params, expected)
    except OSError:
        same = False
    if not same:
        raise ReproduceError(
            f"--params {params}: dvc repro runs the stages in {project / 'dvc.yaml'}, which "
            f"read {expected}, so a preset written elsewhere would not be what runs; leave "
            "out --params (or name that file), or use --dry-run to read another file"
        )


def run(args: argparse.Namespace) -> int:
    try:
        params = parse_yaml(args.params.read_text())
    except (OSError, YAMLError) as err:
        raise ReproduceError(f"{args.params}: cannot read ({err})") from err
    try:
        plan = load_plan(args.preset, params, describe_dataset=describe_dataset)
    except ValueError as err:  # unknown preset, malformed reproduction metadata
        raise ReproduceError(str(err)) from err
    print(format_plan(plan))
    print(format_environment())
    if args.dry_run:
        return 0
    import torch

    refusal = cpu_refusal(plan, torch.cuda.is_available(), args.allow_cpu)
    if refusal:
        raise ReproduceError(refusal)
    check_params_file(args.params, Path.cwd())
    if shutil.which("dvc") is None:
        raise ReproduceError("dvc is not on PATH (activate the project's .venv)")
    apply_reproduction(args.params, args.preset, plan.dataset)
    print(f"\n{args.params}: preset {args.preset} applied; running dvc repro")
    if subprocess.run(["dvc", "repro"], check=False).returncode != 0:
        raise ReproduceError("dvc repro failed (its messages are above); rerun to resume")
    metrics = json.loads(args.metrics.read_text())
    print("\n" + comparison_table(plan, metrics))
    return 0
