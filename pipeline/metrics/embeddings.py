"""Embeddings for the Fréchet and kernel distances: a registry of factories.

A factory receives the training bars and the evaluation options and returns a function
``bars [N, C, T] -> [N, D]``, or None when it cannot run here (no labels, no local weights).
Two are always registered:

- ``fixed``: the download-free audio features of :mod:`pipeline.metrics.features`, standardised
  with the training set's mean and standard deviation (so no single feature's unit dominates);
- ``classifier``: the hidden layer of the small MLP classifier trained on the training split's
  labels (:mod:`pipeline.metrics.classifier`), whichever classifier ``evaluate.classifier``
  picks for the inception score; None when there are fewer than two classes.

A pretrained embedding found locally plugs in the same way, e.g.::

    def vggish(train, options):
        path = options.get("vggish_weights")
        if not path or not Path(path).is_file():
            return None
        model = load_my_model(path)
        return lambda bars: model.embed(bars, options["sample_rate"])

    register_embedding("vggish", vggish)

and is used when its name is listed in ``options["embeddings"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from pipeline.metrics import bootstrap, features
from pipeline.metrics.classifier import trained_classifier
from pipeline.metrics.features import array_key, cached, features_for

Embed = Callable[[np.ndarray], np.ndarray]
EmbeddingFactory = Callable[[np.ndarray, dict[str, Any]], Embed | None]

EMBEDDINGS: dict[str, EmbeddingFactory] = {}
DEFAULT_EMBEDDINGS = ("fixed", "classifier")
# The options of the distances on these embeddings, and their defaults.
OPTIONS: dict[str, Any] = {
    "embeddings": DEFAULT_EMBEDDINGS,
    **bootstrap.OPTIONS,
    **features.OPTIONS,
}


def register_embedding(name: str, factory: EmbeddingFactory) -> None:
    EMBEDDINGS[name] = factory


def fixed_embedding(train: np.ndarray, options: dict[str, Any]) -> Embed:
    reference = features_for(train, options).embedding.astype(np.float64)
    mean = reference.mean(0)
    std = reference.std(0)
    std[std < 1e-8] = 1.0

    def embed(bars: np.ndarray) -> np.ndarray:
        return (features_for(bars, options).embedding - mean) / std

    return embed


def classifier_embedding(train: np.ndarray, options: dict[str, Any]) -> Embed | None:
    classifier = trained_classifier(train, options)
    if classifier is None:
        return None
    return lambda bars: classifier.embed(features_for(bars, options).embedding)


register_embedding("fixed", fixed_embedding)
register_embedding("classifier", classifier_embedding)


def embedded_sets(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> Iterator[tuple[str, np.ndarray, dict[str, np.ndarray]]]:
    """For each usable embedding in ``options["embeddings"]``: (name, train embedded,
    {"generated": .., "valid": ..} embedded); unavailable embeddings are left out."""
    names = options.get("embeddings", DEFAULT_EMBEDDINGS)
    unknown = sorted(set(names) - set(EMBEDDINGS))
    if unknown:
        raise ValueError(f"unknown embeddings {unknown}; known: {sorted(EMBEDDINGS)}")
    for name in names:
        make = partial(EMBEDDINGS[name], train, options)
        embed = cached(options, ("embedding", name, *array_key(train)), make)
        if embed is None:
            continue
        sets = {"generated": generated}
        if valid is not None and len(valid):
            sets["valid"] = valid
        sets["train"] = train
        embedded = {key: _embedded(embed, bars, name, train, options) for key, bars in sets.items()}
        yield name, embedded.pop("train"), embedded


def _embedded(
    embed: Embed, bars: np.ndarray, name: str, train: np.ndarray, options: dict[str, Any]
) -> np.ndarray:
    key = ("embedded", name, *array_key(train), *array_key(bars))
    return np.asarray(cached(options, key, lambda: embed(bars)), dtype=np.float64)


BootstrapDistance = Callable[[np.ndarray, np.ndarray, int, int], tuple[float, np.ndarray]]


def bootstrapped_distances(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
    distance: BootstrapDistance,
    lower_bound: float | None = None,
) -> dict[str, float]:
    """A set-to-set distance on every embedding, generated and held-out bars each against the
    training bars: ``{set}.{embedding}`` with ``.ci_low`` / ``.ci_high``, ``{embedding}.dim``,
    the counts, the bootstrap size and confidence."""
    n_boot, confidence, seed = bootstrap.settings(options)
    result: dict[str, float] = {
        "bootstrap": n_boot,
        "confidence": confidence,
        "train.count": len(train),
        "generated.count": len(generated),
    }
    if valid is not None and len(valid):
        result["valid.count"] = len(valid)
    for name, reference, sets in embedded_sets(generated, train, valid, options):
        result[f"{name}.dim"] = reference.shape[1]
        for set_name, embedded in sets.items():
            point, samples = distance(embedded, reference, n_boot, seed)
            result.update(
                bootstrap.summary(f"{set_name}.{name}", point, samples, confidence, lower_bound)
            )
    return result
