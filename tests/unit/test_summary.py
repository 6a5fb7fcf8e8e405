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
    metrics.write_text(json.dumps({"novelty": {"generated.fraction_similar": 0.25}}))
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
    text = "\n".join(summarize(tmp_path))
    assert f"{samples / 'bars'}/ (1 wav files)" in text
    assert "interpolation.wav (40.0 s)" in text
    assert "generated.fraction_similar: 0.2500" in text
    assert "abc123" in text and "mlflow ui --backend-store-uri sqlite:///x.db" in text
