"""fetch: download a public dataset from the registry (datasets/<name>.yaml) into one folder.

``fetch.dataset: none`` (the default) downloads nothing and writes only a note, so the demo
corpus runs as before. Naming an entry downloads its archives into ``--download-dir``
(resumable: an interrupted transfer continues from its ``.part`` file on the next run),
verifies every checksum, unpacks into a temporary folder, puts each file under its class
folder, writes LICENSE.txt, PROVENANCE.json, (where the dataset has tempo metadata)
overrides.csv and (where it publishes its own split) splits.csv beside the audio, and only then
renames the result onto ``--out-dir``. Point ``data.audio_dir`` at ``--out-dir`` to run the
pipeline on it.

``fetch.models`` names weights files (registry entries of kind model), each downloaded the same
way and put at ``--models-dir/<entry>/<filename>`` with its LICENSE.txt and PROVENANCE.json;
evaluate depends on that folder, so new weights re-run it. Every entry named is checked before
anything is downloaded, and both folders are replaced only once everything has been verified.
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
    model_provenance,
    no_models_fetched,
    nothing_fetched,
    provenance,
)
from pipeline.data.registry import Dataset, RegistryError, load_dataset, registry_dir
from pipeline.data.splits import SPLITS_FILE
from pipeline.data.unpack import UnpackError, size_limit, unpack
from pipeline.fileio import replace_dir, staging_dir, write_csv_atomic, write_json_atomic
from pipeline.overrides import OVERRIDES_FILE
from pipeline.stages.common import StageError, log, run_stage, stage_parser

KINDS = {
    "audio": ("fetch.dataset", "an audio dataset"),
    "model": ("fetch.models", "a weights file"),
}


def main(args: argparse.Namespace, params: dict[str, Any]) -> None:
    section = params["fetch"]
    registry = registry_dir(args.registry_dir)
    name = section["dataset"]
    dataset = None if name == "none" else registry_entry(name, "audio", registry)
    models = [registry_entry(model, "model", registry) for model in section["models"]]
    staging, models_staging = staging_dir(args.out_dir), staging_dir(args.models_dir)
    try:
        if dataset is None:
            write_json_atomic(staging / PROVENANCE_FILE, nothing_fetched())
            log.info("fetch.dataset is none: nothing to download -> %s", args.out_dir)
        else:
            fill(dataset, args.download_dir, staging, section["max_unpacked_ratio"])
        fill_models(models, args.download_dir, models_staging)
        replace_dir(staging, args.out_dir)
        replace_dir(models_staging, args.models_dir)
        if models:
            log.info("fetch.models -> %s", ", ".join(str(args.models_dir / m.name) for m in models))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(models_staging, ignore_errors=True)


def registry_entry(name: str, kind: str, registry: Path) -> Dataset:
    """Entry ``name``, which the params key for ``kind`` names; a StageError naming that key
    when it is missing, invalid or of the other kind."""
    key, what = KINDS[kind]
    try:
        dataset = load_dataset(name, registry)
    except RegistryError as err:
        raise StageError(f"{key}: {err}") from None
    if dataset.kind != kind:
        other_key, other = KINDS[dataset.kind]
        raise StageError(
            f"{key}: {dataset.path} is {other} (kind: {dataset.kind}), not {what}: "
            f"name it in {other_key}"
        )
    return dataset


def fill_models(models: list[Dataset], download_dir: Path, staging: Path) -> None:
    """Each weights entry's verified files in ``staging/<entry>/``, with licence and provenance."""
    if not models:
        write_json_atomic(staging / PROVENANCE_FILE, no_models_fetched())
        log.info("fetch.models is empty: no weights to download")
    for model in models:
        folder = staging / model.name
        folder.mkdir()
        for archive in model.archives:
            try:
                path = fetch_archive(archive, download_dir / model.name)
            except DownloadError as err:
                raise StageError(str(err)) from None
            log.info("%s: %s verified", archive.filename, archive.checksum.algorithm)
            shutil.copyfile(path, folder / archive.filename)
        (folder / LICENSE_FILE).write_text(licence_text(model), encoding="utf-8")
        write_json_atomic(folder / PROVENANCE_FILE, model_provenance(model))
        log.info("%s: %d weights files verified", model.name, len(model.archives))


def fill(dataset: Dataset, download_dir: Path, staging: Path, max_unpacked_ratio: float) -> None:
    """Download, verify and unpack ``dataset`` into ``staging``; an archive may unpack to its
    entry's ``unpacked_size`` (with a margin), or else ``max_unpacked_ratio`` times its size."""
    unpacked = staging.with_name(staging.name + ".unpacked")
    try:
        for archive in dataset.archives:
            try:
                path = fetch_archive(archive, download_dir / dataset.name)
                log.info("%s: %s verified", archive.filename, archive.checksum.algorithm)
                limit = size_limit(archive.unpacked_size, path.stat().st_size, max_unpacked_ratio)
                unpack(path, unpacked, archive.format, limit)
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
        "--models-dir",
        type=Path,
        required=True,
        help="the fetched weights files (fetch.models), one folder per entry",
    )
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
