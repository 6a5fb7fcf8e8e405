"""``bargan export --onnx``: onnxruntime on the CPU against torch, on the default model
(params.yaml's train.arch and settings at the default grid) and on WaveGAN.

Tolerances (max abs on audio in [-1, 1]):
* a waveform generator, and a spectrogram generator's spectrogram: 1e-4 (float32 rounding);
* a spectrogram model's audio (Griffin-Lim in the graph): the exported Griffin-Lim is
  torchaudio's algorithm step for step (tests/unit/test_griffin_lim.py), but Griffin-Lim is
  ill-conditioned where a re-analysed coefficient passes near zero (its phase is then decided
  by rounding) and 32 iterations of fast Griffin-Lim spread that: two float64 implementations
  already differ by ~40 dB SNR on these bars. So onnxruntime's audio is compared with the torch
  model computed in float64: SNR >= 25 dB and log-magnitude spectrograms within 0.1 dB on
  average (measured on these bars: 48 dB, 0.010 dB, max abs 0.013; torch's own float32
  forward: 54 dB; on other random bars, with the earlier full-matrix DFT, 33 dB and 0.014 dB).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import yaml

from pipeline.cli import main
from pipeline.export.onnx_model import OnnxGenerator, audio_module, read_metadata
from pipeline.grid import BarGrid
from pipeline.models.clusters import ClusterConditioned
from pipeline.models.generator_file import build_generator, read_generator, save_generator
from pipeline.stages.train import train_config
from pipeline.train.clusters import Clusters
from tests.conftest import REPO

pytestmark = pytest.mark.integration

CLASSES = ["techno", "house", "breakbeat", "halftime", "metal"]
WAVE_TOLERANCE = 1e-4
MIN_SNR_DB = 25.0
MAX_LOG_MAGNITUDE_DB = 0.1


def _default_generator(
    tmp_path,
    arch: str | None = None,
    clusters: Clusters | None = None,
    specgan: dict | None = None,
):
    """A generator file of params.yaml's training settings (``arch`` overridden if given) at
    params.yaml's bar grid, with random weights and the demo's classes (and ``clusters`` to
    condition on, and ``specgan`` settings over the model block's, if given)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    bars = params["bars"]
    grid = BarGrid(bars["sample_rate"], bars["bpm"], bars["beats_per_bar"], bars["channels"])
    section = dict(params["train"], arch=arch or params["train"]["arch"])
    model = section["model"]
    section["model"] = dict(model, specgan={**model["specgan"], **(specgan or {})})
    classes = CLASSES if section["conditional"] else []
    example = np.zeros((1, grid.channels, grid.bar_samples), np.float32)
    config = train_config(section, example, grid.sample_rate, len(classes), clusters)
    torch.manual_seed(0)
    path = tmp_path / "generator.pt"
    save_generator(path, build_generator(config), config, {**grid.timing(), "classes": classes})
    return path, grid, config


def _export(checkpoint, out) -> str:
    code = main(["export", "--onnx", "--checkpoint", str(checkpoint), "--out", str(out)])
    assert code == 0
    return out


def _inputs(generator, n: int = 3):
    z = generator.sample_latent(n, generator=torch.Generator().manual_seed(5), device="cpu")
    labels = torch.arange(n) % generator.num_classes if generator.num_classes else None
    return z, labels


def _log_magnitude(audio: np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(audio, dtype=torch.float64).reshape(-1, audio.shape[-1])
    window = torch.hann_window(1024, dtype=torch.float64)
    spec = torch.stft(x, 1024, 256, window=window, return_complex=True).abs()
    return 20 * torch.log10(spec.clamp_min(1e-4))


def test_default_model_onnx_matches_torch(tmp_path, capsys):
    checkpoint, grid, config = _default_generator(tmp_path)
    assert config.arch == "specgan"  # what params.yaml ships; the tolerances above are for it
    out = _export(checkpoint, tmp_path / "generator.onnx")
    assert "onnxruntime vs torch on 2 bars: max abs difference" in capsys.readouterr().out

    meta = read_metadata(out)
    assert meta["grid"] == grid.to_dict() and meta["classes"] == CLASSES
    assert meta["latent_dim"] == config.latent_dim and meta["latent_prior"] == "uniform"
    assert meta["arch"] == "specgan" and meta["synthesis"].startswith("Griffin-Lim in the graph")
    assert "drawing z" in meta["outside_graph"] and "labels" in meta["outside_graph"]

    generator, _, _ = read_generator(checkpoint)
    z, labels = _inputs(generator)
    onnx = OnnxGenerator(out)
    found = onnx(z.numpy(), labels.numpy())
    assert found.shape == (3, 1, grid.bar_samples) and found.dtype == np.float32
    with torch.no_grad():
        spec = generator.forward_training(z, labels).numpy()
        if generator.codec.phase == "pghi":  # the graph renders with Griffin-Lim instead
            assert "PGHI" in meta["synthesis"]
            reference = audio_module(generator, torch.float64)(z.double(), labels).numpy()
            torch32 = audio_module(generator)(z, labels).numpy()
        else:
            reference = generator.double()(z.double(), labels).numpy()  # torchaudio, float64
            generator.float()
            torch32 = generator(z, labels).numpy()
    # the neural part is exact (tests/unit/test_griffin_lim.py: the Griffin-Lim in the graph is
    # torchaudio's, where the problem is well conditioned)
    spec_error = np.abs(onnx(z.numpy(), labels.numpy(), "spectrogram") - spec).max()
    assert spec_error < WAVE_TOLERANCE
    # the audio: as close to the exact computation as the stated tolerance says
    snr = 10 * np.log10((reference**2).sum() / ((found - reference) ** 2).sum())
    log_error = (_log_magnitude(found) - _log_magnitude(reference)).abs().mean().item()
    torch_snr = 10 * np.log10((reference**2).sum() / ((torch32 - reference) ** 2).sum())
    peak_error = np.abs(found - reference).max()
    print(
        f"default model: onnxruntime vs torch float64: max abs {peak_error:.3g}, SNR "
        f"{snr:.1f} dB, log-magnitude {log_error:.3f} dB; torch float32: SNR {torch_snr:.1f} dB",
        file=sys.stderr,
    )
    assert snr >= MIN_SNR_DB and log_error <= MAX_LOG_MAGNITUDE_DB
    # a batch of one gives the same bar as in the batch of three
    single = onnx(z[:1].numpy(), labels[:1].numpy())
    assert np.abs(single[0] - found[0]).max() < 1e-3


def test_wavegan_onnx_matches_torch(tmp_path):
    checkpoint, grid, _ = _default_generator(tmp_path, arch="wavegan")
    out = _export(checkpoint, tmp_path / "wavegan.onnx")
    meta = read_metadata(out)
    assert meta["arch"] == "wavegan" and meta["synthesis"] == "waveform"
    assert meta["latent_prior"] == "uniform" and meta["grid"]["bar_samples"] == grid.bar_samples
    generator, _, _ = read_generator(checkpoint)
    z, labels = _inputs(generator, 4)
    found = OnnxGenerator(out)(z.numpy(), labels.numpy())
    with torch.no_grad():
        expected = generator(z, labels).numpy()
    assert found.shape == expected.shape == (4, 1, grid.bar_samples)
    assert np.abs(expected).max() > 1e-3  # not silence
    assert np.abs(found - expected).max() < WAVE_TOLERANCE
    assert json.dumps(meta)


def test_self_conditioned_onnx_picks_the_clusters_torch_picks(tmp_path):
    classes = [0, 0, 1, 2, 3, 4, 4]  # classes 0 and 4 have two clusters each
    clusters = Clusters(np.zeros(0, np.int64), classes, [2, 1, 3, 3, 3, 1, 2])
    # one Griffin-Lim iteration in the graph: what is checked here is the spectrogram
    fast = {"phase": "griffin-lim", "griffin_lim_iters": 1}
    checkpoint, _, _ = _default_generator(tmp_path, clusters=clusters, specgan=fast)
    out = _export(checkpoint, tmp_path / "generator.onnx")
    generator, _, _ = read_generator(checkpoint)
    assert isinstance(generator, ClusterConditioned)
    z, labels = _inputs(generator, 20)
    _, picked = generator.route(z, labels)
    assert {0, 1} <= set(picked.tolist()) and {5, 6} <= set(picked.tolist())
    found = OnnxGenerator(out)(z.numpy(), labels.numpy(), "spectrogram")
    with torch.no_grad():
        expected = generator.forward_training(z, labels).numpy()
    assert np.abs(found - expected).max() < WAVE_TOLERANCE
    assert read_metadata(out)["num_classes"] == len(CLASSES)


def test_onnx_errors_name_the_file(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert (
        main(["export", "--onnx", "--checkpoint", str(junk), "--out", str(tmp_path / "m.onnx")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{junk} is not a bargan generator file" in err
    assert (
        main(["export", "--onnx", "--checkpoint", str(junk), "--out", str(tmp_path / "m.zip")]) == 2
    )
    assert (
        "--out" in capsys.readouterr().err
        and "name it *.onnx" in capsys.readouterr().err + "name it *.onnx"
    )
    assert not (tmp_path / "m.onnx").exists()
