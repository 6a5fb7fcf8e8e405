"""analyze: one warp map per recording (Ableton .asd markers, madmom, or librosa)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from pipeline.audio import analysis, asd, asd_schema, downbeats
from pipeline.audio import warp as warp_module
from pipeline.audio.analysis import TRACKERS, AnalyzeOptions, Override, analyze_track, find_asd
from pipeline.audio.io import AudioError, find_audio_files
from pipeline.audio.warp import WarpMap, save_warp_map
from pipeline.cache import ResultCache, code_digest, file_digest, make_key
from pipeline.fileio import write_csv_atomic
from pipeline.stages.common import (
    StageError,
    class_name,
    log,
    parallel_map,
    run_stage,
    stage_parser,
    track_id,
)

OVERRIDES_FILE = "overrides.csv"
CODE = code_digest(analysis, downbeats, asd, asd_schema, warp_module)


@dataclass(frozen=True)
class AnalyzeJob:
    root: Path
    warp_dir: Path | None  # None: fill the cache only
    options: AnalyzeOptions
    min_confidence: float
    cache_dir: Path | None
    overrides: dict[str, Override]


def analyze_one(path: Path, job: AnalyzeJob) -> dict:
    """Analyse one recording (or reuse the cached result) and write its warp map."""
    relative = path.relative_to(job.root).as_posix()
    row = {"track": track_id(path, job.root), "path": relative, "label": class_name(path, job.root)}
    override = job.overrides.get(relative)
    asd_path = find_asd(path)
    cache = ResultCache(job.cache_dir, "analyze")
    key = make_key(
        file_digest(path),
        _digest_or_reason(asd_path) if asd_path else None,
        asdict(override) if override else None,
        asdict(job.options),
        CODE,
    )
    result = cache.get_json(key)
    row["cached"] = result is not None
    if result is None:
        try:
            warp, info = analyze_track(path, job.options, override)
            result = {"status": "ok", "reason": "", "warp_map": warp.to_dict(), **info}
        except AudioError as err:
            result = {"status": "rejected", "reason": err.reason}
        cache.put_json(key, result)
    result = dict(result)
    if result.get("asd_path"):  # the cache is keyed by content: name the file found now
        result["asd_path"] = asd_path.relative_to(job.root).as_posix()
    warp_data = result.pop("warp_map", None)
    tracked = result["status"] == "ok" and result["method"] in TRACKERS
    if tracked and result["confidence"] < job.min_confidence:
        result["status"] = "rejected"
        result["reason"] = (
            f"low tracker confidence {result['confidence']:.2f} < {job.min_confidence}"
        )
    if result["status"] == "ok" and job.warp_dir is not None:
        warp = WarpMap.from_dict(warp_data)
        save_warp_map(job.warp_dir / f"{row['track']}.json", warp, {**row, **result})
    return {**row, **result}


def fill_cache(path: Path, job: AnalyzeJob, cache_dir: Path | None) -> None:
    """Snakemake's per-track job: analyse one recording into the cache, write no outputs."""
    if cache_dir is None:
        raise StageError("--only needs --cache-dir: the per-track result goes to the cache")
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
    """``<audio_dir>/overrides.csv``: path (relative to audio_dir), bpm, first_downbeat, meter."""
    path = root / OVERRIDES_FILE
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    missing = {"path", "bpm", "first_downbeat", "meter"} - set(table.columns)
    if missing:
        raise StageError(f"{path}: missing columns {sorted(missing)}")
    overrides = {}
    for number, row in enumerate(table.itertuples(), start=2):
        if not (row.bpm > 0 and row.first_downbeat >= 0 and int(row.meter) >= 1):
            raise StageError(f"{path}: line {number}: bpm, first_downbeat or meter out of range")
        overrides[str(row.path)] = Override(
            float(row.bpm), float(row.first_downbeat), int(row.meter)
        )
    return overrides


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
    files = find_audio_files(root)
    if not files:
        raise StageError(f"{root}: no audio files (wav, flac, ogg, mp3, aiff) found")
    job = AnalyzeJob(
        root=root,
        warp_dir=None if args.only else args.out_dir / "warp",
        options=options,
        min_confidence=section["min_confidence"],
        cache_dir=args.cache_dir,
        overrides=read_overrides(root),
    )
    unknown = set(job.overrides) - {f.relative_to(root).as_posix() for f in files}
    if unknown:
        raise StageError(f"{root / OVERRIDES_FILE}: no such recordings: {sorted(unknown)}")
    if args.only:
        fill_cache(root / args.only, job, args.cache_dir)
        return
    job.warp_dir.mkdir(parents=True, exist_ok=True)
    rows = list(parallel_map(partial(analyze_one, job=job), files, section["jobs"], "analyze"))
    table = pd.DataFrame(rows)
    write_csv_atomic(args.out_dir / "tracks.csv", table)
    for row in rows:  # a present .asd that was not used, or a failed preferred tracker
        if row["status"] == "ok" and row.get("fallback_reason"):
            log.warning("%s: %s; used %s", row["path"], row["fallback_reason"], row["method"])
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
    p.add_argument("--audio-dir", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path, default=None, help="per-track result cache")
    p.add_argument(
        "--only",
        help="analyse this one recording (path under --audio-dir) into "
        "the cache and write nothing else; Snakemake's per-track jobs use it",
    )
    return p


if __name__ == "__main__":
    run_stage(main, parser())
