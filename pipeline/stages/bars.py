"""bars: render each analysed track onto the target grid and cut exact-length bars."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.audio.io import AudioError, read_audio
from pipeline.audio.render import BarFilters, BarGrid, render_bars
from pipeline.audio.warp import load_warp_map
from pipeline.fileio import write_csv_atomic, write_npz_atomic
from pipeline.stages.common import StageError, log, parallel_map, run_stage, stage_parser


def render_one(track: dict, audio_dir: Path, warp_dir: Path, out_dir: Path, grid, filters):
    """-> (kept-bar rows, reject rows) for one track; writes its bars as int16 PCM."""
    source = {"track": track["track"], "path": track["path"], "label": track["label"]}
    try:
        audio, sample_rate = read_audio(audio_dir / track["path"])
        warp, _ = load_warp_map(warp_dir / f"{track['track']}.json")
        rendered = render_bars(audio, sample_rate, warp, grid, filters)
    except (AudioError, ValueError) as err:
        reason = err.reason if isinstance(err, AudioError) else str(err)
        return [], [{**source, "bar_index": -1, "reason": reason}]
    pcm = np.round(rendered.bars * 32767).astype(np.int16)
    bars_file = f"audio/{track['track']}.npz"
    write_npz_atomic(out_dir / bars_file, bars=pcm)
    rows = [
        {**source, **row, "bars_file": bars_file, "row_in_file": i}
        for i, row in enumerate(rendered.rows)
    ]
    return rows, [{**source, **row} for row in rendered.rejects]


def main(args, params) -> None:
    section = params["bars"]
    grid = BarGrid(
        section["sample_rate"], section["bpm"], section["beats_per_bar"], section["channels"]
    )
    filters = BarFilters(
        section["min_stretch"],
        section["max_stretch"],
        section["silence_dbfs"],
        section["normalize_dbfs"],
    )
    tracks = pd.read_csv(args.analysis_dir / "tracks.csv", keep_default_na=False)
    usable = tracks[tracks.status == "ok"].to_dict("records")
    work = partial(
        render_one,
        audio_dir=args.audio_dir,
        warp_dir=args.analysis_dir / "warp",
        out_dir=args.out_dir,
        grid=grid,
        filters=filters,
    )
    rows, rejects = [], []
    for kept, rejected in parallel_map(work, usable, section["jobs"], "bars"):
        rows += kept
        rejects += rejected
    for row in tracks[tracks.status != "ok"].to_dict("records"):
        rejects.append(
            {
                "track": row["track"],
                "path": row["path"],
                "label": row["label"],
                "bar_index": -1,
                "reason": f"analyze: {row['reason']}",
            }
        )
    manifest = pd.DataFrame(rows)
    if manifest.empty:
        raise StageError("no usable bars; see the rejects table for reasons")
    manifest.insert(0, "sample_rate", grid.sample_rate)
    manifest.insert(1, "bar_samples", grid.bar_samples)
    manifest.insert(2, "channels", grid.channels)
    write_csv_atomic(args.out_dir / "bars.csv", manifest)
    reject_columns = ["track", "path", "label", "bar_index", "reason"]
    write_csv_atomic(
        args.out_dir / "rejects.csv",
        pd.DataFrame(rejects, columns=None if rejects else reject_columns),
    )
    for row in rejects:
        log.info("rejected %s bar %s: %s", row["path"], row["bar_index"], row["reason"])
    log.info(
        "%d bars of %d samples at %d Hz from %d tracks (%d rejected bars or tracks) -> %s",
        len(manifest),
        grid.bar_samples,
        grid.sample_rate,
        manifest.track.nunique(),
        len(rejects),
        args.out_dir,
    )


def parser():
    p = stage_parser(__doc__)
    p.add_argument("--audio-dir", type=Path, required=True)
    p.add_argument("--analysis-dir", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return p


if __name__ == "__main__":
    run_stage(main, parser())
