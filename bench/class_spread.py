"""How much of each class a generator covers: within-class spread and mean offset, beside the
held-out bars' own, on the fixed features that the Fréchet distance compares.

    python bench/class_spread.py --generator data/models/generator.pt
    python bench/class_spread.py --generator run/generator.pt --splits-dir my/splits --json out.json

Features are standardised with the training bars' mean and standard deviation (as the Fréchet
distance's ``fixed`` embedding is). Per class:

- **spread**: the mean over features of the standard deviation within the class, over the
  training bars' own (1.0: the set varies as much as the training bars of that class do; a
  generator that ignores its latent reads near 0);
- **offset**: the squared distance between the set's class mean and the training bars' class
  mean (the share of a Fréchet distance that no amount of variety can remove).

Overall it splits the Fréchet distance of 256-bar sets into its mean term and the rest
(covariance). Rungs beside the generator: held-out real bars, white noise at their level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data.splits import load_split
from pipeline.metrics.embeddings import fixed_embedding
from pipeline.metrics.frechet import frechet_distance
from pipeline.metrics.references import rms, white_noise
from pipeline.models import generator_file
from pipeline.sample.generate import scored_bars


def class_rows(
    values: np.ndarray, labels: np.ndarray, reference: np.ndarray, reference_labels: np.ndarray
) -> list[dict[str, Any]]:
    """Per training class with at least two bars in the set: count, spread over the reference's,
    offset from it."""
    rows = []
    for k in np.unique(reference_labels):
        own, ref = values[labels == k], reference[reference_labels == k]
        if len(own) < 2:
            continue
        rows.append(
            {
                "class": int(k),
                "count": len(own),
                "spread": float(own.std(0).mean() / ref.std(0).mean()),
                "offset": float(np.square(own.mean(0) - ref.mean(0)).sum()),
            }
        )
    return rows


def frechet_split(values: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    distance = frechet_distance(values, reference)
    mean_term = float(np.square(values.mean(0) - reference.mean(0)).sum())
    return {"frechet": distance, "mean_term": mean_term, "covariance_term": distance - mean_term}


def measure(generator_path: Path, splits_dir: Path, n_bars: int, seed: int) -> dict[str, Any]:
    train, train_labels, sample_rate = load_split(splits_dir / "train.npz")
    valid, valid_labels, _ = load_split(splits_dir / "valid.npz")
    grid = json.loads((splits_dir / "grid.json").read_text())
    options = {"sample_rate": sample_rate, "beats_per_bar": int(grid["beats_per_bar"]), "cache": {}}
    model = generator_file.load(generator_path, device="cpu")
    counts = model.class_counts
    if counts is None and model.generator.num_classes:  # a file from before they were recorded
        counts = np.bincount(train_labels, minlength=model.generator.num_classes).tolist()
    generated, generated_labels = scored_bars(model.generator, n_bars, seed, class_counts=counts)
    rng = np.random.default_rng(seed)
    held_out = rng.choice(len(valid), min(n_bars, len(valid)), replace=False)
    sets = {
        "held-out bars": (valid[held_out], valid_labels[held_out]),
        "white noise": (white_noise(generated.shape, rms(valid), seed), None),
        "generator": (generated, generated_labels),
    }
    embed = fixed_embedding(train, options)  # the Fréchet distance's own standardisation
    reference = embed(train)
    rows = []
    for name, (bars, labels) in sets.items():
        values = embed(bars)
        row = {"set": name, "count": len(bars), **frechet_split(values, reference)}
        row["spread"] = float(values.std(0).mean() / reference.std(0).mean())
        if labels is not None:
            row["classes"] = class_rows(values, labels, reference, train_labels)
        rows.append(row)
    info = splits_dir / "info.json"
    names = json.loads(info.read_text()).get("classes") if info.is_file() else None
    return {"generator": str(generator_path), "splits": str(splits_dir), "classes": names,
            "rows": rows}  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| set | bars | Fréchet | mean term | covariance term | spread |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['set']} | {r['count']} | {r['frechet']:.1f} | {r['mean_term']:.1f} | "
                     f"{r['covariance_term']:.1f} | {r['spread']:.2f} |")  # fmt: skip
    lines += ["", "| class | held-out spread | generated spread | held-out offset | "
              "generated offset |", "|---|---|---|---|---|"]  # fmt: skip
    by_set = {r["set"]: {c["class"]: c for c in r.get("classes", [])} for r in result["rows"]}
    held, gen = by_set["held-out bars"], by_set["generator"]
    names = result.get("classes") or []
    for k in sorted(set(held) | set(gen)):
        h, g = held.get(k, {}), gen.get(k, {})
        name = names[k] if k < len(names) else k
        cells = [_cell(h, "spread", ".2f"), _cell(g, "spread", ".2f"),
                 _cell(h, "offset", ".1f"), _cell(g, "offset", ".1f")]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(row: dict[str, Any], key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", type=Path, required=True)
    p.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    p.add_argument("--bars", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    result = measure(args.generator, args.splits_dir, args.bars, args.seed)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
