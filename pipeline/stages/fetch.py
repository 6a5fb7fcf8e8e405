"""fetch: download a public dataset from the registry (datasets/<name>.yaml) into one folder.

``fetch.dataset: none`` (the default) downloads nothing and writes only a note, so the demo
corpus runs as before. Naming an entry downloads its archives into ``--download-dir``
(resumable: an interrupted transfer continues from its ``.part`` file on the next run),
verifies every checksum, unpacks into a temporary folder, puts each file under its class
folder, writes LICENSE.txt, PROVENANCE.json, (where the dataset has tempo metadata)
overrides.csv and (where it publishes its own split) splits.csv beside the audio, and only then
renames the result onto ``--out-dir``. Point
``data.audio_dir`` at ``--out-dir`` to run the pipeline on it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from pipeline.data.download import DownloadError, fetch_archive
from pipeline.data.layout import (
    LayoutError,
    move_into,
    plan,
    published_splits,
    tempo_overrides,
)
from pipeline.data.provenance import (
    LICENSE_FILE,
    PROVENANCE_FILE,
    licence_text,
    nothing_fetched,
    provenance,
)
from pipeline.data.registry import RegistryError, load_dataset, registry_dir
from pipeline.data.splits import SPLITS_FILE
from pipeline.data.unpack import UnpackError, unpack
from pipeline.fileio import replace_dir, staging_dir, write_csv_atomic, write_json_atomic
from pipeline.overrides import OVERRIDES_FILE
from pipeline.stages.common import StageError, log, run_stage, stage_parser


def main(args: argparse.Namespace, params: dict[str, Any]) -> None:
    name = params["fetch"]["dataset"]
    out_dir: Path = args.out_dir
    staging = staging_dir(out_dir)
    try:
        if name == "none":
            write_json_atomic(staging / PROVENANCE_FILE, nothing_fetched())
            log.info("fetch.dataset is none: nothing to download -> %s", out_dir)
        else:
            fill(name, registry_dir(args.registry_dir), args.download_dir, staging)
        replace_dir(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fill(name: str, registry: Path, download_dir: Path, staging: Path) -> None:
    """Download, verify and unpack entry ``name`` of ``registry`` into ``staging``."""
    try:
        dataset = load_dataset(name, registry)
    except RegistryError as err:
        raise StageError(str(err)) from None
    unpacked = staging.with_name(staging.name + ".unpacked")
    try:
        for archive in dataset.archives:
            try:
                path = fetch_archive(archive, download_dir / dataset.name)
                log.info("%s: %s verified", archive.filename, archive.checksum.algorithm)
                unpack(path, unpacked, archive.format)
            except (DownloadError, UnpackError) as err:
                raise StageError(str(err)) from None
        try:
            placements = plan(unpacked, dataset)
            overrides = tempo_overrides(unpacked, dataset, placements)
            splits = published_splits(unpacked, dataset, placements)
        except LayoutError as err:
            raise StageError(str(err)) from None
        move_into(placements, staging)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
    if len(overrides):
        write_csv_atomic(staging / OVERRIDES_FILE, overrides)
    if len(splits):
        write_csv_atomic(staging / SPLITS_FILE, splits)
    (staging / LICENSE_FILE).write_text(licence_text(dataset), encoding="utf-8")
    labels = [p.label for p in placements]
    write_json_atomic(staging / PROVENANCE_FILE, provenance(dataset, labels, len(overrides)))
    log.info(
        "%s: %d files in %d classes, %d known tempi, %s -> %s",
        dataset.name,
        len(placements),
        len(set(labels)),
        len(overrides),
        "its own split" if len(splits) else "no published split",
        staging,
    )


def parser() -> argparse.ArgumentParser:
    p = stage_parser(__doc__)
    p.add_argument("--out-dir", type=Path, required=True, help="the fetched dataset")
    p.add_argument(
        "--download-dir",
        type=Path,
        required=True,
        help="verified downloads and resumable .part files (kept between runs)",
    )
    p.add_argument(
        "--registry-dir",
        type=Path,
        default=Path("datasets"),
        help="the registry folder (the environment variable BARGAN_REGISTRY_DIR overrides it)",
    )
    return p


if __name__ == "__main__":
    run_stage(main, parser())
