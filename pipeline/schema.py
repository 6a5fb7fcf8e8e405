"""JSON-schema checks of YAML documents (params.yaml, registry entries): the first problem, by
key path, named as a dotted key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from pipeline.yamlio import parse_yaml


def first_violation(schema_path: Path, data: Any) -> tuple[str, jsonschema.ValidationError] | None:
    """``(dotted key or '<top level>', error)`` of the first violation, or None when valid."""
    schema = parse_yaml(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    error = errors[0]
    return ".".join(str(part) for part in error.absolute_path) or "<top level>", error
