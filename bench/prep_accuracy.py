"""Data-preparation accuracy against ground truth, beside raw madmom on the same files.

Two corpora with exact truth:
* ``synthetic``: pipeline.data.synth drum-and-bass tracks over 90-175 BPM (swing,
  humanisation, random lead-ins), with the rendered-audio check (where a true downbeat's hit
  lands in the rendered bar);
* ``dev``: bench/dev_corpus.py, music arranged from music21's scores and rendered by
  fluidsynth: 48 tracks, 74 minutes, 14 styles, 71-197 BPM, tempo changes and 3/4.

For each: downbeat F-measure (mir_eval, 70 ms), tempo within 1 % (at the middle of every
truth section, so a track that changes tempo must be right on both sides), and what the trust
filter does: of the bars kept, the share from wrongly tracked tracks (tempo wrong or downbeat
F < 0.9), and the share of bars from correctly tracked tracks that it drops. Raw madmom is
its RNN + DBN downbeat tracker with its default 80-180 BPM range, run on the whole file, every
bar kept (it has no trust filter).

    python bench/prep_accuracy.py [--corpus synthetic dev] [--dev-dir DIR] [--jobs 2]
                                  [--per-style 8] [--bars 8] [--out FILE.md]
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
from pipeline.audio import downbeats
from pipeline.audio.analysis import AnalyzeOptions, analyze_track
from pipeline.audio.io import read_audio
from pipeline.audio.render import BarFilters, BarGrid, render_bars
from pipeline.yamlio import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
GRID = BarGrid(sample_rate=16000, bpm=120, beats_per_bar=4, channels=1)
FILTERS = BarFilters(normalize_dbfs=None, max_tempo_change=10.0, min_stretch=0.1, max_stretch=10)
OPTIONS = AnalyzeOptions()  # the defaults users get: meters 3 and 4, 80-180 BPM


def trust_thresholds() -> tuple[float, float]:
    """(track, bar) minimum trust from the project's params.yaml defaults."""
    params = parse_yaml((ROOT / "params.yaml").read_text())
    return float(params["analyze"]["min_trust"]), float(params["bars"]["min_trust"])


def onset_time(mono: np.ndarray, sample_rate: int, around: float) -> float:
    """Where the hit nearest ``around`` starts: the smoothed envelope's first crossing of half
    its peak in [-30 ms, +80 ms]. The same detector on source and render cancels its bias."""
    lo = max(0, round((around - 0.03) * sample_rate))
    hi = min(len(mono), round((around + 0.08) * sample_rate))
    width = max(1, int(0.002 * sample_rate))
    envelope = np.convolve(np.abs(mono[lo:hi]), np.ones(width) / width, mode="same")
    return (lo + int(np.argmax(envelope >= 0.5 * envelope.max()))) / sample_rate


def rendered_start_errors(path: Path, timing, truth: np.ndarray) -> np.ndarray:
    """Per rendered bar: where the true downbeat's hit lands in the rendered audio, against
    where ground truth puts it (its offset from the true downbeat, stretched), in seconds.
    This is the slicer's error plus Rubber Band's transient placement."""
    audio, sr = read_audio(path)
    rendered = render_bars(audio, sr, timing, GRID, FILTERS)
    source = audio.mean(axis=0)
    errors = []
    for bar, row in zip(rendered.bars, rendered.rows, strict=True):
        downbeat = truth[np.argmin(np.abs(truth - row["start_s"]))]
        hit = onset_time(source, sr, downbeat)
        expected = (hit - downbeat) * row["stretch"]  # ground truth: the downbeat at sample 0
        landed = onset_time(bar[0], GRID.sample_rate, expected + (downbeat - row["start_s"]))
        errors.append(landed - expected)
    return np.abs(np.asarray(errors))


def truth_sections(row: dict) -> list[tuple[float, float, float]]:
    """(start, end, bpm) of each constant-tempo stretch of the truth."""
    downbeats_true = np.array([float(t) for t in row["downbeats"].split()])
    end = float(downbeats_true[-1])
    if "sections" not in row or not isinstance(row["sections"], str):
        return [(float(downbeats_true[0]), end, float(row["bpm"]))]
    parts = [part.split(":") for part in row["sections"].split(";")]
    starts = [float(p[0]) for p in parts] + [end]
    return [(starts[i], starts[i + 1], float(p[1])) for i, p in enumerate(parts)]


def tempo_right(bpm_at, sections: list[tuple[float, float, float]]) -> bool:
    """The tracker's tempo at the middle of every truth section within 1 % of the truth."""
    return all(abs(bpm_at((a + b) / 2) - bpm) / bpm <= 0.01 for a, b, bpm in sections)


def ours(path: Path, truth: np.ndarray, sections, min_trust: tuple[float, float]) -> dict:
    timing, info = analyze_track(path, OPTIONS)
    lines = [s.bar_starts(info["duration"]) for s in timing.sections]
    found = np.unique(np.concatenate(lines))
    bar_trust = info.get("bar_trust", [])
    starts = np.array([b["start_s"] for b in bar_trust])
    values = np.array([b["trust"] for b in bar_trust])
    bars = [start for section_lines in lines for start in section_lines[:-1]]
    track_min, bar_min = min_trust
    kept = 0
    if info.get("trust", 1.0) >= track_min:
        for start in bars:
            nearest = int(np.argmin(np.abs(starts - start))) if len(starts) else -1
            trusted = nearest < 0 or values[nearest] >= bar_min
            kept += bool(trusted)

    def bpm_at(second: float) -> float:
        for section in timing.sections:
            if section.start <= second <= section.end:
                return float(60.0 / np.median(np.diff(section.warp.seconds)))
        return float(info["bpm"])

    error = np.abs(found[:, None] - truth[None, :]).min(axis=1) if len(found) else np.ones(1)
    return {
        "f_measure": mir_eval.beat.f_measure(truth, found, f_measure_threshold=0.07),
        "tempo_ok": tempo_right(bpm_at, sections),
        "bars": len(bars),
        "kept": kept,
        "trust": info.get("trust", 1.0),
        "bar_start_error_ms": float(np.median(error) * 1000),
        "timing": timing,
    }


def raw_madmom(path: Path, truth: np.ndarray, sections) -> dict:
    audio, sample_rate = read_audio(path)
    tracked = downbeats.track_madmom(
        audio.mean(axis=0), sample_rate, list(OPTIONS.meters), OPTIONS.min_bpm, OPTIONS.max_bpm
    )
    duration = audio.shape[1] / sample_rate
    found = tracked.warp.bar_starts(duration)
    return {
        "raw_f_measure": mir_eval.beat.f_measure(truth, found, f_measure_threshold=0.07),
        "raw_tempo_ok": tempo_right(lambda _: tracked.bpm, sections),
        "raw_bars": max(len(found) - 1, 0),
    }


def evaluate_track(row: dict, root: Path, rendered: bool, min_trust) -> dict:
    truth = np.array([float(t) for t in row["downbeats"].split()])
    sections = truth_sections(row)
    path = root / row["path"]
    result = {"path": row["path"], "style": row["style"], "bpm": row["bpm"], "failed": ""}
    try:
        result.update(raw_madmom(path, truth, sections))
    except Exception as err:  # a failure is a result here, not a crash
        result.update(raw_f_measure=0.0, raw_tempo_ok=False, raw_bars=0)
        result["failed"] = f"raw: {err}"
    try:
        found = ours(path, truth, sections, min_trust)
    except Exception as err:
        result.update(f_measure=0.0, tempo_ok=False, bars=0, kept=0, trust=0.0)
        result["failed"] += f" ours: {err}"
        return result
    timing = found.pop("timing")
    result.update(found)
    if rendered and GRID.beats_per_bar in timing.meters:
        result["rendered_start_error_ms"] = float(
            np.nanmedian(rendered_start_errors(path, timing, truth)) * 1000
        )
    return result


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """The acceptance figures, ours beside raw madmom's, with targets."""
    wrong = ~results.tempo_ok | (results.f_measure < 0.9)
    raw_wrong = ~results.raw_tempo_ok | (results.raw_f_measure < 0.9)
    kept = results.kept.sum()
    good = results[~wrong]
    rows = [
        ("tracks", len(results), len(results), "", None),
        (
            "downbeat F-measure, mean",
            results.f_measure.mean(),
            results.raw_f_measure.mean(),
            ">= 0.92",
            results.f_measure.mean() >= 0.92,
        ),
        (
            "tempo within 1 %, share of tracks",
            results.tempo_ok.mean(),
            results.raw_tempo_ok.mean(),
            ">= 0.97",
            results.tempo_ok.mean() >= 0.97,
        ),
        ("wrongly tracked tracks", int(wrong.sum()), int(raw_wrong.sum()), "", None),
        ("bars kept", int(kept), int(results.raw_bars.sum()), "", None),
        (
            "share of kept bars from wrong tracks",
            results.kept[wrong].sum() / max(kept, 1),
            results.raw_bars[raw_wrong].sum() / max(results.raw_bars.sum(), 1),
            "<= 0.05",
            results.kept[wrong].sum() / max(kept, 1) <= 0.05,
        ),
        (
            "share of right tracks' bars dropped by trust",
            1 - good.kept.sum() / max(good.bars.sum(), 1),
            0.0,
            "<= 0.10",
            1 - good.kept.sum() / max(good.bars.sum(), 1) <= 0.10,
        ),
        (
            "median bar-start error (ms), slicer",
            results.bar_start_error_ms.median(),
            np.nan,
            "<= 10",
            results.bar_start_error_ms.median() <= 10,
        ),
    ]
    if "rendered_start_error_ms" in results:
        value = results.rendered_start_error_ms.median()
        rows.append(
            ("median bar-start error (ms), rendered", value, np.nan, "<= 7.8", value <= 7.8)
        )
    return pd.DataFrame(rows, columns=["figure", "ours", "raw madmom", "target", "met"])


def corpus(name: str, root: Path, args) -> pd.DataFrame:
    if name == "synthetic":
        return build(root, bench_specs(args.per_style, (90, 175), args.bars, args.seed))
    if args.dev_dir and (args.dev_dir / "truth.csv").is_file():
        return pd.read_csv(args.dev_dir / "truth.csv")
    from bench.dev_corpus import build_dev_corpus

    return build_dev_corpus(root, seed=args.seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", nargs="+", default=["synthetic", "dev"], choices=["synthetic", "dev"]
    )
    parser.add_argument("--dev-dir", type=Path, help="an already built dev corpus")
    parser.add_argument("--per-style", type=int, default=8)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, help="also write the tables here (Markdown)")
    args = parser.parse_args()
    min_trust = trust_thresholds()
    report = []
    for name in args.corpus:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            truth = corpus(name, root, args)
            if name == "dev" and args.dev_dir and (args.dev_dir / "truth.csv").is_file():
                root = args.dev_dir
            work = partial(
                evaluate_track, root=root, rendered=name == "synthetic", min_trust=min_trust
            )
            with ProcessPoolExecutor(args.jobs) as pool:
                results = pd.DataFrame(list(pool.map(work, truth.to_dict("records"))))
        minutes = truth.duration.sum() / 60 if "duration" in truth else float("nan")
        table = summarise(results)
        title = f"{name} corpus: {len(results)} tracks, {minutes:.1f} min"
        fmt = lambda v: f"{v:.3f}"  # noqa: E731
        print(f"\n{title}\n{table.to_string(index=False, float_format=fmt)}")
        misses = results[(results.f_measure < 0.9) | ~results.tempo_ok]
        if len(misses):
            print("\ntracks below target (ours):")
            columns = ["path", "bpm", "f_measure", "tempo_ok", "trust", "kept", "bars", "failed"]
            print(misses[columns].to_string(index=False, float_format=fmt))
        report.append(f"## {title}\n\n{table.to_markdown(index=False, floatfmt='.3f')}\n")
    if args.out:
        thresholds = f"analyze.min_trust {min_trust[0]}, bars.min_trust {min_trust[1]}"
        args.out.write_text(
            "# bench/prep_accuracy.py\n\nTrust filter: " + thresholds + "\n\n" + "\n".join(report)
        )


if __name__ == "__main__":
    main()
