"""The dataset registry: ``datasets/<name>.yaml``, one file per public dataset or weights file.

Each file is validated against ``workflow/schemas/dataset.schema.yaml`` and a few cross-field
rules; every problem is a :class:`RegistryError` naming the file and the key. The registry
folder is ``datasets/`` at the repository root unless ``BARGAN_REGISTRY_DIR`` names another.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from pipeline.schema import first_violation
from pipeline.yamlio import YAMLError, parse_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "dataset.schema.yaml"
REGISTRY_ENV = "BARGAN_REGISTRY_DIR"
DEFAULT_REGISTRY = Path("datasets")
DIGEST_LENGTHS = {"sha256": 64, "sha1": 40, "md5": 32}


class RegistryError(ValueError):
    """A bad or missing registry entry; the message names the file, the key and the reason."""


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    value: str
    source: str


@dataclass(frozen=True)
class Archive:
    filename: str
    urls: tuple[str, ...]
    size: int | None
    checksum: Checksum
    format: str
    unpacked_size: int | None = None  # bytes of the files inside, where the entry declares it


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    title: str
    homepage: str
    kind: str
    licence: dict[str, str]
    citation: str
    archives: tuple[Archive, ...]
    root: str
    convert_to_wav: tuple[str, ...]
    classes: dict[str, Any]
    tempo: dict[str, Any] | None
    splits: dict[str, Any] | None = None


def registry_dir(default: Path | str = DEFAULT_REGISTRY) -> Path:
    """``$BARGAN_REGISTRY_DIR`` when set, else ``default`` (relative to the working folder)."""
    return Path(os.environ.get(REGISTRY_ENV) or default)


def entry_names(directory: Path) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.yaml"))


def load_dataset(name: str, directory: Path) -> Dataset:
    """The entry ``<directory>/<name>.yaml``, validated."""
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(entry_names(directory)) or "none"
        raise RegistryError(f"{path}: no such registry entry (known: {known})")
    return parse_entry(path)


def load_registry(directory: Path) -> dict[str, Dataset]:
    return {name: load_dataset(name, directory) for name in entry_names(directory)}


def parse_entry(path: Path) -> Dataset:
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except YAMLError as err:
        raise RegistryError(f"{path}: not valid YAML ({err})") from err
    validate_entry(data, source=str(path))
    archives = tuple(
        Archive(
            filename=a["filename"],
            urls=tuple(a["urls"]),
            size=a.get("size"),
            checksum=Checksum(**a["checksum"]),
            format=a["format"],
            unpacked_size=a.get("unpacked_size"),
        )
        for a in data["archives"]
    )
    return Dataset(
        name=path.stem,
        path=path,
        title=data["title"],
        homepage=data["homepage"],
        kind=data["kind"],
        licence=dict(data["licence"]),
        citation=data["citation"].strip(),
        archives=archives,
        root=data.get("root", ""),
        convert_to_wav=tuple(s.lower() for s in data.get("convert_to_wav", [])),
        classes=dict(data["classes"]),
        tempo=dict(data["tempo"]) if data.get("tempo") else None,
        splits=dict(data["splits"]) if data.get("splits") else None,
    )


def validate_entry(data: Any, source: str) -> None:
    """Raise RegistryError naming ``source`` and the first bad key."""
    violation = first_violation(SCHEMA_PATH, data)
    if violation:
        key, error = violation
        raise RegistryError(f"{source}: {key}: {_describe(error)}")
    for key, reason in _cross_field_problems(data):
        raise RegistryError(f"{source}: {key}: {reason}")


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return (
            f"missing key ({error.message}); every entry needs checksums, a licence and a citation"
        )
    if error.validator == "additionalProperties":
        return f"unknown key ({error.message})"
    return error.message


def _cross_field_problems(data: dict[str, Any]):
    for i, archive in enumerate(data["archives"]):
        checksum = archive["checksum"]
        expected = DIGEST_LENGTHS[checksum["algorithm"]]
        if len(checksum["value"]) != expected:
            yield (
                f"archives.{i}.checksum.value",
                f"a {checksum['algorithm']} digest has {expected} hex digits, "
                f"not {len(checksum['value'])}",
            )
    names = [a["filename"] for a in data["archives"]]
    if len(set(names)) != len(names):
        yield "archives", f"two archives share a filename: {names}"
    classes = data["classes"]
    if classes["from"] == "filename":
        pattern = classes.get("pattern")
        if not pattern:
            yield "classes.pattern", "classes from filename need a pattern"
        else:
            try:
                if "class" not in re.compile(pattern).groupindex:
                    yield "classes.pattern", "the pattern needs a group named class: (?P<class>...)"
            except re.error as err:
                yield "classes.pattern", f"not a regular expression ({err})"
    if classes["from"] == "csv":
        for key in ("csv", "path_column", "class_column"):
            if not classes.get(key):
                yield f"classes.{key}", "classes from csv need csv, path_column and class_column"
    if data["kind"] == "model" and any(a["format"] != "file" for a in data["archives"]):
        yield "archives", "a model entry is a weights file: format file"
