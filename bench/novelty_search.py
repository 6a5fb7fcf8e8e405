"""BeatGAN novelty search: chunked matrix products against a naive loop over pairs, one run.

Finds, for each of 2000 generated bars, the training bar (of 5000) with the lowest BeatGAN score
``sum((a-b)^2)/sum(a^2)``. The chunked implementation (pipeline.metrics.novelty) runs on the
whole problem; the naive loop (one numpy expression per pair) runs on the first few generated
bars against every training bar and is extrapolated by its time per pair. Both must give the
same scores and nearest bars on that subset. Prints times and the speed-up (target: >= 50x on a
CPU); asserts nothing about time.

    python bench/novelty_search.py [--generated 2000] [--train 5000] [--samples 8000]
                                   [--naive-bars 10] [--chunk 1024] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.metrics.novelty import nearest_scores

FULL_BAR_SAMPLES = 32000  # 2 s at 16 kHz, 120 bpm, 4/4


def make_bars(n_generated: int, n_train: int, samples: int, seed: int):
    """Training bars and generated bars, half of them noisy copies of training bars."""
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((n_train, 1, samples), dtype=np.float32)
    generated = rng.standard_normal((n_generated, 1, samples), dtype=np.float32)
    copies = rng.choice(n_train, size=n_generated // 2, replace=False)
    noise = rng.standard_normal((len(copies), 1, samples), dtype=np.float32)
    generated[1::2] = train[copies] + 0.2 * noise
    return generated, train


def naive_nearest(generated: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One generated bar, one training bar at a time."""
    best = np.full(len(generated), np.inf)
    best_index = np.zeros(len(generated), dtype=np.int64)
    for i, b in enumerate(generated):
        for j, a in enumerate(train):
            score = float(np.sum((a - b) ** 2) / np.sum(a**2))
            if score < best[i]:
                best[i], best_index[i] = score, j
    return best, best_index


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generated", type=int, default=2000)
    p.add_argument("--train", type=int, default=5000)
    p.add_argument("--samples", type=int, default=8000, help="samples per bar")
    p.add_argument("--naive-bars", type=int, default=10, help="generated bars the naive loop runs")
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    generated, train = make_bars(args.generated, args.train, args.samples, args.seed)
    gib = (generated.nbytes + train.nbytes) / 2**30
    print(
        f"novelty search: {args.generated} generated x {args.train} training bars, "
        f"{args.samples} samples per bar ({gib:.2f} GiB of bars); device {args.device}, "
        f"{torch.get_num_threads()} torch threads"
    )
    if args.samples < FULL_BAR_SAMPLES:
        print(
            f"  bars shortened from {FULL_BAR_SAMPLES} samples (2 s at 16 kHz) to {args.samples} "
            f"to keep memory and run time small (--samples 32000 runs full bars)"
        )

    nearest_scores(generated[:4], train[:4], chunk_size=args.chunk, device=args.device)  # warm-up
    start = time.perf_counter()
    scores, index = nearest_scores(generated, train, chunk_size=args.chunk, device=args.device)
    chunked = time.perf_counter() - start
    pairs = args.generated * args.train
    print(f"chunked matrix products: {chunked:8.2f} s  ({1e9 * chunked / pairs:7.1f} ns per pair)")

    k = min(args.naive_bars, args.generated)
    start = time.perf_counter()
    naive_scores, naive_index = naive_nearest(generated[:k], train)
    naive_subset = time.perf_counter() - start
    per_pair = naive_subset / (k * args.train)
    naive = per_pair * pairs
    print(
        f"naive loop over pairs:   {naive:8.2f} s  ({1e9 * per_pair:7.1f} ns per pair), "
        f"extrapolated from {k} x {args.train} pairs timed in {naive_subset:.2f} s"
    )
    print(f"speed-up: {naive / chunked:.0f}x  (target >= 50x on a CPU)")

    same_index = np.array_equal(index[:k], naive_index)
    close = np.allclose(scores[:k], naive_scores, rtol=1e-4, atol=1e-6)
    worst = float(np.max(np.abs(scores[:k] - naive_scores) / np.maximum(naive_scores, 1e-12)))
    verdict = {True: "equal", False: "DIFFER"}
    print(
        f"same answer on the {k} bars both ran: nearest bars {verdict[same_index]}, "
        f"scores {verdict[close]} (largest relative difference {worst:.1e})"
    )
    if not (same_index and close):
        sys.exit(1)


if __name__ == "__main__":
    main()
