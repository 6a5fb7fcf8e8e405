"""``bargan export``: a sample pack (loop-tagged WAVs, metadata table, one zip) or, with
``--onnx``, the generator as an ONNX model."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.sample.assemble import DEFAULT_CROSSFADE_MS

PACK_RATES = (44100, 48000)  # besides the generator's own
PACK_BITS = (16, 24)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.cli import add_checkpoint_argument

    add_checkpoint_argument(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the pack's zip (PACK.zip; its folder PACK/ is written beside it), or with --onnx "
        "the model file (*.onnx)",
    )
    p.add_argument(
        "--onnx",
        action="store_true",
        help="export the generator as ONNX instead: z (and labels) in, audio out; for "
        "spectrogram models Griffin-Lim is part of the graph; the grid and classes are in its "
        "metadata",
    )
    pack = p.add_argument_group("sample pack")
    pack.add_argument("--bars-per-class", type=int, default=8, help="bars per class (default 8)")
    pack.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="NAME_OR_INDEX",
        help="a class to export (repeat for several; default: every class)",
    )
    pack.add_argument(
        "--classes-file",
        type=Path,
        default=None,
        help="JSON with the class names in index order (default: as stored in the generator "
        "file, or data/splits/info.json beside the checkpoint's folder)",
    )
    pack.add_argument(
        "--seed",
        type=int,
        default=0,
        help="latent seed of the first bar; bar j uses seed + j (default 0)",
    )
    pack.add_argument(
        "--rate",
        default="model",
        help="sample rate of the files: 'model' (the generator's, default), 44100 or 48000 "
        "(resampled)",
    )
    pack.add_argument("--bits", type=int, default=16, help="PCM bit depth: 16 (default) or 24")
    pack.add_argument(
        "--walk-bars",
        type=int,
        default=0,
        help="also one latent walk of this many bars per class (default 0: none)",
    )
    pack.add_argument(
        "--train-bars",
        type=Path,
        default=None,
        help="the training split (data/splits/train.npz) for each bar's distance to its "
        "nearest training bar (default: data/splits/train.npz beside the checkpoint's folder, "
        "when present; otherwise those columns are empty)",
    )
    pack.add_argument(
        "--crossfade-ms",
        type=float,
        default=DEFAULT_CROSSFADE_MS,
        help="crossfade of each bar's loop seam, in ms (default 5)",
    )


def run(args: argparse.Namespace) -> int:
    from pipeline.cli import CliError

    if args.onnx:
        if args.out.suffix.lower() != ".onnx":
            raise CliError(f"--out {args.out}: an ONNX model is written; name it *.onnx")
        from pipeline.export.onnx_command import run_onnx

        return run_onnx(args)
    if args.out.suffix.lower() != ".zip":
        raise CliError(f"--out {args.out}: a sample pack is written as a zip; name it *.zip")
    return run_pack(args)


def run_pack(args: argparse.Namespace) -> int:
    import torch

    from pipeline.cli import CliError, class_names, load_generator_file, resolve_class
    from pipeline.export.novelty import TrainingBarsError, nearest_training_bars, read_training_bars
    from pipeline.export.pack import PackSpec, metadata_table, render_pack, write_pack

    if args.bars_per_class < 1:
        raise CliError(f"--bars-per-class must be at least 1, got {args.bars_per_class}")
    if args.walk_bars < 0:
        raise CliError(f"--walk-bars must be >= 0, got {args.walk_bars}")
    if args.bits not in PACK_BITS:
        raise CliError(f"--bits {args.bits}: 16 or 24 bits are written")
    if args.crossfade_ms < 0:
        raise CliError(f"--crossfade-ms must be >= 0, got {args.crossfade_ms:g}")
    model = load_generator_file(args.checkpoint, torch.device("cpu"))
    generator, config, metadata = model.generator, model.settings, model.metadata
    grid = model.grid
    rate = pack_rate(args.rate, grid.sample_rate)
    names = class_names(config.num_classes, args.classes_file, args.checkpoint, metadata)
    if config.num_classes == 0:
        if args.classes:
            resolve_class(args.classes[0], 0, None, args.checkpoint)  # raises: unconditional
        indices: tuple[int | None, ...] = (None,)
    elif args.classes:
        indices = tuple(
            resolve_class(c, config.num_classes, args.classes_file, args.checkpoint, metadata)
            for c in args.classes
        )
    else:
        indices = tuple(range(config.num_classes))
    train_path = args.train_bars or _guess_train_bars(args.checkpoint)
    train = None
    reason = "no training bars given (pass --train-bars data/splits/train.npz)"
    if train_path is not None:
        if not train_path.is_file():
            raise CliError(f"--train-bars {train_path}: file not found")
        try:
            train = read_training_bars(train_path, grid.sample_rate, config.length, config.channels)
        except TrainingBarsError as err:
            raise CliError(f"--train-bars {err}") from err
    spec = PackSpec(
        bars_per_class=args.bars_per_class,
        seed=args.seed,
        class_indices=indices,
        sample_rate=rate,
        bits=args.bits,
        walk_bars=args.walk_bars,
        crossfade_ms=args.crossfade_ms,
    )
    items = render_pack(generator, grid, names, spec)
    nearest = None
    if train is not None:
        import numpy as np

        bars = np.stack([item.raw for item in items if item.kind == "bar"])
        nearest = nearest_training_bars(bars, train, grid.sample_rate, grid.beats_per_bar)
    table = metadata_table(items, grid, rate, args.bits, nearest, reason)
    try:
        folder = write_pack(args.out, items, grid, spec, table, args.checkpoint)
    except OSError as err:
        raise CliError(f"cannot write {args.out}: {err}") from err
    novelty = f"distances to {train_path}" if train is not None else reason
    print(
        f"wrote {args.out} and {folder}/: {len(items)} files, {rate} Hz, {args.bits}-bit, "
        f"{grid.bpm:g} BPM, {len(indices)} class(es); metadata: {novelty}"
    )
    return 0


def pack_rate(value: str, model_rate: int) -> int:
    """``--rate`` as a sample rate: 'model', the model's own rate, 44100 or 48000."""
    from pipeline.cli import CliError

    if value == "model":
        return model_rate
    allowed = sorted({model_rate, *PACK_RATES})
    try:
        rate = int(value)
    except ValueError:
        rate = None
    if rate not in allowed:
        choices = ", ".join(str(r) for r in allowed)
        raise CliError(f"--rate {value}: choose 'model' or one of {choices} Hz")
    return rate


def _guess_train_bars(checkpoint: Path) -> Path | None:
    guess = checkpoint.resolve().parent.parent / "splits" / "train.npz"
    return guess if guess.is_file() else None
