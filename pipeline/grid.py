"""The bar grid: one record of sample rate, tempo, beats per bar and channels.

The bars stage writes it (``data/bars/grid.json``), split carries it to ``data/splits``, training
stores its tempo fields in the generator file, and every later reader takes it from there. The
bar length and tempo formulas below are the only ones in the project.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.fileio import write_json_atomic

GRID_FILE = "grid.json"
# What a generator file stores and the metrics take, in this order (the order is part of the
# generator file's bytes).
TIMING_KEYS = ("sample_rate", "bpm", "beats_per_bar")
DEFAULT_BEATS_PER_BAR = 4  # the default meter everywhere (and of generator files without a grid)


def bar_samples_at(sample_rate: int, bpm: float, beats_per_bar: int) -> int:
    """Samples in one bar: ``sr * 60 / bpm * beats_per_bar``, rounded to a whole sample."""
    if bpm <= 0 or beats_per_bar < 1:
        raise ValueError(f"need bpm > 0 and beats_per_bar >= 1, got {bpm}, {beats_per_bar}")
    return round(sample_rate * 60.0 / bpm * beats_per_bar)


def tempo_of(bar_samples: int, sample_rate: int, beats_per_bar: int) -> float:
    """The tempo (BPM) at which ``bar_samples`` is one bar of ``beats_per_bar`` beats."""
    return sample_rate * 60.0 * beats_per_bar / bar_samples


@dataclass(frozen=True)
class BarGrid:
    sample_rate: int
    bpm: float
    beats_per_bar: int
    channels: int

    @property
    def bar_samples(self) -> int:
        return bar_samples_at(self.sample_rate, self.bpm, self.beats_per_bar)

    @property
    def bar_seconds(self) -> float:
        return self.bar_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        """Typed fields plus the derived ``bar_samples``, for readers outside Python."""
        return {
            "sample_rate": int(self.sample_rate),
            "bpm": float(self.bpm),
            "beats_per_bar": int(self.beats_per_bar),
            "channels": int(self.channels),
            "bar_samples": self.bar_samples,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> BarGrid:
        grid = cls(
            int(record["sample_rate"]),
            float(record["bpm"]),
            int(record["beats_per_bar"]),
            int(record["channels"]),
        )
        if "bar_samples" in record and int(record["bar_samples"]) != grid.bar_samples:
            raise ValueError(
                f"grid record says {record['bar_samples']} samples per bar, its tempo gives "
                f"{grid.bar_samples}"
            )
        return grid

    def write(self, path: Path) -> Path:
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def read(cls, path: Path) -> BarGrid:
        """The grid in ``path``, or the ``grid.json`` inside it when ``path`` is a folder."""
        path = Path(path)
        if path.is_dir():
            path = path / GRID_FILE
        return cls.from_dict(json.loads(path.read_text()))

    def timing(self) -> dict[str, Any]:
        """Sample rate, tempo and beats per bar: what a generator file stores beside its config
        (which has the channels and bar length) and what the metrics take."""
        record = self.to_dict()
        return {key: record[key] for key in TIMING_KEYS}

    @classmethod
    def from_generator(
        cls, metadata: Mapping[str, Any], sample_rate: int, bar_samples: int, channels: int
    ) -> BarGrid:
        """The grid of a generator file from its metadata and config; a file written without
        a grid (a run folder's generator) gets 4 beats per bar at the tempo its length implies."""
        beats = int(metadata.get("beats_per_bar", DEFAULT_BEATS_PER_BAR))
        if "bpm" in metadata:
            bpm = float(metadata["bpm"])
        else:
            bpm = tempo_of(bar_samples, sample_rate, beats)
        return cls(int(metadata.get("sample_rate", sample_rate)), bpm, beats, channels)
