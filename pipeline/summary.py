"""Print whether training worked (the headline of metrics.json) and where the pipeline's results
are (called at the end of `make run`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import soundfile as sf

from pipeline.metrics.headline import headline_of, text_table
from pipeline.monitoring.runs import RUN_ID, TRACKING_URI
from pipeline.monitoring.tracking import ui_command


def summarize(root: Path) -> list[str]:
    """The headline (verdict and table) when metrics.json exists, then where everything is."""
    metrics = root / "data" / "metrics" / "metrics.json"
    lines = [""]
    if metrics.is_file():
        card = headline_of(json.loads(metrics.read_text()))
        lines += [f"did it work? {card.verdict}", *text_table(card), ""]
    lines.append("bargan results")
    samples = root / "data" / "samples"
    bars = sorted((samples / "bars").glob("*.wav"))
    lines.append(f"  generated bars:      {samples / 'bars'}/ ({len(bars)} wav files)")
    lines.append(f"  loops:               {samples / 'loops'}/")
    track = samples / "interpolation.wav"
    if track.is_file():
        info = sf.info(str(track))
        lines.append(f"  interpolation track: {track} ({info.duration:.1f} s)")
    if metrics.is_file():
        lines.append(f"  metrics:             {metrics}")
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
