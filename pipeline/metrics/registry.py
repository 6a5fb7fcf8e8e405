"""Metric registry: the metrics declared in this package, imported only when they are asked for.

A metric is a module of ``pipeline/metrics/`` ending with ``SPEC = MetricSpec(name=..., ...)``
(:mod:`pipeline.metrics.spec`): its function, its options with their defaults, its protocol,
its role and headline keys, all in one place. This module finds those modules by reading their
source (nothing is imported) and imports a metric's module when its spec is asked for:
:func:`spec`, :func:`specs`, :func:`compute_all`. Adding a metric is adding its module (and its
options to params.yaml and the schema); nothing here changes.

The executors' code closures follow :data:`LAZY_IMPORTS` (:mod:`pipeline.code_deps`): every
stage that imports this module depends on every metric module, so editing one re-runs
evaluate and report, and not training, whose progress metrics import only what they compute.

``METRICS``, ``PROTOCOLS`` and ``ROLES`` (name -> function, protocol, spec) are views of the
specs, made on first use.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.metrics.spec import (
    COPY_DETECTOR,
    DEFECT_DETECTOR,
    NOT_COMPARABLE,
    PROTOCOL_KEY,
    QUALITY,
    SKIPPED_KEY,
    SPEED,
    Headline,
    MetricSpec,
    compute,
    numeric_metrics,
)

__all__ = [
    "COPY_DETECTOR",
    "DEFECT_DETECTOR",
    "LAZY_IMPORTS",
    "NOT_COMPARABLE",
    "PROTOCOL_KEY",
    "QUALITY",
    "SKIPPED_KEY",
    "SPEED",
    "Headline",
    "MetricSpec",
    "compute_all",
    "names",
    "numeric_metrics",
    "option_defaults",
    "spec",
    "specs",
]

PACKAGE = "pipeline.metrics"
SPEC_NAME = "SPEC"
# Read by pipeline.code_deps as imports (a literal): the modules of PACKAGE that assign SPEC_NAME.
LAZY_IMPORTS = {"package": "pipeline.metrics", "declaring": "SPEC"}


@cache
def modules() -> dict[str, str]:
    """``{metric name: module}`` for every module of this package that declares a spec, in
    file-name order; read from the source, nothing imported."""
    found: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("*.py")):
        name = declared_name(path)
        if name is not None:
            if name in found:
                raise ValueError(f"metric {name!r} is declared twice: {found[name]}, {path.stem}")
            found[name] = f"{PACKAGE}.{path.stem}"
    return found


def declared_name(path: Path) -> str | None:
    """The ``name`` of the ``SPEC = MetricSpec(name="...")`` at the top level of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        if not any(isinstance(t, ast.Name) and t.id == SPEC_NAME for t in node.targets):
            continue
        for keyword in node.value.keywords:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
        raise ValueError(f'{path}: {SPEC_NAME} must name its metric with name="..."')
    return None


def names() -> list[str]:
    """Every metric's name, sorted."""
    return sorted(modules())


def spec(name: str) -> MetricSpec:
    """The spec of metric ``name`` (importing its module)."""
    try:
        module = modules()[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {names()}") from None
    declared = importlib.import_module(module).SPEC
    if declared.name != name:
        raise ValueError(f"{module}.{SPEC_NAME} is named {declared.name!r}, not {name!r}")
    return declared


def specs(selected: Sequence[str] | None = None) -> list[MetricSpec]:
    """The specs of the named metrics (all by default), in that order."""
    selected = list(selected or names())
    unknown = sorted(set(selected) - set(modules()))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {names()}")
    return [spec(name) for name in selected]


def option_defaults(selected: Sequence[str] | None = None) -> dict[str, Any]:
    """``{option: default}`` over the named metrics (all by default). An option several metrics
    read (``seed``, ``n_mels``, ...) has one default; a spec that disagrees is an error."""
    defaults: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for declared in specs(selected):
        for key, value in declared.options.items():
            if key in defaults and defaults[key] != value:
                raise ValueError(
                    f"option {key!r}: {owner[key]} declares {defaults[key]!r}, "
                    f"{declared.name} declares {value!r}"
                )
            defaults.setdefault(key, value)
            owner.setdefault(key, declared.name)
    return defaults


def compute_all(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
    names: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the named metrics (all by default); features are computed once and shared."""
    return compute(specs(names), generated, train, valid, options)


def __getattr__(attribute: str) -> Any:
    views = {
        "METRICS": lambda: {s.name: s.function for s in specs()},
        "PROTOCOLS": lambda: {s.name: s.protocol for s in specs()},
        "ROLES": lambda: {s.name: s for s in specs()},
    }
    if attribute in views:
        return views[attribute]()
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
