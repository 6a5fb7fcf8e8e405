"""analyze: one warp map per recording (Ableton .asd markers, madmom, or librosa)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.audio import analysis
from pipeline.audio import warp as warp_module
from pipeline.audio.analysis import TRACKERS, AnalyzeOptions, Override, analyze_track, find_asd
from pipeline.audio.io import AudioError, scan_corpus, truncation_warning
from pipeline.audio.warp import Timing, save_warp_map
from pipeline.cache import ResultCache, cached_track, file_digest, make_key
from pipeline.code_deps import code_digest
from pipeline.csv_rows import CsvRowsError, read_csv_rows
from pipeline.data.splits import PublishedSplitError, read_published_splits
from pipeline.fileio import write_csv_atomic
from pipeline.overrides import OVERRIDE_COLUMNS, OVERRIDE_HEADER, OVERRIDES_FILE
from pipeline.stages.common import (
    StageError,
    add_per_track_arguments,
    class_name,
    log,
    parallel_map,
    require_cache_dir,
    run_stage,
    stage_parser,
    track_id,
)

CODE = code_digest(analysis)  # analysis and every pipeline module it imports


@dataclass(frozen=True)
class AnalyzeJob:
    root: Path
    warp_dir: Path | None  # None: fill the cache only
    options: AnalyzeOptions
    min_confidence: float
    min_trust: float
    cache_dir: Path | None
    overrides: dict[str, Override]
    published_splits: dict[str, str]  # splits.csv beside the audio; {} when there is none


def analyze_one(path: Path, job: AnalyzeJob) -> dict:
    """Analyse one recording (or reuse the cached result) and write its warp map."""
    row = source_columns(path, job.root, job.published_splits)
    override = job.overrides.get(row["path"])
    asd_path = find_asd(path)
    cache = ResultCache(job.cache_dir, "analyze")
    key = make_key(
        file_digest(path),
        _digest_or_reason(asd_path) if asd_path else None,
        asdict(override) if override else None,
        asdict(job.options),
        CODE,
    )

    def compute() -> tuple[dict, None]:
        try:
            timing, info = analyze_track(path, job.options, override)
            timing_data = None if timing is None else timing.to_dict()  # None: a clip
            result = {"status": "ok", "reason": "", "timing": timing_data, **info}
        except AudioError as err:
            result = {"status": "rejected", "reason": err.reason}
        result["warning"] = truncation_warning(path)
        return result, None

    result, _, row["cached"] = cached_track(cache, key, compute)
    result = dict(result)
    if result.get("asd_path"):  # the cache is keyed by content: name the file found now
        result["asd_path"] = asd_path.relative_to(job.root).as_posix()
    timing_data = result.pop("timing", None)
    bar_trust = result.pop("bar_trust", None)  # per bar: in the warp file, not the table
    tracked = result["status"] == "ok" and result["method"] in TRACKERS
    if tracked and result["confidence"] < job.min_confidence:
        result["status"] = "rejected"
        result["reason"] = (
            f"low tracker confidence {result['confidence']:.2f} < {job.min_confidence}"
        )
    elif tracked and result.get("trust", 1.0) < job.min_trust:
        result["status"] = "rejected"
        result["reason"] = (
            f"untrusted tracking: trust {result['trust']:.2f} < {job.min_trust} "
            "(beats, an independent tracker and the downbeats disagree)"
        )
    if result["status"] == "ok" and timing_data is not None and job.warp_dir is not None:
        timing = Timing.from_dict(timing_data)
        # "cached" says where this run found the result, not what it is: left out of the file
        info = {key: value for key, value in {**row, **result}.items() if key != "cached"}
        if bar_trust is not None:
            info["bar_trust"] = bar_trust
        save_warp_map(job.warp_dir / f"{row['track']}.json", timing, info)
    return {**row, **result}


def source_columns(path: Path, root: Path, published_splits: dict[str, str]) -> dict[str, str]:
    """The columns naming a recording in every table: its id, path, class label and the split
    its dataset puts it in ('' when the dataset publishes none)."""
    relative = path.relative_to(root).as_posix()
    return {
        "track": track_id(path, root),
        "path": relative,
        "label": class_name(path, root),
        "published_split": published_splits.get(relative, ""),
    }


def unreadable_row(path: Path, reason: str, job: AnalyzeJob) -> dict:
    """The tracks.csv row of an entry named like audio that is not a readable file."""
    row = source_columns(path, job.root, job.published_splits)
    return {**row, "cached": False, "status": "rejected", "reason": reason}


def fill_cache(path: Path, job: AnalyzeJob, cache_dir: Path | None) -> None:
    """Snakemake's per-track job: analyse one recording into the cache, write no outputs."""
    require_cache_dir(cache_dir)
    if not path.is_file():
        raise StageError(f"{path}: no such recording")
    row = analyze_one(path, job)
    log.info("%s: %s%s", row["path"], row["status"], " (cached)" if row["cached"] else "")


def _digest_or_reason(path: Path) -> str:
    """A sidecar's digest; an unreadable one keys as such (analysis then records why)."""
    try:
        return file_digest(path)
    except OSError as err:
        return f"unreadable: {err.strerror}"


def read_overrides(root: Path) -> dict[str, Override]:
    """``<audio_dir>/overrides.csv``: path (relative to audio_dir), bpm, first_downbeat, meter.
    Blank lines and lines starting with ``#`` are skipped.

    Every problem is a StageError naming the file, the line (as an editor counts it) and the
    column.
    """
    path = root / OVERRIDES_FILE
    if not path.is_file():
        return {}
    try:
        table = read_csv_rows(path)
    except CsvRowsError as err:
        raise StageError(str(err)) from None
    if not table.columns:
        raise StageError(f"{path}: empty file; the first line must be {OVERRIDE_HEADER}")
    missing = set(OVERRIDE_COLUMNS) - set(table.columns)
    if missing:
        raise StageError(f"{path}: missing columns {sorted(missing)}; expected {OVERRIDE_HEADER}")
    overrides: dict[str, Override] = {}
    for number, row in table.rows:
        where = f"{path}: line {number}"
        track = row["path"].strip()
        if not track:
            raise StageError(f"{where}: empty path")
        if track in overrides:
            raise StageError(f"{where}: a second row for {track!r}; keep one")
        bpm = _override_number(row, "bpm", where)
        first_downbeat = _override_number(row, "first_downbeat", where)
        meter = _override_number(row, "meter", where)
        if not warp_module.MIN_BPM <= bpm <= warp_module.MAX_BPM:
            raise StageError(
                f"{where}: bpm {bpm:g} outside {warp_module.MIN_BPM:g}-{warp_module.MAX_BPM:g}"
            )
        if first_downbeat < 0:
            raise StageError(f"{where}: first_downbeat {first_downbeat:g} is before the start")
        if meter != int(meter) or not 1 <= meter <= warp_module.MAX_BEATS_PER_BAR:
            raise StageError(
                f"{where}: meter {meter:g} is not a whole number of beats from 1 to "
                f"{warp_module.MAX_BEATS_PER_BAR}"
            )
        overrides[track] = Override(bpm, first_downbeat, int(meter))
    return overrides


def _published_splits(root: Path) -> dict[str, str]:
    try:
        return read_published_splits(root)
    except PublishedSplitError as err:
        raise StageError(str(err)) from None


def _override_number(row: dict[str, str], column: str, where: str) -> float:
    text = row[column].strip()
    try:
        value = float(text)
    except ValueError:
        raise StageError(f"{where}: {column} {text!r} is not a number") from None
    if not np.isfinite(value):
        raise StageError(f"{where}: {column} {text!r} is not a finite number")
    return value


def main(args, params) -> None:
    root = args.audio_dir
    section = params["analyze"]
    options = AnalyzeOptions(
        method=section["method"],
        prefer_asd=section["prefer_asd"],
        meters=tuple(section["meters"]),
        min_bpm=section["min_bpm"],
        max_bpm=section["max_bpm"],
    )
    if not root.is_dir():
        raise StageError(f"{root}: no such folder (data.audio_dir)")
    corpus = scan_corpus(root)
    files = corpus.files
    if not files and not corpus.skipped:
        raise StageError(f"{root}: no audio files (wav, flac, ogg, mp3, aiff) found")
    job = AnalyzeJob(
        root=root,
        warp_dir=None if args.only else args.out_dir / "warp",
        options=options,
        min_confidence=section["min_confidence"],
        min_trust=section["min_trust"],
        cache_dir=args.cache_dir,
        overrides=read_overrides(root),
        published_splits=_published_splits(root),
    )
    present = {f.relative_to(root).as_posix() for f in files}
    unknown = set(job.overrides) - present
    if unknown:
        raise StageError(f"{root / OVERRIDES_FILE}: no such recordings: {sorted(unknown)}")
    if args.only:
        fill_cache(root / args.only, job, args.cache_dir)
        return
    job.warp_dir.mkdir(parents=True, exist_ok=True)
    rows = [unreadable_row(path, reason, job) for path, reason in corpus.skipped]
    rows += parallel_map(partial(analyze_one, job=job), files, section["jobs"], "analyze")
    table = pd.DataFrame(rows)
    # "cached" says where this run found each result, not what it is: logged, not written,
    # so the table is the same bytes whichever executor (or cache) produced it
    write_csv_atomic(args.out_dir / "tracks.csv", table.drop(columns="cached"))
    for row in rows:  # a present .asd that was not used, or a failed preferred tracker
        if row["status"] == "ok" and row.get("fallback_reason"):
            log.warning("%s: %s; used %s", row["path"], row["fallback_reason"], row["method"])
        if row.get("warning"):
            log.warning("%s: %s", row["path"], row["warning"])
    rejected = table[table.status == "rejected"]
    for row in rejected.itertuples():
        log.warning("rejected %s: %s", row.path, row.reason)
    log.info(
        "analyzed %d tracks (%d from cache, %d rejected) -> %s",
        len(table),
        int(table.cached.sum()),
        len(rejected),
        args.out_dir,
    )
    if len(rejected) == len(table):
        raise StageError(f"{root}: every recording was rejected; see {args.out_dir}/tracks.csv")


def parser():
    p = stage_parser(__doc__)
    add_per_track_arguments(p, "analyse")
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
