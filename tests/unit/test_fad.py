"""Fréchet Audio Distance: our Fréchet distance against an independent implementation, and the
``fad_vggish`` metric end to end through the registry with a small random-weights VGGish file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from pipeline.metrics.fad import PROTOCOL, SKIPPED, embed_bars
from pipeline.metrics.frechet import frechet_distance
from pipeline.metrics.registry import compute_all, numeric_metrics
from pipeline.metrics.vggish import VGGish, VGGishWeightsError, load_vggish
from tests.metric_ladder import drum_bars

SR = 8000  # bars are upsampled to VGGish's 16 kHz
RELATIVE = 1e-6


def gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_sqrtm(x: np.ndarray, y: np.ndarray) -> float:
    """The FAD reference code's formula: ``|mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr(sqrtm(S_x
    S_y))`` with scipy's general matrix square root (real part kept)."""
    (mu_x, s_x), (mu_y, s_y) = gaussian_stats(x), gaussian_stats(y)
    covmean = np.real(scipy.linalg.sqrtm(s_x @ s_y))
    diff = mu_x - mu_y
    return float(diff @ diff + np.trace(s_x) + np.trace(s_y) - 2.0 * np.trace(covmean))


def frechet_symmetric(x: np.ndarray, y: np.ndarray) -> float:
    """The same distance through symmetric eigendecompositions: ``tr((S_x^1/2 S_y S_x^1/2)^1/2)``
    (stable for singular and ill-conditioned covariances)."""
    (mu_x, s_x), (mu_y, s_y) = gaussian_stats(x), gaussian_stats(y)
    values, vectors = np.linalg.eigh(s_x)
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root @ s_y @ root
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)).sum()
    diff = mu_x - mu_y
    return float(diff @ diff + np.trace(s_x) + np.trace(s_y) - 2.0 * cross)


def embeddings(n: int, dim: int, condition: float, shift: float, seed: int) -> np.ndarray:
    """``n`` rows of a rotated Gaussian whose covariance has condition number ``condition``."""
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    scales = np.logspace(0.0, -np.log10(condition) / 2.0, dim)
    return (rng.standard_normal((n, dim)) * scales) @ rotation.T + shift


CASES = [  # (n_x, n_y, dim, condition number of the covariances)
    (50, 60, 8, 1.0),
    (500, 400, 128, 1.0),
    (300, 300, 128, 1e6),
    (2000, 1500, 128, 1e10),
    (1000, 1000, 128, 1e14),
    (100, 200, 128, 1.0),  # fewer rows than dimensions: a singular covariance
]


@pytest.mark.parametrize(("n_x", "n_y", "dim", "condition"), CASES)
def test_frechet_distance_agrees_with_an_independent_implementation(n_x, n_y, dim, condition):
    x = embeddings(n_x, dim, condition, 0.0, seed=n_x)
    y = embeddings(n_y, dim, condition, 0.1, seed=n_y + 1)
    ours = frechet_distance(x, y)
    for name, theirs in (("sqrtm", frechet_sqrtm(x, y)), ("eigh", frechet_symmetric(x, y))):
        relative = abs(ours - theirs) / abs(theirs)
        print(f"n={n_x}/{n_y} d={dim} cond={condition:.0e} {name}: relative diff {relative:.2e}")
        assert relative <= RELATIVE, (name, ours, theirs)


def strided_random(shape: torch.Size, scale: float, generator: torch.Generator) -> torch.Tensor:
    """A full-rank random tensor stored in one short vector: row ``i`` is its window at ``i``
    (``torch.save`` keeps the view, so a VGGish state dict of them takes a few hundred kB)."""
    rest = int(np.prod(shape[1:], dtype=np.int64))
    base = torch.randn(shape[0] - 1 + rest, generator=generator) * scale
    inner = [int(np.prod(shape[i + 1 :], dtype=np.int64)) for i in range(1, len(shape))]
    return torch.as_strided(base, shape, (1, *inner))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in VGGish().state_dict().items():
        fan_in = value[0].numel()
        scale = (2.0 / fan_in) ** 0.5 if value.dim() > 1 else 0.1
        state[key] = strided_random(value.shape, scale, generator)
    path = tmp_path_factory.mktemp("vggish") / "vggish-random.pth"
    torch.save(state, path)
    assert path.stat().st_size < 1_000_000
    return path


@pytest.fixture(scope="module")
def bars() -> dict[str, np.ndarray]:
    """Two-second bars (two VGGish examples each), train and held-out from different tracks."""
    styles = ("techno", "breakbeat")
    train = np.concatenate([drum_bars(s, 1, 4, SR) for s in styles]).astype(np.float32)
    valid = np.concatenate([drum_bars(s, 2, 3, SR) for s in styles]).astype(np.float32)
    noise = 0.1 * np.random.default_rng(0).standard_normal(valid.shape).astype(np.float32)
    return {"train": train, "valid": valid, "noise": noise}


def options(**extra) -> dict:
    return {"sample_rate": SR, "bpm": 120.0, "beats_per_bar": 4, "bootstrap": 30, **extra}


def test_without_weights_fad_reports_why_it_was_skipped_and_no_number(bars):
    result = compute_all(bars["noise"], bars["train"], bars["valid"], options(), ["fad_vggish"])
    assert result["fad_vggish"] == {"skipped": SKIPPED, "protocol": PROTOCOL}
    assert "vggish_weights" in SKIPPED
    assert numeric_metrics(result) == {}


def test_fad_runs_through_the_registry_with_a_weights_file(bars, weights_file):
    opts = options(vggish_weights=str(weights_file))
    result = compute_all(bars["noise"], bars["train"], bars["valid"], opts, ["fad_vggish"])
    fad = result["fad_vggish"]
    assert fad["protocol"] == PROTOCOL
    assert fad["examples_per_bar"] == 2
    assert (fad["train.count"], fad["generated.count"], fad["valid.count"]) == (8, 6, 6)
    for key in ("generated.fad", "valid.fad", "generated.fad_to_valid"):
        assert 0.0 <= fad[f"{key}.ci_low"] <= fad[key] <= fad[f"{key}.ci_high"], key

    # The number is FAD on the per-example embeddings (fc2 before its ReLU) of both sets.
    model = load_vggish(weights_file, final_relu=False)
    noise, train, valid = (embed_bars(model, bars[k], SR) for k in ("noise", "train", "valid"))
    assert noise.shape == (6, 2, 128) and (noise < 0).any()
    # chunking changes the batch, hence the BLAS path: equal to float32 rounding
    np.testing.assert_allclose(embed_bars(model, bars["train"], SR, chunk=3), train, atol=1e-5)
    flat = {name: e.reshape(-1, 128) for name, e in (("n", noise), ("t", train), ("v", valid))}
    assert fad["generated.fad"] == pytest.approx(frechet_distance(flat["n"], flat["t"]), rel=1e-9)
    assert fad["valid.fad"] == pytest.approx(frechet_distance(flat["v"], flat["t"]), rel=1e-9)
    assert fad["generated.fad_to_valid"] == pytest.approx(
        frechet_distance(flat["n"], flat["v"]), rel=1e-9
    )
    logged = numeric_metrics(result)
    assert "fad_vggish.generated.fad" in logged and "fad_vggish.protocol" not in logged

    copies = compute_all(bars["train"].copy(), bars["train"], None, opts, ["fad_vggish"])
    assert copies["fad_vggish"]["generated.fad"] == pytest.approx(0.0, abs=1e-6)
    assert "valid.fad" not in copies["fad_vggish"]


def test_short_bars_are_looped_to_one_example(weights_file):
    model = load_vggish(weights_file, final_relu=False)
    half_second = np.random.default_rng(1).standard_normal((3, 2, SR // 2)).astype(np.float32)
    assert embed_bars(model, half_second, SR).shape == (3, 1, 128)


def test_a_missing_weights_file_is_an_error_naming_it(bars, tmp_path):
    opts = options(vggish_weights=str(tmp_path / "vggish-10086976.pth"))
    with pytest.raises(VGGishWeightsError, match=r"vggish-10086976\.pth does not exist"):
        compute_all(bars["noise"], bars["train"], bars["valid"], opts, ["fad_vggish"])
