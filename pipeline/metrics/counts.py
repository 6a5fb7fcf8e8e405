"""How many bars an evaluation scored: metrics.json's ``counts`` entry, written by the evaluate
stage beside the metrics and read by the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COUNTS_KEY = "counts"


def bar_counts(generated: int, train: int, valid: int) -> dict[str, int]:
    """The ``counts`` record: generated (scored) bars, and the real bars they were held against."""
    return {"generated": int(generated), "train": int(train), "valid": int(valid)}


def counts_of(metrics: Mapping[str, Any]) -> dict[str, int]:
    """The ``counts`` of a metrics.json ({} for files written before it was recorded)."""
    counts = metrics.get(COUNTS_KEY)
    if not isinstance(counts, Mapping):
        return {}
    return {k: int(v) for k, v in counts.items() if isinstance(v, int | float)}
