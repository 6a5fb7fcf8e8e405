"""The code a stage program runs: the closure of its ``pipeline.*`` imports, as files.

Both executors take a stage's code dependencies from here, so a stage re-runs when any file it
can execute changes, and from nowhere else: the Snakemake rules call :func:`stage_code` when
the Snakefile is parsed; DVC cannot put a computed list into ``deps``, so
``python -m pipeline.graph --write-deps`` writes the same lists into dvc.yaml
(:func:`rewrite_code_deps`) and ``python -m pipeline.graph`` fails when they are stale.

Imports are read with :mod:`ast`, nothing is imported: ``import pipeline.x``,
``from pipeline.x import y`` (``y`` a submodule or a name), relative imports, and imports
inside functions (those run too, only later). Every package ``__init__.py`` that Python
executes on the way to a module is part of the closure. A module that imports by name at run
time declares what it may import in a top-level literal
``LAZY_IMPORTS = {"package": "pipeline.x", "declaring": "NAME"}``: every module directly in that
package whose source assigns ``NAME`` at its top level counts as imported (the metric registry
declares its metrics this way). Imports of anything outside the
``pipeline`` package are third-party and ignored.

dvc.yaml declares such a package as its folder (:func:`stage_deps`): a stage whose closure
reaches a ``LAZY_IMPORTS`` declaration depends on ``pipeline/<package>`` as one dependency
instead of the files of the closure under it (``.dvcignore`` keeps ``__pycache__`` out of the
folder's hash), so a new module in that package (a new metric) changes nothing in dvc.yaml: DVC
sees it in the folder, the Snakemake rules find it when they parse. A stage that imports some
modules of the package directly (training's progress metrics) keeps them as files. The checks in
:mod:`pipeline.graph` expand a folder into the ``.py`` files under it (:func:`expand_code_deps`).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

PACKAGE = "pipeline"
STAGE_PACKAGE = f"{PACKAGE}.stages"
LAZY_IMPORTS_NAME = "LAZY_IMPORTS"
REPO_ROOT = Path(__file__).resolve().parents[1]
_STAGE_MODULE = re.compile(rf"\bpython3?\s+-m\s+({PACKAGE}(?:\.\w+)+)")


def stage_code(stage: str, root: Path | str = REPO_ROOT) -> list[str]:
    """Repo-relative paths (sorted, ``/``-separated) of the ``.py`` files that the stage
    program can execute. ``stage`` is a stage name (``"train"`` means the program
    ``python -m pipeline.stages.train``) or a dotted module name."""
    module = stage if "." in stage else f"{STAGE_PACKAGE}.{stage}"
    return module_closure(module, root)


def stage_module(cmd: str) -> str | None:
    """The module a stage command runs with ``python -m``, or None."""
    match = _STAGE_MODULE.search(cmd)
    return match.group(1) if match else None


def is_code_path(path: str) -> bool:
    """Whether a dependency path lies in the ``pipeline`` package (as opposed to data)."""
    parts = Path(path.strip().strip("'\"")).parts
    return bool(parts) and parts[0] == PACKAGE


def module_closure(module: str, root: Path | str = REPO_ROOT) -> list[str]:
    """The files of ``module`` and of every ``pipeline`` module it imports, transitively,
    including the package ``__init__.py`` files Python executes to reach them."""
    return _closure(module, Path(root))[0]


def stage_deps(stage: str, root: Path | str = REPO_ROOT) -> list[str]:
    """A stage's code dependencies as dvc.yaml declares them (sorted): the files of
    :func:`stage_code`, except that the folder of each package the closure imports lazily
    (``LAZY_IMPORTS``) replaces every file of the closure under it."""
    module = stage if "." in stage else f"{STAGE_PACKAGE}.{stage}"
    files, folders = _closure(module, Path(root))
    kept = [f for f in files if not any(_under(f, folder) for folder in folders)]
    return sorted([*kept, *folders])


def expand_code_deps(deps: Iterable[str], root: Path | str = REPO_ROOT) -> set[str]:
    """Code deps as files: a folder stands for the ``.py`` files under it (``__pycache__``
    left out, as ``.dvcignore`` leaves it out of DVC's hash), a file for itself."""
    root = Path(root)
    files: set[str] = set()
    for dep in deps:
        if (root / dep).is_dir():
            files.update(
                path.relative_to(root).as_posix()
                for path in (root / dep).rglob("*.py")
                if "__pycache__" not in path.relative_to(root).parts
            )
        else:
            files.add(dep)
    return files


def is_code_folder(dep: str, root: Path | str = REPO_ROOT) -> bool:
    """Whether a code dependency names a folder (a lazily imported package) of ``root``."""
    return is_code_path(dep) and (Path(root) / dep).is_dir()


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _closure(module: str, root: Path) -> tuple[list[str], list[str]]:
    """(the files of :func:`module_closure`, the repo-relative folders of the packages that
    modules of the closure import lazily)."""
    if _module_file(module, root) is None:
        raise ModuleNotFoundError(f"no source for {module} under {root}")
    seen: set[str] = set()
    files: set[Path] = set()
    folders: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        for executed in _with_parents(name):
            if executed in seen:
                continue
            seen.add(executed)
            path = _module_file(executed, root)
            if path is None:  # a namespace package, or an import that would fail
                continue
            files.add(path)
            imported, lazy_package = _imported_modules(path, executed, root)
            pending.extend(imported)
            if lazy_package is not None:
                folders.add("/".join(lazy_package.split(".")))
    return sorted(path.relative_to(root).as_posix() for path in files), sorted(folders)


def code_digest(*modules: Any) -> str:
    """A digest of the files of the given modules and of every ``pipeline`` module they import
    (:func:`module_closure`): the key part that makes a cached result's code the code that
    decides when the executors re-run its stage."""
    files = sorted({path for module in modules for path in module_closure(module.__name__)})
    digest = hashlib.sha256()
    for path in files:
        digest.update((REPO_ROOT / path).read_bytes())
    return digest.hexdigest()


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages first."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str, root: Path) -> tuple[set[str], str | None]:
    """The ``pipeline`` modules that ``path`` (the source of ``module``) imports anywhere in
    its body, and the package it imports lazily (``LAZY_IMPORTS``) or None. For
    ``from p import y``: ``p``, and ``p.y`` when ``y`` is a submodule."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    declared = _lazy_declaration(tree)
    found: set[str] = set()
    if declared is not None:
        found.update(declaring_modules(declared["package"], declared["declaring"], root))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, module, is_package)
            if base is None:
                continue
            found.add(base)
            for alias in node.names:
                if alias.name != "*" and _module_file(f"{base}.{alias.name}", root) is not None:
                    found.add(f"{base}.{alias.name}")
    ours = {name for name in found if name == PACKAGE or name.startswith(f"{PACKAGE}.")}
    lazy_package = declared["package"] if declared is not None else None
    if lazy_package is not None and not lazy_package.startswith(f"{PACKAGE}."):
        lazy_package = None
    return ours, lazy_package


def _lazy_declaration(tree: ast.Module) -> dict[str, str] | None:
    """A top-level ``LAZY_IMPORTS = {"package": ..., "declaring": ...}``, or None."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == LAZY_IMPORTS_NAME
            for target in node.targets
        ):
            return ast.literal_eval(node.value)
    return None


def declaring_modules(package: str, name: str, root: Path | str = REPO_ROOT) -> list[str]:
    """The modules directly in ``package`` whose source assigns ``name`` at the top level."""
    folder = Path(root).joinpath(*package.split("."))
    found = []
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(target, ast.Name) and target.id == name
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            for node in tree.body
        ):
            found.append(f"{package}.{path.stem}")
    return found


def _absolute(target: str | None, level: int, module: str, is_package: bool) -> str | None:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(package) - 1:
        return None  # beyond the top-level package: Python raises ImportError
    anchor = package[: len(package) - (level - 1)]
    return ".".join([*anchor, target] if target else anchor)


# --- dvc.yaml ---------------------------------------------------------------------------------

_STAGE_LINE = re.compile(r"^  ([A-Za-z0-9_.@-]+):\s*(#.*)?$")
_KEY_LINE = re.compile(r"^    ([A-Za-z_]+):")
_ITEM_LINE = re.compile(r"^(\s+)- (.*)$")


def rewrite_code_deps(text: str, code: Mapping[str, Sequence[str]]) -> str:
    """dvc.yaml ``text`` with the code dependencies of each stage in ``code`` replaced by the
    given files and folders (:func:`stage_deps`); nothing else changes (comments, data deps
    and their order included).

    Code lines are the ``deps`` items under ``pipeline/``; the new ones take the place of the
    first old one (or follow the data deps). A stage without ``deps`` gets one after its
    ``cmd``. Written for this repository's block style (``stages:`` at column 0, stage names
    indented 2, keys 4); :func:`pipeline.graph.write_deps` re-reads the result to check it.
    """
    lines = text.splitlines(keepends=True)
    newline = "\n"
    out: list[str] = []
    i = 0
    in_stages = False
    while i < len(lines):
        line = lines[i]
        if _top_level(line):
            in_stages = line.startswith("stages:")
        match = _STAGE_LINE.match(line) if in_stages else None
        if match and match.group(1) in code:
            end = i + 1
            while end < len(lines) and not (
                _top_level(lines[end]) or _STAGE_LINE.match(lines[end])
            ):
                end += 1
            out.append(line)
            out.extend(_rewrite_stage(lines[i + 1 : end], code[match.group(1)], newline))
            i = end
            continue
        out.append(line)
        i += 1
    return "".join(out)


def _top_level(line: str) -> bool:
    return bool(line.strip()) and not line[0].isspace() and not line.startswith("#")


def _rewrite_stage(body: list[str], files: Iterable[str], newline: str) -> list[str]:
    deps_at = next((j for j, line in enumerate(body) if line.startswith("    deps:")), None)
    if deps_at is None:
        cmd_at = next(j for j, line in enumerate(body) if line.startswith("    cmd:"))
        end = cmd_at + 1
        while end < len(body) and not _KEY_LINE.match(body[end]):
            end += 1
        while end > cmd_at + 1 and not body[end - 1].strip():
            end -= 1  # keep blank lines after the cmd block below the new deps
        block = [f"    deps:{newline}", *(f"      - {f}{newline}" for f in files)]
        return [*body[:end], *block, *body[end:]]

    end = deps_at + 1
    while end < len(body) and not _KEY_LINE.match(body[end]):
        end += 1
    while end > deps_at + 1 and not body[end - 1].strip():
        end -= 1
    block = body[deps_at + 1 : end]
    items = [(j, m) for j, line in enumerate(block) if (m := _ITEM_LINE.match(line))]
    indent = items[0][1].group(1) if items else "      "
    code_at = [j for j, m in items if is_code_path(_strip_comment(m.group(2)))]
    insert_at = code_at[0] if code_at else (items[-1][0] + 1 if items else 0)
    new_lines = [f"{indent}- {f}{newline}" for f in files]
    kept: list[str] = []
    for j, line in enumerate(block):
        if j == insert_at:
            kept.extend(new_lines)
        if j not in code_at:
            kept.append(line)
    if insert_at >= len(block):
        kept.extend(new_lines)
    return [*body[: deps_at + 1], *kept, *body[end:]]


def _strip_comment(value: str) -> str:
    return re.sub(r"\s+#.*$", "", value).strip()
