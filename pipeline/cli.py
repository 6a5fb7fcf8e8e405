"""``bargan``: the project's command line for people outside the pipeline.

    bargan generate --checkpoint data/models/generator.pt --out track.wav --bars 16 --bpm 100
    bargan export --checkpoint data/models/generator.pt --out packs/mine.zip --rate 44100
    bargan export --onnx --checkpoint data/models/generator.pt --out generator.onnx
    bargan serve --checkpoint data/models/generator.pt
    bargan reproduce wavegan --dry-run
    bargan doctor

Subcommands live in ``COMMANDS``; each has a ``add_<name>_arguments(parser)`` and a
``run_<name>(args) -> int``. Errors that a user can fix (a missing, wrong or damaged checkpoint,
an unknown class, a device this machine lacks) print one line naming the file or value and exit
with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

    from pipeline.models.generator_file import GeneratorFile

DESCRIPTION = "bargan: generate music bar by bar with a trained GAN."


class CliError(Exception):
    """A problem the user can fix; printed as ``bargan <command>: error: <message>``."""


def add_checkpoint_argument(p: argparse.ArgumentParser) -> None:
    """``--checkpoint``: the generator file every command that generates reads."""
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="generator file written by training (data/models/generator.pt)",
    )


# --- generate --------------------------------------------------------------------------------
def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    add_checkpoint_argument(p)
    p.add_argument("--out", type=Path, required=True, help="output .wav file")
    p.add_argument("--bars", type=int, default=16, help="number of bars (default 16)")
    p.add_argument(
        "--bpm",
        type=float,
        default=None,
        help="tempo of the track; default: the tempo the generator was trained at "
        "(other tempos are re-rendered with Rubber Band, bar k starting at k * new bar length)",
    )
    p.add_argument(
        "--beats-per-bar",
        type=int,
        default=None,
        help="beats in one generated bar; default: as stored with the generator (4 for files "
        "without that record); with the bar length it gives the training tempo",
    )
    p.add_argument(
        "--interpolation",
        choices=["slerp", "linear"],
        default="slerp",
        help="how the latent walk moves between keyframes (default slerp)",
    )
    p.add_argument(
        "--keyframes",
        type=int,
        default=None,
        help="random keyframes the walk passes through (default: one every 4 bars)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--class",
        dest="class_",
        metavar="NAME_OR_INDEX",
        default=None,
        help="class of every bar (conditional generators): an index, or a name from --classes-file",
    )
    p.add_argument(
        "--classes-file",
        type=Path,
        default=None,
        help="JSON with the class names in index order, as a list or under 'classes' "
        "(default: data/splits/info.json beside the checkpoint's folder, when present)",
    )
    p.add_argument(
        "--crossfade-ms",
        type=float,
        default=5.0,
        help="equal-power crossfade at each bar seam, in ms (default 5; 0 = hard cuts)",
    )
    p.add_argument(
        "--rf64",
        action="store_true",
        help="write a track larger than a WAV can hold (4 GiB) as RF64 instead of refusing it "
        "(same samples, 64-bit sizes; fewer programs read it, and it carries no loop tags)",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def run_generate(args: argparse.Namespace) -> int:
    from pipeline.audio.wav_stream import container_for, free_bytes, wav_bytes, write_wav_stream
    from pipeline.export.riff import loop_chunks, whole_bar_loop
    from pipeline.sample.track import TrackSpec, track_layout, track_pieces

    if args.bars < 1:
        raise CliError(f"--bars must be at least 1, got {args.bars}")
    if args.bpm is not None and not 20 <= args.bpm <= 400:
        raise CliError(f"--bpm must be between 20 and 400, got {args.bpm:g}")
    if args.beats_per_bar is not None and args.beats_per_bar < 1:
        raise CliError(f"--beats-per-bar must be at least 1, got {args.beats_per_bar}")
    if args.keyframes is not None and args.keyframes < 2:
        raise CliError(f"--keyframes must be at least 2, got {args.keyframes}")
    if args.crossfade_ms < 0:
        raise CliError(f"--crossfade-ms must be >= 0, got {args.crossfade_ms:g}")
    if args.out.suffix.lower() != ".wav":
        raise CliError(f"--out {args.out}: the output is written as WAV; name it *.wav")

    device = resolve_device(args.device)
    model = load_generator_file(args.checkpoint, device)
    generator, config, metadata, grid = model.generator, model.settings, model.metadata, model.grid
    if args.beats_per_bar is None:
        args.beats_per_bar = grid.beats_per_bar
    class_index = resolve_class(
        args.class_, config.num_classes, args.classes_file, args.checkpoint, metadata
    )
    spec = TrackSpec(
        n_bars=args.bars,
        method=args.interpolation,
        seed=args.seed,
        n_keyframes=args.keyframes,
        class_index=class_index,
        crossfade_ms=args.crossfade_ms,
        bpm=args.bpm,
        beats_per_bar=args.beats_per_bar,
    )
    layout = track_layout(generator, config.sample_rate, spec)
    size = wav_bytes(layout.frames, layout.channels)
    container = container_for(layout.frames, layout.channels)
    if container == "RF64" and not args.rf64:
        raise CliError(
            f"--bars {args.bars}: the track would take {_size(size)}, more than a WAV file can "
            "hold (4 GiB); use fewer --bars, or --rf64 to write it as RF64"
        )
    free = free_bytes(args.out)
    if size > free:
        raise CliError(
            f"--out {args.out}: {args.bars} bars need {_size(size)}, "
            f"{_size(free)} free there; use fewer --bars or another folder"
        )
    note = " as RF64 (a WAV holds at most 4 GiB)" if container == "RF64" else ""
    print(
        f"writing {args.out}: {args.bars} bars, {_duration(layout.seconds)}, {_size(size)}{note}",
        flush=True,
    )
    tags = whole_bar_loop(
        layout.frames, args.bars, layout.sample_rate, layout.bpm, args.beats_per_bar
    )
    try:
        pieces = track_pieces(generator, config.sample_rate, spec)
        with _progress(args.bars, args.out.name) as bar:
            write_wav_stream(
                args.out,
                _counted(pieces, layout.bar_samples, bar),
                layout.sample_rate,
                layout.channels,
                layout.frames,
                chunks=loop_chunks(tags),
            )
    except RuntimeError as err:
        if "rubberband" not in str(err).lower():
            raise
        raise CliError(
            f"--bpm {args.bpm:g} needs Rubber Band: install the rubberband command "
            "(Debian/Ubuntu package rubberband-cli)"
        ) from err
    except OSError as err:
        raise CliError(f"cannot write {args.out}: {err}") from err
    print(
        f"wrote {args.out}: {args.bars} bars at {layout.bpm:g} BPM "
        f"(generator trained at {layout.source_bpm:g} BPM, {args.beats_per_bar} beats per bar), "
        f"{layout.seconds:.1f} s, {layout.sample_rate} Hz, {layout.channels} channel(s)"
    )
    return 0


def _progress(total: int, name: str):
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="bar",
        desc=name,
        file=sys.stderr,
        mininterval=0.5 if sys.stderr.isatty() else 5.0,
    )


def _counted(pieces, bar_samples: int, bar) -> Iterator[np.ndarray]:
    for piece in pieces:
        yield piece
        bar.update(piece.shape[-1] // bar_samples)


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def resolve_device(name: str) -> torch.device:
    """``--device`` as a ``torch.device`` this machine has, or a CliError saying why not."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise CliError(f"--device {name}: not a torch device ({_first_line(err)})") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError(
                f"--device {name}: CUDA is not available on this machine (no usable NVIDIA GPU "
                "or driver, or a CPU-only PyTorch); use --device cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise CliError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise CliError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


def load_generator_file(path: Path, device: torch.device) -> GeneratorFile:
    """A bargan generator file (:func:`pipeline.models.generator_file.load`: the generator on
    ``device``, its settings, grid and metadata); or a CliError naming the file and the reason."""
    from pipeline.models.generator_file import (
        CHECKPOINT_FORMAT,
        CheckpointError,
        WrongFileKind,
        load,
    )

    if not path.exists():
        raise CliError(f"checkpoint {path} not found")
    if not path.is_file():
        raise CliError(f"checkpoint {path} is not a file")
    try:
        model = load(path)
    except WrongFileKind as err:
        if err.found_format == CHECKPOINT_FORMAT:
            raise CliError(
                f"{path} is a bargan training checkpoint, not a generator file; "
                "use the generator.pt written by training (data/models/generator.pt or "
                "generator.pt in the run folder)"
            ) from err
        raise CliError(f"{path} is {err.reason}") from err
    except CheckpointError as err:  # truncated, corrupt, unsafe, damaged
        raise CliError(
            f"{path} is not a bargan generator file, or a damaged one: {err.reason}"
        ) from err
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}") from err
    try:
        model.generator.to(device)
    except (RuntimeError, AssertionError) as err:  # e.g. out of memory on the device
        raise CliError(
            f"--device {device}: cannot put the generator there ({_first_line(err)})"
        ) from err
    return model


def resolve_class(
    value: str | None,
    num_classes: int,
    classes_file: Path | None,
    checkpoint: Path,
    metadata: dict | None = None,
) -> int | None:
    """``--class`` as an index: an integer, or a name looked up in the class-names file."""
    if value is None:
        return None
    if num_classes == 0:
        raise CliError(f"--class {value}: {checkpoint} is an unconditional generator (no classes)")
    stored = (metadata or {}).get("classes") or None
    names = stored if classes_file is None and stored else _class_names(classes_file, checkpoint)
    if value.lstrip("-").isdigit():
        index = int(value)
        if not 0 <= index < num_classes:
            raise CliError(f"--class {index}: the generator has classes 0 to {num_classes - 1}")
        return index
    if names is None:
        raise CliError(
            f"--class {value!r}: no class names found; pass --classes-file "
            f"(e.g. data/splits/info.json) or a class index 0 to {num_classes - 1}"
        )
    if value not in names:
        raise CliError(f"--class {value!r}: unknown class; known: {', '.join(names)}")
    return names.index(value)


def class_names(
    num_classes: int, classes_file: Path | None, checkpoint: Path, metadata: dict | None = None
) -> list[str]:
    """The generator's class names in index order: from ``--classes-file``, else as stored in
    the generator file, else from ``data/splits/info.json`` beside the checkpoint's folder;
    ``class0``, ``class1``, ... where none are found (or they do not match the generator)."""
    stored = (metadata or {}).get("classes") or None
    names = stored if classes_file is None and stored else _class_names(classes_file, checkpoint)
    if names is None or len(names) != num_classes:
        return [f"class{i}" for i in range(num_classes)]
    return list(names)


def _class_names(classes_file: Path | None, checkpoint: Path) -> list[str] | None:
    path = classes_file
    if path is None:
        guess = checkpoint.resolve().parent.parent / "splits" / "info.json"
        if not guess.is_file():
            return None
        path = guess
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CliError(f"--classes-file {path}: cannot read class names ({err})") from err
    names = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CliError(f"--classes-file {path}: expected a list of names or {{'classes': [...]}}")
    return names


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no details"


# --- dispatch --------------------------------------------------------------------------------
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]


def add_reproduce_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.reproduce import command

    command.add_arguments(p)


def run_reproduce(args: argparse.Namespace) -> int:
    from pipeline.reproduce import command

    try:
        return command.run(args)
    except command.ReproduceError as err:
        raise CliError(str(err)) from None


def add_doctor_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline import doctor

    doctor.add_arguments(p)


def run_doctor(args: argparse.Namespace) -> int:
    from pipeline import doctor

    return doctor.run(args)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.export import command

    command.add_arguments(p)


def run_export(args: argparse.Namespace) -> int:
    from pipeline.export import command

    return command.run(args)


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.serve import command

    command.add_arguments(p)


def run_serve(args: argparse.Namespace) -> int:
    from pipeline.serve import command

    return command.run(args)


COMMANDS: list[Command] = [
    ("generate", add_generate_arguments, run_generate),
    ("export", add_export_arguments, run_export),
    ("reproduce", add_reproduce_arguments, run_reproduce),
    ("doctor", add_doctor_arguments, run_doctor),
    ("serve", add_serve_arguments, run_serve),
]
HELP = {
    "doctor": "is this environment ready? imports, models, Rubber Band, GPU, versions vs the lock",
    "export": "a sample pack of loop-tagged WAVs (acid tempo, smpl loop points) with a metadata "
    "table, as one zip; or the generator as ONNX (--onnx)",
    "generate": "generate a track (a latent walk, one bar per step) from a generator file",
    "serve": "a local web page to explore a generator: pick a class, draw latents, hear a bar "
    "looped, walk between two latents, set the tempo, download tagged WAVs",
    "reproduce": "a preset's published result: the plan (--dry-run), then fetch through evaluate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bargan", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add_arguments, run in COMMANDS:
        sub = commands.add_parser(name, help=HELP.get(name), description=HELP.get(name))
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CliError as err:
        print(f"bargan {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run the module as imported (pipeline.cli), not this __main__ copy of it: the commands
    # import CliError from pipeline.cli, and main must catch that class.
    from pipeline.cli import main as cli_main

    sys.exit(cli_main())
