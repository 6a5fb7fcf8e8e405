"""Which bars show the spread of the scored bars in the report: one generated bar per class for a
conditional model, one per region of the fixed-feature embedding for an unconditional one, each
beside a real bar of the same class or region.

Every bar is placed in the download-free fixed embedding of the metrics
(:func:`pipeline.metrics.features.bar_features`), standardised with the scored bars' mean and
standard deviation so that no feature's unit dominates. A class's or a region's bar is its
member nearest the group's centre: a typical bar, not an outlier. Regions are k-means clusters
of the scored bars (seeded, so the same bars give the same picture), largest first; each real
bar belongs to the region of its nearest centre, so a region no real bar falls in shows no real
bar, and each row says what share of each set lies there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from pipeline.metrics.features import bar_features

MAX_ROWS = 10  # classes shown at most (the first ones); a figure row each
REGIONS = 4  # regions shown for an unconditional model
REAL_TITLE, GENERATED_TITLE = "real bars", "generated bars"
CEILING_TITLE = "real through our synthesis"


@dataclass(frozen=True)
class SpreadRow:
    """One row of the comparison: its label, the index of the generated bar among the scored
    bars, and the real bar's index in its set (``real_set``: "valid" for held-out bars,
    "train" where no held-out bar has the class); None where there is none."""

    label: str
    generated: int | None
    real: int | None
    real_set: str = "valid"


@dataclass(frozen=True)
class ComparisonRow:
    """One row as drawn: its label, the real and the generated bar (None: an empty panel)."""

    label: str
    real: np.ndarray | None  # [channels, samples]
    generated: np.ndarray | None
    generated_index: int | None  # among the scored bars
    ceiling: np.ndarray | None = None  # the real bar through the model's own synthesis


@dataclass(frozen=True)
class BarComparison:
    """Real and generated bars to draw side by side, a row per class or region, chosen from
    ``n_scored`` generated bars ``by`` "class" or "region"."""

    rows: tuple[ComparisonRow, ...]
    sample_rate: int
    n_scored: int
    by: str
    n_groups: int = 0  # classes or regions in all (rows shows at most MAX_ROWS)

    def columns(self) -> dict[str, list[np.ndarray | None]]:
        """Real, the real bars through our synthesis (where there are any), generated."""
        columns = {REAL_TITLE: [row.real for row in self.rows]}
        if any(row.ceiling is not None for row in self.rows):
            columns[CEILING_TITLE] = [row.ceiling for row in self.rows]
        columns[GENERATED_TITLE] = [row.generated for row in self.rows]
        return columns

    def row_labels(self) -> list[str]:
        return [row.label for row in self.rows]


def fixed_embedding(bars: np.ndarray, sample_rate: int, beats_per_bar: int) -> np.ndarray:
    """The fixed features of ``bars`` ``[n, channels, samples]`` as ``[n, D]`` float64."""
    embedding = bar_features(bars, sample_rate, beats_per_bar).embedding.astype(np.float64)
    return np.nan_to_num(embedding)


def standardiser(reference: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function scaling embeddings by ``reference``'s per-feature mean and std."""
    mean = reference.mean(0)
    std = reference.std(0)
    std[std < 1e-8] = 1.0
    return lambda embedding: (embedding - mean) / std


def nearest_to_centre(embedding: np.ndarray, members: np.ndarray, centre: np.ndarray) -> int:
    """The index (among ``members``, indices into ``embedding``) of the member closest to
    ``centre`` (the first on a tie)."""
    distances = ((embedding[members] - centre) ** 2).sum(1)
    return int(members[int(np.argmin(distances))])


def per_class(embedding: np.ndarray, labels: np.ndarray, num_classes: int) -> list[int | None]:
    """For each class ``0 .. num_classes-1``, the bar nearest its class's mean (None when no bar
    has the class)."""
    labels = np.asarray(labels)
    chosen: list[int | None] = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if not len(members):
            chosen.append(None)
            continue
        chosen.append(nearest_to_centre(embedding, members, embedding[members].mean(0)))
    return chosen


@dataclass(frozen=True)
class Regions:
    """k-means regions of an embedding, largest first: each region's centre, its most central
    member and how many bars it holds."""

    centres: np.ndarray  # [k, D]
    chosen: list[int]
    sizes: list[int]

    def assign(self, embedding: np.ndarray) -> np.ndarray:
        """The region of each row of ``embedding`` (its nearest centre)."""
        distances = ((embedding[:, None, :] - self.centres[None]) ** 2).sum(-1)
        return distances.argmin(1)


def regions(embedding: np.ndarray, k: int = REGIONS, seed: int = 0) -> Regions:
    """Up to ``k`` k-means regions of ``embedding`` ``[n, D]`` (fewer when it has fewer distinct
    rows), each with its bar nearest the region's centre: distinct bars from different regions."""
    distinct = len(np.unique(embedding, axis=0))
    k = max(1, min(k, distinct))
    fit = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(embedding)
    sizes = np.bincount(fit.labels_, minlength=k)
    order = sorted(range(k), key=lambda r: (-sizes[r], r))
    centres = fit.cluster_centers_[order]
    chosen = [
        nearest_to_centre(embedding, np.flatnonzero(fit.labels_ == r), fit.cluster_centers_[r])
        for r in order
    ]
    return Regions(centres, chosen, [int(sizes[r]) for r in order])


def class_rows(
    generated: np.ndarray,
    generated_labels: np.ndarray,
    real: np.ndarray,
    real_labels: np.ndarray,
    class_names: Sequence[str],
    train: tuple[np.ndarray, np.ndarray] | None = None,
    max_rows: int = MAX_ROWS,
) -> list[SpreadRow]:
    """One row per class (the first ``max_rows``): the scored bar nearest its class's centre
    beside the held-out bar nearest its class's centre or, where no held-out bar has the class,
    the training bar nearest it (``train``: embedding and labels). Every embedding ``[n, D]``
    is in one scale."""
    num_classes = len(class_names)
    generated_chosen = per_class(generated, generated_labels, num_classes)
    real_chosen = per_class(real, real_labels, num_classes)
    train_chosen = per_class(*train, num_classes) if train is not None else None
    rows = []
    for c, name in enumerate(class_names[:max_rows]):
        real_index, real_set, label = real_chosen[c], "valid", str(name)
        if real_index is None and train_chosen is not None and train_chosen[c] is not None:
            real_index, real_set = train_chosen[c], "train"
            label += "\n(real: training bar)"
        rows.append(SpreadRow(label, generated_chosen[c], real_index, real_set))
    return rows


def region_rows(generated: np.ndarray, real: np.ndarray, k: int = REGIONS) -> list[SpreadRow]:
    """One row per k-means region of the scored bars' embedding ``generated`` ``[n, D]``: its
    most central scored bar beside the real bar (embedding ``real``, same scale) most central
    among those whose nearest region it is, labelled with each set's share in the region."""
    found = regions(generated, k)
    real_region = found.assign(real) if len(real) else np.zeros(0, int)
    rows = []
    for r, (index, size) in enumerate(zip(found.chosen, found.sizes, strict=True)):
        members = np.flatnonzero(real_region == r)
        real_index = nearest_to_centre(real, members, found.centres[r]) if len(members) else None
        label = f"region {r + 1}\n{size / len(generated):.0%} of generated"
        if len(real):
            label += f"\n{len(members) / len(real):.0%} of real"
        rows.append(SpreadRow(label, index, real_index))
    return rows


def spread_comparison(
    generated: np.ndarray,
    generated_labels: np.ndarray | None,
    real: np.ndarray,
    real_labels: np.ndarray | None,
    sample_rate: int,
    beats_per_bar: int,
    class_names: Sequence[str] | None = None,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    ceiling: np.ndarray | None = None,
) -> BarComparison:
    """The comparison of the scored bars ``generated`` ``[n, channels, samples]`` with the
    held-out bars ``real``: by class when the scored bars have labels (``class_names`` name them;
    ``train``, bars and labels, stands in for classes with no held-out bar), otherwise by
    region. ``ceiling``: the held-out bars through the model's own synthesis, in ``real``'s
    order, shown beside each held-out bar."""
    if ceiling is not None and len(ceiling) != len(real):
        raise ValueError(f"{len(ceiling)} resynthesised bars for {len(real)} held-out bars")
    raw = fixed_embedding(generated, sample_rate, beats_per_bar)
    scale = standardiser(raw)
    embedded = scale(raw)

    def embed(bars: np.ndarray) -> np.ndarray:
        if not len(bars):
            return np.zeros((0, embedded.shape[1]))
        return scale(fixed_embedding(bars, sample_rate, beats_per_bar))

    real_embedded = embed(real)
    subset = np.zeros(0, int)  # the training bars that stand in, by index
    if generated_labels is None:
        rows = region_rows(embedded, real_embedded)
        by, n_groups = "region", len(rows)
    else:
        generated_labels = np.asarray(generated_labels)
        names = list(class_names or [])
        names += [f"class {c}" for c in range(len(names), int(generated_labels.max()) + 1)]
        held = np.full(len(real), -1) if real_labels is None else np.asarray(real_labels)
        stand_in = None
        if train is not None:  # embed only the training bars of classes with no held-out bar
            missing = [c for c in range(min(len(names), MAX_ROWS)) if not (held == c).any()]
            subset = np.flatnonzero(np.isin(train[1], missing))
            stand_in = (embed(train[0][subset]), np.asarray(train[1])[subset])
        rows = class_rows(embedded, generated_labels, real_embedded, held, names, stand_in)
        by, n_groups = "class", len(names)

    def real_bar(row: SpreadRow) -> np.ndarray | None:
        if row.real is None:
            return None
        if row.real_set == "train" and train is not None:
            return train[0][subset[row.real]]
        return real[row.real]

    def ceiling_bar(row: SpreadRow) -> np.ndarray | None:
        if ceiling is None or row.real is None or row.real_set != "valid":
            return None
        return ceiling[row.real]

    chosen = tuple(
        ComparisonRow(
            row.label,
            real_bar(row),
            None if row.generated is None else generated[row.generated],
            row.generated,
            ceiling_bar(row),
        )
        for row in rows
    )
    return BarComparison(chosen, sample_rate, len(generated), by, n_groups)
