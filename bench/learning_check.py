"""Does a short training run learn? Evaluation distances of the untrained generator and of the
same generator after a time-boxed run on the demo corpus, beside the real-data reference.

    make run                                         # once: builds data/splits/ (demo corpus)
    python bench/learning_check.py --minutes 10      # CPU or GPU (device from params, or --device)
    python bench/learning_check.py --minutes 10 --device cuda --model-dim 64 --amp --compile

The run uses params.yaml's train section (overrides on the command line) and the train/valid
splits in ``--splits-dir``. It trains in chunks, resuming the run folder between them, and stops
before the next chunk would pass the time budget; the budget covers everything from building
the networks to the last checkpoint. Both generators (the step-0 EMA weights and the final ones)
are scored with the evaluate stage's distances on the same fixed latents: Fréchet and kernel
distances to the training bars and the nearest-neighbour distance, each printed beside the same
number for the held-out real bars (what a perfect generator would score).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data.splits import load_split
from pipeline.metrics.registry import compute_all
from pipeline.params import flatten, load_params
from pipeline.sample.generate import random_bars
from pipeline.stages.evaluate import metric_options
from pipeline.stages.train import train_config
from pipeline.train import load_generator, train_gan

METRICS = ("frechet", "kernel_distance", "nearest_neighbour")
# (label, key of the generated bars' number); lower is better; the real-data reference is the
# same key with "valid" for "generated". Fréchet and kernel distances carry bootstrap intervals.
HEADLINES = (
    ("Fréchet distance (fixed features)", "frechet.generated.fixed"),
    ("kernel distance (fixed features)", "kernel_distance.generated.fixed"),
    ("nearest training bar, median dB", "nearest_neighbour.generated.median_db"),
)
FIRST_CHUNK_STEPS = 10  # measures the speed; later chunks last about CHUNK_SECONDS
CHUNK_SECONDS = 60.0


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


def timed_training(bars, config, run_dir: Path, budget_s: float) -> tuple[int, float]:
    """Train in resumed chunks until the next one would pass ``budget_s``; (steps, seconds)."""
    start = time.perf_counter()
    steps, rate = 0, None
    while True:
        elapsed = time.perf_counter() - start
        chunk = FIRST_CHUNK_STEPS if rate is None else max(1, int(rate * CHUNK_SECONDS))
        if rate is not None and elapsed + chunk / rate > budget_s:
            chunk = int(rate * (budget_s - elapsed) * 0.95)  # what still fits, with margin
            if chunk < 1:
                return steps, elapsed
        t0 = time.perf_counter()
        config = dataclasses.replace(config, steps=steps + chunk)
        train_gan(bars, None, config, run_dir)
        rate = chunk / (time.perf_counter() - t0)
        steps += chunk
        print(
            f"  step {steps}: {rate:.2f} steps/s, {time.perf_counter() - start:.0f} s", flush=True
        )


def score(generator_path: Path, n: int, train, valid, options) -> dict[str, float]:
    generator, _ = load_generator(generator_path, device="cpu")
    bars = random_bars(generator, n, seed=0)
    metrics = compute_all(bars, train, valid, dict(options), METRICS)
    return {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float)}


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
    config = dataclasses.replace(
        train_config(section, train, sample_rate, n_classes=0),
        checkpoint_every=10**9,  # each chunk ends with a checkpoint anyway
        preview_every=0,
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
        untrained = Path(tmp) / "untrained.pt"
        train_gan(
            train, None, dataclasses.replace(config, steps=0), run_dir
        )  # step 0: initial EMA weights
        shutil.copyfile(run_dir / "generator.pt", untrained)
        steps, seconds = timed_training(train, config, run_dir, args.minutes * 60)
        before = score(untrained, args.bars, train, valid, options)
        after = score(run_dir / "generator.pt", args.bars, train, valid, options)

    print(f"\ntrained {steps} steps in {seconds / 60:.1f} min ({steps / seconds:.2f} steps/s)")
    print(f"{'distance to the training bars':<36}{'untrained':>30}{'trained':>30}{'real':>30}")
    for label, key in HEADLINES:
        real_key = key.replace(".generated.", ".valid.")
        cells = [_with_interval(numbers, k) for numbers, k in ((before, key), (after, key))]
        cells.append(_with_interval(before, real_key))
        print(f"{label:<36}" + "".join(f"{c:>30}" for c in cells))
    if args.json:
        report = {"steps": steps, "seconds": seconds, "device": name, "config": config.to_dict()}
        report.update(untrained=before, trained=after)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
