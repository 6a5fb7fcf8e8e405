"""analyze: one warp map per recording (Ableton .asd markers, madmom, or librosa)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from pipeline.audio.analysis import AnalyzeOptions, analyze_track
from pipeline.audio.io import AudioError, find_audio_files
from pipeline.audio.warp import save_warp_map
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


def analyze_one(path: Path, root: Path, warp_dir: Path, options: AnalyzeOptions) -> dict:
    row = {"track": track_id(path, root), "path": path.relative_to(root).as_posix()}
    row["label"] = class_name(path, root)
    try:
        warp, info = analyze_track(path, options)
    except AudioError as err:
        return {**row, "status": "rejected", "reason": err.reason}
    save_warp_map(warp_dir / f"{row['track']}.json", warp, {**row, **info})
    return {**row, "status": "ok", "reason": "", **info}


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
    warp_dir = args.out_dir / "warp"
    warp_dir.mkdir(parents=True, exist_ok=True)
    work = partial(analyze_one, root=root, warp_dir=warp_dir, options=options)
    table = pd.DataFrame(list(parallel_map(work, files, section["jobs"], "analyze")))
    write_csv_atomic(args.out_dir / "tracks.csv", table)
    rejected = table[table.status == "rejected"]
    for row in rejected.itertuples():
        log.warning("rejected %s: %s", row.path, row.reason)
    log.info("analyzed %d tracks (%d rejected) -> %s", len(table), len(rejected), args.out_dir)
    if len(rejected) == len(table):
        raise StageError(f"{root}: every recording was rejected; see {args.out_dir}/tracks.csv")


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--audio-dir", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
