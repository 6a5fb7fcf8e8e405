"""A preset's reproduction plan: what it trains on, with which settings, for how long, and the
numbers its paper reported, read from the preset's ``dataset`` and ``paper`` keys.

A preset's ``paper`` entries (each a published number and where it stands)::

    paper:
      - metric: inception score, real SC09 training clips
        value: 9.18
        spread: 0.04            # the +- the source reports (null if none)
        protocol: ...           # how it was measured
        where: ...              # table / section / file of the source
        ours: classifier/valid.inception_score   # the metrics.json number to set beside it
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.presets import PRESETS_DIR, load_preset
from pipeline.reproduce.estimate import RESULTS_DIR, GpuEstimate, estimate_gpu_hours

# a full-length run on a CPU needs --allow-cpu: beyond this many steps it takes days
CPU_STEP_LIMIT = 5000


class PlanError(ValueError):
    """A preset whose reproduction metadata is missing or malformed (names file and key)."""


@dataclass(frozen=True)
class PaperResult:
    metric: str
    value: float
    spread: float | None
    protocol: str
    where: str
    ours: str | None  # "<section>/<key>" in metrics.json

    def our_value(self, metrics: Mapping[str, Any]) -> float | None:
        return self._our_number(metrics, "")

    def our_interval(self, metrics: Mapping[str, Any]) -> tuple[float, float] | None:
        low, high = (self._our_number(metrics, end) for end in (".ci_low", ".ci_high"))
        return None if low is None or high is None else (low, high)

    def our_split_spread(self, metrics: Mapping[str, Any]) -> tuple[float, float] | None:
        """Mean and standard deviation over splits, where the metric reports them (the
        inception score's ``.split_mean`` / ``.split_std``, the form papers give as "±")."""
        mean, std = (self._our_number(metrics, end) for end in (".split_mean", ".split_std"))
        return None if mean is None or std is None else (mean, std)

    def _our_number(self, metrics: Mapping[str, Any], ending: str) -> float | None:
        """metrics.json's ``<section>/<key><ending>`` (``ours``), if it is a number."""
        if not self.ours:
            return None
        section, _, key = self.ours.partition("/")
        value = (metrics.get(section) or {}).get(key + ending)
        return float(value) if isinstance(value, int | float) else None


@dataclass
class Plan:
    preset: str
    source: str
    dataset: str | None
    dataset_note: str
    train: dict[str, Any]
    paper: list[PaperResult]
    estimates: list[GpuEstimate] = field(default_factory=list)
    dataset_lines: list[str] = field(default_factory=list)
    evaluate: dict[str, Any] = field(default_factory=dict)
    split_method: str = "random"
    models: dict[str, list[str]] = field(default_factory=dict)  # weights entry -> its lines


def paper_results(entries: Any, where: str) -> list[PaperResult]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise PlanError(f"{where}: 'paper' must be a list of results")
    results = []
    for index, entry in enumerate(entries):
        key = f"{where}: paper[{index}]"
        if not isinstance(entry, dict):
            raise PlanError(f"{key}: expected a mapping")
        missing = [k for k in ("metric", "value", "protocol", "where") if entry.get(k) is None]
        if missing:
            raise PlanError(f"{key}: missing {', '.join(missing)}")
        value = entry["value"]
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise PlanError(f"{key}.value: {value!r} is not a finite number")
        spread = entry.get("spread")
        if spread is not None and not isinstance(spread, int | float):
            raise PlanError(f"{key}.spread: {spread!r} is not a number")
        results.append(
            PaperResult(
                str(entry["metric"]),
                float(value),
                None if spread is None else float(spread),
                str(entry["protocol"]),
                str(entry["where"]),
                entry.get("ours"),
            )
        )
    return results


def load_plan(
    preset: str,
    params: Mapping[str, Any],
    presets_dir: Path = PRESETS_DIR,
    results_dir: Path = RESULTS_DIR,
    describe_dataset: Callable[[str], list[str]] | None = None,
) -> Plan:
    """The plan for ``preset`` over ``params`` (the train section the preset leaves as is comes
    from there). ``describe_dataset(name)`` gives the dataset's lines (size, checksums)."""
    overlay, meta = load_preset(preset, presets_dir)
    where = str(Path(presets_dir) / f"{preset}.yaml")
    if "dataset" not in meta:
        raise PlanError(f"{where}: no 'dataset' key (a registry name, or null with a note)")
    train = {**params.get("train", {}), **overlay.get("train", {})}
    section = {**params.get("evaluate", {}), **overlay.get("evaluate", {})}
    split = {**params.get("split", {}), **overlay.get("split", {})}
    models = {**params.get("fetch", {}), **overlay.get("fetch", {})}.get("models") or []
    plan = Plan(
        preset=preset,
        source=" ".join(str(meta["source"]).split()),
        dataset=meta["dataset"],
        dataset_note=" ".join(str(meta.get("dataset_note", "")).split()),
        train=train,
        paper=paper_results(meta.get("paper"), where),
        evaluate=section,
        split_method=str(split.get("method", "random")),
    )
    plan.estimates = estimate_gpu_hours(
        train["arch"],
        int(train["steps"]),
        int(train["batch_size"]),
        bool(train.get("amp")),  # auto: the GPUs measured all compute bf16
        bool(train.get("compile")),
        results_dir,
    )
    if describe_dataset is not None:
        if plan.dataset:
            plan.dataset_lines = describe_dataset(plan.dataset)
        plan.models = {name: describe_dataset(name) for name in models}
    return plan


def format_plan(plan: Plan) -> str:
    t = plan.train
    lines = [f"preset {plan.preset}: {plan.source}", ""]
    if plan.dataset:
        lines.append(f"dataset: {plan.dataset}")
        lines += [f"  {line}" for line in plan.dataset_lines]
    else:
        lines.append("dataset: none in the registry (set data.audio_dir to your recordings)")
    if plan.dataset_note:
        lines += textwrap.wrap(plan.dataset_note, 96, initial_indent="  ", subsequent_indent="  ")
    lines.append(
        "  split: the dataset's own (published)"
        if plan.split_method == "published"
        else "  split: tracks drawn at random (split.seed and fractions)"
    )
    for name, described in plan.models.items():
        lines.append(f"weights: {name}")
        lines += [f"  {line}" for line in described]
    lines += [
        "",
        f"training: {t['arch']}, {t['loss']}, d={t['model_dim']}, batch {t['batch_size']}, "
        f"{t['steps']} steps, n_critic {t.get('n_critic', 1)}, "
        f"{'fp32' if not t.get('amp') else 'bf16 (auto)' if t['amp'] == 'auto' else 'bf16'}"
        f"{' + compile' if t.get('compile') else ''}",
    ]
    if plan.estimates:
        for e in plan.estimates:
            lines.append(
                f"  about {e.hours:.1f} GPU hours on one {e.device} ({e.mode}, "
                f"{e.steps_per_sec:.2f} steps/s; bench/results/{e.source})"
            )
    else:
        lines.append("  no measured throughput for this architecture in bench/results")
    ev = plan.evaluate
    if ev.get("metrics"):
        lines.append(
            f"evaluation: {', '.join(ev['metrics'])}; inception-score classifier "
            f"{ev.get('classifier', 'mlp')}"
        )
    lines.append("")
    if plan.paper:
        lines.append("the paper's numbers it will be compared with:")
        for r in plan.paper:
            spread = f" ± {r.spread:g}" if r.spread is not None else ""
            lines.append(f"  {r.metric}: {r.value:g}{spread} ({r.where}; {r.protocol})")
    else:
        lines.append("no published numbers to compare with (see the note above)")
    return "\n".join(lines)


def comparison_table(plan: Plan, metrics: Mapping[str, Any]) -> str:
    """The paper's numbers beside ours: our value with its bootstrap interval, and our mean ±
    standard deviation over splits where the metric has them (the paper's "±" is that)."""
    rows = [
        "| metric | paper | ours [bootstrap interval] | ours, mean ± std over splits | protocol |",
        "|---|---|---|---|---|",
    ]
    for r in plan.paper:
        paper = f"{r.value:g}" + (f" ± {r.spread:g}" if r.spread is not None else "")
        value = r.our_value(metrics)
        interval = r.our_interval(metrics)
        spread = r.our_split_spread(metrics)
        ours = "not measured" if value is None else f"{value:.4g}"
        if value is not None and interval:
            ours += f" [{interval[0]:.4g}, {interval[1]:.4g}]"
        over_splits = f"{spread[0]:.3f} ± {spread[1]:.3f}" if spread else "-"
        rows.append(f"| {r.metric} | {paper} | {ours} | {over_splits} | {r.protocol} |")
    return "\n".join(rows)
