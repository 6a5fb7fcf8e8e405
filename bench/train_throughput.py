"""Training throughput per architecture: bars/s on CPU, and on CUDA fp32 eager vs bf16 vs
bf16 + torch.compile side by side with peak GPU memory.

    python bench/train_throughput.py                   # CPU always, plus CUDA when available
    python bench/train_throughput.py --archs wavegan --gpu-batch 64 --gpu-steps 20
    python bench/train_throughput.py --skip-cpu --json out.json   # the GPU table only
    python bench/train_throughput.py --cpu-modes "fp32 eager" "bf16 eager" "bf16+compile"

Each measurement is a real :func:`pipeline.train.train_gan` run on random bars (resident on the
device), timed over ``--steps`` steps after ``--steps`` warm-up steps (which absorb compilation
and cuDNN autotuning).  bars/s counts the real bars the discriminator consumes:
``batch_size * n_critic * steps/s``.  Shapes are the presets' (WaveGAN 16384 samples, BERGAN and
SpecGAN 32000 samples at 16 kHz, mono; ``--length`` overrides them for toy runs); CPU runs use a
smaller width and batch so they finish.  A mode that fails (a compilation error, say) shows
``failed`` and the table goes on; ``--json`` is rewritten after every measurement, so a run
stopped from outside keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.train import TrainConfig, train_gan

# arch -> (length, latent_dim, n_critic, extra builder kwargs, published model_dim)
ARCHS: dict[str, tuple[int, int, int, dict, int]] = {
    "wavegan": (16384, 100, 5, {"phase_shuffle_radius": 2}, 64),
    "melgan": (32000, 128, 1, {"scales": 2}, 16),
    "specgan": (32000, 100, 5, {}, 64),
}


@dataclass
class Result:
    steps_per_sec: float
    bars_per_sec: float
    peak_mib: float | None
    error: str | None = None


LENGTH_OVERRIDE: int | None = None  # --length: one bar length for every architecture (toy runs)


def measure(
    arch: str, device: str, batch: int, model_dim: int, steps: int, amp: bool, compile: bool
) -> Result:
    length, latent_dim, n_critic, extra, _ = ARCHS[arch]
    length = LENGTH_OVERRIDE or length
    config = TrainConfig(
        arch=arch,
        sample_rate=16000,
        length=length,
        channels=1,
        latent_dim=latent_dim,
        model_dim=model_dim,
        batch_size=batch,
        n_critic=n_critic,
        steps=2 * steps + 1,  # warm-up window, timed window, one step for the final checkpoint
        log_every=steps,
        checkpoint_every=10**9,
        ema_decay=0.999,
        device=device,
        amp=amp,
        compile=compile,
        seed=0,
        extra=extra,
    )
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((max(256, batch), 1, length)) * 0.1).astype(np.float32)
    rates: list[float] = []
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        train_gan(
            data, None, config, Path(tmp), on_log=lambda _s, m: rates.append(m["steps_per_sec"])
        )
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    rate = rates[1]  # the second window: after warm-up and compilation
    return Result(rate, rate * batch * n_critic, peak)


MODES: dict[str, tuple[bool, bool]] = {  # name -> (amp, compile)
    "fp32 eager": (False, False),
    "bf16 eager": (True, False),
    "bf16+compile": (True, True),
    "fp32+compile": (False, True),  # not run by default: separates compile's gain from bf16's
}
DEFAULT_MODES = ["fp32 eager", "bf16 eager", "bf16+compile"]


def measure_or_error(
    arch: str, device: str, batch: int, model_dim: int, steps: int, amp: bool, compile: bool
) -> Result:
    """:func:`measure`, or a result naming the error (one mode failing, e.g. compilation, does
    not stop the table)."""
    try:
        return measure(arch, device, batch, model_dim, steps, amp, compile)
    except Exception as err:  # reported in the table and the JSON
        traceback.print_exc()
        if device == "cuda":
            torch.cuda.empty_cache()
        return Result(0.0, 0.0, None, f"{type(err).__name__}: {err}"[:300])


def print_table(
    device: str,
    archs: list[str],
    modes: list[str],
    batch: int,
    model_dim: int | None,
    steps: int,
    on_result: Callable[[str, str, dict], None] | None = None,
) -> dict[str, dict[str, dict]]:
    """One row per architecture: bars/s (and peak GPU memory) per mode, and the best fast
    mode's speed-up over the first mode. ``model_dim`` None: each architecture's published
    width. Returns ``{arch: {mode: Result as a dict}}`` (a failed mode shows ``failed`` and
    carries its error); ``on_result(arch, mode, result)`` is called after each measurement."""
    header = "".join(f"{name + ' bars/s':>22}{'peak MiB':>10}" for name in modes)
    print(f"{'arch':<10}{header}{'speed-up':>10}", flush=True)
    table: dict[str, dict[str, dict]] = {}
    for arch in archs:
        dim = model_dim if model_dim is not None else ARCHS[arch][4]
        results = []
        for mode in modes:
            result = measure_or_error(arch, device, batch, dim, steps, *MODES[mode])
            results.append(result)
            row = table.setdefault(arch, {})
            row[mode] = {**asdict(result), "model_dim": dim, "batch": batch}
            if on_result is not None:
                on_result(arch, mode, row[mode])
        cells = "".join(
            (f"{'failed':>22}" if r.error else f"{r.bars_per_sec:>22.1f}")
            + (f"{r.peak_mib:>10.0f}" if r.peak_mib else f"{'-':>10}")
            for r in results
        )
        fast = [r.bars_per_sec for r in results[1:] if not r.error]
        speedup = ""
        if len(results) > 1:
            base = results[0]
            ok = fast and not base.error
            speedup = f"{max(fast) / base.bars_per_sec:>9.2f}x" if ok else f"{'-':>10}"
        print(f"{arch:<10}{cells}{speedup}", flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--steps", type=int, default=3, help="timed CPU steps (as many warm up)")
    parser.add_argument("--cpu-batch", type=int, default=8)
    parser.add_argument("--cpu-model-dim", type=int, default=8)
    parser.add_argument(
        "--cpu-modes", nargs="+", default=["fp32 eager"], choices=list(MODES), metavar="MODE"
    )
    parser.add_argument("--gpu-batch", type=int, default=64)
    parser.add_argument("--gpu-steps", type=int, default=20)
    parser.add_argument(
        "--gpu-modes", nargs="+", default=DEFAULT_MODES, choices=list(MODES), metavar="MODE"
    )
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-gpu", action="store_true")
    parser.add_argument("--length", type=int, help="bar length for every architecture (toy runs)")
    parser.add_argument(
        "--json", type=Path, help="also write the tables here (rewritten after each measurement)"
    )
    args = parser.parse_args()
    global LENGTH_OVERRIDE
    LENGTH_OVERRIDE = args.length

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    report: dict = {"torch": torch.__version__, "archs": args.archs}

    def recorder(table: str) -> Callable[[str, str, dict], None]:
        def record(arch: str, mode: str, result: dict) -> None:
            report[table]["rows"].setdefault(arch, {})[mode] = result
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=2))

        return record

    if not args.skip_cpu:
        print(f"\nCPU (batch {args.cpu_batch}, model_dim {args.cpu_model_dim})")
        report["cpu"] = {"modes": args.cpu_modes, "rows": {}}
        print_table(
            "cpu",
            args.archs,
            args.cpu_modes,
            args.cpu_batch,
            args.cpu_model_dim,
            args.steps,
            recorder("cpu"),
        )

    if args.skip_gpu:
        return
    if not torch.cuda.is_available():
        print("\nno CUDA device: GPU comparison skipped")
        return
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    print(
        f"\nGPU {torch.cuda.get_device_name()} (batch {args.gpu_batch}, published widths; "
        f"fp32 may use TF32: convolutions {tf32[0]}, matrix products {tf32[1]})"
    )
    report["gpu"] = {
        "device": torch.cuda.get_device_name(),
        "tf32": {"cudnn": tf32[0], "matmul": tf32[1]},
        "modes": args.gpu_modes,
        "rows": {},
    }
    print_table(
        "cuda", args.archs, args.gpu_modes, args.gpu_batch, None, args.gpu_steps, recorder("gpu")
    )


if __name__ == "__main__":
    main()
