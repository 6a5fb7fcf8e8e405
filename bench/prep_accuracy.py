"""Data-preparation accuracy against ground truth on a synthesised corpus.

For every style and tempos across 90-175 BPM (with swing, humanisation and random lead-ins):
downbeat F-measure (mir_eval, 70 ms window), tempo error, and the error of the bar starts the
slicer uses against the true downbeats. Prints per style and overall, with the targets.

    python bench/prep_accuracy.py [--per-style 8] [--bars 8] [--jobs 2] [--method madmom]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import mir_eval
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.corpus import bench_specs, build
from pipeline.audio.analysis import AnalyzeOptions, analyze_track
from pipeline.audio.io import read_audio
from pipeline.audio.render import BarFilters, BarGrid, render_bars

GRID = BarGrid(sample_rate=16000, bpm=120, beats_per_bar=4, channels=1)
FILTERS = BarFilters(normalize_dbfs=None, max_tempo_change=10.0, min_stretch=0.1, max_stretch=10)


def onset_time(mono: np.ndarray, sample_rate: int, around: float) -> float:
    """Where the hit nearest ``around`` starts: the smoothed envelope's first crossing of half
    its peak in [-30 ms, +80 ms]. The same detector on source and render cancels its bias."""
    lo = max(0, round((around - 0.03) * sample_rate))
    hi = min(len(mono), round((around + 0.08) * sample_rate))
    width = max(1, int(0.002 * sample_rate))
    envelope = np.convolve(np.abs(mono[lo:hi]), np.ones(width) / width, mode="same")
    return (lo + int(np.argmax(envelope >= 0.5 * envelope.max()))) / sample_rate


def rendered_start_errors(path: Path, warp, truth: np.ndarray) -> np.ndarray:
    """Per rendered bar: where the true downbeat's hit lands in the rendered audio, against
    where ground truth puts it (its offset from the true downbeat, stretched), in seconds.
    This is the slicer's error plus Rubber Band's transient placement."""
    audio, sr = read_audio(path)
    rendered = render_bars(audio, sr, warp, GRID, FILTERS)
    source = audio.mean(axis=0)
    errors = []
    for bar, row in zip(rendered.bars, rendered.rows, strict=True):
        downbeat = truth[np.argmin(np.abs(truth - row["start_s"]))]
        hit = onset_time(source, sr, downbeat)
        expected = (hit - downbeat) * row["stretch"]  # ground truth: the downbeat at sample 0
        landed = onset_time(bar[0], GRID.sample_rate, expected + (downbeat - row["start_s"]))
        errors.append(landed - expected)
    return np.abs(np.asarray(errors))


def evaluate_track(row: dict, root: Path, options: AnalyzeOptions) -> dict:
    truth = np.array([float(t) for t in row["downbeats"].split()])
    try:
        warp, info = analyze_track(root / row["path"], options)
    except Exception as err:  # a failure is a result here, not a crash
        return {"style": row["style"], "bpm": row["bpm"], "f_measure": 0.0, "failed": str(err)}
    found = warp.bar_starts(info["duration"])
    error = np.abs(found[:, None] - truth[None, :]).min(axis=1) if len(found) else np.array([1.0])
    rendered = (
        rendered_start_errors(root / row["path"], warp, truth)
        if warp.beats_per_bar == GRID.beats_per_bar
        else np.array([np.nan])
    )
    return {
        "style": row["style"],
        "bpm": row["bpm"],
        "f_measure": mir_eval.beat.f_measure(truth, found, f_measure_threshold=0.07),
        "tempo_error": abs(info["bpm"] - row["bpm"]) / row["bpm"],
        "bar_start_error_ms": float(np.median(error) * 1000),
        "bar_start_p95_ms": float(np.percentile(error, 95) * 1000),
        "rendered_start_error_ms": float(np.nanmedian(rendered) * 1000),
        "failed": "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=8)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--method", default="madmom", choices=["madmom", "librosa"])
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    options = AnalyzeOptions(method=args.method, meters=(3, 4), min_bpm=80, max_bpm=180)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = build(root, bench_specs(args.per_style, (90, 175), args.bars, args.seed))
        work = partial(evaluate_track, root=root, options=options)
        with ProcessPoolExecutor(args.jobs) as pool:
            results = pd.DataFrame(list(pool.map(work, truth.to_dict("records"))))
    results["tempo_ok"] = results.tempo_error <= 0.01
    summary = results.groupby("style").agg(
        tracks=("f_measure", "size"),
        f_measure=("f_measure", "mean"),
        tempo_within_1pct=("tempo_ok", "mean"),
        median_tempo_error_pct=("tempo_error", lambda e: 100 * e.median()),
        median_bar_start_error_ms=("bar_start_error_ms", "median"),
        median_rendered_start_error_ms=("rendered_start_error_ms", "median"),
    )
    overall = pd.DataFrame(
        {
            "tracks": [len(results)],
            "f_measure": [results.f_measure.mean()],
            "tempo_within_1pct": [results.tempo_ok.mean()],
            "median_tempo_error_pct": [100 * results.tempo_error.median()],
            "median_bar_start_error_ms": [results.bar_start_error_ms.median()],
            "median_rendered_start_error_ms": [results.rendered_start_error_ms.median()],
        },
        index=["overall"],
    )
    table = pd.concat([summary, overall])
    print(
        f"downbeat tracking with {args.method}, {len(results)} tracks, 90-175 BPM, "
        f"{args.bars} bars each"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(
        "\ntargets: F-measure >= 0.90 overall, tempo error <= 1 % on >= 95 % of tracks, "
        "median bar-start error <= 10 ms (slicer, and in the rendered audio)"
    )
    met = (
        overall.f_measure.iloc[0] >= 0.90,
        overall.tempo_within_1pct.iloc[0] >= 0.95,
        overall.median_bar_start_error_ms.iloc[0] <= 10,
        overall.median_rendered_start_error_ms.iloc[0] <= 10,
    )
    names = ["f_measure", "tempo", "bar_start", "rendered_bar_start"]
    print("met:", dict(zip(names, met, strict=True)))
    misses = results[(results.f_measure < 0.9) | ~results.tempo_ok]
    if len(misses):
        print("\ntracks below target:")
        print(misses.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
