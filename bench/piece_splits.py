"""Regroup a splits folder so that no piece spans two splits.

The split stage keeps each recording in one split, but a corpus may hold the same piece several
times (rendered with several sound sets, or looped excerpts of it): held-out bars of a piece whose
other rendering is in train flatter any benchmark of generalisation. Given a CSV that names each
recording's piece (a ``path`` column as in the split's manifest, and a group column, e.g. the
third-party corpus's truth.csv and ``source_file``), this writes a new splits folder in which every
piece's bars are in one split: per class, pieces are shuffled (seeded) and dealt to valid and test
until each holds its fraction of the class's bars, the rest to train.

    python bench/piece_splits.py --splits-dir /work/corpus/tp_splits \\
        --groups /work/corpus/thirdparty/truth.csv --group-column source_file --out tp_piece_splits
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "valid", "test")


def assign_pieces(
    bars_per_piece: pd.DataFrame, valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """``{piece: split}`` from rows (``piece``, ``label``, ``bars``): per class, pieces in a
    seeded order go to valid, then test, while each is below its share of the class's bars; a
    class with a single piece keeps it in train."""
    rng = np.random.default_rng(seed)
    chosen: dict[str, str] = {}
    for _, pieces in bars_per_piece.groupby("label", sort=True):
        order = pieces.iloc[rng.permutation(len(pieces))]
        total = int(order["bars"].sum())
        wanted = {"valid": valid_fraction * total, "test": test_fraction * total}
        held = {"valid": 0, "test": 0}
        for i, row in enumerate(order.itertuples()):
            left = len(order) - i
            target = next((s for s in ("valid", "test") if held[s] < wanted[s]), "train")
            if target != "train" and left == 1 and not any(v == "train" for v in chosen.values()):
                target = "train"  # never hold out every piece of a class
            chosen[row.piece] = target
            if target != "train":
                held[target] += int(row.bars)
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--splits-dir", type=Path, required=True)
    p.add_argument("--groups", type=Path, required=True, help="CSV with path and a group column")
    p.add_argument("--group-column", default="source_file")
    p.add_argument("--valid-fraction", type=float, default=0.2)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    manifest = pd.read_csv(args.splits_dir / "manifest.csv")
    groups = pd.read_csv(args.groups)[["path", args.group_column]]
    rows = manifest.merge(groups, on="path", how="left")
    missing = rows[args.group_column].isna()
    if missing.any():
        sys.exit(f"{args.groups}: no {args.group_column} for {rows.loc[missing, 'path'].iloc[0]}")
    rows["piece"] = rows[args.group_column]
    packed = {}
    for split in SPLITS:
        with np.load(args.splits_dir / f"{split}.npz") as npz:
            packed[split] = {key: npz[key] for key in npz.files}
    rows["row"] = rows.groupby("split").cumcount()  # the bar's row in its split's npz
    per_piece = rows.groupby(["piece", "label"], as_index=False).size()
    per_piece = per_piece.rename(columns={"size": "bars"})
    chosen = assign_pieces(per_piece, args.valid_fraction, args.test_fraction, args.seed)
    rows["new_split"] = rows["piece"].map(chosen)

    args.out.mkdir(parents=True, exist_ok=True)
    sample_rate = int(packed["train"]["sample_rate"])
    counts = {}
    for split in SPLITS:
        mine = rows[rows["new_split"] == split]
        bars = [packed[s]["bars"][r] for s, r in zip(mine["split"], mine["row"], strict=True)]
        labels = [packed[s]["labels"][r] for s, r in zip(mine["split"], mine["row"], strict=True)]
        shape = packed["train"]["bars"].shape[1:]
        np.savez(
            args.out / f"{split}.npz",
            bars=np.stack(bars) if bars else np.zeros((0, *shape), np.int16),
            labels=np.asarray(labels, np.int64),
            sample_rate=sample_rate,
        )
        counts[split] = len(mine)
    for name in ("grid.json",):
        shutil.copy(args.splits_dir / name, args.out / name)
    info = json.loads((args.splits_dir / "info.json").read_text())
    info["counts"] = counts
    info["tracks"] = {s: int(rows.loc[rows["new_split"] == s, "track"].nunique()) for s in SPLITS}
    info["pieces"] = {s: sum(1 for v in chosen.values() if v == s) for s in SPLITS}
    info["grouped_by"] = f"{args.groups}:{args.group_column}"
    (args.out / "info.json").write_text(json.dumps(info, indent=2))
    out_manifest = rows.drop(columns=["split", "row", "piece"]).rename(
        columns={"new_split": "split"}
    )
    out_manifest.to_csv(args.out / "manifest.csv", index=False)
    table = rows.groupby(["label", "new_split"]).size().unstack(fill_value=0)
    print(table.reindex(columns=list(SPLITS), fill_value=0).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
