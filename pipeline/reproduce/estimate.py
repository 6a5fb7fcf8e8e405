"""GPU hours for a training run, from the measured throughput in bench/results.

bench/gpu_check.sh writes ``gpu_check-<device>-<date>.throughput.json`` beside each results file:
steps per second per architecture and mode at batch 64. A run's estimate is its steps over the
measured rate of its mode, scaled by batch size (a step's work grows with the batch), one
estimate per measured device. The estimate is only as good as that scaling: it ignores
evaluation, checkpoints and data loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.params import REPO_ROOT

RESULTS_DIR = REPO_ROOT / "bench" / "results"
MEASURED_BATCH = 64


@dataclass(frozen=True)
class GpuEstimate:
    device: str
    mode: str
    steps_per_sec: float  # at the run's batch size
    hours: float
    source: str  # the results file


def mode_for(amp: bool, compile_model: bool) -> str:
    if amp and compile_model:
        return "bf16+compile"
    return "bf16 eager" if amp else "fp32 eager"


def estimate_gpu_hours(
    arch: str,
    steps: int,
    batch_size: int,
    amp: bool,
    compile_model: bool,
    results_dir: Path = RESULTS_DIR,
) -> list[GpuEstimate]:
    """One estimate per results file that measured ``arch`` in the run's mode (falling back to
    eager bf16 when compilation was not measured), newest file per device first."""
    wanted = mode_for(amp, compile_model)
    estimates: dict[str, GpuEstimate] = {}
    for path in sorted(Path(results_dir).glob("*.throughput.json"), reverse=True):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        device = record.get("device") or path.stem
        rows = (record.get("rows") or {}).get(arch) or {}
        for mode in (wanted, "bf16 eager") if wanted == "bf16+compile" else (wanted,):
            row = rows.get(mode) or {}
            rate = row.get("steps_per_sec")
            if row.get("error") or not rate or device in estimates:
                continue
            measured_batch = row.get("batch") or MEASURED_BATCH
            rate_here = rate * measured_batch / batch_size
            estimates[device] = GpuEstimate(
                device, mode, rate_here, steps / rate_here / 3600, path.name
            )
    return list(estimates.values())
