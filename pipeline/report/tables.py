"""Metrics as tables, without knowing which metrics exist.

``metrics.json`` maps a metric name to a dict of values (nested dicts are flattened with '.'),
plus optional top-level settings (e.g. ``threshold``). Keys that start with a *role* prefix
(``generated.``, ``valid.``, ...) are laid out side by side, one column per role, so each
generated number sits beside its real-data reference; other keys get a ``value`` column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

ROLES = ("generated", "valid", "test", "train", "real")
ROLE_LABELS = {
    "generated": "generated",
    "valid": "held-out real (reference)",
    "test": "test real (reference)",
    "train": "train real",
    "real": "real (reference)",
}
VALUE_COLUMN = "value"


@dataclass
class MetricTable:
    name: str
    columns: list[str]  # role names in display order, VALUE_COLUMN last when used
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (measure, {col: v})

    def header(self) -> list[str]:
        return [ROLE_LABELS.get(c, c) for c in self.columns]


def metric_tables(metrics: dict[str, Any]) -> tuple[list[MetricTable], dict[str, Any]]:
    """``(one table per metric dict, {setting: value} for top-level non-dict entries)``."""
    tables, settings = [], {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            tables.append(_table(name, _flatten(value)))
        else:
            settings[name] = value
    return tables, settings


def format_value(value: Any) -> str:
    """Numbers to 4 significant digits (integers whole), the rest as text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _table(name: str, flat: dict[str, Any]) -> MetricTable:
    rows: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for key, value in flat.items():
        role, _, measure = key.partition(".")
        if role in ROLES and measure:
            column = role
        else:
            column, measure = VALUE_COLUMN, key
        rows.setdefault(measure, {})[column] = value
        used.add(column)
    columns = [r for r in ROLES if r in used] + ([VALUE_COLUMN] if VALUE_COLUMN in used else [])
    return MetricTable(name, columns, list(rows.items()))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
