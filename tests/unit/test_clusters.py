"""Self-conditioning: clustering the training bars within each class, and the generator trained
on clusters used as one conditioned on classes (the cluster drawn within the class by the
latent, in the clusters' proportions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.clusters import CLUSTER_COORDINATE, ClusterConditioned, hold_cluster
from pipeline.models.generator_file import build_generator, save_generator
from pipeline.models.generator_file import load as load_generator
from pipeline.sample.generate import per_class_bars, random_latents, scored_bars, walk_bars
from pipeline.sample.latent import latent_walk
from pipeline.train.clusters import (
    cluster_within_classes,
    clusters_for,
    kmeans,
    training_clusters,
)
from pipeline.train.config import TrainConfig

SR = 8000
BAR = 4000

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _bars_of_kinds(kinds: list[str], seed: int = 0) -> np.ndarray:
    """One bar per entry: ``tone`` (a low sine with its own pitch), ``hiss`` (high-passed
    noise bursts on the beat) or ``thump`` (decaying low clicks on the off-beats)."""
    rng = np.random.default_rng(seed)
    t = np.arange(BAR) / SR
    bars = []
    for kind in kinds:
        if kind == "tone":
            bar = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 140) * t)
        elif kind == "hiss":
            noise = np.diff(rng.normal(0, 0.3, BAR + 1))
            bar = noise * (np.sin(2 * np.pi * 4 * t) > 0.5)
        else:
            env = np.exp(-((t + 0.0625) % 0.125) * 60) * (((t + 0.0625) // 0.125) % 2 == 1)
            bar = 0.5 * env * np.sin(2 * np.pi * 60 * t)
        bars.append(bar + rng.normal(0, 0.005, BAR))
    return np.asarray(bars, dtype=np.float32)[:, None, :]


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_finds_separated_groups_numbered_in_order_of_appearance() -> None:
    rng = np.random.default_rng(1)
    truth = rng.permutation(np.repeat([0, 1, 2], 30))
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = centres[truth] + rng.normal(0, 0.5, (len(truth), 2))
    found = kmeans(x, 3, seed=0)
    assert _same_partition(found, truth)
    _, first = np.unique(found, return_index=True)
    assert list(found[np.sort(first)]) == [0, 1, 2]
    with pytest.raises(ValueError, match="between 1 and the 90 points"):
        kmeans(x, 91, seed=0)


def test_kmeans_leaves_no_empty_cluster_when_points_repeat() -> None:
    x = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    found = kmeans(x, 4, seed=0)
    assert sorted(set(found.tolist())) == [0, 1]


def test_clusters_for_rounds_bars_over_the_cluster_size() -> None:
    assert [clusters_for(n, 40) for n in (1, 19, 21, 100, 2675)] == [1, 1, 1, 2, 67]
    assert clusters_for(3, 1) == 3
    with pytest.raises(ValueError, match="bars_per_cluster must be >= 1"):
        clusters_for(10, 0)


def test_bars_are_clustered_by_sound_within_each_class() -> None:
    kinds = ["tone", "hiss"] * 6 + ["thump"] * 6
    labels = np.array([0] * 12 + [1] * 6)
    clusters = cluster_within_classes(_bars_of_kinds(kinds), labels, bars_per_cluster=6)
    assert clusters.classes == [0, 0, 1]
    assert clusters.counts == [6, 6, 6]
    assert _same_partition(clusters.labels[:12], np.array([k == "tone" for k in kinds[:12]]))
    assert set(clusters.labels[12:].tolist()) == {2}


def test_training_clusters_are_off_at_zero_and_where_every_class_gets_one() -> None:
    kinds = ["tone", "hiss"] * 6
    bars, labels = _bars_of_kinds(kinds), np.array([0] * 6 + [1] * 6)
    assert training_clusters(bars, labels, 0, seed=0) is None
    assert training_clusters(bars, labels, 6, seed=0) is None  # one per class: as classes
    unconditional = training_clusters(bars, None, 6, seed=0)
    assert unconditional is not None and unconditional.classes == [0, 0]
    assert _same_partition(unconditional.labels, np.array([k == "tone" for k in kinds]))


def _inner(prior: str = "uniform", n_clusters: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    config = TrainConfig(
        arch="wavegan" if prior == "uniform" else "melgan",
        sample_rate=SR,
        length=BAR if prior == "uniform" else 4096,
        latent_dim=8,
        model_dim=4,
        num_classes=n_clusters,
    )
    return build_generator(config).eval().requires_grad_(False)


@pytest.mark.parametrize("prior", ["uniform", "normal"])
def test_clusters_are_drawn_within_the_class_in_their_proportions(prior: str) -> None:
    inner = _inner(prior)
    assert inner.latent_prior == prior
    model = ClusterConditioned(inner, [0, 0, 1], [1, 3, 5], num_classes=2)
    z = model.sample_latent(20000, generator=torch.Generator().manual_seed(0), device="cpu")
    routed, clusters = model.route(z, torch.zeros(len(z), dtype=torch.long))
    assert abs((clusters == 1).float().mean().item() - 0.75) < 0.015
    assert set(clusters.tolist()) == {0, 1}
    _, other = model.route(z, torch.ones(len(z), dtype=torch.long))
    assert set(other.tolist()) == {2}
    assert torch.equal(routed[:, 1:], z[:, 1:])
    # the picking coordinate is stretched back over the prior within each cluster
    reference = z[:, CLUSTER_COORDINATE]
    for c in (0, 1):
        stretched = routed[clusters == c, CLUSTER_COORDINATE]
        assert abs(stretched.mean() - reference.mean()) < 0.05
        assert abs(stretched.std() - reference.std()) < 0.05


def test_a_bar_is_the_inner_generators_bar_for_the_routed_latent_and_cluster() -> None:
    inner = _inner()
    model = ClusterConditioned(inner, [0, 0, 1], [2, 2, 4], num_classes=2)
    z = model.sample_latent(6, generator=torch.Generator().manual_seed(3), device="cpu")
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    routed, clusters = model.route(z, labels)
    assert torch.equal(model(z, labels), inner(routed, clusters))
    assert torch.equal(model(z, labels), model(z, labels))
    with pytest.raises(ValueError, match="needs labels"):
        model(z)


def test_a_class_without_training_bars_is_drawn_from_every_cluster() -> None:
    model = ClusterConditioned(_inner(), [0, 0, 2], [1, 1, 2], num_classes=3)
    z = model.sample_latent(4000, generator=torch.Generator().manual_seed(0), device="cpu")
    _, clusters = model.route(z, torch.ones(len(z), dtype=torch.long))
    shares = torch.bincount(clusters, minlength=3).float() / len(z)
    assert torch.allclose(shares, torch.tensor([0.25, 0.25, 0.5]), atol=0.03)


def test_an_unconditional_self_conditioned_generator_takes_no_labels() -> None:
    model = ClusterConditioned(_inner(n_clusters=2), [0, 0], [1, 1], num_classes=0)
    z = model.sample_latent(3, generator=torch.Generator().manual_seed(0), device="cpu")
    assert model(z).shape == (3, 1, BAR)


def test_bad_cluster_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="one class and one count per cluster"):
        ClusterConditioned(_inner(), [0, 0, 1], [1, 1], num_classes=2)
    with pytest.raises(ValueError, match="every cluster needs training bars"):
        ClusterConditioned(_inner(), [0, 0, 1], [1, 0, 1], num_classes=2)


def test_a_self_conditioned_generator_file_samples_classes_and_walks_in_one_cluster(
    tmp_path,
) -> None:
    config = TrainConfig(
        arch="wavegan",
        sample_rate=SR,
        length=BAR,
        latent_dim=8,
        model_dim=4,
        num_classes=2,
        cluster_classes=[0, 0, 0, 1],
        cluster_counts=[3, 3, 3, 2],
    )
    torch.manual_seed(0)
    path = save_generator(tmp_path / "generator.pt", build_generator(config), config)
    loaded = load_generator(path)
    model = loaded.generator
    assert isinstance(model, ClusterConditioned)
    assert model.num_classes == loaded.settings.num_classes == 2
    assert model.cluster_count == 4
    assert per_class_bars(model, 2, seed=0).shape == (2, 2, 1, BAR)
    bars, labels = scored_bars(model, 8, seed=0, class_counts=[9, 2])
    assert bars.shape == (8, 1, BAR) and sorted(set(labels.tolist())) == [0, 1]
    keyframes = random_latents(model, 4, seed=5)
    walk = walk_bars(model, 12, 4, "slerp", seed=5)
    held = hold_cluster(model, torch.randn(12, 8), keyframes)
    assert torch.all(held[:, CLUSTER_COORDINATE] == keyframes[0, CLUSTER_COORDINATE])
    latents = hold_cluster(model, latent_walk(keyframes, 12, "slerp"), keyframes)
    _, clusters = model.route(latents, torch.zeros(12, dtype=torch.long))
    assert len(set(clusters.tolist())) == 1
    expected = model(latents, torch.zeros(12, dtype=torch.long)).numpy()
    np.testing.assert_array_equal(walk, expected)
