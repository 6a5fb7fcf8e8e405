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
import hashlib
import importlib
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

import mir_eval
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.corpus import bench_specs, build
from pipeline.audio import downbeats
from pipeline.audio.activations import HEAD_SECONDS, TrackActivations, compute_activations
from pipeline.audio.analysis import AnalyzeOptions, analyze_track, track_activations
from pipeline.audio.io import head_rms_dbfs, read_audio
from pipeline.audio.render import BarFilters, BarGrid, render_bars
from pipeline.yamlio import parse_yaml

ROOT = Path(__file__).resolve().parents[1]
GRID = BarGrid(sample_rate=16000, bpm=120, beats_per_bar=4, channels=1)
FILTERS = BarFilters(normalize_dbfs=None, max_tempo_change=10.0, min_stretch=0.1, max_stretch=10)
OPTIONS = AnalyzeOptions()  # the defaults users get: meters 3 and 4, 80-180 BPM
BAR_TOLERANCE = 0.035  # seconds: a kept bar further than this from a true bar line is wrong


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


def bar_figures(starts: np.ndarray, truth: np.ndarray, prefix: str = "") -> dict:
    """Kept-bar precision and recall counts for bars starting at ``starts``: a kept bar is
    right when it starts within BAR_TOLERANCE of a true bar line; a true bar (``truth`` holds
    every bar line, the closing one included) is recalled when a kept bar starts on it."""
    starts = np.asarray(starts, dtype=np.float64)
    true_starts = truth[:-1]
    if len(starts) and len(truth):
        error = np.abs(starts[:, None] - truth[None, :]).min(axis=1)
        hit = np.abs(true_starts[:, None] - starts[None, :]).min(axis=1) <= BAR_TOLERANCE
    else:
        error, hit = np.zeros(0), np.zeros(len(true_starts), dtype=bool)
    return {
        f"{prefix}kept": len(starts),
        f"{prefix}kept_right": int(np.sum(error <= BAR_TOLERANCE)),
        f"{prefix}true_bars": len(true_starts),
        f"{prefix}true_kept": int(hit.sum()),
        f"{prefix}start_errors": error,
    }


def kept_starts(timing, info: dict, min_trust: tuple[float, float]) -> np.ndarray:
    """Bar starts that analyze and bars keep: the track's trust, then each bar's."""
    lines = [s.bar_starts(info["duration"]) for s in timing.sections]
    bars = np.array([start for section_lines in lines for start in section_lines[:-1]])
    track_min, bar_min = min_trust
    if info.get("trust", 1.0) < track_min or not len(bars):
        return np.zeros(0)
    bar_trust = info.get("bar_trust", [])
    if not bar_trust:
        return bars
    starts = np.array([b["start_s"] for b in bar_trust])
    values = np.array([b["trust"] for b in bar_trust])
    nearest = np.abs(bars[:, None] - starts[None, :]).argmin(axis=1)
    return bars[values[nearest] >= bar_min]


def activations(path: Path, cache: Path | None) -> TrackActivations:
    """The recording's activations, from ``cache`` when they were computed before."""
    if cache is None:
        return compute_activations(path)
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    stored = cache / f"{key}.npz"
    if stored.is_file():
        with np.load(stored) as data:
            arrays = {name: data[name] for name in data.files}
        if "head_dbfs" not in arrays:  # cached before the head level was recorded
            arrays["head_dbfs"] = np.array(head_rms_dbfs(path, HEAD_SECONDS))
        scalars = {name: arrays.pop(name).item() for name in SCALARS}
        return TrackActivations(**arrays, **scalars)
    acts = compute_activations(path)
    cache.mkdir(parents=True, exist_ok=True)
    fields = {name: getattr(acts, name) for name in ARRAYS + SCALARS}
    temporary = stored.with_suffix(".tmp.npz")
    np.savez(temporary, **fields)
    temporary.replace(stored)
    return acts


ARRAYS = ("beat", "downbeat", "onset", "onset_low", "chroma")
SCALARS = ("duration", "sample_rate", "channels", "rms_dbfs", "head_dbfs")


def ours(path: Path, acts: TrackActivations, truth: np.ndarray, sections, min_trust) -> dict:
    try:
        timing, info = track_activations(acts, OPTIONS)
        info = {"duration": acts.duration, **info}
    except ValueError:  # the madmom path found no bars: the full analysis falls back
        timing, info = analyze_track(path, OPTIONS)
    lines = [s.bar_starts(info["duration"]) for s in timing.sections]
    found = np.unique(np.concatenate(lines))

    def bpm_at(second: float) -> float:
        for section in timing.sections:
            if section.start <= second <= section.end:
                warp = section.warp
                return float(60.0 / np.median(np.diff(warp.seconds) / np.diff(warp.beats)))
        return float(info["bpm"])

    kept = kept_starts(timing, info, min_trust)
    return {
        "f_measure": mir_eval.beat.f_measure(truth, found, f_measure_threshold=0.07),
        "tempo_ok": tempo_right(bpm_at, sections),
        "bars": sum(max(len(x) - 1, 0) for x in lines),
        "trust": info.get("trust", 1.0),
        "meter_found": info.get("meter", 0),
        "bpm_found": info.get("bpm", 0.0),
        "loop_found": bool(info.get("loop", False)),
        "phase_margin": info.get("phase_margin", np.nan),
        "first_line": float(found[0]) if len(found) else np.nan,
        **bar_figures(kept, truth),
        "timing": timing,
    }


def raw_madmom(acts: TrackActivations, truth: np.ndarray, sections) -> dict:
    """madmom's own DBN over the same RNN activations, every bar kept."""
    tracked = downbeats.track_madmom_activations(
        np.stack([acts.beat, acts.downbeat], axis=1),
        list(OPTIONS.meters),
        OPTIONS.min_bpm,
        OPTIONS.max_bpm,
    )
    found = tracked.warp.bar_starts(acts.duration)
    return {
        "raw_f_measure": mir_eval.beat.f_measure(truth, found, f_measure_threshold=0.07),
        "raw_tempo_ok": tempo_right(lambda _: tracked.bpm, sections),
        **bar_figures(found[:-1], truth, prefix="raw_"),
    }


def evaluate_track(row: dict, root: Path, rendered: bool, min_trust, cache: Path | None) -> dict:
    truth = np.array([float(t) for t in row["downbeats"].split()])
    sections = truth_sections(row)
    path = root / row["path"]
    result = {
        "path": row["path"],
        "origin": row.get("origin", ""),
        "kind": row.get("kind", "track"),
        "style": row["style"],
        "bpm": row["bpm"],
        "meter": row.get("meter", 0),
        "duration": row.get("duration", np.nan),
        "failed": "",
    }
    acts = activations(path, cache)
    try:
        result.update(raw_madmom(acts, truth, sections))
    except Exception as err:  # a failure is a result here, not a crash
        result.update(raw_f_measure=0.0, raw_tempo_ok=False, **bar_figures([], truth, "raw_"))
        result["failed"] = f"raw: {err}"
    try:
        found = ours(path, acts, truth, sections, min_trust)
    except Exception as err:
        result.update(f_measure=0.0, tempo_ok=False, bars=0, trust=0.0, **bar_figures([], truth))
        result["failed"] += f" ours: {err}"
        return result
    timing = found.pop("timing")
    result.update(found)
    if rendered and GRID.beats_per_bar in timing.meters:
        result["rendered_start_error_ms"] = float(
            np.nanmedian(rendered_start_errors(path, timing, truth)) * 1000
        )
    return result


def figures(results: pd.DataFrame, prefix: str = "") -> dict:
    """The acceptance figures of a set of tracks, for ours (``prefix`` "") or raw madmom."""
    kept = int(results[f"{prefix}kept"].sum())
    errors = np.concatenate([np.asarray(e) for e in results[f"{prefix}start_errors"]] or [[]])
    out = {
        "recordings": len(results),
        "kept_bars": kept,
        "kept_bar_precision": results[f"{prefix}kept_right"].sum() / kept if kept else None,
        "true_bars": int(results[f"{prefix}true_bars"].sum()),
        "recall": results[f"{prefix}true_kept"].sum()
        / max(int(results[f"{prefix}true_bars"].sum()), 1),
        "downbeat_f_mean": float(results[f"{prefix}f_measure"].mean()),
        "tempo_within_1pct": float(results[f"{prefix}tempo_ok"].mean()),
        "median_bar_start_error_ms": float(np.median(errors) * 1000) if len(errors) else None,
        "tracks_with_every_kept_bar_wrong": int(
            ((results[f"{prefix}kept"] > 0) & (results[f"{prefix}kept_right"] == 0)).sum()
        ),
    }
    if not prefix and "loop_found" in results:
        loops = results[results.kind == "loop"]
        out["loops"] = len(loops)
        out["loops_starting_on_first_downbeat"] = int(
            (loops.first_line.abs() <= BAR_TOLERANCE).sum()
        )
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in out.items()}


TARGETS = {
    "kept_bar_precision": (">= 0.97", lambda v: v is not None and v >= 0.97),
    "recall": (">= 0.85", lambda v: v >= 0.85),
    "downbeat_f_mean": (">= 0.93", lambda v: v >= 0.93),
    "tempo_within_1pct": (">= 0.97", lambda v: v >= 0.97),
}
ORIGIN_PRECISION = 0.93


def summarise(results: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The figures overall and per origin, ours beside raw madmom's, with targets."""
    overall = {"ours": figures(results), "raw_madmom": figures(results, "raw_")}
    origins = {
        origin: {"ours": figures(group), "raw_madmom": figures(group, "raw_")}
        for origin, group in results.groupby("origin", sort=True)
    }
    rows = []
    for key, value in overall["ours"].items():
        target, check = TARGETS.get(key, ("", None))
        rows.append(
            (key, value, overall["raw_madmom"].get(key), target, check(value) if check else None)
        )
    if "rendered_start_error_ms" in results:
        value = results.rendered_start_error_ms.median()
        rows.append(("median bar-start error (ms), rendered", value, None, "<= 7.8", value <= 7.8))
    table = pd.DataFrame(rows, columns=["figure", "ours", "raw madmom", "target", "met"])
    return table, {"recordings": len(results), "overall": overall, "origins": origins}


def origin_table(origins: dict) -> pd.DataFrame:
    keys = (
        "kept_bar_precision",
        "recall",
        "downbeat_f_mean",
        "tempo_within_1pct",
        "median_bar_start_error_ms",
    )
    rows = []
    for origin, pair in origins.items():
        row = {"origin": origin, "recordings": pair["ours"]["recordings"]}
        for key in keys:
            row[key] = pair["ours"][key]
            row[f"raw {key}"] = pair["raw_madmom"][key]
        row["precision >= 0.93"] = (pair["ours"]["kept_bar_precision"] or 0) >= ORIGIN_PRECISION
        rows.append(row)
    return pd.DataFrame(rows)


def corpus(name: str, root: Path, args) -> tuple[pd.DataFrame, Path]:
    """The truth table and the folder its paths are relative to."""
    if name == "synthetic":
        table = build(root, bench_specs(args.per_style, (90, 175), args.bars, args.seed))
        return table.assign(origin="synthetic"), root
    if name == "thirdparty":
        if not args.thirdparty_dir or not (args.thirdparty_dir / "truth.csv").is_file():
            sys.exit("--thirdparty-dir: a folder with truth.csv (bench/thirdparty_corpus.py)")
        return pd.read_csv(args.thirdparty_dir / "truth.csv"), args.thirdparty_dir
    if args.dev_dir and (args.dev_dir / "truth.csv").is_file():
        table, folder = pd.read_csv(args.dev_dir / "truth.csv"), args.dev_dir
    else:
        from bench.dev_corpus import build_dev_corpus

        table, folder = build_dev_corpus(root, seed=args.seed), root
    return table.assign(origin="music21-arranged"), folder


def main() -> None:
    global OPTIONS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        nargs="+",
        default=["synthetic", "dev"],
        choices=["synthetic", "dev", "thirdparty"],
    )
    parser.add_argument("--dev-dir", type=Path, help="an already built dev corpus")
    parser.add_argument(
        "--thirdparty-dir", type=Path, help="the third-party corpus (bench/thirdparty_corpus.py)"
    )
    parser.add_argument("--per-style", type=int, default=8)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--min-bpm", type=float, default=AnalyzeOptions.min_bpm)
    parser.add_argument("--max-bpm", type=float, default=AnalyzeOptions.max_bpm)
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="MODULE.NAME=VALUE",
        help="calibration: set a constant of a pipeline.audio module for this run, "
        "e.g. meter.SWITCH_PENALTY=16 trust.PHASE_MARGIN_FULL=2",
    )
    parser.add_argument("--cache", type=Path, help="keep each recording's activations here")
    parser.add_argument("--out", type=Path, help="also write the tables here (Markdown)")
    parser.add_argument("--json", type=Path, help="also write the figures here (JSON)")
    parser.add_argument("--tracks", type=Path, help="also write per-recording results (CSV)")
    args = parser.parse_args()
    OPTIONS = replace(OPTIONS, min_bpm=args.min_bpm, max_bpm=args.max_bpm)
    for setting in args.set:  # worker processes are forked: they see the modules as set here
        name, value = setting.split("=", 1)
        module, constant = name.rsplit(".", 1)
        target = importlib.import_module(f"pipeline.audio.{module}")
        if not hasattr(target, constant):
            sys.exit(f"--set {setting}: pipeline.audio.{module} has no {constant}")
        setattr(target, constant, type(getattr(target, constant))(float(value)))
    min_trust = trust_thresholds()
    report, every = [], []
    by_corpus = {}
    fmt = lambda v: f"{v:.3f}"  # noqa: E731
    for name in args.corpus:
        with tempfile.TemporaryDirectory() as tmp:
            truth, root = corpus(name, Path(tmp), args)
            work = partial(
                evaluate_track,
                root=root,
                rendered=name == "synthetic",
                min_trust=min_trust,
                cache=args.cache,
            )
            with ProcessPoolExecutor(args.jobs) as pool:
                results = pd.DataFrame(list(pool.map(work, truth.to_dict("records"))))
        results.insert(0, "corpus", name)
        every.append(results)
        minutes = truth.duration.sum() / 60 if "duration" in truth else float("nan")
        table, summary = summarise(results)
        by_corpus[name] = summary
        title = f"{name} corpus: {len(results)} recordings, {minutes:.1f} min"
        origins = origin_table(summary["origins"])
        print(f"\n{title}\n{table.to_string(index=False, float_format=fmt)}")
        print(f"\nper origin\n{origins.to_string(index=False, float_format=fmt)}")
        misses = results[(results.f_measure < 0.9) | ~results.tempo_ok]
        if len(misses):
            print("\nrecordings below target (ours):")
            columns = ["path", "bpm", "f_measure", "tempo_ok", "trust", "kept", "kept_right"]
            print(misses[columns].to_string(index=False, float_format=fmt))
        report.append(
            f"## {title}\n\n{table.to_markdown(index=False, floatfmt='.3f')}\n\n"
            f"Per origin:\n\n{origins.to_markdown(index=False, floatfmt='.3f')}\n"
        )
    combined = pd.concat(every, ignore_index=True)
    if args.tracks:
        combined.drop(columns=["start_errors", "raw_start_errors"]).to_csv(args.tracks, index=False)
    if args.json:
        _, summary = summarise(combined)
        summary["corpora"] = by_corpus
        args.json.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    if args.out:
        thresholds = f"analyze.min_trust {min_trust[0]}, bars.min_trust {min_trust[1]}"
        args.out.write_text(
            "# bench/prep_accuracy.py\n\nTrust filter: " + thresholds + "\n\n" + "\n".join(report)
        )


if __name__ == "__main__":
    main()
