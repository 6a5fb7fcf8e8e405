"""The metrics' feature cache is keyed by array identity: an entry must keep its array alive, so
that a freed array's ``id`` cannot be handed to a new array and return the old one's features."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from pipeline.metrics.features import features_for

SR = 8000


def _bars(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.1, (3, 1, SR)).astype(np.float32)


def test_an_entry_keeps_its_array_alive_and_tells_equal_shapes_apart() -> None:
    options = {"sample_rate": SR, "beats_per_bar": 4, "cache": {}}
    first = _bars(0)
    ref = weakref.ref(first)
    first_features = features_for(first, options).embedding
    del first
    gc.collect()
    assert ref() is not None  # held by the cache key: its id cannot be reused

    # Arrays of one shape, made one after another, each get their own features.
    for seed in range(1, 6):
        bars = _bars(seed)
        features = features_for(bars, options).embedding
        assert not np.allclose(features, first_features)
        assert features_for(bars, options) is features_for(bars, options)  # a hit, not a recompute
        del bars
    assert len(options["cache"]) == 6


def test_without_a_cache_nothing_is_kept() -> None:
    bars = _bars(0)
    ref = weakref.ref(bars)
    features_for(bars, {"sample_rate": SR, "beats_per_bar": 4})
    del bars
    gc.collect()
    assert ref() is None
