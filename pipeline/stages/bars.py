"""bars: render each analysed track onto the target grid and cut exact-length bars."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import grid as grid_module
from pipeline.audio import clips, render
from pipeline.audio.clips import render_clip
from pipeline.audio.io import AudioError, read_audio
from pipeline.audio.render import BarFilters, render_bars
from pipeline.audio.warp import load_warp_map
from pipeline.cache import ResultCache, cached_track, file_digest, make_key
from pipeline.code_deps import code_digest
from pipeline.fileio import (
    in_place_of,
    replace_dir,
    staging_dir,
    write_csv_atomic,
    write_npz_atomic,
)
from pipeline.grid import GRID_FILE, BarGrid
from pipeline.stages.common import (
    SOURCE_DTYPES,
    StageError,
    add_per_track_arguments,
    log,
    parallel_map,
    require_cache_dir,
    run_stage,
    stage_parser,
)

CODE = code_digest(render, clips, grid_module)  # and every pipeline module they import


@dataclass(frozen=True)
class BarsJob:
    audio_dir: Path
    warp_dir: Path
    out_dir: Path | None  # None: fill the cache only
    grid: BarGrid
    filters: BarFilters
    cache_dir: Path | None


def render_one(track: dict, job: BarsJob) -> tuple[list[dict], list[dict], bool]:
    """-> (kept-bar rows, reject rows, from cache) for one track; writes its int16 bars."""
    source = {
        key: track[key]
        for key in ("track", "path", "label", "published_split", "method", "confidence")
    }
    audio_path = job.audio_dir / track["path"]
    is_clip = track["method"] == "clip"  # no warp map: the recording is one example
    warp_path = job.warp_dir / f"{track['track']}.json"
    cache = ResultCache(job.cache_dir, "bars")
    key = make_key(
        file_digest(audio_path),
        "clip" if is_clip else file_digest(warp_path),
        asdict(job.grid),
        asdict(job.filters),
        CODE,
    )

    def compute() -> tuple[dict, dict[str, np.ndarray]]:
        audio, sample_rate = read_audio(audio_path)
        if is_clip:
            rendered = render_clip(audio, sample_rate, job.grid, job.filters)
        else:
            timing, info = load_warp_map(warp_path)
            rendered = render_bars(
                audio, sample_rate, timing, job.grid, job.filters, info.get("bar_trust")
            )
        pcm = np.round(rendered.bars * 32767).astype(np.int16)
        return {"rows": rendered.rows, "rejects": rendered.rejects}, {"bars": pcm}

    try:
        result, arrays, from_cache = cached_track(cache, key, compute, arrays=True)
    except (AudioError, ValueError) as err:  # not cached: the next run tries again
        reason = err.reason if isinstance(err, AudioError) else str(err)
        return [], [{**source, "bar_index": -1, "reason": reason}], False
    pcm, rows, rejects = arrays["bars"], result["rows"], result["rejects"]
    bars_file = f"audio/{track['track']}.npz"
    if job.out_dir is not None:
        write_npz_atomic(job.out_dir / bars_file, bars=pcm)
    kept = [
        {**source, **row, "bars_file": bars_file, "row_in_file": i} for i, row in enumerate(rows)
    ]
    return kept, [{**source, **row} for row in rejects], from_cache


def fill_cache(only: str, tracks: pd.DataFrame, usable: list[dict], job: BarsJob) -> None:
    """Snakemake's per-track job: render one track into the cache, write no outputs."""
    require_cache_dir(job.cache_dir)
    if only not in set(tracks.path):
        raise StageError(f"{only}: not in the analysis table")
    for track in usable:
        if track["path"] == only:
            kept, rejected, cached = render_one(track, job)
            log.info(
                "%s: %d bars, %d rejected%s",
                only,
                len(kept),
                len(rejected),
                " (cached)" if cached else "",
            )
    # a track rejected by analyze has nothing to render


def main(args, params) -> None:
    section = params["bars"]
    grid = BarGrid(
        section["sample_rate"], section["bpm"], section["beats_per_bar"], section["channels"]
    )
    filters = BarFilters(
        min_stretch=section["min_stretch"],
        max_stretch=section["max_stretch"],
        silence_dbfs=section["silence_dbfs"],
        normalize_dbfs=section["normalize_dbfs"],
        max_tempo_change=section["max_tempo_change"],
        dedupe_threshold=section["dedupe_threshold"],
        min_trust=section["min_trust"],
    )
    tracks = pd.read_csv(
        args.analysis_dir / "tracks.csv", keep_default_na=False, dtype=SOURCE_DTYPES
    )
    usable = tracks[tracks.status == "ok"].to_dict("records")
    if args.only:
        job = BarsJob(
            args.audio_dir, args.analysis_dir / "warp", None, grid, filters, args.cache_dir
        )
        fill_cache(args.only, tracks, usable, job)
        return
    # Built in a new folder and swapped in whole: a run that stops part-way (a full disk, a
    # vanished recording) leaves the previous result as it was, never new bars beside an old
    # bars.csv, and a recording gone from the corpus leaves no bars behind.
    staging = staging_dir(args.out_dir)
    try:
        job = BarsJob(
            args.audio_dir, args.analysis_dir / "warp", staging, grid, filters, args.cache_dir
        )
        try:
            manifest, n_rejects, reused = cut_bars(tracks, usable, job, section["jobs"])
        except OSError as err:
            raise in_place_of(err, staging, args.out_dir) from None
        replace_dir(staging, args.out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if manifest.empty:
        raise StageError(
            f"no usable bars; {args.out_dir / 'rejects.csv'} lists the reason for every track"
        )
    log.info(
        "%d bars of %d samples at %d Hz from %d tracks (%d tracks from cache; "
        "%d rejected bars or tracks) -> %s",
        len(manifest),
        grid.bar_samples,
        grid.sample_rate,
        manifest.track.nunique(),
        reused,
        n_rejects,
        args.out_dir,
    )


def cut_bars(
    tracks: pd.DataFrame, usable: list[dict], job: BarsJob, jobs: int
) -> tuple[pd.DataFrame, int, int]:
    """Render every usable track into ``job.out_dir`` and write rejects.csv there, then, when
    any bar was kept, the grid record and bars.csv. -> (manifest, rejects, tracks from cache)"""
    rows, rejects, reused = [], [], 0
    for kept, rejected, cached in parallel_map(partial(render_one, job=job), usable, jobs, "bars"):
        rows += kept
        rejects += rejected
        reused += cached
    for row in tracks[tracks.status != "ok"].to_dict("records"):
        source = {key: row[key] for key in ("track", "path", "label")}
        rejects.append({**source, "bar_index": -1, "reason": f"analyze: {row['reason']}"})
    reject_columns = ["track", "path", "label", "bar_index", "reason"]
    write_csv_atomic(
        job.out_dir / "rejects.csv",
        pd.DataFrame(rejects, columns=None if rejects else reject_columns),
    )
    for row in rejects:
        log.info("rejected %s bar %s: %s", row["path"], row["bar_index"], row["reason"])
    manifest = pd.DataFrame(rows)
    if not manifest.empty:
        job.grid.write(job.out_dir / GRID_FILE)
        write_csv_atomic(job.out_dir / "bars.csv", manifest)
    return manifest, len(rejects), reused


def parser():
    p = stage_parser(__doc__)
    add_per_track_arguments(p, "render")
    p.add_argument("--analysis-dir", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
