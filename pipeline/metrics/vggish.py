"""VGGish (Hershey et al. 2017) in PyTorch, loading the torchvggish port's weight files.

The network: four VGG blocks of 3x3 convolutions with ReLU (64; 128; 256, 256; 512, 512
channels), each closed by a 2x2 max pool, on one ``[96, 64]`` log-mel example
(:mod:`pipeline.metrics.vggish_input`); the ``[512, 6, 4]`` map flattened in TensorFlow's
(height, width, channel) order; fully connected 12288 -> 4096 -> 4096 -> 128, each with ReLU.
Parameter names are those of harritaylor/torchvggish, so its ``vggish-10086976.pth`` loads as it
is: ``features.{0,3,6,8,11,13}.{weight,bias}`` (the convolutions) and
``embeddings.{0,2,4}.{weight,bias}`` (the dense layers).

``final_relu=False`` returns fc2 before its ReLU: the embedding of the TensorFlow VGGish that
the FAD reference code runs (its ``fc2`` has no activation), which the port keeps.

The optional :class:`Postprocessor` is AudioSet's PCA (with whitening) and 8-bit quantisation,
loading the port's ``vggish_pca_params-970ea276.pth`` (``pca_eigen_vectors`` [128, 128],
``pca_means`` [128] or [128, 1]).
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.metrics.vggish_input import EXAMPLE_FRAMES, NUM_BANDS, waveform_to_examples

EMBEDDING_SIZE = 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
_BLOCKS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


class VGGishWeightsError(ValueError):
    """A weights file that is missing, unreadable or not VGGish's (names the file)."""


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 1
    for width in _BLOCKS:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(width), kernel_size=3, padding=1), nn.ReLU()]
            channels = int(width)
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """Log-mel examples ``[n, 1, 96, 64]`` (or ``[n, 96, 64]``) -> embeddings ``[n, 128]``."""

    def __init__(self, final_relu: bool = True) -> None:
        super().__init__()
        self.final_relu = final_relu
        self.features = _features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, EMBEDDING_SIZE),
            nn.ReLU(),
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        if examples.dim() == 3:
            examples = examples[:, None]
        x = self.features(examples)
        x = x.permute(0, 2, 3, 1).flatten(1)  # TensorFlow's NHWC flattening
        layers = self.embeddings if self.final_relu else self.embeddings[:-1]
        return layers(x)


class Postprocessor(nn.Module):
    """AudioSet's PCA (with whitening), clipping to [-2, 2] and 8-bit quantisation to [0, 255]."""

    def __init__(self) -> None:
        super().__init__()
        self.pca_eigen_vectors = nn.Parameter(
            torch.empty(EMBEDDING_SIZE, EMBEDDING_SIZE), requires_grad=False
        )
        self.pca_means = nn.Parameter(torch.empty(EMBEDDING_SIZE, 1), requires_grad=False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        pca = torch.mm(self.pca_eigen_vectors, embeddings.t() - self.pca_means).t()
        clipped = torch.clamp(pca, QUANTIZE_MIN, QUANTIZE_MAX)
        return torch.round((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors in a ``torch.save``-d dict, loaded with ``weights_only=True`` (numpy arrays,
    as in the port's PCA file, allowed and converted); :class:`VGGishWeightsError` naming the
    file when it is missing or is not such a dict."""
    path = Path(path)
    if not path.is_file():
        raise VGGishWeightsError(f"VGGish weights file {path} does not exist")
    try:
        with torch.serialization.safe_globals(_NUMPY_GLOBALS):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise VGGishWeightsError(
            f"VGGish weights file {path} cannot be read as a torch state dict "
            f"(torch.load, weights_only=True): {type(err).__name__}: {_reason(err)}"
        ) from err
    if not isinstance(loaded, Mapping):
        raise VGGishWeightsError(
            f"VGGish weights file {path} holds a {type(loaded).__name__}, not a state dict"
        )
    return {
        str(key): torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
        for key, value in loaded.items()
    }


def _reason(err: BaseException) -> str:
    """The gist of torch.load's long messages: the unpickler's complaint, or the first line."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    _, marker, rest = text.partition("WeightsUnpickler error: ")
    return (rest.split(" Check the documentation")[0] if marker else text.split(". ")[0])[:200]


def _numpy_globals() -> list:
    """What pickled numpy arrays need, under numpy 2's names and numpy 1's (``numpy.core``, as
    in files saved before 2024 such as the port's PCA file)."""
    try:
        from numpy._core.multiarray import _reconstruct as reconstruct
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct as reconstruct
    names: list = [reconstruct, np.ndarray, np.dtype]
    names += [type(np.dtype(kind)) for kind in ("float32", "float64", "int64")]
    names.append((reconstruct, "numpy.core.multiarray._reconstruct"))
    return names


_NUMPY_GLOBALS = _numpy_globals()


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise VGGishWeightsError(
            f"{path} is not a {type(module).__name__} state dict: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    for key, value in expected.items():
        if state[key].squeeze().shape != value.squeeze().shape:
            raise VGGishWeightsError(
                f"{path}: {key} has shape {tuple(state[key].shape)}, "
                f"{type(module).__name__} needs {tuple(value.shape)}"
            )
    module.load_state_dict({key: state[key].reshape(expected[key].shape) for key in expected})


def load_vggish(path: str | Path, final_relu: bool = True) -> VGGish:
    """VGGish (eval mode, CPU) with the weights in ``path`` (the port's state dict)."""
    model = VGGish(final_relu=final_relu)
    _load_into(model, read_state_dict(path), Path(path))
    return model.eval()


def load_postprocessor(path: str | Path) -> Postprocessor:
    """The PCA postprocessor with the parameters in ``path`` (the port's PCA file)."""
    post = Postprocessor()
    state = {key: value.float() for key, value in read_state_dict(path).items()}
    _load_into(post, state, Path(path))
    return post.eval()


@torch.no_grad()
def embed_examples(
    model: VGGish,
    examples: np.ndarray,
    postprocessor: Postprocessor | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """``[n, 96, 64]`` log-mel examples -> ``[n, 128]`` float32 embeddings (postprocessed when a
    postprocessor is given)."""
    examples = np.asarray(examples).reshape(-1, EXAMPLE_FRAMES, NUM_BANDS)
    inputs = torch.as_tensor(examples, dtype=torch.float32)
    out = [model(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    embeddings = torch.cat(out) if out else torch.zeros(0, EMBEDDING_SIZE)
    if postprocessor is not None:
        embeddings = postprocessor(embeddings)
    return embeddings.numpy()


def embed_audio(
    model: VGGish,
    audio: np.ndarray,
    sample_rate: int,
    postprocessor: Postprocessor | None = None,
) -> np.ndarray:
    """One clip (``[samples]`` or ``[channels, samples]``) -> ``[examples, 128]``."""
    return embed_examples(model, waveform_to_examples(audio, sample_rate), postprocessor)
