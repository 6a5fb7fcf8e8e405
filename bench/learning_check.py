"""The quality benchmark: does a time-boxed training run learn? For each configuration, the
headline metrics of the untrained generator and of the same generator after training, beside
the held-out real bars, and the CPU-seconds the training took.

    python bench/learning_check.py                                  # default + each architecture
    python bench/learning_check.py --configs default --minutes 10   # params.yaml's train section
    python bench/learning_check.py --splits-dir my/splits --json out.json   # bars of your music
    python bench/learning_check.py --configs wavegan --size preset --device cuda --amp --minutes 4

Configurations (``--configs``, comma-separated):

* ``default``: params.yaml's train section, as ``make run`` trains it;
* ``wavegan``, ``melgan``, ``specgan`` (every architecture in the registry): the published
  recipe of that architecture's preset (presets/wavegan.yaml, bergan.yaml, specgan-genre.yaml:
  loss, n_critic, learning rates, betas, EMA, conditioning, model settings) at a CPU-sized
  width and batch (``--size cpu``, the default) or at the preset's own (``--size preset``, for a
  GPU). Only the train section of a preset is used: the bars are those of ``--splits-dir``.

Each configuration trains from scratch with :func:`pipeline.train.train_gan` until the step that
passes ``--minutes`` (wall clock, everything counted: building the networks, compilation,
checkpoints), or ``--max-steps``. "CPU s" is the process CPU time of that training (all threads),
"wall s" its wall-clock time. The step-0 generator (EMA weights where EMA is on) and the final
one each generate ``--bars`` bars from the same latents, scored with the metric registry
(:func:`pipeline.metrics.registry.compute_all`) against the train split, and the held-out
(valid) bars are scored the same way: what a perfect generator would get.

Output (stdout): the command, the machine and the splits, then a markdown table; ``--json``
also writes every number. Training progress goes to stderr.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.compat import install_fallbacks

FALLBACK_NOTES = install_fallbacks()  # before the pipeline imports (a bare GPU image)

from pipeline.data.splits import load_split, split_recordings  # noqa: E402
from pipeline.metrics.headline import TARGETS, compute_headline  # noqa: E402
from pipeline.metrics.references import rms, round_trip_bars, white_noise  # noqa: E402
from pipeline.metrics.registry import compute_all, numeric_metrics  # noqa: E402
from pipeline.models.registry import ARCHITECTURES  # noqa: E402
from pipeline.params import deep_merge  # noqa: E402
from pipeline.sample.generate import scored_bars  # noqa: E402
from pipeline.train import TrainConfig, load_generator, save_generator, train_gan  # noqa: E402
from pipeline.train.clusters import Clusters, training_clusters  # noqa: E402
from pipeline.yamlio import parse_yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
METRICS = ("frechet", "ndb", "rhythm", "two_sample", "novelty", "nearest_neighbour")
# architecture -> the preset holding its published recipe
ARCH_PRESETS = {"wavegan": "wavegan", "melgan": "bergan", "specgan": "specgan-genre"}
# CPU-sized width and batch per architecture (MelGAN's generator is 32x model_dim wide)
CPU_SIZES = {
    "wavegan": {"model_dim": 8, "batch_size": 16},
    "melgan": {"model_dim": 4, "batch_size": 16},
    "specgan": {"model_dim": 8, "batch_size": 16},
}
DEFAULT_CPU_SIZE = {"model_dim": 8, "batch_size": 16}
NEVER = 10**9  # steps
LOG_EVERY = 10


@dataclasses.dataclass(frozen=True)
class Headline:
    label: str
    key: str  # the generated bars' key; the real reference swaps "generated" for "valid"
    kind: str  # "distance" (with interval), "count", "share", "db"

    def real_key(self) -> str:
        return self.key.replace(".generated.", ".valid.")


HEADLINES = (
    Headline("Fréchet (fixed) [95% CI]", "frechet.generated.fixed", "distance"),
    Headline("NDB bins visited", "ndb.generated.bins_visited", "count"),
    Headline("downbeat onset", "rhythm.generated.fraction_downbeat_onset", "share"),
    Headline("two-sample accuracy", "two_sample.generated.accuracy", "share"),
    Headline("similar ≤ 0.1", "novelty.generated.fraction_similar_at_0.1", "share"),
    Headline("nearest train bar, median dB", "nearest_neighbour.generated.median_db", "db"),
)


# ----------------------------------------------------------------------------- configurations


def read_yaml(path: Path) -> dict[str, Any]:
    return parse_yaml(Path(path).read_text())


def train_section(
    name: str, params: dict[str, Any], size: str, presets_dir: Path = REPO / "presets"
) -> dict[str, Any]:
    """The train section of configuration ``name`` (see the module docstring)."""
    section = copy.deepcopy(params["train"])
    if name == "default":
        return section
    if name not in ARCHITECTURES:
        known = ", ".join(["default", *ARCHITECTURES])
        raise SystemExit(f"unknown configuration {name!r}; known: {known}")
    preset = ARCH_PRESETS.get(name)
    if preset and (presets_dir / f"{preset}.yaml").is_file():
        deep_merge(section, read_yaml(presets_dir / f"{preset}.yaml").get("train", {}))
        section["preset"] = preset
    else:  # an architecture without a preset: the default recipe with that architecture
        section.update(arch=name, preset=None)
    if size == "cpu":
        section.update(CPU_SIZES.get(name, DEFAULT_CPU_SIZE))
    return section


def train_config(
    section: dict[str, Any],
    bars: np.ndarray,
    sample_rate: int,
    n_classes: int,
    clusters: Clusters | None = None,
) -> TrainConfig:
    """A :class:`TrainConfig` from a train section: every key the config knows, the model block
    of its architecture, the shape of the bars and the clusters under self-conditioning."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    known = {k: v for k, v in section.items() if k in fields and k not in ("extra",)}
    known.update(
        betas=tuple(section.get("betas", (0.5, 0.9))),
        sample_rate=sample_rate,
        length=bars.shape[2],
        channels=bars.shape[1],
        num_classes=n_classes,
        cluster_classes=list(clusters.classes) if clusters else [],
        cluster_counts=list(clusters.counts) if clusters else [],
        extra=dict((section.get("model") or {}).get(section["arch"]) or {}),
    )
    return TrainConfig(**known)


def describe(name: str, section: dict[str, Any], config: TrainConfig) -> str:
    recipe = f"preset {section['preset']}" if section.get("preset") else "params.yaml"
    extras = [f"{config.loss}", f"n_critic {config.n_critic}"]
    if config.r1_gamma:
        extras.append(f"R1 {config.r1_gamma:g}")
    if config.ema_decay:
        extras.append(f"EMA {config.ema_decay:g}")
    if config.num_classes:
        extras.append(f"{config.num_classes} classes")
    if config.cluster_classes:
        extras.append(f"{len(config.cluster_classes)} clusters")
    if config.resolved_amp():
        extras.append("bf16" + (" (auto)" if config.amp == "auto" else ""))
    if config.compile:
        extras.append("compile")
    return (
        f"{name}: {config.arch} d={config.model_dim} batch {config.batch_size}, "
        f"{', '.join(extras)} ({recipe})"
    )


# ----------------------------------------------------------------------------- running


def read_grid(splits_dir: Path) -> dict[str, Any]:
    """The bar grid of the splits: ``grid.json`` where present, else the keys in info.json."""
    for name in ("grid.json", "info.json"):
        path = splits_dir / name
        if path.is_file():
            record = json.loads(path.read_text())
            if "bpm" in record:
                return {k: record[k] for k in ("sample_rate", "bpm", "beats_per_bar")}
    raise SystemExit(f"{splits_dir}: no grid.json or info.json with the bar grid")


def metric_options(evaluate: dict[str, Any], grid: dict[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in evaluate.items() if k != "metrics"}
    # the headline's near-copy share is at the first threshold: 0.1, the issue's
    thresholds = [0.1, *(t for t in options.get("novelty_thresholds") or [] if t != 0.1)]
    options.update(
        novelty_thresholds=thresholds,
        sample_rate=int(grid["sample_rate"]),
        bpm=float(grid["bpm"]),
        beats_per_bar=int(grid["beats_per_bar"]),
    )
    return options


def train_timed(
    bars: np.ndarray,
    labels: np.ndarray | None,
    config: TrainConfig,
    run_dir: Path,
    budget_s: float,
    untrained_path: Path,
    tag: str,
) -> dict[str, float]:
    """Train until the step that passes ``budget_s`` (or ``config.steps``); the step-0
    generator is saved to ``untrained_path`` on the way."""
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def on_preview(step: int, generator: torch.nn.Module) -> None:
        if step == 0:  # preview_every is NEVER: the only call
            save_generator(untrained_path, generator, config)

    def on_log(step: int, metrics: dict[str, float]) -> None:
        elapsed = time.perf_counter() - wall0
        print(
            f"  [{tag}] step {step}: {metrics['steps_per_sec']:.2f} steps/s, {elapsed:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    result = train_gan(
        bars, labels, config, run_dir, on_log, on_preview=on_preview, time_limit_s=budget_s
    )
    if config.resolved_device().type == "cuda":
        torch.cuda.synchronize()
    return {
        "steps": result.steps_done,
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.process_time() - cpu0,
    }


def score_bars(
    bars: np.ndarray, train: np.ndarray, valid: np.ndarray, options: dict
) -> dict[str, float]:
    return numeric_metrics(compute_all(bars, train, valid, dict(options), METRICS))


def score(
    generator_path: Path,
    n: int,
    train: np.ndarray,
    valid: np.ndarray,
    options: dict,
    device: str,
    class_counts: np.ndarray | None = None,
) -> dict[str, float]:
    """``n`` bars of the generator (classes in the training bars' proportions), scored."""
    generator, _ = load_generator(generator_path, device=device)
    bars, _ = scored_bars(generator, n, seed=0, class_counts=class_counts)
    del generator
    return score_bars(bars, train, valid, options)


def score_ceiling(
    generator_path: Path, train: np.ndarray, valid: np.ndarray, options: dict, device: str
) -> dict[str, float]:
    """The held-out bars through the generator's own analysis and synthesis, scored: the best
    this configuration's representation allows."""
    generator, _ = load_generator(generator_path, device=device)
    ceiling = round_trip_bars(generator.eval(), valid)
    paired = {**options, "generated_groups": options.get("valid_groups")}
    return score_bars(ceiling, train, valid, paired)


def run_config(
    name: str, section: dict[str, Any], data: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    train, train_labels, sample_rate = data["train"]
    n_classes = len(data["classes"]) if section.get("conditional") else 0
    if n_classes and (train_labels < 0).any():
        raise SystemExit(f"{name} is conditional but some training bars have no class")
    clusters = training_clusters(
        train,
        train_labels if n_classes else None,
        section.get("bars_per_cluster", 0),
        section.get("seed", 0),
    )
    config = train_config(section, train, sample_rate, n_classes, clusters)
    config = dataclasses.replace(
        config,
        steps=args.max_steps or NEVER,
        checkpoint_every=NEVER,
        log_every=LOG_EVERY,
        preview_every=NEVER,
    )
    description = describe(name, section, config)
    print(f"{description}: training for {args.minutes:g} min", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        untrained = Path(tmp) / "untrained.pt"
        timing = train_timed(
            train,
            clusters.labels if clusters else train_labels if n_classes else None,
            config,
            Path(tmp) / "run",
            args.minutes * 60,
            untrained,
            name,
        )
        device = str(config.resolved_device())
        print(f"  [{name}] scoring {args.bars} bars per generator", file=sys.stderr, flush=True)
        counts = np.bincount(train_labels, minlength=n_classes) if n_classes else None
        scoring = (args.bars, train, data["valid"], data["options"], device, counts)
        before = score(untrained, *scoring)
        trained = Path(tmp) / "run" / "generator.pt"
        after = score(trained, *scoring)
        ceiling = score_ceiling(trained, train, data["valid"], data["options"], device)
    return {
        "name": name,
        "description": description,
        "config": config.to_dict() | {"steps": timing["steps"]},
        **timing,
        "untrained": before,
        "trained": after,
        "ceiling": ceiling,
    }


# ----------------------------------------------------------------------------- reporting


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": cpu,
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    return info


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _number(numbers: dict[str, float], key: str, kind: str) -> str:
    if key not in numbers and kind == "share" and "fraction_similar_at_" in key:
        key = key.replace("fraction_similar_at_0.1", "fraction_similar")
    value = numbers.get(key)
    if value is None:
        return "n/a"
    if kind == "distance":
        low, high = numbers.get(f"{key}.ci_low"), numbers.get(f"{key}.ci_high")
        interval = f" [{_fmt(low)}, {_fmt(high)}]" if low is not None and high is not None else ""
        return f"{_fmt(value)}{interval}"
    if kind == "count":
        bins = numbers.get(key.split(".")[0] + ".bins")
        return f"{value:.0f}" + (f" / {bins:.0f}" if bins is not None else "")
    if kind == "share":
        return f"{100 * value:.0f} %"
    return f"{value:.2f}"


def _ratio(numbers: dict[str, float], real: dict[str, float]) -> str:
    """A row's Fréchet distance over the held-out reference scored beside it (the same set
    sizes: frechet.compared_size), else over ``real``."""
    key, real_key = HEADLINES[0].key, HEADLINES[0].real_key()
    reference = numbers if numbers.get(real_key) else real
    if numbers.get(key) is None or not reference.get(real_key):
        return "n/a"
    return f"{numbers[key] / reference[real_key]:.2f}"


FRECHET_LIMIT = next(t.limit for t in TARGETS if t.name == "frechet_fixed_ratio")
# check keys of the headline lines (pipeline.metrics.headline.TARGETS): (value, met)
HEADLINE_CHECKS = {
    "frechet_fixed_ratio": ("frechet_over_real", "frechet_within_target"),
    "ndb_bins_share": ("ndb_bins_share_of_real", "ndb_bins_ge_half_real"),
    "downbeat_share": ("downbeat_share_of_real", "downbeat_ge_80pct_real"),
    "two_sample_accuracy": ("two_sample_accuracy", "two_sample_within_target"),
    "near_copy_fraction": (None, "similar_le_10pct"),
    "nearest_train_db_vs_real": ("nearest_db_minus_real", "nearest_not_1db_below_real"),
    "ceiling_frechet_fixed_ratio": ("ceiling_over_real", "ceiling_within_target"),
}


def acceptance(run: dict[str, Any]) -> dict[str, Any]:
    """The issue's learning targets for a trained generator: the headline's (against the real
    reference), and the Fréchet distance against the untrained generator's; a check is left
    out where a number is missing."""
    before, after = run["untrained"], run["trained"]
    checks: dict[str, Any] = {}
    nested = _nested(after)
    if run.get("ceiling"):
        nested["references"] = {"ceiling": _nested(run["ceiling"])}
    for line in compute_headline(nested).lines:
        if line.name not in HEADLINE_CHECKS or line.met is None:
            continue
        value_key, met_key = HEADLINE_CHECKS[line.name]
        if value_key:
            checks[value_key] = line.value
        checks[met_key] = line.met
    hi_after = after.get("frechet.generated.fixed.ci_high")
    lo_before = before.get("frechet.generated.fixed.ci_low")
    if hi_after is not None and lo_before is not None:
        checks["frechet_interval_disjoint_from_untrained"] = hi_after < lo_before
    fd, fd_before = after.get("frechet.generated.fixed"), before.get("frechet.generated.fixed")
    if fd_before is not None and fd:
        checks["frechet_fall"] = fd_before / fd
    return checks


def _nested(numbers: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{"metric.key": v}`` (:func:`numeric_metrics`) back to ``{metric: {key: v}}``."""
    nested: dict[str, dict[str, float]] = {}
    for name, value in numbers.items():
        metric, key = name.split(".", 1)
        nested.setdefault(metric, {})[key] = value
    return nested


STATES = {  # a run's rows: the generator's state, or the ceiling rung of its representation
    "untrained": "untrained",
    "trained": "trained",
    "ceiling": "held-out bars through its synthesis",
}


def markdown(runs: list[dict[str, Any]], noise: dict[str, float] | None = None) -> str:
    header = ["config", "generator", "steps", "CPU s", "wall s"]
    header += [HEADLINES[0].label, "× real"] + [h.label for h in HEADLINES[1:]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    real = runs[0]["untrained"]
    cells = ["real", "held-out bars", "-", "-", "-"]
    cells += [_number(real, HEADLINES[0].real_key(), "distance"), "1.00"]
    cells += [_number(real, h.real_key(), h.kind) for h in HEADLINES[1:]]
    lines.append("| " + " | ".join(cells) + " |")
    if noise is not None:
        cells = ["noise", "white noise at their RMS", "-", "-", "-"]
        cells += [_number(noise, HEADLINES[0].key, "distance"), _ratio(noise, real)]
        cells += [_number(noise, h.key, h.kind) for h in HEADLINES[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    for run in runs:
        for state, label in STATES.items():
            if state not in run:
                continue
            numbers = run[state]
            cells = [run["name"], label]
            if state == "trained":
                cells += [str(run["steps"]), f"{run['cpu_s']:.0f}", f"{run['wall_s']:.0f}"]
            else:
                cells += ["0" if state == "untrained" else "-", "-", "-"]
            cells += [_number(numbers, HEADLINES[0].key, "distance"), _ratio(numbers, real)]
            cells += [_number(numbers, h.key, h.kind) for h in HEADLINES[1:]]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks_lines(runs: list[dict[str, Any]]) -> list[str]:
    def mark(ok: Any) -> str:
        return "n/a" if ok is None else ("yes" if ok else "NO")

    lines = []
    for run in runs:
        c = run["checks"]
        parts = []
        if "frechet_fall" in c:
            parts.append(f"Fréchet fell {c['frechet_fall']:.2f}x from step 0")
        if "frechet_over_real" in c:
            parts.append(
                f"{c['frechet_over_real']:.2f}x real (<= {FRECHET_LIMIT:g}: "
                f"{mark(c['frechet_within_target'])}; "
                f"interval disjoint from untrained: "
                f"{mark(c.get('frechet_interval_disjoint_from_untrained'))})"
            )
        if "ndb_bins_share_of_real" in c:
            parts.append(
                f"NDB bins {100 * c['ndb_bins_share_of_real']:.0f} % of real "
                f"(>= 50 %: {mark(c['ndb_bins_ge_half_real'])})"
            )
        if "downbeat_share_of_real" in c:
            parts.append(
                f"downbeat {100 * c['downbeat_share_of_real']:.0f} % of real "
                f"(>= 80 %: {mark(c['downbeat_ge_80pct_real'])})"
            )
        if "ceiling_over_real" in c:
            parts.append(f"ceiling {c['ceiling_over_real']:.2f}x real")
        if "two_sample_accuracy" in c:
            parts.append(
                f"two-sample accuracy {100 * c['two_sample_accuracy']:.0f} % "
                f"(<= 80 %: {mark(c['two_sample_within_target'])})"
            )
        if "similar_le_10pct" in c:
            parts.append(f"similar <= 10 %: {mark(c['similar_le_10pct'])}")
        if "nearest_db_minus_real" in c:
            parts.append(
                f"nearest bar {c['nearest_db_minus_real']:+.2f} dB vs real "
                f"(>= -1: {mark(c['nearest_not_1db_below_real'])})"
            )
        lines.append(f"- {run['name']}: " + "; ".join(parts))
    return lines


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--configs",
        default=",".join(["default", *ARCHITECTURES]),
        help="comma-separated: default and/or architecture names (default: all)",
    )
    p.add_argument("--minutes", type=float, default=5.0, help="training budget per config")
    p.add_argument("--max-steps", type=int, help="stop after this many steps at the latest")
    p.add_argument("--size", choices=("cpu", "preset"), default="cpu",
                   help="architecture configs: CPU-sized width/batch, or the preset's")  # fmt: skip
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    p.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    p.add_argument("--device", help="overrides train.device (auto | cpu | cuda)")
    p.add_argument("--model-dim", type=int, help="overrides model_dim of every config")
    p.add_argument("--batch-size", type=int, help="overrides batch_size of every config")
    p.add_argument("--latent-dim", type=int, help="overrides latent_dim of every config")
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D")
    p.add_argument("--tf32", action="store_true", help="TF32 matrix products and convolutions")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="set a train key of every config (a YAML value), e.g. "
                   "--set bars_per_cluster=20; repeatable")  # fmt: skip
    p.add_argument("--bars", type=int, default=128, help="generated bars scored per generator")
    p.add_argument("--json", type=Path, help="also write every number here")
    return p.parse_args(argv)


def train_overrides(pairs: list[str], known: Iterable[str]) -> dict[str, Any]:
    """``["key=value", ...]`` (``--set``) as train keys, each value read as YAML; a key that is
    not one of ``known`` (params.yaml's train keys) stops the run naming it."""
    overrides, known = {}, sorted(known)
    for pair in pairs:
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not key:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE, e.g. bars_per_cluster=20")
        if key not in known:
            raise SystemExit(f"--set {key}: not a train key; the train keys: {', '.join(known)}")
        overrides[key] = parse_yaml(value) if value else None
    return overrides


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    params = read_yaml(args.params)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    sections = {name: train_section(name, params, args.size) for name in names}
    for section in sections.values():
        for key, value in (
            ("device", args.device),
            ("model_dim", args.model_dim),
            ("batch_size", args.batch_size),
            ("latent_dim", args.latent_dim),
        ):
            if value is not None:
                section[key] = value
        section.update(train_overrides(args.overrides, params["train"]))
        section["amp"] = True if args.amp else section.get("amp", False)
        section["compile"] = bool(section.get("compile")) or args.compile

    train, train_labels, sample_rate = load_split(args.splits_dir / "train.npz")
    valid, _, _ = load_split(args.splits_dir / "valid.npz")
    if len(valid) == 0:
        raise SystemExit(f"{args.splits_dir}: the valid split is empty (no real reference)")
    info_path = args.splits_dir / "info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    grid = read_grid(args.splits_dir)
    data = {
        "train": (train, train_labels, sample_rate),
        "valid": valid,
        "classes": info.get("classes", []),
        "options": metric_options(params["evaluate"], grid)
        | {  # the two-sample test's folds hold out whole recordings
            "train_groups": split_recordings(args.splits_dir, "train", len(train)),
            "valid_groups": split_recordings(args.splits_dir, "valid", len(valid)),
        },
    }
    host = machine()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    devices = {str(TrainConfig(sample_rate=1, length=1, device=s.get("device", "auto"))
                   .resolved_device()) for s in sections.values()}  # fmt: skip
    header = [
        f"command: `{command}`",
        f"machine: {host['cpu']}, {host['cores']} cores ({host['torch_threads']} torch threads); "
        f"torch {host['torch']}; device {', '.join(sorted(devices))}"
        + (f" ({host['gpu']})" if host["gpu"] else ""),
        f"splits: {args.splits_dir} ({len(train)} train / {len(valid)} valid bars of "
        f"{train.shape[1]}x{train.shape[2]} samples at {sample_rate} Hz, {grid['bpm']:g} BPM, "
        f"{grid['beats_per_bar']} beats); budget {args.minutes:g} min per config"
        + (f", at most {args.max_steps} steps" if args.max_steps else "")
        + f"; {args.bars} generated bars scored per generator",
        "Fréchet distances compare sets at one size, the smaller of the scored and held-out "
        f"sets ({min(args.bars, len(valid))} bars against generated bars): each ratio divides by "
        "the held-out reference scored beside it",
        *FALLBACK_NOTES,
    ]
    print("\n".join(header), flush=True)

    noise = score_bars(white_noise(valid.shape, rms(valid)), train, valid, data["options"])
    runs = []
    for name, section in sections.items():
        run = run_config(name, section, data, args)
        run["checks"] = acceptance(run)
        runs.append(run)

    print("\n" + "\n".join(f"- {run['description']}" for run in runs))
    print("\n" + markdown(runs, noise))
    print("\nagainst the issue's targets (trained generator):")
    print("\n".join(checks_lines(runs)), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"command": command, "machine": host, "header": header, "runs": runs}
        report["noise"] = noise
        report["grid"] = grid
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
