"""The representation ceiling, side by side: held-out real bars through each spectrogram
representation's analysis and synthesis (STFT size and hop, phase reconstruction), scored as
evaluate scores generated bars. No generator in a representation can beat real music rendered
through it, so this is how a SpecGAN setting was chosen (README "The representation").

    python bench/representation_ceiling.py                       # the demo splits
    python bench/representation_ceiling.py --splits-dir my/splits --json out.json
    python bench/representation_ceiling.py --generator data/models/generator.pt   # and its bars

With ``--generator`` (a trained SpecGAN) it also scores that generator's own spectrograms, the
same ``--bars`` latents and classes, rendered by each phase reconstruction at its STFT size:
phase reconstruction matters most where a spectrogram is not the STFT of any signal, which a
generated one is not.

Per setting: the Fréchet distance (fixed and classifier features) over the held-out bars' own,
the two-sample classifier's accuracy against the held-out bars (folds hold out whole recordings;
a bar and its resynthesis share a fold), the high-frequency envelope crest (how sharp the
transients stay: the peak over the median of the > 2 kHz energy in 2 ms frames, in dB, beside the
original's) and the synthesis time per bar (one process, all torch threads).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.data.splits import load_split, split_recordings
from pipeline.metrics.registry import compute_all
from pipeline.models import generator_file
from pipeline.models.specgan import SpectrogramCodec
from pipeline.sample.generate import class_labels, random_latents

SETTINGS = (  # n_fft, hop, phase, Griffin-Lim iterations
    (256, 128, "griffin-lim", 32),
    (512, 128, "griffin-lim", 32),
    (512, 128, "pghi", 0),
    (512, 128, "pghi", 8),
    (512, 128, "pghi", 16),
    (512, 64, "griffin-lim", 32),
    (512, 64, "pghi", 8),
    (1024, 256, "griffin-lim", 32),
    (1024, 256, "pghi", 8),
)
BATCH = 16
PHASES = (("griffin-lim", 32), ("pghi", 0), ("pghi", 8), ("pghi", 16))
CREST_FFT, CREST_HOP, CREST_FROM_HZ = 128, 32, 2000.0


def high_band_crest_db(bars: np.ndarray, sample_rate: int) -> float:
    """Mean over bars of the peak over the median of the energy above 2 kHz, 2 ms frames (dB)."""
    audio = torch.as_tensor(bars).reshape(-1, bars.shape[-1]).double()
    window = torch.hann_window(CREST_FFT, dtype=torch.float64)
    spec = torch.stft(audio, CREST_FFT, CREST_HOP, window=window, return_complex=True).abs()
    first = int(np.ceil(CREST_FROM_HZ * CREST_FFT / sample_rate))
    energy = spec[:, first:, :].pow(2).sum(1)
    ratio = energy.max(1).values / energy.median(1).values.clamp_min(1e-12)
    return float(10 * torch.log10(ratio).mean())


def round_trip(bars: np.ndarray, n_fft: int, hop: int, phase: str, iters: int) -> np.ndarray:
    codec = SpectrogramCodec(bars.shape[-1], n_fft, hop, -80.0, iters, phase)
    out = []
    with torch.no_grad():
        for start in range(0, len(bars), BATCH):
            chunk = torch.from_numpy(bars[start : start + BATCH])
            out.append(codec.decode(codec.encode(chunk)).numpy())
    return np.concatenate(out)


def generated_spectrograms(path: Path, n: int, seed: int) -> tuple[Any, torch.Tensor]:
    """The generator file's SpecGAN and its spectrograms for ``n`` seeded latents, classes in
    the training mix the file records (in turn for a file written before it did)."""
    model = generator_file.load(path, device="cpu")
    generator = model.generator.eval()
    if not hasattr(generator, "codec"):
        raise SystemExit(f"{path}: not a spectrogram generator (no phase to reconstruct)")
    latents = random_latents(generator, n, seed)
    labels = class_labels(generator, n, class_counts=model.class_counts)
    with torch.no_grad():
        spectrograms = torch.cat(
            [
                generator.forward_training(
                    latents[i : i + BATCH], None if labels is None else labels[i : i + BATCH]
                )
                for i in range(0, n, BATCH)
            ]
        )
    return generator, spectrograms


def render(generator: Any, spectrograms: torch.Tensor, phase: str, iters: int) -> np.ndarray:
    """The spectrograms through the generator's codec settings with another phase method."""
    codec = generator.codec
    other = SpectrogramCodec(codec.length, codec.n_fft, codec.hop_length, codec.floor_db, iters,
                             phase)  # fmt: skip
    with torch.no_grad():
        return torch.cat(
            [other.decode(spectrograms[i : i + BATCH]) for i in range(0, len(spectrograms), BATCH)]
        ).numpy()


def measure(
    splits_dir: Path, bootstrap: int, generator_path: Path | None = None, n_bars: int = 256
) -> dict[str, Any]:
    train, train_labels, sample_rate = load_split(splits_dir / "train.npz")
    valid, valid_labels, _ = load_split(splits_dir / "valid.npz")
    grid = json.loads((splits_dir / "grid.json").read_text())
    valid_groups = split_recordings(splits_dir, "valid", len(valid))
    options = {
        "sample_rate": sample_rate,
        "bpm": float(grid["bpm"]),
        "beats_per_bar": int(grid["beats_per_bar"]),
        "bootstrap": bootstrap,
        "seed": 0,
        "train_labels": train_labels,
        "valid_labels": valid_labels,
        "generated_labels": valid_labels,
        "train_groups": split_recordings(splits_dir, "train", len(train)),
        "valid_groups": valid_groups,
        "generated_groups": valid_groups,
        "cache": {},
    }
    names = ["frechet", "two_sample"]
    rows = []
    for n_fft, hop, phase, iters in SETTINGS:
        start = time.perf_counter()
        bars = round_trip(valid, n_fft, hop, phase, iters)
        seconds = (time.perf_counter() - start) / len(valid)
        scores = compute_all(bars, train, valid, options, names)
        frechet, c2st = scores["frechet"], scores["two_sample"]
        rows.append(
            {
                "n_fft": n_fft,
                "hop": hop,
                "phase": phase,
                "iterations": iters,
                "redundancy": n_fft // hop,
                "frechet_fixed_ratio": frechet["generated.fixed"] / frechet["valid.fixed"],
                "frechet_classifier_ratio": frechet.get("generated.classifier", np.nan)
                / frechet.get("valid.classifier", np.nan),
                "two_sample_accuracy": c2st.get("generated.accuracy"),
                "crest_db": high_band_crest_db(bars, sample_rate),
                "seconds_per_bar": seconds,
            }
        )
        print(f"{n_fft}/{hop} {phase} +{iters}: done", file=sys.stderr, flush=True)
    generated_rows = []
    if generator_path is not None:
        generator, spectrograms = generated_spectrograms(generator_path, n_bars, seed=0)
        no_groups = {**options, "generated_groups": None, "generated_labels": None}
        for phase, iters in PHASES:
            start = time.perf_counter()
            bars = render(generator, spectrograms, phase, iters)
            seconds = (time.perf_counter() - start) / len(bars)
            scores = compute_all(bars, train, valid, no_groups, names)
            frechet, c2st = scores["frechet"], scores["two_sample"]
            generated_rows.append(
                {
                    "n_fft": generator.codec.n_fft,
                    "hop": generator.codec.hop_length,
                    "phase": phase,
                    "iterations": iters,
                    "frechet_fixed_ratio": frechet["generated.fixed"] / frechet["valid.fixed"],
                    "frechet_classifier_ratio": np.nan,
                    "two_sample_accuracy": c2st.get("generated.accuracy"),
                    "crest_db": high_band_crest_db(bars, sample_rate),
                    "seconds_per_bar": seconds,
                }
            )
            print(f"generated, {phase} +{iters}: done", file=sys.stderr, flush=True)
    return {
        "generator": None if generator_path is None else str(generator_path),
        "generated_bars": n_bars if generator_path is not None else 0,
        "generated_rows": generated_rows,
        "splits": str(splits_dir),
        "valid_bars": len(valid),
        "real_two_sample_accuracy": scores["two_sample"].get("valid.accuracy"),
        "original_crest_db": high_band_crest_db(valid, sample_rate),
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['valid_bars']} held-out bars of {result['splits']}; two-sample accuracy of the "
        f"training bars against them (real vs real): {result['real_two_sample_accuracy']:.2f}; "
        f"high-band crest of the originals: {result['original_crest_db']:.1f} dB; "
        f"{result['torch_threads']} torch threads",
        "",
        "| STFT (n_fft / hop) | phase | Fréchet fixed × real | Fréchet classifier × real | "
        "two-sample accuracy | high-band crest dB | s per bar |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(row) for row in result["rows"]]
    if result["generated_rows"]:
        lines += [
            "",
            f"{result['generated_bars']} bars of {result['generator']}, the same spectrograms "
            "rendered by each phase reconstruction:",
            "",
            "| STFT (n_fft / hop) | phase | Fréchet fixed × real | two-sample accuracy | "
            "high-band crest dB | s per bar |",
            "|---|---|---|---|---|---|",
        ]
        lines += [_row(row, classifier=False) for row in result["generated_rows"]]
    return "\n".join(lines)


def _row(row: dict[str, Any], classifier: bool = True) -> str:
    phase = "Griffin-Lim" if row["phase"] == "griffin-lim" else "PGHI"
    if row["iterations"] and row["phase"] == "pghi":
        phase += f" + {row['iterations']} Griffin-Lim"
    elif row["phase"] == "griffin-lim":
        phase += f" {row['iterations']}"
    cells = [f"{row['n_fft']} / {row['hop']}", phase, f"{row['frechet_fixed_ratio']:.2f}"]
    if classifier:
        cells.append(f"{row['frechet_classifier_ratio']:.2f}")
    cells += [f"{row['two_sample_accuracy']:.2f}", f"{row['crest_db']:.1f}",
              f"{row['seconds_per_bar']:.3f}"]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    p.add_argument("--bootstrap", type=int, default=50)
    p.add_argument("--generator", type=Path, help="also render this SpecGAN's spectrograms")
    p.add_argument("--bars", type=int, default=256, help="generated bars with --generator")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    result = measure(args.splits_dir, args.bootstrap, args.generator, args.bars)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
