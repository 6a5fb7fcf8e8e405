"""Where each file of an unpacked dataset goes, so that its class is the top-level folder
(what the pipeline reads as the class label), and the tempo metadata it ships with as rows of
analyze's ``overrides.csv``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import soundfile as sf

from pipeline.audio.io import AUDIO_EXTENSIONS
from pipeline.audio.warp import MAX_BEATS_PER_BAR
from pipeline.data.registry import Dataset
from pipeline.data.splits import SPLITS, SPLITS_COLUMNS
from pipeline.overrides import OVERRIDE_COLUMNS

# a class becomes a top-level folder: no separators, not hidden (the corpus scan skips those)
_SAFE_LABEL = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]*")


class LayoutError(RuntimeError):
    """The unpacked files are not what the registry entry describes."""


@dataclass(frozen=True)
class Placement:
    source: Path  # in the unpacked archives
    dest: str  # relative path under the output folder, '/'-separated
    label: str  # class ('' for none)


def plan(unpacked: Path, dataset: Dataset) -> list[Placement]:
    """Every file to keep and where it goes; raises LayoutError when nothing matches."""
    root = unpacked / dataset.root if dataset.root else unpacked
    if not root.is_dir():
        raise LayoutError(f"{dataset.path}: root: the archives hold no folder {dataset.root!r}")
    if dataset.kind == "model":
        return [Placement(p, p.relative_to(root).as_posix(), "") for p in _files(root, None)]
    classes = dataset.classes
    how = classes["from"]
    table = _csv_classes(root, classes, dataset) if how == "csv" else {}
    placements = []
    for path in _files(root, AUDIO_EXTENSIONS + dataset.convert_to_wav):
        rel = path.relative_to(root).as_posix()
        if how == "folder":
            label = rel.split("/", 1)[0] if "/" in rel else ""
            dest = rel
        elif how == "filename":
            match = re.search(classes["pattern"], path.name)
            if match is None:
                continue
            label = match["class"]
            dest = f"{label}/{rel}"
        elif how == "csv":
            if rel not in table:
                continue
            label = table[rel]
            dest = f"{label}/{rel}"
        else:
            label, dest = "", rel.replace("/", "__")
        if classes.get("include") is not None and label not in classes["include"]:
            continue
        if label and not _SAFE_LABEL.fullmatch(label):
            raise LayoutError(
                f"{dataset.path}: classes: {label!r} (for {rel}) cannot be a folder name"
            )
        if path.suffix.lower() in dataset.convert_to_wav:
            dest = dest[: -len(path.suffix)] + ".wav"
        placements.append(Placement(path, dest, label))
    if not placements:
        raise LayoutError(f"{dataset.path}: no files in the archives match its classes")
    dests = [p.dest for p in placements]
    if len(set(dests)) != len(dests):
        raise LayoutError(f"{dataset.path}: two files would land on the same path")
    return placements


def move_into(placements: list[Placement], out_dir: Path) -> None:
    """Move every placed file to its destination (writing WAV where the suffix changes)."""
    for placement in placements:
        target = out_dir / placement.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if placement.source.suffix.lower() == target.suffix.lower():
            os.replace(placement.source, target)
            continue
        try:
            audio, rate = sf.read(placement.source, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise LayoutError(
                f"{placement.source}: cannot be read to convert to WAV ({err})"
            ) from None
        sf.write(target, audio, rate, subtype="PCM_16")


def tempo_overrides(unpacked: Path, dataset: Dataset, placements: list[Placement]) -> pd.DataFrame:
    """Rows of ``overrides.csv`` (path, bpm, first_downbeat, meter) for the placed files the
    dataset's tempo table describes; files with an unusable tempo or meter are left out (their
    tempo is then estimated)."""
    if dataset.tempo is None:
        return pd.DataFrame(columns=list(OVERRIDE_COLUMNS))
    tempo = dataset.tempo
    root = unpacked / dataset.root if dataset.root else unpacked
    table = _read_csv(root / tempo["csv"], dataset)
    columns = [tempo["path_column"], tempo["bpm_column"], tempo["meter_column"]]
    if "first_downbeat_column" in tempo:
        columns.append(tempo["first_downbeat_column"])
    for column in columns:
        if column not in table.columns:
            raise LayoutError(f"{dataset.path}: tempo: {tempo['csv']} has no column {column!r}")
    dest_of = {p.source.relative_to(root).as_posix(): p.dest for p in placements}
    rows = []
    for record in table.to_dict("records"):
        dest = dest_of.get(record[tempo["path_column"]].strip())
        bpm = _number(record[tempo["bpm_column"]])
        meter = quarter_beats(record[tempo["meter_column"]])
        if "first_downbeat_column" in tempo:
            downbeat = _number(record[tempo["first_downbeat_column"]])
        else:
            downbeat = float(tempo["first_downbeat"])
        usable = bpm is not None and 20 <= bpm <= 999 and downbeat is not None and downbeat >= 0
        if dest is None or meter is None or not usable:
            continue
        rows.append((dest, bpm, downbeat, meter))
    rows.sort()
    return pd.DataFrame(rows, columns=list(OVERRIDE_COLUMNS))


def published_splits(unpacked: Path, dataset: Dataset, placements: list[Placement]) -> pd.DataFrame:
    """Rows of ``splits.csv`` (path, split) for every placed file, from the dataset's own split
    (``splits`` in its entry); empty when it publishes none. A table naming an unknown split, or
    leaving a placed file out, is a LayoutError."""
    if dataset.splits is None:
        return pd.DataFrame(columns=list(SPLITS_COLUMNS))
    spec = dataset.splits
    root = unpacked / dataset.root if dataset.root else unpacked
    by_source: dict[str, str] = {}
    if "lists" in spec:
        for split, name in spec["lists"].items():
            listing = root / name
            if not listing.is_file():
                raise LayoutError(f"{dataset.path}: splits: the archives hold no {name}")
            for line in listing.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    by_source[line.strip()] = split
        default = "train"
    else:
        table = _read_csv(root / spec["csv"], dataset)
        for column in (spec["path_column"], spec["split_column"]):
            if column not in table.columns:
                raise LayoutError(f"{dataset.path}: splits: {spec['csv']} has no column {column!r}")
        names = spec.get("names", {})
        for record in table.to_dict("records"):
            split = record[spec["split_column"]].strip()
            split = names.get(split, split)
            if split not in SPLITS:
                raise LayoutError(
                    f"{dataset.path}: splits: {spec['csv']} names split {split!r} "
                    f"(for {record[spec['path_column']]}); map it with splits.names"
                )
            by_source[record[spec["path_column"]].strip()] = split
        default = None
    rows = []
    for placement in placements:
        split = by_source.get(placement.source.relative_to(root).as_posix(), default)
        if split is None:
            raise LayoutError(
                f"{dataset.path}: splits: {spec['csv']} has no row for "
                f"{placement.source.relative_to(root).as_posix()}"
            )
        rows.append((placement.dest, split))
    rows.sort()
    return pd.DataFrame(rows, columns=list(SPLITS_COLUMNS))


def quarter_beats(signature: str) -> int | None:
    """Beats per bar in quarter notes of a time signature ('4-4' -> 4, '6/8' -> 3), or None
    when that is not a whole number from 1 to 32 (e.g. '5-8')."""
    match = re.fullmatch(r"\s*(\d+)\s*[-/]\s*(\d+)\s*", str(signature))
    if match is None:
        return None
    numerator, denominator = int(match[1]), int(match[2])
    if denominator == 0 or (numerator * 4) % denominator:
        return None
    beats = numerator * 4 // denominator
    return beats if 1 <= beats <= MAX_BEATS_PER_BAR else None


def _csv_classes(root: Path, classes: dict, dataset: Dataset) -> dict[str, str]:
    table = _read_csv(root / classes["csv"], dataset)
    for column in (classes["path_column"], classes["class_column"]):
        if column not in table.columns:
            raise LayoutError(f"{dataset.path}: classes: {classes['csv']} has no column {column!r}")
    labels = {}
    pattern = classes.get("pattern")
    for record in table.to_dict("records"):
        path = record[classes["path_column"]].strip()
        label = record[classes["class_column"]].strip()
        if pattern:
            match = re.search(pattern, label)
            label = match["class"] if match else ""
        if path and label:
            labels[path] = label
    return labels


def _read_csv(path: Path, dataset: Dataset) -> pd.DataFrame:
    if not path.is_file():
        raise LayoutError(f"{dataset.path}: the archives hold no {path.name} (looked for {path})")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _files(root: Path, extensions: tuple[str, ...] | None) -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if name.startswith(".") or not path.is_file() or path.is_symlink():
                continue
            if extensions is None or path.suffix.lower() in extensions:
                found.append(path)
    return found


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None
