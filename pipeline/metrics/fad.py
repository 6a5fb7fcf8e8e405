"""``fad_vggish``: Fréchet Audio Distance (Kilgour et al. 2019) on VGGish embeddings.

The FAD protocol: every 0.96 s example of every clip (here: every bar, mono, at 16 kHz; see
:mod:`pipeline.metrics.vggish_input`) is embedded by VGGish to 128 numbers (fc2 before its
ReLU, no PCA, as the FAD reference code's TensorFlow VGGish gives them); a Gaussian is fitted to
each set's embeddings and FAD is the Fréchet distance between the two Gaussians
(:func:`pipeline.metrics.frechet.frechet_distance`). A bar shorter than one example is looped
until it covers one (bars are loops).

Reported against the training bars, as every metric of the registry is: ``generated.fad`` beside
the held-out real bars' ``valid.fad``, with bootstrap intervals that resample whole bars; and
``generated.fad_to_valid``, the paper's set-up of an evaluation set against held-out real audio.
It needs the weights of the torchvggish port (``options["vggish_weights"]``, the
``evaluate.vggish_weights`` param); without them it reports ``skipped`` and why, and no number.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.metrics import bootstrap
from pipeline.metrics.features import array_key, cached
from pipeline.metrics.frechet import frechet_bootstrap
from pipeline.metrics.spec import QUALITY, Headline, MetricSpec
from pipeline.metrics.vggish import VGGish, embed_examples, load_vggish
from pipeline.metrics.vggish_input import MIN_SAMPLES, SAMPLE_RATE, waveform_to_examples

PROTOCOL = (
    "FAD (Kilgour et al. 2019): VGGish embeddings (torchvggish weights, fc2 before its ReLU, "
    "no PCA) of 0.96 s examples at 16 kHz mono, one Gaussian per set, Fréchet distance"
)
SKIPPED = (
    "evaluate.vggish_weights is null: no VGGish weights to embed the bars with (set it to the "
    "path of the torchvggish state dict vggish-10086976.pth, the registry's vggish-weights entry)"
)

OPTIONS: dict[str, Any] = {"vggish_weights": None, **bootstrap.OPTIONS}


def looped_to_one_example(bars: np.ndarray, sample_rate: int) -> np.ndarray:
    """Bars ``[N, C, T]`` repeated end to end until they cover one VGGish example."""
    needed = math.ceil(MIN_SAMPLES * sample_rate / SAMPLE_RATE) + 1
    repeats = math.ceil(needed / bars.shape[-1])
    return bars if repeats <= 1 else np.tile(bars, (1, 1, repeats))


def bar_examples(bars: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[N, k, 96, 64]``: the log-mel examples of each bar (mono), ``k`` per bar."""
    bars = looped_to_one_example(np.asarray(bars, dtype=np.float64), sample_rate)
    return np.stack([waveform_to_examples(bar, sample_rate) for bar in bars])


def embed_bars(model: VGGish, bars: np.ndarray, sample_rate: int, chunk: int = 256) -> np.ndarray:
    """``[N, k, 128]`` VGGish embeddings of each bar's ``k`` examples, ``chunk`` bars at a time."""
    out = []
    for start in range(0, len(bars), chunk):
        examples = bar_examples(bars[start : start + chunk], sample_rate)
        n, k = examples.shape[:2]
        flat = examples.reshape(n * k, *examples.shape[2:])
        out.append(embed_examples(model, flat).reshape(n, k, -1))
    return np.concatenate(out)


def fad_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """``generated.fad`` / ``valid.fad`` against the training bars and ``generated.fad_to_valid``,
    each with ``.ci_low`` / ``.ci_high``; the counts, examples per bar, the bootstrap size and
    confidence. ``{"skipped": why}`` without ``options["vggish_weights"]``."""
    path = options.get("vggish_weights", OPTIONS["vggish_weights"])
    if not path:
        return {"skipped": SKIPPED}
    model = cached(
        options, ("vggish", str(Path(path).resolve())), lambda: load_vggish(path, final_relu=False)
    )
    rate = int(options["sample_rate"])
    sets = {"train": train, "generated": generated}
    if valid is not None and len(valid):
        sets["valid"] = valid
    embedded = {
        name: cached(options, ("vggish_embedded", id(model), *array_key(bars)),
                     lambda bars=bars: embed_bars(model, bars, rate))
        for name, bars in sets.items()
    }  # fmt: skip
    n_boot, confidence, seed = bootstrap.settings(options)
    result: dict[str, Any] = {
        "bootstrap": n_boot,
        "confidence": confidence,
        "examples_per_bar": embedded["train"].shape[1],
        **{f"{name}.count": len(bars) for name, bars in sets.items()},
    }
    pairs = [("generated.fad", "generated", "train")]
    if "valid" in embedded:
        pairs += [("valid.fad", "valid", "train"), ("generated.fad_to_valid", "generated", "valid")]
    for key, evaluated, reference in pairs:
        x, y = embedded[evaluated], embedded[reference]
        point, samples = frechet_bootstrap(
            x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1]), n_boot, seed,
            group_x=x.shape[1], group_y=y.shape[1],
        )  # fmt: skip
        result.update(bootstrap.summary(key, point, samples, confidence, lower_bound=0.0))
    return result


SPEC = MetricSpec(
    name="fad_vggish",
    function=fad_scores,
    options=OPTIONS,
    protocol=PROTOCOL,
    role=QUALITY,
    headlines=(Headline("fad", "lower"),),
)
