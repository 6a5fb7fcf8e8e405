"""Training throughput per architecture: bars/s on CPU, and on CUDA fp32 eager vs bf16 vs
bf16 + torch.compile side by side with peak GPU memory.

    python bench/train_throughput.py                   # CPU always, plus CUDA when available
    python bench/train_throughput.py --archs wavegan --gpu-batch 64 --gpu-steps 20
    python bench/train_throughput.py --skip-cpu        # the GPU table only
    python bench/train_throughput.py --cpu-modes "fp32 eager" "bf16 eager" "bf16+compile"

Each measurement is a real :func:`pipeline.train.train_gan` run on random bars (resident on the
device), timed over ``--steps`` steps after ``--steps`` warm-up steps (which absorb compilation
and cuDNN autotuning).  bars/s counts the real bars the discriminator consumes:
``batch_size * n_critic * steps/s``.  Shapes are the presets' (WaveGAN 16384 samples, BERGAN and
SpecGAN 32000 samples at 16 kHz, mono); CPU runs use a smaller width and batch so they finish.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from dataclasses import dataclass
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


def measure(
    arch: str, device: str, batch: int, model_dim: int, steps: int, amp: bool, compile: bool
) -> Result:
    length, latent_dim, n_critic, extra, _ = ARCHS[arch]
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


def print_table(
    device: str, archs: list[str], modes: list[str], batch: int, model_dim: int | None, steps: int
) -> None:
    """One row per architecture: bars/s (and peak GPU memory) per mode, and the best fast
    mode's speed-up over the first mode. ``model_dim`` None: each architecture's published
    width."""
    header = "".join(f"{name + ' bars/s':>22}{'peak MiB':>10}" for name in modes)
    print(f"{'arch':<10}{header}{'speed-up':>10}")
    for arch in archs:
        dim = model_dim if model_dim is not None else ARCHS[arch][4]
        results = [measure(arch, device, batch, dim, steps, *MODES[mode]) for mode in modes]
        cells = "".join(
            f"{r.bars_per_sec:>22.1f}" + (f"{r.peak_mib:>10.0f}" if r.peak_mib else f"{'-':>10}")
            for r in results
        )
        speedup = (
            f"{max(r.bars_per_sec for r in results[1:]) / results[0].bars_per_sec:>9.2f}x"
            if len(results) > 1
            else ""
        )
        print(f"{arch:<10}{cells}{speedup}", flush=True)


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
    args = parser.parse_args()

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    if not args.skip_cpu:
        print(f"\nCPU (batch {args.cpu_batch}, model_dim {args.cpu_model_dim})")
        print_table(
            "cpu", args.archs, args.cpu_modes, args.cpu_batch, args.cpu_model_dim, args.steps
        )

    if not torch.cuda.is_available():
        print("\nno CUDA device: GPU comparison skipped")
        return
    print(
        f"\nGPU {torch.cuda.get_device_name()} (batch {args.gpu_batch}, published widths; "
        f"fp32 convolutions may use TF32: cudnn.allow_tf32={torch.backends.cudnn.allow_tf32})"
    )
    print_table("cuda", args.archs, args.gpu_modes, args.gpu_batch, None, args.gpu_steps)


if __name__ == "__main__":
    main()
