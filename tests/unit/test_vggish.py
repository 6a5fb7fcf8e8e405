"""Our VGGish against the reference PyTorch port (harritaylor/torchvggish, vendored under
tests/reference/torchvggish): the same random weights give the same log-mel examples, embeddings
and PCA-quantised embeddings, to 1e-5."""

from __future__ import annotations

import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.audio.resample import resample
from pipeline.metrics.vggish import (
    Postprocessor,
    VGGish,
    VGGishWeightsError,
    embed_audio,
    embed_examples,
    load_postprocessor,
    load_vggish,
)
from pipeline.metrics.vggish_input import SAMPLE_RATE, waveform_to_examples

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference() -> types.SimpleNamespace:
    """The port's modules; resampy (only used off 16 kHz) stubbed when it is not installed."""
    sys.path.insert(0, str(REFERENCE))
    try:
        if "resampy" not in sys.modules:
            try:
                import resampy  # noqa: F401
            except ImportError:
                sys.modules["resampy"] = types.ModuleType("resampy")
        from torchvggish import vggish, vggish_input
    finally:
        sys.path.remove(str(REFERENCE))
    return types.SimpleNamespace(vggish=vggish, vggish_input=vggish_input)


def random_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """He-normal weights and small biases, so activations keep their scale through the net."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in VGGish().state_dict().items():
        if value.dim() > 1:
            std = (2.0 / value[0].numel()) ** 0.5
            state[key] = torch.randn(value.shape, generator=generator) * std
        else:
            state[key] = torch.randn(value.shape, generator=generator) * 0.1
    return state


def random_pca(seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    rotation = torch.linalg.qr(torch.randn(128, 128, generator=generator))[0]
    return {
        "pca_eigen_vectors": 0.3 * rotation,
        "pca_means": torch.randn(128, 1, generator=generator),
    }


def tones_and_noise(seconds: float = 5.3, rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Two tones (one gated), a chirp and noise: every example differs."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    gated = np.sin(2 * np.pi * 1250 * t) * (t % 0.5 < 0.25)
    chirp = np.sin(2 * np.pi * (200 + 300 * t) * t)
    return (
        0.3 * np.sin(2 * np.pi * 440 * t)
        + 0.2 * gated
        + 0.1 * chirp
        + 0.05 * rng.standard_normal(len(t))
    )


@pytest.fixture(scope="module")
def models(reference) -> tuple:
    """(reference port, ours, our postprocessor), all with the same random weights."""
    weights, pca = random_weights(), random_pca()
    port = reference.vggish.VGGish(
        urls=None, device=torch.device("cpu"), pretrained=False, postprocess=True
    )
    port.load_state_dict({**weights, **{f"pproc.{k}": v for k, v in pca.items()}})
    ours, post = VGGish(), Postprocessor()
    ours.load_state_dict(weights)
    post.load_state_dict(pca)
    return port.eval(), ours.eval(), post.eval()


def port_embeddings(port, audio: np.ndarray, rate: int, postprocess: bool) -> np.ndarray:
    port.postprocess = postprocess
    with torch.no_grad():
        return port(audio, rate).numpy()


def differences(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(max abs, max abs relative to the largest reference value)."""
    diff = float(np.abs(ours - theirs).max())
    return diff, diff / float(np.abs(theirs).max())


def test_log_mel_examples_match_the_port(reference):
    audio = tones_and_noise()
    theirs = reference.vggish_input.waveform_to_examples(audio, SAMPLE_RATE, return_tensor=False)
    ours = waveform_to_examples(audio, SAMPLE_RATE)
    assert ours.shape == theirs.shape == (5, 96, 64)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_embeddings_match_the_port_before_and_after_pca(models):
    port, ours, post = models
    audio = tones_and_noise()
    theirs = port_embeddings(port, audio, SAMPLE_RATE, postprocess=False)
    mine = embed_audio(ours, audio, SAMPLE_RATE)
    assert mine.shape == theirs.shape == (5, 128)
    assert np.abs(theirs).max() > 1.0 and np.count_nonzero(theirs) > 100  # not a dead net
    abs_diff, rel_diff = differences(mine, theirs)
    print(f"embeddings: max abs diff {abs_diff:.3g}, relative {rel_diff:.3g}")
    assert abs_diff <= TOLERANCE

    quantised = port_embeddings(port, audio, SAMPLE_RATE, postprocess=True)
    mine_quantised = embed_audio(ours, audio, SAMPLE_RATE, post)
    assert len(np.unique(quantised)) > 50  # PCA output spread over the 8-bit range
    abs_diff, _ = differences(mine_quantised, quantised)
    print(f"postprocessed: max abs diff {abs_diff:.3g}")
    assert abs_diff <= TOLERANCE


def test_stereo_and_other_rates_reach_the_port_as_16_khz_mono(models):
    port, ours, _ = models
    stereo = np.stack([tones_and_noise(3.0, 8000, seed=1), tones_and_noise(3.0, 8000, seed=2)])
    mono_16k = resample(stereo.mean(0), 8000, SAMPLE_RATE).astype(np.float64)
    theirs = port_embeddings(port, mono_16k, SAMPLE_RATE, postprocess=False)
    mine = embed_audio(ours, stereo, 8000)
    assert mine.shape == theirs.shape == (3, 128)
    assert differences(mine, theirs)[0] <= TOLERANCE


def test_audio_shorter_than_an_example_gives_no_embedding(models):
    _, ours, _ = models
    assert embed_audio(ours, np.zeros(15000), SAMPLE_RATE).shape == (0, 128)
    assert embed_audio(ours, np.zeros(15600), SAMPLE_RATE).shape == (1, 128)


def test_without_the_final_relu_the_embedding_is_fc2_itself(models):
    _, ours, _ = models
    examples = waveform_to_examples(tones_and_noise(2.0), SAMPLE_RATE)
    pre = VGGish(final_relu=False)
    pre.load_state_dict(ours.state_dict())
    raw = embed_examples(pre.eval(), examples)
    assert (raw < 0).any()
    np.testing.assert_array_equal(np.maximum(raw, 0), embed_examples(ours, examples))


def test_weight_files_load_as_the_port_saves_them(tmp_path, models):
    port, _, _ = models
    weights, pca = tmp_path / "vggish.pth", tmp_path / "pca.pth"
    torch.save(random_weights(), weights)
    # The port's PCA file holds numpy arrays, the means flat.
    torch.save(
        {
            "pca_eigen_vectors": random_pca()["pca_eigen_vectors"].numpy().astype(np.float64),
            "pca_means": random_pca()["pca_means"].numpy().ravel(),
        },
        pca,
    )
    audio = tones_and_noise(2.0)
    expected = port_embeddings(port, audio, SAMPLE_RATE, postprocess=True)
    for post in (pca, as_numpy_1_pickled(pca, tmp_path / "pca-numpy1.pth")):
        loaded = embed_audio(load_vggish(weights), audio, SAMPLE_RATE, load_postprocessor(post))
        assert differences(loaded, expected)[0] <= TOLERANCE


def as_numpy_1_pickled(path: Path, out: Path) -> Path:
    """A copy of a torch.save-d file whose numpy arrays name numpy 1's module, as files saved
    before numpy 2 (the port's PCA file among them) do."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
                assert b"numpy.core.multiarray" in data
            target.writestr(name, data)
    return out


def test_bad_weight_files_are_errors_that_name_the_file(tmp_path):
    missing = tmp_path / "missing.pth"
    with pytest.raises(VGGishWeightsError, match=r"missing\.pth does not exist"):
        load_vggish(missing)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(VGGishWeightsError, match=r"corrupt\.pth cannot be read"):
        load_vggish(corrupt)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(VGGishWeightsError, match=r"wrong\.pth is not a VGGish state dict.*fc"):
        load_vggish(wrong)
    shapes = tmp_path / "shapes.pth"
    torch.save({**random_weights(), "embeddings.4.bias": torch.zeros(64)}, shapes)
    with pytest.raises(VGGishWeightsError, match=r"shapes\.pth: embeddings\.4\.bias has shape"):
        load_vggish(shapes)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(VGGishWeightsError, match=r"list\.pth holds a list"):
        load_vggish(not_a_dict)
