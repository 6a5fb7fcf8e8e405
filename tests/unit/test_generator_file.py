"""The generator file (pipeline.models.generator_file): one module writes and reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.grid import BarGrid
from pipeline.models import generator_file
from pipeline.models.generator_file import (
    GENERATOR_FORMAT,
    CheckpointError,
    GeneratorSettings,
    WrongFileKind,
    build_generator,
    copy_generator,
    load,
    save_generator,
)

CONFIG = {
    "arch": "wavegan",
    "sample_rate": 8000,
    "length": 4000,
    "channels": 1,
    "latent_dim": 8,
    "model_dim": 4,
    "num_classes": 2,
    "extra": {},
    "steps": 3,  # a training setting: kept in the file, not part of the model's settings
}


def _saved(path: Path, metadata: dict | None = None) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    generator = build_generator(GeneratorSettings.from_config(CONFIG))
    return save_generator(path, generator, CONFIG, metadata), generator


def test_round_trip_gives_the_model_its_settings_and_grid_in_one_load(tmp_path: Path) -> None:
    grid = BarGrid(8000, 120.0, 1, 1)  # 4000 samples: one beat at 120 BPM
    path, generator = _saved(tmp_path / "generator.pt", {**grid.timing(), "classes": ["a", "b"]})
    loaded = load(path)
    assert loaded.grid == grid and loaded.grid.bar_samples == CONFIG["length"]
    assert loaded.settings == GeneratorSettings.from_config(CONFIG)
    assert loaded.config == CONFIG and loaded.metadata["classes"] == ["a", "b"]
    assert loaded.class_counts is None  # a file without them: scored classes go in turn
    counted, _ = _saved(tmp_path / "counted.pt", {"class_counts": [3, 1]})
    assert load(counted).class_counts == [3, 1]
    unconditional, _ = _saved(tmp_path / "flat.pt", {"class_counts": []})  # as train writes it
    assert load(unconditional).class_counts is None
    assert not loaded.generator.training
    assert all(not p.requires_grad for p in loaded.generator.parameters())
    for key, value in generator.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[key], value), key
    z = torch.randn(2, CONFIG["latent_dim"])
    labels = torch.tensor([0, 1])
    with torch.no_grad():
        assert torch.equal(loaded.generator(z, labels), generator.eval()(z, labels))
    obj = torch.load(path, weights_only=True)
    assert list(obj) == ["format", "version", "config", "state_dict", "metadata"]
    assert obj["format"] == GENERATOR_FORMAT


def test_saving_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    first, _ = _saved(tmp_path / "a.pt", {"bpm": 120.0})
    second, _ = _saved(tmp_path / "b.pt", {"bpm": 120.0})
    assert first.read_bytes() == second.read_bytes()


def test_a_file_without_a_grid_gets_four_beats_at_the_tempo_its_length_implies(
    tmp_path: Path,
) -> None:
    path, _ = _saved(tmp_path / "generator.pt")
    grid = load(path).grid
    assert grid.beats_per_bar == 4 and grid.bar_samples == CONFIG["length"]
    out = copy_generator(path, tmp_path / "copy.pt", {"bpm": 480.0, "beats_per_bar": 4})
    assert load(out).grid.bpm == 480.0


def test_other_files_are_named_with_the_reason(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"format": generator_file.CHECKPOINT_FORMAT}, checkpoint)
    with pytest.raises(WrongFileKind, match="training checkpoint"):
        load(checkpoint)
    cut = tmp_path / "cut.pt"
    path, _ = _saved(tmp_path / "generator.pt")
    cut.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        load(cut)
