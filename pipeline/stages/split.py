"""split: group bars by source track into train/valid/test (at random, or as the dataset
publishes them: ``split.method``) and pack each split into one file; the bar grid record
travels along (``grid.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.splits import (
    SPLITS,
    SPLITS_FILE,
    ClassLayoutError,
    assign_splits,
    check_class_layout,
    label_indices,
)
from pipeline.fileio import write_csv_atomic, write_json_atomic, write_npz_atomic
from pipeline.grid import GRID_FILE, BarGrid
from pipeline.stages.common import SOURCE_DTYPES, StageError, log, run_stage, stage_parser


def load_bars(bars_dir: Path, manifest: pd.DataFrame) -> np.ndarray:
    """int16 bars of the manifest's rows, in manifest order."""
    cache: dict[str, np.ndarray] = {}
    out = []
    for row in manifest.itertuples():
        if row.bars_file not in cache:
            with np.load(bars_dir / row.bars_file) as packed:
                cache[row.bars_file] = packed["bars"]
        out.append(cache[row.bars_file][row.row_in_file])
    return np.stack(out)


def published_assignment(manifest: pd.DataFrame, where: Path) -> pd.Series:
    """Each bar's split as its dataset publishes it (analyze read it from splits.csv)."""
    published = manifest.get("published_split", pd.Series("", index=manifest.index))
    unassigned = sorted(set(manifest.path[published.astype(str) == ""]))
    if unassigned:
        shown = ", ".join(unassigned[:3]) + (" ..." if len(unassigned) > 3 else "")
        raise StageError(
            f"split.method is published, but {len(unassigned)} recordings have no published "
            f"split ({shown}; {where}): fetch a dataset whose registry entry has splits, or "
            f"give every recording a row in {SPLITS_FILE} beside the audio, or use split.method "
            "random"
        )
    return published.astype(str)


def main(args, params) -> None:
    section = params["split"]
    grid = BarGrid.read(args.bars_dir / GRID_FILE)
    manifest = pd.read_csv(args.bars_dir / "bars.csv", keep_default_na=False, dtype=SOURCE_DTYPES)
    if manifest.empty:
        raise StageError(f"{args.bars_dir}/bars.csv has no bars")
    try:
        check_class_layout(manifest.path, manifest.label)
    except ClassLayoutError as err:
        raise StageError(f"{args.bars_dir}/bars.csv: {err}") from None
    if section["method"] == "published":
        manifest["split"] = published_assignment(manifest, args.bars_dir / "bars.csv")
    else:
        assignment = assign_splits(
            manifest.track.tolist(),
            section["valid_fraction"],
            section["test_fraction"],
            section["seed"],
        )
        manifest["split"] = manifest.track.map(assignment)
    manifest["label_index"], classes = label_indices(manifest.label)
    for split in SPLITS:
        rows = manifest[manifest.split == split]
        bars = load_bars(args.bars_dir, rows) if len(rows) else np.zeros((0, 1, 1), np.int16)
        write_npz_atomic(
            args.out_dir / f"{split}.npz",
            bars=bars,
            labels=rows.label_index.to_numpy(np.int64),
            sample_rate=np.int64(grid.sample_rate),
        )
        log.info("%s: %d bars from %d tracks", split, len(rows), rows.track.nunique())
    write_csv_atomic(args.out_dir / "manifest.csv", manifest)
    grid.write(args.out_dir / GRID_FILE)
    write_json_atomic(
        args.out_dir / "info.json",
        {
            "classes": classes,
            "counts": {s: int((manifest.split == s).sum()) for s in SPLITS},
            "tracks": {s: int(manifest[manifest.split == s].track.nunique()) for s in SPLITS},
        },
    )


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--bars-dir", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
