"""``bargan export --onnx``: write the generator as ONNX and check onnxruntime against torch."""

from __future__ import annotations

import argparse

import numpy as np
import torch

CHECK_BARS = 2


def run_onnx(args: argparse.Namespace) -> int:
    from pipeline.cli import CliError, class_names, load_generator_file
    from pipeline.export.onnx_model import OnnxGenerator, audio_module, export_onnx
    from pipeline.sample.generate import class_labels, random_latents

    model = load_generator_file(args.checkpoint, torch.device("cpu"))
    generator, config, metadata = model.generator, model.settings, model.metadata
    grid = model.grid
    names = class_names(config.num_classes, args.classes_file, args.checkpoint, metadata)
    try:
        export_onnx(generator, args.out, grid, names, config.arch)
    except OSError as err:
        raise CliError(f"cannot write {args.out}: {err}") from err
    z = random_latents(generator, CHECK_BARS, args.seed)
    labels = class_labels(generator, CHECK_BARS)
    with torch.no_grad():
        expected = audio_module(generator)(z, labels).numpy()
    found = OnnxGenerator(args.out)(z.numpy(), None if labels is None else labels.numpy())
    error = float(np.abs(found - expected).max())
    print(
        f"wrote {args.out}: {config.arch}, z [batch, {config.latent_dim}]"
        f"{', labels [batch]' if config.num_classes else ''} -> audio [batch, {grid.channels}, "
        f"{config.length}] at {grid.sample_rate} Hz, {grid.bpm:g} BPM; onnxruntime vs torch on "
        f"{CHECK_BARS} bars: max abs difference {error:.2g}"
    )
    return 0
