"""Every metric's result says which evaluation protocol its numbers follow; the text reaches
metrics.json but is not logged as an MLflow metric."""

from __future__ import annotations

import json

import numpy as np

from pipeline.metrics.headline import compute_headline
from pipeline.metrics.ladder import drum_bars
from pipeline.metrics.registry import (
    METRICS,
    PROTOCOL_KEY,
    PROTOCOLS,
    compute_all,
    numeric_metrics,
)
from pipeline.stages.evaluate import log_metrics

SR = 8000


def test_every_metric_has_a_protocol_and_ours_say_they_are_not_comparable():
    assert set(PROTOCOLS) == set(METRICS)
    for name, protocol in PROTOCOLS.items():
        assert isinstance(protocol, str) and protocol.strip(), name
        if protocol.startswith("ours"):
            assert "not comparable" in protocol, name
    assert "Kilgour et al. 2019" in PROTOCOLS["fad_vggish"]
    assert "VGGish" in PROTOCOLS["fad_vggish"] and "16 kHz" in PROTOCOLS["fad_vggish"]
    assert "Donahue et al. 2019" in PROTOCOLS["classifier"]
    assert "Richardson & Weiss 2018" in PROTOCOLS["ndb"]
    assert PROTOCOLS["frechet"].startswith("ours")


def test_results_carry_their_protocol_and_only_numbers_are_logged():
    train = np.concatenate([drum_bars(s, 1, 3, SR) for s in ("techno", "house")])
    valid = np.concatenate([drum_bars(s, 2, 2, SR) for s in ("techno", "house")])
    options = {"sample_rate": SR, "bpm": 120.0, "beats_per_bar": 4, "bootstrap": 10}
    names = ["novelty", "frechet", "fad_vggish"]
    metrics = compute_all(valid[::-1].copy(), train, valid, options, names)
    assert set(metrics) == set(names)
    for name in names:
        assert metrics[name][PROTOCOL_KEY] == PROTOCOLS[name]
    json.dumps(metrics, allow_nan=False)  # metrics.json as the evaluate stage writes it

    numbers = numeric_metrics(metrics)
    assert numbers and all(isinstance(v, float) for v in numbers.values())
    assert not any(key.endswith((".protocol", ".skipped")) for key in numbers)

    class Recorder:
        def __init__(self) -> None:
            self.logged: dict = {}

        def log(self, step, values):
            self.logged.update(values)

        def set_tags(self, tags):
            pass

    recorder = Recorder()
    log_metrics(recorder, metrics, compute_headline(metrics))  # type: ignore[arg-type]
    assert all(isinstance(v, float) for v in recorder.logged.values())
    assert "frechet_generated_fixed" in recorder.logged
    assert not any("protocol" in key or "skipped" in key for key in recorder.logged)
