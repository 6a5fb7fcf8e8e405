"""``bargan serve``: start the page for one generator file, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pipeline.cli import add_checkpoint_argument

    add_checkpoint_argument(p)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default 127.0.0.1: this machine only; any other address "
        "lets others on the network use the page, and a warning says so)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 7860)")
    p.add_argument(
        "--classes-file",
        type=Path,
        default=None,
        help="JSON with the class names in index order (default: as stored in the generator "
        "file, or data/splits/info.json beside the checkpoint's folder)",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    import torch

    from pipeline.cli import CliError, class_names, load_generator_file

    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port}: a port from 1 to 65535")
    # Nothing leaves this machine: no usage statistics, no update check, no share link.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    model = load_generator_file(args.checkpoint, torch.device("cpu"))
    generator, config, metadata = model.generator, model.settings, model.metadata
    from pipeline.serve.app import build_app

    grid = model.grid
    names = class_names(config.num_classes, args.classes_file, args.checkpoint, metadata)
    if not is_loopback(args.host):
        print(
            f"bargan serve: warning: listening on {args.host}, not 127.0.0.1: anyone who can "
            f"reach this machine on port {args.port} can use the page",
            file=sys.stderr,
        )
    workdir = Path(tempfile.mkdtemp(prefix="bargan-serve-"))
    # The page's sound files live in workdir; a stop by SIGTERM must remove it too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        app = build_app(generator, grid, names, args.checkpoint.name, workdir)
        app.queue()
        app.launch(
            server_name=args.host,
            server_port=args.port,
            share=False,
            inbrowser=False,
            ssr_mode=False,
            allowed_paths=[str(workdir)],
            footer_links=[],
        )
    except OSError as err:  # port taken, address not on this machine
        raise CliError(
            f"--host {args.host} --port {args.port}: cannot listen there (the port is taken, "
            "or the address is not one of this machine's)"
        ) from err
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
