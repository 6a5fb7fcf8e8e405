"""Does a short training run learn? Evaluation distances of the untrained generator and of the
same generator after a time-boxed run on the demo corpus, beside the real-data reference.

    make run                                         # once: builds data/splits/ (demo corpus)
    python bench/learning_check.py --minutes 10      # CPU or GPU (device from params, or --device)
    python bench/learning_check.py --minutes 10 --device cuda --model-dim 64 --amp --compile

The run uses params.yaml's train section (overrides on the command line) and the train/valid
splits in ``--splits-dir``. It stops after the step that passes the time budget, which covers
everything from building the networks to the last checkpoint. Both generators (the step-0 EMA
weights and the final ones) are scored with the evaluate stage's distances on the same fixed
latents: Fréchet and kernel distances to the training bars and the nearest-neighbour distance,
each printed beside the same number for the held-out real bars (what a perfect generator would
score).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data.splits import load_split
from pipeline.metrics.registry import compute_all, numeric_metrics
from pipeline.params import load_params
from pipeline.sample.generate import random_bars
from pipeline.stages.evaluate import metric_options
from pipeline.stages.train import train_config
from pipeline.train import load_generator, save_generator, train_gan

METRICS = ("frechet", "kernel_distance", "nearest_neighbour")
# (label, key of the generated bars' number); lower is better; the real-data reference is the
# same key with "valid" for "generated". Fréchet and kernel distances carry bootstrap intervals.
HEADLINES = (
    ("Fréchet distance (fixed features)", "frechet.generated.fixed"),
    ("kernel distance (fixed features)", "kernel_distance.generated.fixed"),
    ("nearest training bar, median dB", "nearest_neighbour.generated.median_db"),
)
LOG_EVERY = 50
NEVER = 10**9  # steps


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    p.add_argument("--run-dir", type=Path, help="keep the run folder here (default: temporary)")
    p.add_argument("--device", help="overrides train.device")
    p.add_argument("--model-dim", type=int, help="overrides train.model_dim")
    p.add_argument("--batch-size", type=int, help="overrides train.batch_size")
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D")
    p.add_argument("--bars", type=int, default=128, help="generated bars scored per generator")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    return p.parse_args()


def timed_training(
    bars, config, run_dir: Path, budget_s: float, untrained_path: Path
) -> tuple[int, float]:
    """Train until the step that passes ``budget_s`` (everything counted: building the networks,
    compilation, checkpoints); the step-0 EMA generator is saved to ``untrained_path`` on the
    way. Returns (steps, seconds)."""
    start = time.perf_counter()
    endless = dataclasses.replace(config, steps=NEVER, log_every=LOG_EVERY, preview_every=NEVER)

    def on_preview(step: int, generator: torch.nn.Module) -> None:
        if step == 0:  # with preview_every NEVER, the only call
            save_generator(untrained_path, generator, config)

    def on_log(step: int, metrics: dict[str, float]) -> None:
        elapsed = time.perf_counter() - start
        print(f"  step {step}: {metrics['steps_per_sec']:.2f} steps/s, {elapsed:.0f} s", flush=True)

    result = train_gan(
        bars, None, endless, run_dir, on_log, on_preview=on_preview, time_limit_s=budget_s
    )
    return result.steps_done, time.perf_counter() - start


def score(generator_path: Path, n: int, train, valid, options) -> dict[str, float]:
    generator, _ = load_generator(generator_path, device="cpu")
    bars = random_bars(generator, n, seed=0)
    metrics = compute_all(bars, train, valid, dict(options), METRICS)
    return numeric_metrics(metrics)


def _with_interval(numbers: dict[str, float], key: str) -> str:
    low, high = numbers.get(f"{key}.ci_low"), numbers.get(f"{key}.ci_high")
    interval = f" [{low:.3g}, {high:.3g}]" if low is not None and high is not None else ""
    return f"{numbers[key]:.4g}{interval}"


def main() -> None:
    args = parse_args()
    params = load_params(args.params)
    section = dict(params["train"])
    for key, value in (
        ("device", args.device),
        ("model_dim", args.model_dim),
        ("batch_size", args.batch_size),
    ):
        if value is not None:
            section[key] = value
    section["amp"] = section["amp"] or args.amp
    section["compile"] = section["compile"] or args.compile
    if section["conditional"]:
        sys.exit("learning_check trains unconditional models; set train.conditional: false")

    train, _, sample_rate = load_split(args.splits_dir / "train.npz")
    valid, _, _ = load_split(args.splits_dir / "valid.npz")
    info = json.loads((args.splits_dir / "info.json").read_text())
    options = metric_options(params["evaluate"], info)
    # one checkpoint at the end is enough
    config = dataclasses.replace(
        train_config(section, train, sample_rate, n_classes=0), checkpoint_every=NEVER
    )
    device = config.resolved_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{config.arch} d={config.model_dim} batch {config.batch_size} n_critic "
        f"{config.n_critic}, amp={config.amp}, compile={config.compile} on {name} "
        f"({torch.get_num_threads()} CPU threads); {len(train)} train / {len(valid)} valid bars "
        f"{train.shape[1:]}; budget {args.minutes:g} min"
    )
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or Path(tmp) / "run"
        if (run_dir / "checkpoint.pt").exists():
            sys.exit(f"{run_dir} holds a checkpoint: learning_check starts from untrained weights")
        untrained = Path(tmp) / "untrained.pt"
        steps, seconds = timed_training(train, config, run_dir, args.minutes * 60, untrained)
        before = score(untrained, args.bars, train, valid, options)
        after = score(run_dir / "generator.pt", args.bars, train, valid, options)

    print(f"\ntrained {steps} steps in {seconds / 60:.1f} min ({steps / seconds:.2f} steps/s)")
    print(f"{'distance to the training bars':<36}{'untrained':>32}{'trained':>32}{'real':>32}")
    for label, key in HEADLINES:
        real_key = key.replace(".generated.", ".valid.")
        cells = [_with_interval(numbers, k) for numbers, k in ((before, key), (after, key))]
        cells.append(_with_interval(before, real_key))
        print(f"{label:<36}" + "".join(f"{c:>32}" for c in cells))
    if args.json:
        report = {"steps": steps, "seconds": seconds, "device": name, "config": config.to_dict()}
        report.update(untrained=before, trained=after)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
