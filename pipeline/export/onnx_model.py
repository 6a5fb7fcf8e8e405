"""The generator as an ONNX model that makes audio: ``z`` (and ``labels`` for conditional
generators) in, ``audio`` ``[batch, channels, bar_samples]`` in [-1, 1] out (spectrogram
models also output their ``spectrogram``, the generator's own output before Griffin-Lim).

Waveform generators (WaveGAN, MelGAN) export as they are. A spectrogram generator (SpecGAN)
exports with its whole synthesis in the graph: the dB-to-magnitude mapping of
:class:`pipeline.models.specgan.SpectrogramCodec` and its Griffin-Lim, in real arithmetic
(:class:`pipeline.export.griffin_lim.RealGriffinLim`). A SpecGAN whose phase comes from PGHI
(``phase: pghi``) exports with Griffin-Lim from zero phase instead (at least
:data:`ONNX_PGHI_FALLBACK_ITERS` iterations): the heap integration is a sequential, data-dependent
loop that ONNX cannot express; the metadata says so. What stays outside the graph: drawing
the latent (``bargan.latent_prior``: uniform in [-1, 1] or standard normal, ``latent_dim``
numbers a bar) and choosing a class (an index into ``bargan.classes``). The model's
``metadata_props`` carry the bar grid, the classes and those two facts, as JSON strings.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.export.griffin_lim import RealGriffinLim
from pipeline.fileio import atomic_write
from pipeline.grid import BarGrid

OPSET = 18
ONNX_PGHI_FALLBACK_ITERS = 32
METADATA_PREFIX = "bargan."


class SpectrogramToAudio(nn.Module):
    """SpecGAN's ``forward``: spectrogram generator, then the codec's synthesis, exportable.
    ``dtype`` float64 gives a reference computation (the Griffin-Lim bases in float64 too)."""

    def __init__(self, generator: nn.Module, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        codec = generator.codec
        gl = codec.griffin_lim
        self.generator = generator.to(dtype)
        self.floor_db, self.scale, self.channels = codec.floor_db, codec.scale, generator.channels
        iterations = graph_griffin_lim_iters(generator)
        self.griffin_lim = RealGriffinLim(
            codec.n_fft, codec.hop_length, codec.length, iterations, gl.momentum,
            gl.window.to(dtype), dtype,
        )  # fmt: skip
        self.with_spectrogram = False  # export: also output the spectrogram

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        spec = self.generator.forward_training(z, labels)
        b, c, f, n = spec.shape
        db = (spec + 1.0) * (-self.floor_db / 2.0) + self.floor_db
        magnitude = torch.pow(10.0, db / 20.0) * self.scale
        magnitude = F.pad(magnitude.reshape(b * c, f, n), (0, 0, 0, 1))  # Nyquist bin: silence
        audio = self.griffin_lim(magnitude).reshape(b, c, -1).clamp(-1.0, 1.0)
        return (audio, spec) if self.with_spectrogram else audio


class WaveformGenerator(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator(z, labels)


def audio_module(generator: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The module that is exported: ``(z, labels) -> audio``, in eval mode on the CPU (its
    weights in ``dtype``; float64 makes a reference to measure the exported model against)."""
    generator = generator.cpu().eval()
    if dtype != torch.float32:
        generator = copy.deepcopy(generator)  # the caller's generator stays as it is
    if is_spectrogram_model(generator):
        return SpectrogramToAudio(generator, dtype).eval()
    return WaveformGenerator(generator.to(dtype)).eval()


def is_spectrogram_model(generator: nn.Module) -> bool:
    return hasattr(generator, "codec") and hasattr(generator, "forward_training")


def graph_griffin_lim_iters(generator: nn.Module) -> int:
    """Griffin-Lim iterations in the exported graph: the codec's own, or for a PGHI codec (not
    expressible in ONNX) at least :data:`ONNX_PGHI_FALLBACK_ITERS` from zero phase."""
    codec = generator.codec
    if getattr(codec, "phase", "griffin-lim") == "pghi":
        return max(codec.iterations, ONNX_PGHI_FALLBACK_ITERS)
    return codec.griffin_lim.n_iter


def synthesis_note(generator: nn.Module) -> str:
    """How the exported model makes audio (``bargan.synthesis``)."""
    if not is_spectrogram_model(generator):
        return "waveform"
    text = f"Griffin-Lim in the graph ({graph_griffin_lim_iters(generator)} iterations)"
    if getattr(generator.codec, "phase", "griffin-lim") == "pghi":
        text += (
            "; the PyTorch generator starts from PGHI's phase instead, which ONNX cannot "
            "express, so the exported audio is smoother in its transients"
        )
    return text


def outside_graph(generator: nn.Module) -> str:
    """What a user of the ONNX model does themselves (stored in its metadata)."""
    prior = "uniform in [-1, 1]" if generator.latent_prior == "uniform" else "standard normal"
    text = f"drawing z: float32 [batch, {generator.latent_dim}], {prior}"
    if generator.num_classes:
        text += "; choosing labels: int64 [batch], indices into bargan.classes"
    return text


def metadata(generator: nn.Module, grid: BarGrid, classes: list[str], arch: str) -> dict[str, str]:
    """The ``metadata_props`` of the exported model (keys prefixed ``bargan.``)."""
    synthesis = synthesis_note(generator)
    record: dict[str, Any] = {
        "grid": grid.to_dict(),
        "classes": list(classes),
        "num_classes": int(generator.num_classes),
        "latent_dim": int(generator.latent_dim),
        "latent_prior": generator.latent_prior,
        "arch": arch,
        "synthesis": synthesis,
        "outside_graph": outside_graph(generator),
        "output": f"audio: float32 [batch, {grid.channels}, {generator.length}] in [-1, 1] at "
        f"{grid.sample_rate} Hz, one bar at {grid.bpm:g} BPM",
    }
    return {
        METADATA_PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in record.items()
    }


def export_onnx(
    generator: nn.Module,
    path: str | os.PathLike,
    grid: BarGrid,
    classes: list[str],
    arch: str,
) -> Path:
    """Write ``generator`` (with its synthesis) as ONNX to ``path``, atomically; batch size is
    dynamic."""
    import onnx

    module = audio_module(generator)
    outputs = ["audio"]
    if is_spectrogram_model(generator):
        module.with_spectrogram = True  # the generator's own output, before Griffin-Lim
        outputs.append("spectrogram")
    conditional = bool(generator.num_classes)
    z = generator.sample_latent(2, generator=torch.Generator().manual_seed(0), device="cpu")
    inputs: tuple[Tensor, ...] = (z,)
    names = ["z"]
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes: dict[str, Any] = {"z": {0: batch}}
    if conditional:
        inputs += (torch.zeros(2, dtype=torch.long),)
        names.append("labels")
        shapes["labels"] = {0: batch}
    props = metadata(generator, grid, classes, arch)

    def write(tmp: str) -> None:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                module,
                inputs,
                input_names=names,
                output_names=outputs,
                opset_version=OPSET,
                dynamo=True,
                dynamic_shapes=shapes,
                verbose=False,
            )
        model = program.model_proto
        for key, value in props.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
        onnx.save(model, tmp)

    return atomic_write(Path(path), write, suffix=".onnx")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes (optional torchvision ops skipped, deprecations inside torch) are
    not the user's business; errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``bargan.*`` metadata of an exported model, JSON values decoded."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    out: dict[str, Any] = {}
    for entry in model.metadata_props:
        if entry.key.startswith(METADATA_PREFIX):
            key = entry.key.removeprefix(METADATA_PREFIX)
            try:
                out[key] = json.loads(entry.value)
            except ValueError:
                out[key] = entry.value
    return out


class OnnxGenerator:
    """An exported model run by onnxruntime on the CPU: ``(z, labels) -> audio``."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(
        self, z: np.ndarray, labels: np.ndarray | None = None, output: str = "audio"
    ) -> np.ndarray:
        """``output`` (``audio``, or ``spectrogram`` for spectrogram models) for ``z``."""
        feed = {"z": np.ascontiguousarray(z, dtype=np.float32)}
        if "labels" in self.inputs:
            if labels is None:
                raise ValueError("this model is conditional: pass labels")
            feed["labels"] = np.ascontiguousarray(labels, dtype=np.int64)
        return self.session.run([output], feed)[0]
