"""A sample pack: loop-ready bars (and optional latent walks) for each class, tagged for a DAW,
with a metadata table, as one zip.

Bar ``j`` of every class is drawn from the latent of seed ``seed + j`` (the same latent for
every class, so a row of files differs only by class), exactly the bar that ``bargan generate
--bars 1 --seed <latent_seed> --class <class>`` makes. Each bar is made to loop on its own
(:func:`pipeline.sample.assemble.seamless_bar`), resampled as a loop when another rate is asked
for, and tagged with its tempo, beats and a loop over the whole bar (:mod:`pipeline.export.riff`).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.audio.resample import resample_loop
from pipeline.export.novelty import NEAR_COPY_SCORE, Nearest
from pipeline.export.riff import whole_bar_loop
from pipeline.export.wav import write_tagged_wav
from pipeline.fileio import atomic_write, replace_dir, staging_dir, write_csv_atomic
from pipeline.grid import BarGrid, bar_samples_at
from pipeline.sample.assemble import DEFAULT_CROSSFADE_MS, crossfade_samples, seamless_bar
from pipeline.sample.generate import random_bars
from pipeline.sample.track import TrackSpec, make_track

METADATA_FILE = "metadata.csv"
README_FILE = "README.txt"
COLUMNS = (
    "file", "kind", "class", "class_index", "latent_seed", "tempo_bpm", "bars", "beats",
    "sample_rate", "bit_depth", "nearest_train_db", "nearest_train_index", "novelty_score",
    "near_copy", "note",
)  # fmt: skip


@dataclass(frozen=True)
class PackSpec:
    bars_per_class: int = 8
    seed: int = 0
    class_indices: tuple[int | None, ...] = (None,)  # None: an unconditional generator
    sample_rate: int | None = None  # None: the generator's own rate
    bits: int = 16
    walk_bars: int = 0  # > 0: also one latent walk of this many bars per class
    crossfade_ms: float = DEFAULT_CROSSFADE_MS


@dataclass
class PackItem:
    """One file of the pack, at the generator's rate until written."""

    name: str
    kind: str  # bar | walk
    class_name: str
    class_index: int | None
    seed: int
    bars: int
    audio: np.ndarray  # [channels, bars * bar_samples], loop-ready
    raw: np.ndarray | None = field(default=None, repr=False)  # the generated bar, for novelty


def slug(text: str) -> str:
    """``text`` as a file-name part: letters, digits, ``-`` and ``.``; others become ``-``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "x"


def file_stem(class_name: str, bpm: float, kind: str, seed: int, bars: int) -> str:
    """``<class>_<bpm>bpm_<kind>[<bars>]_s<seed>``, e.g. ``techno_120bpm_bar_s3``: class and
    tempo first, as DAWs' browsers and sample managers read them."""
    what = "bar" if kind == "bar" else f"walk{bars}"
    return f"{slug(class_name)}_{bpm:g}bpm_{what}_s{seed}"


def render_pack(
    generator: torch.nn.Module, grid: BarGrid, class_names: Sequence[str], spec: PackSpec
) -> list[PackItem]:
    """Every file of the pack, in order: per class, its bars, then its walk."""
    sr, length = grid.sample_rate, int(generator.length)
    fade = crossfade_samples(sr, spec.crossfade_ms)
    items = []
    for class_index in spec.class_indices:
        name = "bargan" if class_index is None else class_names[class_index]
        for j in range(spec.bars_per_class):
            seed = spec.seed + j
            bar = random_bars(generator, 1, seed, class_index)[0]
            stem = file_stem(name, grid.bpm, "bar", seed, 1)
            loop = seamless_bar(bar, fade, sr)
            items.append(PackItem(stem, "bar", name, class_index, seed, 1, loop, bar))
        if spec.walk_bars > 0:
            track_spec = TrackSpec(
                n_bars=spec.walk_bars,
                seed=spec.seed,
                class_index=class_index,
                crossfade_ms=spec.crossfade_ms,
                beats_per_bar=grid.beats_per_bar,
            )
            track = make_track(generator, sr, track_spec)
            stem = file_stem(name, grid.bpm, "walk", spec.seed, spec.walk_bars)
            items.append(
                PackItem(stem, "walk", name, class_index, spec.seed, spec.walk_bars, track.audio)
            )
    assert all(item.audio.shape[-1] == item.bars * length for item in items)
    return items


def metadata_table(
    items: Sequence[PackItem],
    grid: BarGrid,
    rate: int,
    bits: int,
    nearest: Nearest | None,
    reason: str,
) -> pd.DataFrame:
    """One row per file. ``nearest`` holds the distances of the items' bars (kind ``bar``, in
    order) to the training set; without it those columns are empty and ``note`` says
    ``reason``."""
    rows = []
    bar_number = 0
    for item in items:
        row = {
            "file": f"{item.name}.wav", "kind": item.kind, "class": item.class_name,
            "class_index": "" if item.class_index is None else item.class_index,
            "latent_seed": item.seed, "tempo_bpm": grid.bpm, "bars": item.bars,
            "beats": item.bars * grid.beats_per_bar, "sample_rate": rate, "bit_depth": bits,
            "nearest_train_db": "", "nearest_train_index": "", "novelty_score": "",
            "near_copy": "", "note": "",
        }  # fmt: skip
        if item.kind != "bar":
            row["note"] = "a latent walk: distances are given for single bars"
        elif nearest is None:
            row["note"] = reason
        else:
            score = float(nearest.score[bar_number])
            row.update(
                nearest_train_db=round(float(nearest.distance_db[bar_number]), 3),
                nearest_train_index=int(nearest.index[bar_number]),
                novelty_score=float(f"{score:.6g}"),
                near_copy=score <= NEAR_COPY_SCORE,
            )
        bar_number += item.kind == "bar"
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


README_TEXT = """bargan sample pack
==================
{n_files} loop-ready WAV files at {rate} Hz, {bits}-bit, {channels} channel(s), {bpm:g} BPM,
{beats_per_bar} beats per bar, made by a bargan generator ({checkpoint}).

Every file carries two tags that DAWs and samplers read:
  acid  tempo ({bpm:g} BPM), number of beats, meter {beats_per_bar}/4, loop (not one-shot),
        stretch on, no root note: the host fits the loop to the project tempo and does not
        transpose it.
  smpl  one forward loop over the whole file (first to last sample, whole bars): a sampler
        loops it seamlessly.
Names are <class>_<tempo>bpm_<bar|walkN>_s<latent seed>.wav.

{metadata}: class, latent seed, tempo, bars and beats of each file, and, where the training
bars were given, the distance of each bar to its nearest training bar (nearest_train_db: log-mel
RMS difference in dB, shift-tolerant; novelty_score: the BeatGAN score sum((a-b)^2)/sum(a^2),
near_copy when <= {near_copy:g}).
"""


def write_pack(
    out_zip: Path,
    items: Sequence[PackItem],
    grid: BarGrid,
    spec: PackSpec,
    table: pd.DataFrame,
    checkpoint: Path,
) -> Path:
    """Write the pack's folder (``out_zip`` without ``.zip``) and the zip of it; returns the
    folder. The files are resampled (as loops) to ``spec.sample_rate`` when it is set."""
    rate = spec.sample_rate or grid.sample_rate
    bar_out = bar_samples_at(rate, grid.bpm, grid.beats_per_bar)
    folder = out_zip.with_suffix("")
    staging = staging_dir(folder)
    try:
        for item in items:
            frames = item.bars * bar_out
            audio = resample_loop(item.audio, grid.sample_rate, rate, frames)
            tags = whole_bar_loop(frames, item.bars, rate, grid.bpm, grid.beats_per_bar)
            write_tagged_wav(staging / f"{item.name}.wav", audio, tags, spec.bits)
        write_csv_atomic(staging / METADATA_FILE, table)
        readme = README_TEXT.format(
            n_files=len(items), rate=rate, bits=spec.bits, channels=grid.channels, bpm=grid.bpm,
            beats_per_bar=grid.beats_per_bar, checkpoint=checkpoint.name,
            metadata=METADATA_FILE, near_copy=NEAR_COPY_SCORE,
        )  # fmt: skip
        (staging / README_FILE).write_text(readme)
        replace_dir(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write(out_zip, lambda tmp: _zip(folder, tmp))
    return folder


def _zip(folder: Path, target: str) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{folder.name}/{path.name}")
