"""Print where the pipeline's results are (called at the end of `make run`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import soundfile as sf

from pipeline.monitoring.runs import RUN_ID, TRACKING_URI
from pipeline.monitoring.tracking import ui_command


def summarize(root: Path) -> list[str]:
    lines = ["", "bargan results"]
    samples = root / "data" / "samples"
    bars = sorted((samples / "bars").glob("*.wav"))
    lines.append(f"  generated bars:      {samples / 'bars'}/ ({len(bars)} wav files)")
    lines.append(f"  loops:               {samples / 'loops'}/")
    track = samples / "interpolation.wav"
    if track.is_file():
        info = sf.info(str(track))
        lines.append(f"  interpolation track: {track} ({info.duration:.1f} s)")
    metrics = root / "data" / "metrics" / "metrics.json"
    if metrics.is_file():
        lines.append(f"  metrics:             {metrics}")
        novelty = json.loads(metrics.read_text()).get("novelty", {})
        for key in (
            "generated.fraction_similar",
            "valid.fraction_similar",
            "generated.median_score",
            "valid.median_score",
        ):
            if key in novelty:
                lines.append(f"    novelty {key}: {novelty[key]:.4f}")
    report = root / "data" / "report" / "index.html"
    if report.is_file():
        lines.append(f"  report:              {report} (open in a browser)")
    progress = root / "data" / "models" / "checkpoint_metrics.csv"
    if progress.is_file():
        lines.append(f"  metrics over training: {progress} (dvc plots show)")
    run_file = root / "data" / "models" / "train_run.json"
    if run_file.is_file():
        run = json.loads(run_file.read_text())
        lines.append(f"  MLflow run:          {run[RUN_ID]} in {run[TRACKING_URI]}")
        lines.append(f"    open the UI with:  {ui_command(run[TRACKING_URI])}")
        lines.append(f"  checkpoints:         {run['run_dir']}/")
    lines.append(f"  rejected inputs:     {root / 'data' / 'bars' / 'rejects.csv'}")
    return lines


def main() -> int:
    print("\n".join(summarize(Path.cwd())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
