"""Real-time factor of the exported ONNX generator on onnxruntime (CPU) against torch, measured
side by side in one run on the same latents: seconds of audio made per second of wall time.

For each architecture (params.yaml's default and WaveGAN, at params.yaml's grid and settings,
random weights unless --checkpoint is given) and batch size, both run ``--repeats`` times after
a warm-up; the median time counts. torch runs the generator as the pipeline does (SpecGAN:
torchaudio's FFT Griffin-Lim), onnxruntime the exported graph (SpecGAN: Griffin-Lim as DFT matrix
products). Prints one row each and the ratio; asserts nothing about time.

    python bench/onnx_speed.py [--arch specgan wavegan] [--batch-sizes 1 16] [--repeats 5]
                               [--threads N] [--checkpoint data/models/generator.pt]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.export.onnx_model import OnnxGenerator, export_onnx
from pipeline.grid import BarGrid
from pipeline.models.generator_file import build_generator, load
from pipeline.stages.train import train_config

REPO = Path(__file__).resolve().parents[1]


def default_generator(arch: str | None, params_path: Path):
    """params.yaml's generator (``arch`` overridden if given) at its grid, random weights."""
    params = yaml.safe_load(params_path.read_text())
    bars = params["bars"]
    grid = BarGrid(bars["sample_rate"], bars["bpm"], bars["beats_per_bar"], bars["channels"])
    section = dict(params["train"], arch=arch or params["train"]["arch"])
    n_classes = len(params["demo"]["styles"]) if section["conditional"] else 0
    example = np.zeros((1, grid.channels, grid.bar_samples), np.float32)
    config = train_config(section, example, grid.sample_rate, n_classes)
    torch.manual_seed(0)
    return build_generator(config).eval(), grid, config.arch


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(generator, grid: BarGrid, arch: str, batch_sizes, repeats: int, threads: int):
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(generator, Path(folder) / f"{arch}.onnx", grid, [], arch)
        onnx = OnnxGenerator(path, threads=threads)
        rows = []
        for batch in batch_sizes:
            z = generator.sample_latent(batch, generator=torch.Generator().manual_seed(batch))
            labels = torch.arange(batch) % generator.num_classes if generator.num_classes else None
            z_np, labels_np = z.numpy(), None if labels is None else labels.numpy()

            def run_torch(z=z, labels=labels):
                with torch.no_grad():
                    generator(z, labels)

            def run_onnx(z_np=z_np, labels_np=labels_np):
                onnx(z_np, labels_np)

            audio_seconds = batch * generator.length / grid.sample_rate
            t_torch = median_seconds(run_torch, repeats)
            t_onnx = median_seconds(run_onnx, repeats)
            rows.append((arch, batch, audio_seconds / t_torch, audio_seconds / t_onnx))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=[None, "wavegan"],
                   help="architectures (default: params.yaml's, and wavegan)")  # fmt: skip
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="threads for both torch and onnxruntime (default: torch's)")  # fmt: skip
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="a generator file instead of params.yaml's random models")  # fmt: skip
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.checkpoint is not None:
        loaded = load(args.checkpoint)
        models = [(loaded.generator, loaded.grid, loaded.settings.arch)]
    else:
        models = [default_generator(arch, args.params) for arch in args.arch]
    print(f"onnxruntime vs torch, CPU, {args.threads} thread(s), median of {args.repeats} runs")
    print(f"{'arch':10} {'batch':>5} {'torch RTF':>10} {'onnx RTF':>10} {'onnx/torch':>10}")
    for generator, grid, arch in models:
        for arch_name, batch, rtf_torch, rtf_onnx in measure(
            generator, grid, arch, args.batch_sizes, args.repeats, args.threads
        ):
            ratio = rtf_onnx / rtf_torch
            print(f"{arch_name:10} {batch:5d} {rtf_torch:10.2f} {rtf_onnx:10.2f} {ratio:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
