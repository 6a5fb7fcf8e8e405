"""The bar grid record: one formula for bar length and tempo, a JSON round trip."""

from __future__ import annotations

import json

import pytest

from pipeline.grid import BarGrid, bar_samples_at, tempo_of


def test_bar_length_and_tempo_are_inverse():
    grid = BarGrid(16000, 120, 4, 1)
    assert grid.bar_samples == bar_samples_at(16000, 120, 4) == 32000
    assert grid.bar_seconds == 2.0
    assert tempo_of(grid.bar_samples, 16000, 4) == pytest.approx(120.0)
    odd = BarGrid(44100, 133, 3, 2)
    assert odd.bar_samples == round(44100 * 60 / 133 * 3)


def test_record_round_trips_with_typed_fields(tmp_path):
    grid = BarGrid(8000, 120, 4, 2)  # params may give an integer tempo
    path = grid.write(tmp_path / "grid.json")
    record = json.loads(path.read_text())
    assert record == {
        "sample_rate": 8000,
        "bpm": 120.0,
        "beats_per_bar": 4,
        "channels": 2,
        "bar_samples": 16000,
    }
    assert isinstance(record["bpm"], float)
    assert BarGrid.read(path) == grid
    assert BarGrid.read(tmp_path) == grid  # a folder holding grid.json


def test_record_with_inconsistent_bar_length_is_refused():
    with pytest.raises(ValueError, match="samples per bar"):
        BarGrid.from_dict(
            {"sample_rate": 8000, "bpm": 120, "beats_per_bar": 4, "channels": 1, "bar_samples": 1}
        )


def test_timing_keeps_the_generator_files_keys_and_order():
    timing = BarGrid(8000, 120, 4, 1).timing()
    assert list(timing) == ["sample_rate", "bpm", "beats_per_bar"]
    assert timing == {"sample_rate": 8000, "bpm": 120.0, "beats_per_bar": 4}


def test_grid_of_a_generator_file_with_and_without_a_record():
    stored = {"sample_rate": 8000, "bpm": 100.0, "beats_per_bar": 3, "classes": []}
    assert BarGrid.from_generator(stored, 8000, 14400, 1) == BarGrid(8000, 100.0, 3, 1)
    # files written without a grid: 4 beats per bar at the tempo the bar length implies
    assert BarGrid.from_generator({}, 8000, 16000, 2) == BarGrid(8000, 120.0, 4, 2)
