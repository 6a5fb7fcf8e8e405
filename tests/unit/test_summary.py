from __future__ import annotations

import json

import numpy as np

from pipeline.audio.io import write_audio
from pipeline.summary import summarize


def test_summary_says_where_every_result_is(tmp_path):
    samples = tmp_path / "data/samples"
    write_audio(samples / "bars/bar_000.wav", np.zeros((1, 800), np.float32), 8000)
    write_audio(samples / "interpolation.wav", np.zeros((1, 8000 * 40), np.float32), 8000)
    metrics = tmp_path / "data/metrics/metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(
        json.dumps(
            {
                "novelty": {"generated.fraction_similar": 0.25, "valid.fraction_similar": 0.0},
                "frechet": {
                    "generated.fixed": 400.0,
                    "generated.fixed.ci_low": 300.0,
                    "generated.fixed.ci_high": 500.0,
                    "valid.fixed": 200.0,
                },
            }
        )
    )
    run = tmp_path / "data/models/train_run.json"
    run.parent.mkdir(parents=True)
    run.write_text(
        json.dumps(
            {
                "mlflow_run_id": "abc123",
                "mlflow_tracking_uri": "sqlite:///x.db",
                "run_dir": "data/checkpoints/r",
            }
        )
    )
    lines = summarize(tmp_path)
    text = "\n".join(lines)
    # the headline first: the verdict, then its table, then where everything is
    assert lines[1].startswith("did it work? not learned yet: 1 of 2 targets met; missed: near")
    assert lines[2].split()[0] == "measure" and "Fréchet distance, fixed features" in lines[3]
    assert "2.00× [1.50×, 2.50×]" in lines[3] and lines[3].endswith("yes")
    assert text.index("did it work?") < text.index("bargan results") < text.index("metrics:")
    assert f"{samples / 'bars'}/ (1 wav files)" in text
    assert "interpolation.wav (40.0 s)" in text
    assert "abc123" in text and "mlflow ui --backend-store-uri sqlite:///x.db" in text
