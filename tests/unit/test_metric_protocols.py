"""Every metric's result says which evaluation protocol its numbers follow; the text reaches
metrics.json but is not logged as an MLflow metric."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.grid import GRID_FILE, BarGrid
from pipeline.metrics.classifier import PROTOCOLS as CLASSIFIER_PROTOCOLS
from pipeline.metrics.fad import SKIPPED
from pipeline.metrics.headline import compute_headline
from pipeline.metrics.ndb import PROTOCOLS as NDB_PROTOCOLS
from pipeline.metrics.registry import (
    METRICS,
    PROTOCOL_KEY,
    PROTOCOLS,
    compute_all,
    numeric_metrics,
)
from pipeline.models.generator_file import GeneratorSettings, build_generator, save_generator
from pipeline.params import load_params
from pipeline.stages import evaluate
from pipeline.stages.common import StageError
from pipeline.stages.evaluate import log_metrics
from tests.metric_ladder import drum_bars

REPO = Path(__file__).resolve().parents[2]
SR = 8000


def test_every_metric_has_a_protocol_and_ours_say_they_are_not_comparable():
    assert set(PROTOCOLS) == set(METRICS)
    for name, protocol in PROTOCOLS.items():
        assert isinstance(protocol, str) and protocol.strip(), name
        if protocol.startswith("ours"):
            assert "not comparable" in protocol, name
    assert "Kilgour et al. 2019" in PROTOCOLS["fad_vggish"]
    assert "VGGish" in PROTOCOLS["fad_vggish"] and "16 kHz" in PROTOCOLS["fad_vggish"]
    assert PROTOCOLS["classifier"] == CLASSIFIER_PROTOCOLS["mlp"]  # the default classifier's
    for classifier, protocol in CLASSIFIER_PROTOCOLS.items():
        assert "Donahue et al. 2019" in protocol and "split" in protocol, classifier
    assert "MLP" in CLASSIFIER_PROTOCOLS["mlp"] and "log-mel" in CLASSIFIER_PROTOCOLS["wavegan"]
    assert PROTOCOLS["ndb"] == NDB_PROTOCOLS["fixed"]  # the default features'
    for features, protocol in NDB_PROTOCOLS.items():
        assert "Richardson & Weiss 2018" in protocol and "jsd" in protocol, features
    assert "not comparable" in NDB_PROTOCOLS["fixed"]
    assert "LoopTest" in NDB_PROTOCOLS["looptest"] and "80 x 320" in NDB_PROTOCOLS["looptest"]
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
    log_metrics(recorder, metrics, {}, compute_headline(metrics))  # type: ignore[arg-type]
    assert all(isinstance(v, float) for v in recorder.logged.values())
    assert "frechet_generated_fixed" in recorder.logged
    assert not any("protocol" in key or "skipped" in key for key in recorder.logged)


def evaluate_inputs(tmp_path: Path) -> argparse.Namespace:
    """Splits, generated bars and a generator file (the bar grid) for the evaluate stage (no
    MLflow run record)."""
    splits, samples = tmp_path / "splits", tmp_path / "samples"
    splits.mkdir()
    samples.mkdir()
    BarGrid(SR, 120.0, 4, 1).write(splits / GRID_FILE)
    for name, seed in (("train", 1), ("valid", 2)):
        bars = np.concatenate([drum_bars(s, seed, 3, SR) for s in ("techno", "house")])
        np.savez(
            splits / f"{name}.npz",
            bars=np.round(np.clip(bars, -1, 1) * 32767).astype(np.int16),
            labels=np.repeat([0, 1], 3),
            sample_rate=SR,
        )
    np.savez(samples / "generated.npz", bars=bars[::-1].astype(np.float32))
    model = tmp_path / "generator.pt"
    config = {"arch": "wavegan", "sample_rate": SR, "length": bars.shape[-1], "channels": 1,
              "latent_dim": 8, "model_dim": 4, "num_classes": 0, "extra": {}}  # fmt: skip
    grid = BarGrid(SR, 120.0, 4, 1)
    save_generator(
        model, build_generator(GeneratorSettings.from_config(config)), config, grid.timing()
    )
    return argparse.Namespace(
        samples_dir=samples,
        splits_dir=splits,
        train_run=tmp_path / "no_train_run.json",
        model=model,
        out=tmp_path / "metrics.json",
        headline=tmp_path / "headline.json",
        ceiling=tmp_path / "ceiling.npz",
    )


def evaluate_params(**evaluate) -> dict:
    params = load_params(REPO / "params.yaml")
    params["evaluate"].update(metrics=["novelty", "fad_vggish"], bootstrap=10, **evaluate)
    return params


def test_the_evaluate_stage_writes_protocols_and_why_fad_was_skipped(tmp_path):
    args = evaluate_inputs(tmp_path)
    with pytest.raises(FileNotFoundError, match="no_train_run"):  # MLflow comes after the files
        evaluate.main(args, evaluate_params())
    written = json.loads(args.out.read_text())
    assert written["novelty"]["protocol"] == PROTOCOLS["novelty"]
    assert written["fad_vggish"] == {"skipped": SKIPPED, "protocol": PROTOCOLS["fad_vggish"]}


def test_the_evaluate_stage_scores_with_the_classifier_params_name(tmp_path):
    args = evaluate_inputs(tmp_path)
    params = evaluate_params(
        classifier="wavegan", classifier_epochs=2, classifier_channels=4, inception_splits=3
    )
    params["evaluate"]["metrics"] = ["classifier"]
    with pytest.raises(FileNotFoundError, match="no_train_run"):
        evaluate.main(args, params)
    written = json.loads(args.out.read_text())["classifier"]
    assert written["protocol"] == CLASSIFIER_PROTOCOLS["wavegan"]
    for name in ("generated", "valid"):
        key = f"{name}.inception_score"
        assert {f"{key}.ci_low", f"{key}.ci_high", f"{key}.split_mean", f"{key}.split_std"} < set(
            written
        )


def test_the_evaluate_stage_scores_ndb_on_the_features_params_name(tmp_path):
    args = evaluate_inputs(tmp_path)
    params = evaluate_params(ndb_features="looptest")
    params["evaluate"]["metrics"] = ["ndb"]
    with pytest.raises(FileNotFoundError, match="no_train_run"):
        evaluate.main(args, params)
    written = json.loads(args.out.read_text())["ndb"]
    assert written["protocol"] == NDB_PROTOCOLS["looptest"]
    assert {"generated.jsd", "generated.jsd_nats", "valid.ndb"} < set(written)


def test_the_evaluate_stage_names_a_missing_weights_file(tmp_path):
    args = evaluate_inputs(tmp_path)
    params = evaluate_params(vggish_weights=str(tmp_path / "vggish-10086976.pth"))
    with pytest.raises(StageError, match=r"evaluate\.vggish_weights: .*vggish-10086976\.pth"):
        evaluate.main(args, params)
    assert not args.out.exists()


def test_missing_fetched_weights_point_at_fetch_models(tmp_path, monkeypatch):
    """A path under data/pretrained is the fetch stage's to fill: the error says how."""
    args = evaluate_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    params = evaluate_params(vggish_weights="data/pretrained/vggish-weights/vggish.pth")
    with pytest.raises(StageError, match=r"does not exist; add vggish-weights to fetch\.models"):
        evaluate.main(args, params)
    params["fetch"]["models"] = ["vggish-weights"]
    folder = tmp_path / "data/pretrained/vggish-weights"
    folder.mkdir(parents=True)
    (folder / "vggish-10086976.pth").write_bytes(b"")
    with pytest.raises(
        StageError,
        match=r"vggish\.pth does not exist; the fetch stage puts the files of vggish-weights "
        r"\(fetch\.models\) in data/pretrained/vggish-weights, which holds "
        r"\['vggish-10086976\.pth'\]",
    ):
        evaluate.main(args, params)
    assert not args.out.exists()


def test_the_evaluate_stage_records_how_many_bars_it_scored(tmp_path):
    args = evaluate_inputs(tmp_path)
    params = evaluate_params()
    params["evaluate"]["metrics"] = ["novelty"]
    with pytest.raises(FileNotFoundError, match="no_train_run"):
        evaluate.main(args, params)
    written = json.loads(args.out.read_text())
    assert written["counts"] == {"generated": 6, "train": 6, "valid": 6}
    assert written["novelty"]["generated.count"] == 6
    assert list(written)[-2:] == ["counts", "environment"]  # after the metrics


@pytest.mark.parametrize("n", [0, 1])
def test_the_evaluate_stage_refuses_fewer_than_two_generated_bars(tmp_path, n):
    args = evaluate_inputs(tmp_path)
    generated = args.samples_dir / "generated.npz"
    with np.load(generated) as packed:
        np.savez(generated, bars=packed["bars"][:n])
    params = evaluate_params()
    params["evaluate"]["metrics"] = ["novelty"]
    with pytest.raises(
        StageError, match=rf"generated\.npz: holds {n} generated bar\(s\).*at least 2.*score_bars"
    ):
        evaluate.main(args, params)
    assert not args.out.exists()


def test_the_evaluate_stage_scores_the_ceiling_and_noise_rungs(tmp_path):
    """A waveform model has no representation to lose detail in: its ceiling rung is the
    held-out bars themselves (1× real), and white noise is far from real."""
    args = evaluate_inputs(tmp_path)
    tracks = [f"{split},{style}{seed}" for split, seed in (("train", 1), ("valid", 2))
              for style in ("techno", "house") for _ in range(3)]  # fmt: skip
    (args.splits_dir / "manifest.csv").write_text("split,track\n" + "\n".join(tracks) + "\n")
    params = evaluate_params()
    params["evaluate"]["metrics"] = ["novelty", "frechet", "two_sample"]
    with pytest.raises(FileNotFoundError, match="no_train_run"):
        evaluate.main(args, params)
    written = json.loads(args.out.read_text())
    references = written["references"]
    assert set(references) == {"ceiling", "noise"}
    assert set(references["ceiling"]) == {"frechet", "two_sample"}  # quality metrics only
    ceiling, noise = references["ceiling"]["frechet"], references["noise"]["frechet"]
    assert ceiling["generated.fixed"] == pytest.approx(ceiling["valid.fixed"])
    assert noise["generated.fixed"] > 10 * noise["valid.fixed"]
    assert references["noise"]["two_sample"]["generated.accuracy"] > 0.9
    # the manifest names each bar's recording: the two-sample folds hold out whole recordings
    assert written["two_sample"]["grouped_by_recording"] is True
    line = written["headline"]["lines"]["ceiling_frechet_fixed_ratio"]
    assert line["value"] == pytest.approx(1.0) and line["met"]
    with np.load(args.ceiling) as packed:
        valid = np.load(args.splits_dir / "valid.npz")["bars"] / 32767.0
        np.testing.assert_allclose(packed["bars"], valid, atol=1e-6)
