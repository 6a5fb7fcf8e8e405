"""Peak memory and throughput of analysing long recordings (DJ mixes).

Writes 1/10/60-minute test files by tiling a synthesised track (in blocks: the hour is never
in memory), then runs, each in a fresh subprocess, ``compute_activations`` and the whole
``analyze_track``, and prints peak RSS, wall/CPU seconds and audio seconds per CPU second
against the targets.

    python bench/analyze_memory.py --minutes 1 10 60 [--skip-analysis] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
TARGET_RSS_GB = 1.5  # at 60 minutes
TARGET_SPEED = 40.0  # audio seconds per CPU second (issue "Bars that start on the downbeat")
SAMPLE_RATE = 44_100


def write_tiled(path: Path, minutes: float, seed: int = 0) -> None:
    """A stereo 16-bit WAV of ``minutes`` made of one synthesised track repeated."""
    from pipeline.data.synth import SynthTrackSpec, render_track

    spec = SynthTrackSpec("techno", bpm=128.0, n_bars=32, swing=0.05, seed=seed)
    track = render_track(spec, SAMPLE_RATE)[0].T  # [frames, 2], about a minute
    remaining = round(minutes * 60 * SAMPLE_RATE)
    with sf.SoundFile(path, "w", SAMPLE_RATE, 2, "PCM_16", format="WAV") as out:
        while remaining > 0:
            block = track[:remaining]
            out.write(block)
            remaining -= len(block)


def run_child(job: str, path: Path) -> dict:
    """Run ``job`` on ``path`` in a fresh interpreter; its own timings plus its rusage."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", job, str(path)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        return {"error": f"exit status {process.returncode}"}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_gb"] = usage.ru_maxrss * 1024 / 1e9  # Linux: KiB
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def child(job: str, path: Path) -> None:
    """Imports and model loading first (not timed), then the timed call; JSON on stdout."""
    from pipeline.audio import downbeats
    from pipeline.audio.activations import compute_activations
    from pipeline.audio.analysis import AnalyzeOptions, analyze_track

    downbeats.downbeat_network()
    duration = sf.info(str(path)).duration
    wall, cpu = time.perf_counter(), time.process_time()
    if job == "activations":
        compute_activations(path)
    else:
        analyze_track(path, AnalyzeOptions())
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    print(json.dumps({"audio_s": duration, "wall_s": wall, "cpu_s": cpu}))


def report(rows: list[tuple[str, float, dict]]) -> str:
    lines = [
        f"{'job':<12} {'min':>4} {'peak RSS GB':>11} {'wall s':>7} {'CPU s':>7} "
        f"{'proc CPU s':>10} {'audio-s/CPU-s':>13}  targets",
        "-" * 90,
    ]
    for job, minutes, r in rows:
        if "error" in r:
            lines.append(f"{job:<12} {minutes:>4g} {r['error']}")
            continue
        speed = r["audio_s"] / r["cpu_s"]
        rss_ok = "-" if minutes < 60 else ("met" if r["peak_rss_gb"] <= TARGET_RSS_GB else "MISSED")
        speed_ok = "met" if speed >= TARGET_SPEED else "MISSED"
        lines.append(
            f"{job:<12} {minutes:>4g} {r['peak_rss_gb']:>11.2f} {r['wall_s']:>7.1f} "
            f"{r['cpu_s']:>7.1f} {r['process_cpu_s']:>10.1f} {speed:>13.1f}  "
            f"RSS<={TARGET_RSS_GB} GB@60min: {rss_ok}; >={TARGET_SPEED:g}: {speed_ok}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--skip-analysis", action="store_true")
    parser.add_argument("--keep", type=Path, help="write the test files here and keep them")
    parser.add_argument("--child", nargs=2, metavar=("JOB", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory(prefix="analyze_memory_") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for minutes in args.minutes:
            path = folder / f"tiled_{minutes:g}min.wav"
            if not path.exists():
                write_tiled(path, minutes)
            jobs = ["activations"]
            if not args.skip_analysis:
                jobs.append("analyze")
            for job in jobs:
                rows.append((job, minutes, run_child(job, path)))
                print(report(rows[-1:]).splitlines()[-1], flush=True)
        print()
        print(report(rows))


if __name__ == "__main__":
    main()
