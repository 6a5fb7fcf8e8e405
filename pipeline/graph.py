"""Graph parity: the stage graph as DVC sees it and as Snakemake sees it must be the same.

Both tools are asked through their own APIs (DVC resolves ``${...}`` templating, Snakemake
loads the rules with the config), so what is compared is what each would actually run:
per stage, the command line, the dependencies, the params sections and the outputs.

A stage's code dependencies are the files its program imports (:mod:`pipeline.code_deps`):
the Snakemake rules compute them when parsed; dvc.yaml lists them, written by
``--write-deps``, with the folder of a lazily imported package (``pipeline/metrics``) in place
of its files, and the check fails when a stage imports code dvc.yaml does not declare or
declares code the stage no longer imports. A folder is compared as the ``.py`` files under it,
so a new module there (a new metric) needs no ``--write-deps``.

    python -m pipeline.graph [--root DIR]     # exit 1 and list differences when out of step
    python -m pipeline.graph --write-deps     # rewrite the code deps in dvc.yaml, then check
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.code_deps import (
    expand_code_deps,
    is_code_folder,
    is_code_path,
    rewrite_code_deps,
    stage_code,
    stage_deps,
    stage_module,
)

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
            outs = {o.def_path for o in stage.outs}
            stages[stage.name] = StageSpec(
                _normalize(stage.cmd), frozenset(deps), frozenset(params), frozenset(outs)
            )
    return stages


def _snakemake_rules(root: Path) -> tuple[dict[str, StageSpec], dict[str, StageSpec]]:
    """(stage rules, per-track fan-out rules), both keyed by rule name. Stage rules: those with
    a shell command (``all`` has none), except the per-track fan-out rules (``*_track``) and the
    per-track inputs the aggregate rules collect through functions: DVC does that work inside
    the stage with a process pool."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings
    from snakemake.utils import QuotedFormatter

    with _chdir(root), SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            snakefile=Path("Snakefile"),
            workdir=Path("."),
        )
        # The public API runs workflows; reading rule definitions needs the loaded workflow.
        workflow = workflow_api._workflow
        stages, fan_out = {}, {}
        for rule in workflow.rules:
            if not rule.shellcmd:
                continue
            fans_out = rule.name.endswith(FAN_OUT_SUFFIX)
            cmd = ""  # a fan-out command has {wildcards}; only its code inputs are compared
            if not fans_out:
                cmd = QuotedFormatter().format(
                    rule.shellcmd,
                    input=rule.input,
                    output=rule.output,
                    params=rule.params,
                    config=workflow.config,
                )
            spec = StageSpec(
                _normalize(cmd),
                frozenset(str(f) for f in rule.input if not callable(f)),
                frozenset(rule.params.keys()),
                frozenset(map(str, rule.output)),
            )
            (fan_out if fans_out else stages)[rule.name] = spec
    return stages, fan_out


def differences(
    dvc: dict[str, StageSpec], smk: dict[str, StageSpec], root: Path | None = None
) -> list[str]:
    """What differs between the stages of dvc.yaml and the Snakemake rules. With ``root``, a
    code folder in dvc.yaml's deps stands for the ``.py`` files under it: the rule must list no
    code outside dvc.yaml's files and folders, and each folder must cover an input of the rule
    (files under it that the stage does not import are DVC's coarser view, not a difference)."""
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
            if field == "deps" and root is not None:
                left, right = _covered_deps(left, right, root)
            if left != right:
                problems.append(
                    f"{name}: {field} differ; only in dvc.yaml: {sorted(left - right)}, "
                    f"only in Snakemake: {sorted(right - left)}"
                )
    return problems


def _covered_deps(
    dvc_deps: frozenset[str], smk_deps: frozenset[str], root: Path
) -> tuple[frozenset[str], frozenset[str]]:
    """dvc.yaml's deps with each code folder replaced by the rule's inputs it covers, or kept
    (and so reported) when it covers none; the rule's inputs as they are."""
    folders = {d for d in dvc_deps if is_code_folder(d, root)}
    left = set(dvc_deps - folders)
    for folder in folders:
        covered = expand_code_deps([folder], root) & smk_deps
        left.update(covered or {folder})
    return frozenset(left), smk_deps


def code_differences(root: Path, dvc: dict[str, StageSpec]) -> list[str]:
    """Stages whose code deps in dvc.yaml are not the files their program imports, with the
    folder of each package it imports lazily in place of that package's files
    (:func:`pipeline.code_deps.stage_deps`). A folder counts as the ``.py`` files under it."""
    problems = []
    for name, spec in sorted(dvc.items()):
        module = stage_module(spec.cmd)
        if module is None:
            continue
        declared = {d for d in spec.deps if is_code_path(d)}
        folders = {d for d in declared if is_code_folder(d, root)}
        files = declared - folders
        imported = set(stage_code(module, root))
        wanted = set(stage_deps(module, root))
        wanted_folders = wanted - imported
        if missing := sorted(imported - expand_code_deps(declared, root)):
            problems.append(f"{name}: imports code that dvc.yaml does not declare: {missing}")
        if unused := sorted(files - imported):
            problems.append(f"{name}: dvc.yaml declares code the stage does not import: {unused}")
        if extra := sorted(folders - wanted_folders):
            problems.append(
                f"{name}: dvc.yaml declares folders the stage does not import lazily: {extra}"
            )
        if absent := sorted(wanted_folders - folders):
            problems.append(
                f"{name}: dvc.yaml lists the files of lazily imported packages instead of "
                f"their folders: {absent}"
            )
        if covered := sorted(f for f in files & imported if f not in wanted):
            problems.append(f"{name}: dvc.yaml lists files its folder deps cover: {covered}")
    if problems:
        problems.append("regenerate the code deps with `python -m pipeline.graph --write-deps`")
    return problems


def fan_out_differences(stages: dict[str, StageSpec], fan_out: dict[str, StageSpec]) -> list[str]:
    """A per-track rule must depend on the same code as the stage it does the work of."""
    problems = []
    for name, spec in sorted(fan_out.items()):
        stage = stages.get(name.removesuffix(FAN_OUT_SUFFIX))
        if stage is None:
            problems.append(f"Snakemake rule {name!r} has no aggregate rule")
            continue
        own = {d for d in spec.deps if is_code_path(d)}
        aggregate = {d for d in stage.deps if is_code_path(d)}
        if own != aggregate:
            problems.append(
                f"{name}: code inputs differ from its stage's; only in {name}: "
                f"{sorted(own - aggregate)}, only in the stage: {sorted(aggregate - own)}"
            )
    return problems


class RewriteError(RuntimeError):
    """dvc.yaml is laid out so that its code deps cannot be rewritten line by line."""


def write_deps(root: Path) -> list[str]:
    """Rewrite the code deps of every ``python -m pipeline...`` stage in ``root/dvc.yaml`` to
    its program's import closure, lazily imported packages as folders
    (:func:`pipeline.code_deps.stage_deps`); returns the names of the stages that changed."""
    path = root / "dvc.yaml"
    text = path.read_text()
    before = yaml.safe_load(text)
    code = {}
    for name, stage in before["stages"].items():
        module = stage_module(_normalize(stage.get("cmd", "")))
        if module is not None:
            code[name] = stage_deps(module, root)
    new_text = rewrite_code_deps(text, code)
    try:
        after = yaml.safe_load(new_text)
    except yaml.YAMLError as error:
        message = f"the rewritten dvc.yaml would not parse ({error}); not written"
        raise RewriteError(message) from error
    _check_rewrite(before, after, code)
    if new_text != text:
        path.write_text(new_text)
    return [
        name
        for name in code
        if before["stages"][name].get("deps") != after["stages"][name].get("deps")
    ]


def _check_rewrite(before: dict, after: dict, code: dict[str, list[str]]) -> None:
    """The rewrite changed nothing but code deps, and left exactly the computed ones."""
    if _without_deps(before) != _without_deps(after):
        raise RewriteError("rewriting dvc.yaml would change more than code deps; not written")
    for name, stage in after["stages"].items():
        old = before["stages"][name].get("deps", [])
        new = stage.get("deps", [])
        data_kept = [d for d in new if not _is_code_dep(d)] == [
            d for d in old if not _is_code_dep(d)
        ]
        wanted = code.get(name, [d for d in old if _is_code_dep(d)])
        if not data_kept or sorted(d for d in new if _is_code_dep(d)) != sorted(wanted):
            raise RewriteError(f"could not rewrite the code deps of stage {name!r} in dvc.yaml")


def _without_deps(dvc_yaml: dict) -> dict:
    stages = {
        name: {key: value for key, value in stage.items() if key != "deps"}
        for name, stage in dvc_yaml["stages"].items()
    }
    return {**dvc_yaml, "stages": stages}


def _is_code_dep(dep: object) -> bool:
    return isinstance(dep, str) and is_code_path(dep)


def _normalize(cmd: str | list[str]) -> str:
    """One spelling per command line: whitespace collapsed and quoting canonical
    (``--audio-dir "a b"`` in dvc.yaml and Snakemake's ``'a b'`` compare equal)."""
    if isinstance(cmd, list):
        cmd = " && ".join(cmd)
    return shlex.join(shlex.split(cmd))


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
    parser.add_argument(
        "--write-deps",
        action="store_true",
        help="first rewrite each stage's code deps in dvc.yaml to its program's imports",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.write_deps:
        try:
            changed = write_deps(root)
        except RewriteError as error:
            print(f"dvc.yaml: {error}; edit its deps by hand (block-style lists)")
            return 2
        print(f"dvc.yaml: code deps rewritten for {', '.join(changed) or 'no stage'}")
    dvc = dvc_stages(root)
    smk, fan_out = _snakemake_rules(root)
    problems = [
        *differences(dvc, smk, root),
        *fan_out_differences(smk, fan_out),
        *code_differences(root, dvc),
    ]
    if problems:
        print("dvc.yaml and the Snakemake rules are out of step:", *problems, sep="\n- ")
        return 1
    print(f"dvc.yaml and the Snakemake rules agree on {len(dvc)} stages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
