"""The report's spread figure: one scored bar per class (or per region of the fixed features)
beside a real bar of the same class or region, every panel on one colour scale."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.report.spread import (
    fixed_embedding,
    region_rows,
    regions,
    spread_comparison,
    standardiser,
)
from pipeline.spectrograms import DB_RANGE, spectrogram_grid_figure

SR, BAR, BEATS = 8000, 4000, 1  # one beat at 120 BPM
KINDS = ("low tone", "high tone", "noise")


def kind_bars(kinds: list[int], seed: int) -> np.ndarray:
    """A bar ``[1, BAR]`` per entry of ``kinds``: a decaying 150 Hz tone (0), a decaying 2 kHz
    tone (1) or steady noise (2), each with its own level and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(BAR) / SR
    bars = []
    for kind in kinds:
        level = rng.uniform(0.3, 0.6)
        if kind == 2:
            audio = 0.3 * level * rng.standard_normal(BAR)
        else:
            freq = (150.0, 2000.0)[kind] * rng.uniform(0.97, 1.03)
            audio = level * np.sin(2 * np.pi * freq * t) * np.exp(-6 * t)
        bars.append(audio + 0.003 * rng.standard_normal(BAR))
    return np.stack(bars)[:, None].astype(np.float32)


def _holds(bars: np.ndarray, bar: np.ndarray) -> bool:
    return any(np.array_equal(bar, b) for b in bars)


def test_one_scored_bar_per_class_beside_a_real_bar_of_that_class():
    labels = np.arange(9) % 3  # the sample stage's classes in turn
    generated = kind_bars(list(labels), seed=1)
    valid_labels = np.array([0, 1, 0, 1])  # no held-out bar of class 2
    valid = kind_bars(list(valid_labels), seed=2)
    train_labels = np.array([2, 0, 2, 1, 2])
    train = kind_bars(list(train_labels), seed=3)

    comparison = spread_comparison(
        generated, labels, valid, valid_labels, SR, BEATS, KINDS, train=(train, train_labels)
    )
    assert comparison.by == "class" and comparison.n_scored == 9 and comparison.n_groups == 3
    chosen = [row.generated_index for row in comparison.rows]
    assert labels[chosen].tolist() == [0, 1, 2]  # every class, in order, once
    for row, index in zip(comparison.rows, chosen, strict=True):
        assert np.array_equal(row.generated, generated[index])
    for c in (0, 1):  # the held-out bars of the same class
        assert _holds(valid[valid_labels == c], comparison.rows[c].real)
        assert comparison.rows[c].label == KINDS[c]
    # class 2 has no held-out bar: a training bar of class 2 stands in, and its row says so
    assert _holds(train[train_labels == 2], comparison.rows[2].real)
    assert "training bar" in comparison.rows[2].label

    without_train = spread_comparison(generated, labels, valid, valid_labels, SR, BEATS, KINDS)
    assert without_train.rows[2].real is None and without_train.rows[2].generated is not None


def test_the_figure_draws_every_panel_on_one_colour_scale_with_one_colour_bar():
    labels = np.arange(6) % 3
    generated = kind_bars(list(labels), seed=1)
    valid_labels = np.array([0, 1])
    valid = kind_bars(list(valid_labels), seed=2) * 0.01  # much quieter: the scale still holds
    comparison = spread_comparison(generated, labels, valid, valid_labels, SR, BEATS, KINDS)
    fig = spectrogram_grid_figure(comparison.columns(), SR, comparison.row_labels())

    images = [image for ax in fig.axes for image in ax.get_images()]
    assert len(images) == 5  # 3 generated, 2 real; class 2 has no real bar: an empty panel
    assert {image.get_clim() for image in images} == {DB_RANGE}
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colour_bars) == 1
    assert colour_bars[0].get_ylim() == pytest.approx(DB_RANGE)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["real bars", "generated bars"]
    empty = [ax for ax in fig.axes if ax.get_visible() and not ax.get_images()]
    assert [t.get_text() for ax in empty for t in ax.texts] == ["none"]
    assert [fig.axes[2 * r].get_ylabel() for r in range(3)] == [f"{k}\nkHz" for k in KINDS]


def test_an_unconditional_model_shows_distinct_bars_from_different_regions():
    kinds = [0] * 6 + [1] * 4 + [2] * 2
    order = np.random.default_rng(0).permutation(len(kinds))
    kinds = [kinds[i] for i in order]  # the regions' bars spread through the scored set
    generated = kind_bars(kinds, seed=4)
    real_kinds = [0, 1, 2, 0]
    real = kind_bars(real_kinds, seed=5)
    scale = standardiser(fixed_embedding(generated, SR, BEATS))
    embedded = scale(fixed_embedding(generated, SR, BEATS))

    found = regions(embedded, k=3)
    assert found.sizes == [6, 4, 2]  # largest first
    assert [kinds[i] for i in found.chosen] == [0, 1, 2]  # one bar from each region
    rows = region_rows(embedded, scale(fixed_embedding(real, SR, BEATS)), k=3)
    assert [row.generated for row in rows] == found.chosen
    assert [real_kinds[row.real] for row in rows] == [0, 1, 2]  # a real bar of the same region
    assert rows[0].label == "region 1\n50% of generated\n50% of real"

    comparison = spread_comparison(generated, None, real, None, SR, BEATS)
    assert comparison.by == "region" and len(comparison.rows) == 4  # the default, a handful
    chosen = [row.generated_index for row in comparison.rows]
    assert len(set(chosen)) == 4 and {kinds[i] for i in chosen} == {0, 1, 2}


def test_identical_scored_bars_make_one_region():
    generated = np.repeat(kind_bars([0], seed=6), 5, axis=0)
    comparison = spread_comparison(generated, None, kind_bars([0, 1], seed=7), None, SR, BEATS)
    assert len(comparison.rows) == 1 and comparison.rows[0].generated_index == 0


def test_each_held_out_bar_shows_beside_its_own_resynthesis():
    labels = np.arange(6) % 3
    generated = kind_bars(list(labels), seed=1)
    valid_labels = np.array([0, 1, 2, 0])
    valid = kind_bars(list(valid_labels), seed=2)
    ceiling = -valid  # stands for the round trip: one distinct bar per held-out bar
    comparison = spread_comparison(
        generated, labels, valid, valid_labels, SR, BEATS, KINDS, ceiling=ceiling
    )
    assert list(comparison.columns()) == ["real bars", "real through our synthesis",
                                          "generated bars"]  # fmt: skip
    for row in comparison.rows:
        (index,) = [i for i, bar in enumerate(valid) if np.array_equal(bar, row.real)]
        assert np.array_equal(row.ceiling, ceiling[index])
    plain = spread_comparison(generated, labels, valid, valid_labels, SR, BEATS, KINDS)
    assert list(plain.columns()) == ["real bars", "generated bars"]
    with pytest.raises(ValueError, match="3 resynthesised bars for 4 held-out bars"):
        spread_comparison(
            generated, labels, valid, valid_labels, SR, BEATS, KINDS, ceiling=ceiling[:3]
        )
