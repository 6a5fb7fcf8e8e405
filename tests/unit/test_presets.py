"""Presets: they apply cleanly, validate, and train at reduced size with the preset's data shape."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.params import flatten, load_params
from pipeline.presets import apply_preset, apply_to_file, load_preset, main, preset_names
from pipeline.stages.train import train_config
from pipeline.train import load_checkpoint, load_generator, train_gan
from tests.conftest import REPO

# preset -> (sample rate, samples per bar, channels, arch, conditional)
EXPECTED = {
    "wavegan": (16000, 16384, 1, "wavegan", False),
    "beatgan": (14700, 14112, 2, "wavegan", False),
    "bergan": (16000, 32000, 1, "melgan", False),
    "specgan-genre": (16000, 32000, 1, "specgan", True),
}
# small enough for a 2-core CPU; everything else stays as the preset has it
REDUCED = {"model_dim": 2, "batch_size": 4, "steps": 2, "checkpoint_every": 1, "log_every": 1}
REDUCED_MODEL = {"melgan": {"scales": 2}, "specgan": {"griffin_lim_iters": 2}}


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def base_params() -> dict:
    return load_params(REPO / "params.yaml")


def test_preset_list_and_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert preset_names() == sorted(EXPECTED)
    keys = set()
    for name in preset_names():
        overlay, meta = load_preset(name)
        assert "http" in meta["source"] and meta["description"]
        # every preset sets the same keys (outside the per-architecture model blocks), so
        # applying one after another gives the same setup as applying it alone
        flat = {k for k in flatten(overlay) if not k.startswith("train.model.")}
        keys = keys or flat
        assert flat == keys, name
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPECTED) and "github.com/adrienchaton/BERGAN" in out
    with pytest.raises(ValueError, match="known presets: beatgan"):
        load_preset("nope")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_applies_and_validates(name: str, base_params: dict, tmp_path: Path) -> None:
    merged = apply_preset(base_params, name)
    sample_rate, length, channels, arch, conditional = EXPECTED[name]
    bars, train = merged["bars"], merged["train"]
    assert train["preset"] == name and train["arch"] == arch
    assert train["conditional"] is conditional
    assert bars["sample_rate"] == sample_rate and bars["channels"] == channels
    assert round(sample_rate * 60 / bars["bpm"] * bars["beats_per_bar"]) == length
    assert merged["analyze"]["meters"] == [bars["beats_per_bar"]]
    assert merged["sample"] == base_params["sample"]  # sections the preset does not name
    # applied after another preset, the result is the same as applied alone
    other = "bergan" if name != "bergan" else "beatgan"
    again = apply_preset(apply_preset(base_params, other), name)
    for key, value in flatten(merged).items():
        if not key.startswith("train.model."):
            assert flatten(again)[key] == value, key

    # the command rewrites the file in place, keeping comments, and validates it
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    assert main(["apply", name, "--params", str(path)]) == 0
    text = path.read_text()
    assert "# One section per stage" in text and f"preset: {name}" in text
    assert load_params(path) == merged


def test_apply_refuses_an_invalid_result(base_params: dict, tmp_path: Path) -> None:
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "bad.yaml").write_text(
        yaml.safe_dump({"source": "https://example.org", "train": {"arch": "transformer"}})
    )
    path = tmp_path / "params.yaml"
    original = (REPO / "params.yaml").read_text()
    path.write_text(original)
    with pytest.raises(ValueError, match=r"train\.arch"):
        apply_to_file("bad", path, presets_dir=presets)
    assert path.read_text() == original


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_trains_at_reduced_size(name: str, base_params: dict, tmp_path: Path) -> None:
    merged = apply_preset(base_params, name)
    sample_rate, length, channels, arch, conditional = EXPECTED[name]
    section = copy.deepcopy(merged["train"])
    section.update(REDUCED, device="cpu")
    for key, value in REDUCED_MODEL.get(arch, {}).items():
        section["model"][arch][key] = value

    n_bars, n_classes = 6, 3 if conditional else 0
    rng = np.random.default_rng(0)
    bars = (rng.standard_normal((n_bars, channels, length)) * 0.1).astype(np.float32)
    labels = np.arange(n_bars) % 3 if conditional else None
    config = train_config(section, bars, sample_rate, n_classes)
    assert (config.arch, config.sample_rate, config.length, config.channels) == (
        arch,
        sample_rate,
        length,
        channels,
    )
    assert config.n_critic == merged["train"]["n_critic"]
    assert config.betas == tuple(merged["train"]["betas"])

    result = train_gan(bars, labels, config, tmp_path)
    assert result.steps_done == 2
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in result.losses)
    if config.mode_seeking:
        assert all(r["mode_seeking"] > 0 for r in result.losses)
    # augmentation multiplies the training set; the checkpoint records the split's shape
    assert load_checkpoint(result.checkpoint_path)["extra"]["data_shape"] == list(bars.shape)

    generator, saved = load_generator(result.generator_path)
    assert saved == config
    z = generator.sample_latent(2, generator=torch.Generator().manual_seed(0), device="cpu")
    y = torch.tensor([0, 2]) if conditional else None
    audio = generator(z, y)
    assert audio.shape == (2, channels, length)
    assert audio.abs().max() <= 1.0
