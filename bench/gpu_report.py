"""Assemble bench/gpu_check.sh's results file from what its parts left in the work folder.

    python bench/gpu_report.py --work-dir /tmp/bargan-gpu-check --out bench/results/x.md

Reads ``status.tsv`` (part, exit status, seconds), ``env.txt`` (machine lines),
``throughput-<arch>.json`` (bench/train_throughput.py --json), ``learning.out`` and
``learning.json`` (bench/learning_check.py) and the parts' logs; whatever is missing is reported
as missing. Standard library only, so it runs whatever else is broken.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

THROUGHPUT_TARGET = 2.0  # WaveGAN preset: bf16 + compile over fp32 eager, batch 64
FRECHET_TARGET = 3.0  # the preset's Fréchet distance falls this much from step 0
BASE_MODE, FAST_MODE = "fp32 eager", "bf16+compile"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _status(work: Path) -> list[tuple[str, int, float]]:
    rows = []
    path = work / "status.tsv"
    if path.is_file():
        for line in path.read_text().splitlines():
            part, rc, seconds = [*line.split("\t"), "", "", ""][:3]
            try:
                rows.append((part, int(rc), float(seconds)))
            except ValueError:
                continue
    return rows


def _describe_rc(rc: int) -> str:
    if rc == 0:
        return "ok"
    if rc in (124, 137):
        return f"timed out (exit {rc})"
    return f"failed (exit {rc})"


def merged_throughput(work: Path, toy: bool) -> dict[str, Any]:
    """Every architecture's throughput rows in one record (the machine-readable results file
    beside the report: ``bargan reproduce`` estimates GPU hours from it)."""
    table_key = "cpu" if toy else "gpu"
    merged: dict[str, Any] = {"rows": {}}
    for path in sorted(work.glob("throughput-*.json")):
        data = _read_json(path) or {}
        table = data.get(table_key) or {}
        merged.setdefault("torch", data.get("torch"))
        merged.setdefault("device", table.get("device"))
        merged.setdefault("tf32", table.get("tf32"))
        merged["rows"].update(table.get("rows") or {})
    return merged


def throughput_section(work: Path, toy: bool) -> tuple[list[str], float | None]:
    """The throughput table over the per-architecture JSON files, and WaveGAN's speed-up."""
    reports = {}
    for path in sorted(work.glob("throughput-*.json")):
        data = _read_json(path)
        if data:
            reports[path.stem.removeprefix("throughput-")] = data
    if not reports:
        return ["no throughput results (see the parts table and the logs below)"], None
    table_key = "cpu" if toy else "gpu"
    modes: list[str] = []
    for data in reports.values():
        for mode in (data.get(table_key) or {}).get("modes", []):
            if mode not in modes:
                modes.append(mode)
    header = ["arch", "model_dim", "batch"]
    for mode in modes:
        header += [f"{mode} bars/s", "peak MiB"]
    fast = FAST_MODE if FAST_MODE in modes else (modes[-1] if modes else FAST_MODE)
    header.append(f"{fast} / {BASE_MODE}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    wavegan_speedup = None
    for data in reports.values():
        rows = (data.get(table_key) or {}).get("rows", {})
        for name, results in rows.items():
            first = next(iter(results.values()), {})
            cells = [name, str(first.get("model_dim", "?")), str(first.get("batch", "?"))]
            for mode in modes:
                r = results.get(mode)
                if r is None:
                    cells += ["not run", "-"]
                elif r.get("error"):
                    cells += [f"failed: {r['error'][:80]}", "-"]
                else:
                    peak = r.get("peak_mib")
                    cells += [f"{r['bars_per_sec']:.1f}", f"{peak:.0f}" if peak else "-"]
            base, quick = results.get(BASE_MODE), results.get(fast)
            ratio = None
            if base and quick and not base.get("error") and not quick.get("error"):
                ratio = quick["bars_per_sec"] / base["bars_per_sec"]
            cells.append(f"{ratio:.2f}x" if ratio is not None else "-")
            if name == "wavegan":
                wavegan_speedup = ratio
            lines.append("| " + " | ".join(cells) + " |")
    return lines, wavegan_speedup


def learning_section(work: Path) -> tuple[list[str], float | None]:
    lines: list[str] = []
    table = work / "learning.out"
    if table.is_file() and table.read_text().strip():
        lines += table.read_text().rstrip().splitlines()
    else:
        lines.append("no learning-check output (see the parts table and the logs below)")
    data = _read_json(work / "learning.json")
    fall = None
    if data and data.get("runs"):
        fall = data["runs"][0].get("checks", {}).get("frechet_fall")
    return lines, fall


def _verdict(value: float | None, target: float, toy: bool = False) -> str:
    if toy:
        return "toy mode: not a measurement"
    if value is None:
        return "not measured"
    return f"{value:.2f}x: {'met' if value >= target else 'NOT met'}"


def _tail(path: Path, n: int = 40) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-n:]


def build(work: Path, title: str, toy: bool, expected: str, command: str) -> str:
    status = _status(work)
    env = (work / "env.txt").read_text().splitlines() if (work / "env.txt").is_file() else []
    total = sum(seconds for _, _, seconds in status)
    out = [f"# {title}", ""]
    out.append(f"- command: `{command}`")
    out.append(f"- expected duration: {expected}; the parts took {total / 60:.1f} min together")
    out += [f"- {line}" for line in env if line.strip()]
    if toy:
        out.append("- TOY MODE: tiny models and data on the CPU; the numbers say nothing")
    out += ["", "## Parts", "", "| part | status | seconds |", "|---|---|---|"]
    out += [f"| {part} | {_describe_rc(rc)} | {sec:.0f} |" for part, rc, sec in status]

    lines, speedup = throughput_section(work, toy)
    out += ["", "## Throughput (bench/train_throughput.py)", ""]
    out.append(
        "Real bars the discriminator consumes per second (batch x n_critic x steps/s), timed "
        "after warm-up steps that absorb compilation and cuDNN autotuning; peak GPU memory."
    )
    out += ["", *lines, ""]
    out.append(
        f"Target: WaveGAN preset bf16 + compile >= {THROUGHPUT_TARGET:g}x fp32 eager at batch 64"
        f" -> {_verdict(speedup, THROUGHPUT_TARGET, toy)}"
    )

    lines, fall = learning_section(work)
    out += ["", "## Learning check (bench/learning_check.py)", "", *lines, ""]
    out.append(
        f"Target: the preset's Fréchet distance falls >= {FRECHET_TARGET:g}x from step 0 -> "
        f"{_verdict(fall, FRECHET_TARGET, toy)}"
    )

    failed = [(part, rc) for part, rc, _ in status if rc != 0]
    if failed:
        out += ["", "## Logs of the parts that did not finish", ""]
        for part, rc in failed:
            out += [f"### {part} ({_describe_rc(rc)})", ""]
            for name in (f"{part}.out", f"{part}.log"):
                path = work / name
                if path.is_file() and path.stat().st_size:
                    out += [f"{name}, last lines:", "", "```", *_tail(path), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", default="GPU check")
    p.add_argument("--expected", default="")
    p.add_argument("--command", default="bench/gpu_check.sh")
    p.add_argument("--toy", action="store_true")
    p.add_argument("--json-out", type=Path, help="also write the merged throughput rows here")
    args = p.parse_args()
    text = build(args.work_dir, args.title, args.toy, args.expected, args.command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.json_out:
        merged = merged_throughput(args.work_dir, args.toy)
        args.json_out.write_text(json.dumps(merged, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
