"""Benchmark corpora made in code: synthesised tracks with exact ground truth."""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.synth import STYLES, SynthTrackSpec, make_corpus


def bench_specs(per_style: int, bpm_range: tuple[float, float], n_bars: int, seed: int):
    """Tempos spread evenly over the whole range for every style, with random swing,
    humanisation and lead-in (so tracks do not start on a downbeat)."""
    rng = np.random.default_rng(seed)
    specs = []
    for style in STYLES:
        for bpm in np.linspace(*bpm_range, per_style):
            specs.append(
                SynthTrackSpec(
                    style=style,
                    bpm=float(round(bpm + rng.uniform(-2, 2), 2)),
                    n_bars=n_bars,
                    swing=float(rng.uniform(0, 0.2)),
                    humanize_ms=float(rng.uniform(0, 6)),
                    lead_in_seconds=float(rng.uniform(0.3, 1.5)),
                    seed=int(rng.integers(1 << 30)),
                )
            )
    return specs


def build(out_dir: Path, specs, sample_rate: int = 44100) -> pd.DataFrame:
    return make_corpus(out_dir, specs, sample_rate)


@contextmanager
def cpu_timer():
    """Wall and CPU seconds of this process and its finished children (Rubber Band runs as one)."""
    result = {}
    start_wall = time.perf_counter()
    start = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    yield result
    end = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["wall"] = time.perf_counter() - start_wall
    result["cpu"] = sum(
        (e.ru_utime + e.ru_stime) - (s.ru_utime + s.ru_stime)
        for s, e in zip(start, end, strict=True)
    )
