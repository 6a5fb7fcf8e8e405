"""Train/valid/test assignment grouped by source track: a track never spans two splits.

Either drawn at random (:func:`assign_splits`) or, for a dataset that publishes its own split
(Speech Commands' speaker-disjoint lists, Groove's ``split`` column), read from ``splits.csv``
beside the audio, which the fetch stage writes (:func:`read_published_splits`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.csv_rows import CsvRowsError, read_csv_rows

SPLITS = ("train", "valid", "test")
SPLITS_FILE = "splits.csv"  # beside the audio: path (relative to the audio folder), split
SPLITS_COLUMNS = ("path", "split")


class PublishedSplitError(ValueError):
    """A bad ``splits.csv``; the message names the file, the line and the reason."""


def read_published_splits(root: Path) -> dict[str, str]:
    """``<root>/splits.csv`` as {recording path: split}; {} when the file is absent."""
    path = root / SPLITS_FILE
    if not path.is_file():
        return {}
    try:
        table = read_csv_rows(path)
    except CsvRowsError as err:
        raise PublishedSplitError(str(err)) from None
    missing = set(SPLITS_COLUMNS) - set(table.columns)
    if missing:
        raise PublishedSplitError(
            f"{path}: missing columns {sorted(missing)}; expected {','.join(SPLITS_COLUMNS)}"
        )
    splits: dict[str, str] = {}
    for number, row in table.rows:
        track, split = row["path"].strip(), row["split"].strip()
        if split not in SPLITS:
            raise PublishedSplitError(
                f"{path}: line {number}: split {split!r} is not one of {', '.join(SPLITS)}"
            )
        if track in splits:
            raise PublishedSplitError(f"{path}: line {number}: a second row for {track!r}")
        splits[track] = split
    return splits


def assign_splits(
    tracks: list[str], valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Shuffle tracks with ``seed`` and give each one split; train always gets at least one.

    Valid/test get ``round(fraction * n)`` tracks, at least one each when the fraction is
    positive and enough tracks exist, so small corpora still have held-out data.
    """
    unique = sorted(set(tracks))
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    n = len(shuffled)
    n_valid = _count(valid_fraction, n)
    n_test = _count(test_fraction, n)
    while n_valid + n_test > n - 1 and (n_valid or n_test):
        if n_test >= n_valid and n_test:
            n_test -= 1
        else:
            n_valid -= 1
    assignment = {}
    for i, track in enumerate(shuffled):
        if i < n_valid:
            assignment[track] = "valid"
        elif i < n_valid + n_test:
            assignment[track] = "test"
        else:
            assignment[track] = "train"
    return assignment


def _count(fraction: float, n: int) -> int:
    if fraction <= 0 or n < 3:
        return 0
    return max(1, round(fraction * n))


class ClassLayoutError(ValueError):
    """Some recordings are in class folders and some are not: the latter have no class."""


def check_class_layout(paths: pd.Series, labels: pd.Series) -> None:
    """A recording's class is its top-level folder under the corpus (``''`` at the top level).
    Every recording in a class folder, or none, is a layout training can use (conditional or
    unconditional); a mix is a :class:`ClassLayoutError` naming a few of the unfoldered files
    and the fixes."""
    classes = dict(zip(paths, labels, strict=True))
    top = sorted(path for path, label in classes.items() if not label)
    folders = sorted({label for label in classes.values() if label})
    if not top or not folders:
        return
    shown = ", ".join(top[:3]) + (f" and {len(top) - 3} more" if len(top) > 3 else "")
    raise ClassLayoutError(
        f"{len(top)} of {len(classes)} recordings are at the top level of the corpus "
        f"({shown}), not in a class folder like the others ({', '.join(folders[:3])}"
        f"{', ...' if len(folders) > 3 else ''}), so they have no class: move them into a "
        "class folder (data.audio_dir/<class>/), or put every recording in a class folder "
        "or none"
    )


def label_indices(labels: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Class names -> integer indices (sorted names); empty names mean 'unlabelled'."""
    classes = sorted(name for name in labels.unique() if name)
    index = {name: i for i, name in enumerate(classes)}
    return labels.map(lambda name: index.get(name, -1)).to_numpy(np.int64), classes


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """-> (float32 bars [N, C, T] in [-1, 1], int64 labels, sample rate)."""
    with np.load(path) as packed:
        bars = packed["bars"].astype(np.float32) / 32767.0
        return bars, packed["labels"], int(packed["sample_rate"])


def split_recordings(splits_dir: Path, split: str, n_bars: int) -> np.ndarray | None:
    """The recording (``track``) of each of ``split``'s ``n_bars`` bars, in the npz's order, from
    the split stage's ``manifest.csv``; None where the manifest is absent or does not match."""
    path = splits_dir / "manifest.csv"
    if not path.is_file():
        return None
    manifest = pd.read_csv(path, usecols=lambda c: c in ("track", "split"), dtype=str)
    if not {"track", "split"} <= set(manifest.columns):
        return None
    tracks = manifest.loc[manifest["split"] == split, "track"].to_numpy()
    return tracks if len(tracks) == n_bars else None
