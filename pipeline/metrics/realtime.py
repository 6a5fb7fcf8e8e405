"""Real-time factor of generation: seconds of audio generated per second of compute.

Above 1 the generator is faster than real time. Timed per device and batch size on a copy of the
generator (the caller's module is not moved), after warm-up calls, as the median of ``repeats``
timed calls; CUDA work is synchronised before the clock stops.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pipeline.metrics.spec import SPEED, MetricSpec

OPTIONS: dict[str, Any] = {"rtf_batch_sizes": (1, 16), "rtf_repeats": 5}


def _devices(device: str | torch.device | None) -> list[torch.device]:
    if device is not None:
        return [torch.device(device)]
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    return devices


def _inputs(generator: torch.nn.Module, batch: int, device: torch.device) -> tuple:
    if hasattr(generator, "sample_latent"):
        z = generator.sample_latent(batch, device=device)
    else:
        z = torch.randn(batch, generator.latent_dim, device=device)
    if getattr(generator, "num_classes", 0):
        return z, torch.randint(0, generator.num_classes, (batch,), device=device)
    return (z,)


@torch.inference_mode()
def real_time_factor(
    generator: torch.nn.Module,
    batch_sizes: Sequence[int] = (1, 16),
    device: str | torch.device | None = None,
    sample_rate: int = 16000,
    repeats: int = 5,
    warmup: int = 2,
) -> dict[str, float]:
    """``{"<device>.batch_<b>": real-time factor, "<device>.batch_<b>.ms_per_bar": ..}`` for each
    batch size, on ``device`` or (None) on the CPU and, when available, the GPU."""
    result: dict[str, float] = {}
    for dev in _devices(device):
        model = copy.deepcopy(generator).to(dev).eval()
        synchronise = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        for batch in batch_sizes:
            inputs = _inputs(model, batch, dev)
            for _ in range(warmup):
                model(*inputs)
            synchronise()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                out = model(*inputs)
                synchronise()
                times.append(time.perf_counter() - start)
            seconds = float(np.median(times))
            audio_seconds = out.shape[0] * out.shape[-1] / sample_rate
            result[f"{dev.type}.batch_{batch}"] = audio_seconds / max(seconds, 1e-12)
            result[f"{dev.type}.batch_{batch}.ms_per_bar"] = 1000.0 * seconds / out.shape[0]
        del model
    return result


def real_time_factor_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """Registry form: times ``options["generator"]``; skipped (empty) when there is none."""
    generator = options.get("generator")
    if generator is None:
        return {}
    return real_time_factor(
        generator,
        batch_sizes=tuple(options.get("rtf_batch_sizes", OPTIONS["rtf_batch_sizes"])),
        sample_rate=int(options["sample_rate"]),
        repeats=int(options.get("rtf_repeats", OPTIONS["rtf_repeats"])),
    )


SPEC = MetricSpec(
    name="real_time_factor",
    function=real_time_factor_scores,
    options=OPTIONS,
    protocol="seconds of audio generated per second of compute, on the device used",
    role=SPEED,
    reason="times generation (seconds of audio per second of compute): it measures the "
    "generator's speed, not its bars, and has no held-out reference",
)
