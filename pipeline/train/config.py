"""Typed training configuration (no YAML, no MLflow here: callers build a TrainConfig)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from pipeline import hardware


@dataclass(kw_only=True)
class TrainConfig:
    # data / model
    arch: str = "wavegan"
    loss: str = "wgan-gp"
    sample_rate: int
    length: int
    channels: int = 1
    latent_dim: int = 100
    model_dim: int = 64
    num_classes: int = 0
    # self-conditioning (pipeline.train.clusters): the class and training bars of each cluster the
    # models are conditioned on instead of the class; empty: conditioned on the class itself
    cluster_classes: list[int] = field(default_factory=list)
    cluster_counts: list[int] = field(default_factory=list)
    # optimisation
    batch_size: int = 64
    steps: int = 100_000  # generator updates; each preceded by n_critic discriminator updates
    n_critic: int = 5
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    gp_lambda: float = 10.0
    r1_gamma: float = 0.0  # R1 penalty on real data, gamma/2 * E||grad D||^2 (0 = off)
    # lazy R1 (StyleGAN2): the penalty every r1_interval steps, weighted by r1_interval
    r1_interval: int = 1
    mode_seeking: float = 0.0  # weight of the MSGAN mode-seeking term in the G loss (0 = off)
    ema_decay: float = 0.999  # 0 = off (generator.pt then holds the raw generator weights)
    # data augmentation: train on N noisy copies of every bar (the clean bar is not kept)
    augment_noise_copies: int = 0
    augment_snr_db: float = 40.0  # white-noise SNR per copy, relative to the bar's own power
    # bookkeeping
    checkpoint_every: int = 1000
    log_every: int = 100
    preview_every: int = 0  # call on_preview(step, ema_generator) every N steps (0 = never)
    seed: int = 0
    device: str = "auto"  # "auto" -> "cuda" if available else "cpu"
    # bf16 autocast for the G/D forward passes (penalties stay fp32); "auto": where the device
    # computes bf16 natively (native_bf16), so a CPU without bf16 units is not slowed down
    amp: bool | str = False
    compile: bool = False  # torch.compile the G/D forward passes (penalties run eager)
    extra: dict[str, Any] = field(default_factory=dict)  # architecture-specific builder kwargs

    # keys that may change between a checkpoint and a resumed run
    RESUMABLE_KEYS = frozenset(
        {"steps", "checkpoint_every", "log_every", "preview_every", "device", "compile"}
    )

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if len(self.betas) != 2:
            raise ValueError(f"betas must have two values, got {self.betas}")
        for name in (
            "length",
            "channels",
            "latent_dim",
            "model_dim",
            "batch_size",
            "n_critic",
            "r1_interval",
            "checkpoint_every",
            "log_every",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if len(self.cluster_classes) != len(self.cluster_counts):
            raise ValueError(
                f"{len(self.cluster_classes)} cluster classes but "
                f"{len(self.cluster_counts)} cluster counts"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("r1_gamma", "mode_seeking", "gp_lambda", "augment_noise_copies"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.preview_every < 0:
            raise ValueError(f"preview_every must be >= 0, got {self.preview_every}")
        if self.amp not in (True, False, "auto"):
            raise ValueError(f"amp must be true, false or auto, got {self.amp!r}")
        if self.mode_seeking > 0 and self.batch_size < 2:
            raise ValueError("mode_seeking needs batch_size >= 2 (it compares pairs of outputs)")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def resolved_amp(self) -> bool:
        """Whether training runs under bf16 autocast on :meth:`resolved_device`."""
        if self.amp == "auto":
            return native_bf16(self.resolved_device())
        return bool(self.amp)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {', '.join(unknown)}")
        kw = dict(d)
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)

    def diff(
        self, other: TrainConfig, ignore: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, tuple[Any, Any]]:
        """``{key: (self_value, other_value)}`` for differing keys not in ``ignore``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU that supports it, or a CPU
    with bf16 units (:func:`pipeline.hardware.cpu_has_bf16_units`)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return hardware.cpu_has_bf16_units()
    return False
