"""Build the demo corpus's train/valid/test splits for the training benchmarks, with the
pipeline's stages when their tools are installed, or rendered straight onto the bar grid when
they are not (a bare GPU image has no madmom, Rubber Band, soundfile or librosa).

    python bench/demo_splits.py --out-dir data/splits                 # stages if possible
    python bench/demo_splits.py --out-dir /tmp/splits --method direct  # no analysis tools
    python bench/demo_splits.py --out-dir /tmp/toy --method direct --toy

``stages`` runs synth -> analyze -> bars -> split with ``python -m pipeline.stages.<name>``, the
commands of dvc.yaml, into ``--work-dir`` (default: the folder above ``--out-dir``).

``direct`` renders each demo track (params.yaml's ``demo`` section: styles, tracks per style,
bars per track, seed) at the grid's tempo and sample rate (the ``bars`` section), cuts it at its
exact downbeats, mixes to the grid's channels, normalises every bar's loudness to
``bars.normalize_dbfs`` and splits by track with the split stage's rule: the same folder layout
(``{train,valid,test}.npz``, ``info.json``, ``grid.json``) without beat tracking or time
stretching. Swing, humanisation, pattern variants and timbres vary as in the demo corpus; the
tempo does not (every track is played at the grid's tempo).

``--toy``: three styles, two tracks each, four bars at 8 kHz (seconds on a CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.compat import importable, install_fallbacks
from pipeline.yamlio import parse_yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = ("synth", "analyze", "bars", "split")
TOY_DEMO = {"styles": ["techno", "house", "breakbeat"], "tracks_per_style": 2, "bars_per_track": 4}
TOY_BARS = {"sample_rate": 8000}
CLIP_LEVEL = 10 ** (-1.0 / 20)  # bars are never scaled past -1 dBFS peak


def read_params(path: Path, toy: bool = False) -> dict[str, Any]:
    """params.yaml as a dict (not validated here: the stages validate it themselves); ``toy``
    shrinks the demo corpus and the grid's sample rate."""
    params = parse_yaml(Path(path).read_text())
    if toy:
        params["demo"].update(TOY_DEMO)
        params["bars"].update(TOY_BARS)
        params["analyze"]["jobs"] = params["bars"]["jobs"] = 1
    return params


def stage_tools_missing(params: dict[str, Any]) -> list[str]:
    """What the stages need and this machine lacks (empty: the stages can run)."""
    method = params["analyze"]["method"]
    modules = ["soundfile", "jsonschema", "tqdm", "pyrubberband", "librosa"]
    modules += ["madmom"] if method == "madmom" else []
    missing = [name for name in modules if not importable(name)]
    if shutil.which("rubberband") is None:
        missing.append("rubberband (command-line tool)")
    return missing


def build_with_stages(params: dict[str, Any], out_dir: Path, work_dir: Path) -> None:
    """synth -> analyze -> bars -> split, as dvc.yaml runs them, into ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    params_file = work_dir / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    audio, analysis = work_dir / "raw" / "demo", work_dir / "interim" / "analysis"
    bars = work_dir / "bars"
    cache = work_dir / "cache"
    commands = {
        "synth": ["--out-dir", audio],
        "analyze": ["--audio-dir", audio, "--out-dir", analysis, "--cache-dir", cache],
        "bars": [
            "--audio-dir",
            audio,
            "--analysis-dir",
            analysis,
            "--out-dir",
            bars,
            "--cache-dir",
            cache,
        ],
        "split": ["--bars-dir", bars, "--out-dir", out_dir],
    }
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    for stage in STAGES:
        command = [sys.executable, "-m", f"pipeline.stages.{stage}", "--params", str(params_file)]
        command += [str(arg) for arg in commands[stage]]
        print(f"  {' '.join(command)}", flush=True)
        subprocess.run(command, check=True, cwd=REPO, env=env)


def _grid(bars: dict[str, Any]) -> dict[str, Any]:
    sample_rate, bpm = int(bars["sample_rate"]), float(bars["bpm"])
    beats = int(bars["beats_per_bar"])
    return {
        "sample_rate": sample_rate,
        "bpm": bpm,
        "beats_per_bar": beats,
        "channels": int(bars["channels"]),
        "bar_samples": round(sample_rate * 60.0 / bpm * beats),
    }


def _normalise(bar: np.ndarray, target_dbfs: float | None) -> np.ndarray:
    if target_dbfs is None:
        return bar
    rms = float(np.sqrt(np.mean(np.square(bar, dtype=np.float64))))
    gain = 10 ** (target_dbfs / 20) / max(rms, 1e-9)
    gain = min(gain, CLIP_LEVEL / max(float(np.abs(bar).max()), 1e-9))
    return bar * gain


def render_bars(params: dict[str, Any]) -> tuple[np.ndarray, list[str], list[str], dict]:
    """Demo bars on the grid, float32 ``[N, C, T]``, with each bar's track name and style."""
    install_fallbacks(("soundfile",))  # synth imports it to write wav files; not used here
    from pipeline.data.synth import random_specs, render_track

    demo, section = params["demo"], params["bars"]
    grid = _grid(section)
    sr, length, channels = grid["sample_rate"], grid["bar_samples"], grid["channels"]
    specs = random_specs(
        demo["tracks_per_style"],
        demo["styles"],
        tuple(demo["bpm_range"]),
        demo["bars_per_track"],
        demo["seed"],
    )
    bars, tracks, styles = [], [], []
    counters: dict[str, int] = {}
    silence = section.get("silence_dbfs")
    for spec in specs:
        spec = dataclasses.replace(spec, bpm=grid["bpm"], beats_per_bar=grid["beats_per_bar"])
        index = counters[spec.style] = counters.get(spec.style, -1) + 1
        audio, downbeats, _ = render_track(spec, sr)
        mixed = audio.mean(axis=0, keepdims=True) if channels == 1 else audio[:channels]
        for start_s in downbeats[:-1]:
            start = round(float(start_s) * sr)
            bar = mixed[:, start : start + length]
            if bar.shape[1] < length:
                continue
            rms = float(np.sqrt(np.mean(np.square(bar, dtype=np.float64))))
            if silence is not None and 20 * np.log10(max(rms, 1e-12)) < silence:
                continue
            bars.append(_normalise(bar, section.get("normalize_dbfs")).astype(np.float32))
            tracks.append(f"{spec.style}/{spec.style}_{index:03d}")
            styles.append(spec.style)
    return np.stack(bars), tracks, styles, grid


def build_direct(params: dict[str, Any], out_dir: Path) -> None:
    """Rendered demo bars split by track, in the split stage's layout."""
    from pipeline.data.splits import SPLITS, assign_splits

    bars, tracks, styles, grid = render_bars(params)
    section = params["split"]
    assignment = assign_splits(
        tracks, section["valid_fraction"], section["test_fraction"], section["seed"]
    )
    classes = sorted(set(styles))
    labels = np.array([classes.index(style) for style in styles], np.int64)
    pcm = np.clip(np.round(bars * 32767), -32768, 32767).astype(np.int16)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts, track_counts = {}, {}
    for split in SPLITS:
        rows = np.array([assignment[t] == split for t in tracks], bool)
        np.savez(
            out_dir / f"{split}.npz",
            bars=pcm[rows] if rows.any() else np.zeros((0, grid["channels"], 1), np.int16),
            labels=labels[rows],
            sample_rate=np.int64(grid["sample_rate"]),
        )
        counts[split] = int(rows.sum())
        track_counts[split] = len({t for t, keep in zip(tracks, rows, strict=True) if keep})
    (out_dir / "grid.json").write_text(json.dumps(grid, indent=2))
    info = {"classes": classes, **grid, "counts": counts, "tracks": track_counts}
    info["built_by"] = "bench/demo_splits.py (direct: rendered on the grid, no analysis)"
    (out_dir / "info.json").write_text(json.dumps(info, indent=2))


def build_splits(
    out_dir: Path,
    params_path: Path = REPO / "params.yaml",
    method: str = "auto",
    toy: bool = False,
    work_dir: Path | None = None,
) -> str:
    """Build the splits into ``out_dir``; returns the method used (``stages`` or ``direct``)."""
    params = read_params(params_path, toy)
    if method in ("auto", "stages"):
        missing = stage_tools_missing(params)
        if not missing:
            method = "stages"
        elif method == "stages":
            raise SystemExit(f"the stages need what is not installed: {', '.join(missing)}")
        else:
            print(f"  not installed: {', '.join(missing)}; rendering the bars on the grid instead")
            method = "direct"
    if method == "stages":
        build_with_stages(params, out_dir, work_dir or out_dir.parent)
    else:
        build_direct(params, out_dir)
    return method


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", type=Path, default=Path("data/splits"))
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    p.add_argument("--method", choices=("auto", "stages", "direct"), default="auto")
    p.add_argument("--work-dir", type=Path, help="stages: where their outputs go")
    p.add_argument("--toy", action="store_true", help="a tiny corpus at 8 kHz")
    args = p.parse_args()
    method = build_splits(args.out_dir, args.params, args.method, args.toy, args.work_dir)
    info = json.loads((args.out_dir / "info.json").read_text())
    print(f"splits ({method}) -> {args.out_dir}: {info.get('counts')}")


if __name__ == "__main__":
    main()
