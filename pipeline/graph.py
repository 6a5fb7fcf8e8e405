"""Graph parity: the stage graph as DVC sees it and as Snakemake sees it must be the same.

Both tools are asked through their own APIs (DVC resolves ``${...}`` templating, Snakemake
loads the rules with the config), so what is compared is what each would actually run:
per stage, the command line, the dependencies, the params sections and the outputs.
DVC ``persist`` outputs (training checkpoints) are state, not results: Snakemake does not
declare them, so they are left out of the comparison.

    python -m pipeline.graph [--root DIR]     # exit 1 and list differences when out of step
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

FAN_OUT_SUFFIX = "_track"


@dataclass(frozen=True)
class StageSpec:
    cmd: str
    deps: frozenset[str]
    params: frozenset[str]
    outs: frozenset[str]


def dvc_stages(root: Path) -> dict[str, StageSpec]:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = {}
        for stage in repo.index.stages:
            params = {p for d in stage.deps if hasattr(d, "params") for p in (d.params or [])}
            deps = {d.def_path for d in stage.deps if not hasattr(d, "params")}
            outs = {o.def_path for o in stage.outs if not o.persist}
            stages[stage.name] = StageSpec(
                _normalize(stage.cmd), frozenset(deps), frozenset(params), frozenset(outs)
            )
    return stages


def snakemake_stages(root: Path) -> dict[str, StageSpec]:
    """Rules with a shell command (``all`` has none), except the per-track fan-out rules
    (``*_track``) and the per-track inputs the aggregate rules collect through functions:
    DVC does that work inside the stage with a process pool."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    with _chdir(root), SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            snakefile=Path("Snakefile"),
            workdir=Path("."),
        )
        # The public API runs workflows; reading rule definitions needs the loaded workflow.
        workflow = workflow_api._workflow
        stages = {}
        for rule in workflow.rules:
            if not rule.shellcmd or rule.name.endswith(FAN_OUT_SUFFIX):
                continue
            cmd = rule.shellcmd.format(
                input=rule.input, output=rule.output, params=rule.params, config=workflow.config
            )
            stages[rule.name] = StageSpec(
                _normalize(cmd),
                frozenset(str(f) for f in rule.input if not callable(f)),
                frozenset(rule.params.keys()),
                frozenset(map(str, rule.output)),
            )
    return stages


def differences(dvc: dict[str, StageSpec], smk: dict[str, StageSpec]) -> list[str]:
    problems = []
    for name in sorted(set(dvc) - set(smk)):
        problems.append(f"stage {name!r} is in dvc.yaml but has no Snakemake rule")
    for name in sorted(set(smk) - set(dvc)):
        problems.append(f"Snakemake rule {name!r} has no stage in dvc.yaml")
    for name in sorted(set(dvc) & set(smk)):
        a, b = dvc[name], smk[name]
        if a.cmd != b.cmd:
            problems.append(f"{name}: commands differ\n  dvc:       {a.cmd}\n  snakemake: {b.cmd}")
        for field in ("deps", "params", "outs"):
            left, right = getattr(a, field), getattr(b, field)
            if left != right:
                problems.append(
                    f"{name}: {field} differ; only in dvc.yaml: {sorted(left - right)}, "
                    f"only in Snakemake: {sorted(right - left)}"
                )
    return problems


def _normalize(cmd: str | list[str]) -> str:
    if isinstance(cmd, list):
        cmd = " && ".join(cmd)
    return " ".join(cmd.split())


@contextlib.contextmanager
def _chdir(path: Path):
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    root = args.root.resolve()
    dvc = dvc_stages(root)
    problems = differences(dvc, snakemake_stages(root))
    if problems:
        print("dvc.yaml and the Snakemake rules are out of step:", *problems, sep="\n- ")
        return 1
    print(f"dvc.yaml and the Snakemake rules agree on {len(dvc)} stages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
