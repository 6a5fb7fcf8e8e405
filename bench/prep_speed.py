"""Data-preparation speed: analyze and bars, 1 vs 2 jobs, and our renderer vs a naive one.

Prints audio-seconds processed per CPU-second (this process plus its children, so Rubber Band's
own processes count), the wall-clock speed-up from 1 to 2 jobs, and the ratio against a naive
approach measured in the same run on the same bars: one `pyrubberband.time_stretch` call and
one resampling call per bar (what earlier bar-slicing code did), instead of one time-map render
per track.

    python bench/prep_speed.py [--tracks 10] [--bars 8]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import librosa
import numpy as np
import pyrubberband

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.corpus import bench_specs, build, cpu_timer
from pipeline.audio.analysis import AnalyzeOptions, analyze_track
from pipeline.audio.io import read_audio, to_channels
from pipeline.audio.render import BarFilters, BarGrid, render_bars
from pipeline.audio.warp import WarpMap

GRID = BarGrid(sample_rate=16000, bpm=120, beats_per_bar=4, channels=1)
FILTERS = BarFilters(normalize_dbfs=None)


def analyze(path: Path) -> dict:
    warp, _ = analyze_track(path, AnalyzeOptions())
    return warp.to_dict()


def render(item: tuple[Path, dict]) -> int:
    path, warp = item
    audio, sr = read_audio(path)
    return len(render_bars(audio, sr, WarpMap.from_dict(warp), GRID, FILTERS).bars)


def render_naive(item: tuple[Path, dict]) -> int:
    """Per bar: cut at the source bar lines, time-stretch the bar alone, resample it alone."""
    path, warp_data = item
    audio, sr = read_audio(path)
    mono = to_channels(audio, 1)[0]
    warp = WarpMap.from_dict(warp_data)
    lines = warp.bar_starts(audio.shape[1] / sr)
    for start, end in itertools.pairwise(lines):
        segment = mono[round(start * sr) : round(end * sr)]
        stretched = pyrubberband.time_stretch(segment, sr, (end - start) / GRID.bar_seconds)
        bar = librosa.resample(stretched, orig_sr=sr, target_sr=GRID.sample_rate)
        bar = np.pad(bar, (0, max(0, GRID.bar_samples - len(bar))))[: GRID.bar_samples]
    return len(lines) - 1


def timed_map(function, items, jobs):
    with cpu_timer() as timing:
        if jobs == 1:
            results = list(map(function, items))
        else:
            with ProcessPoolExecutor(jobs) as pool:
                results = list(pool.map(function, items))
    return results, timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10, help="total tracks (spread over styles)")
    parser.add_argument("--bars", type=int, default=8)
    args = parser.parse_args()
    per_style = max(1, args.tracks // 5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = build(root, bench_specs(per_style, (90, 175), args.bars, seed=11))
        paths = [root / p for p in truth.path]
        audio_seconds = float(truth.duration.sum())
        print(
            f"{len(paths)} tracks, {audio_seconds:.0f} s of 44.1 kHz stereo audio; "
            f"bars rendered at {GRID.sample_rate} Hz, {GRID.bpm} BPM"
        )

        analyze(paths[0])  # load models once, outside the timings
        warps, a1 = timed_map(analyze, paths, 1)
        _, a2 = timed_map(analyze, paths, 2)
        items = list(zip(paths, warps, strict=True))
        render(items[0])
        n_bars, b1 = timed_map(render, items, 1)
        _, b2 = timed_map(render, items, 2)
        naive_bars, naive = timed_map(render_naive, items, 1)

    print(
        f"\n{'':10}{'audio s / CPU s':>18}{'wall 1 job (s)':>16}{'wall 2 jobs (s)':>17}"
        f"{'speed-up':>10}"
    )
    for name, one, two in (("analyze", a1, a2), ("bars", b1, b2)):
        print(
            f"{name:10}{audio_seconds / one['cpu']:18.1f}{one['wall']:16.2f}{two['wall']:17.2f}"
            f"{one['wall'] / two['wall']:9.2f}x"
        )
    print(f"\nbars: {sum(n_bars)} bars; naive per-bar stretch + resample: {sum(naive_bars)} bars")
    print(f"  one time-map render per track: {b1['cpu']:.2f} CPU s ({b1['wall']:.2f} s wall)")
    print(f"  naive per-bar approach:        {naive['cpu']:.2f} CPU s ({naive['wall']:.2f} s wall)")
    print(f"  ratio naive / ours (CPU):      {naive['cpu'] / b1['cpu']:.1f}x   (target >= 3x)")


if __name__ == "__main__":
    main()
