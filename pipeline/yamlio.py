"""YAML read as DVC reads it: YAML 1.2, with ruamel.yaml's safe loader.

``dvc exp run -S train.lr_g=1e-5`` writes ``lr_g: 1e-05``; YAML 1.2 (DVC, ruamel.yaml) reads a
number, YAML 1.1 (PyYAML, Snakemake's ``configfile:``) the string ``'1e-05'``. Every reader of
params, presets, schemas and registry entries goes through :func:`parse_yaml`, so that all of
them see the numbers DVC sees.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML, YAMLError

__all__ = ["YAMLError", "parse_yaml"]


def parse_yaml(text: str) -> Any:
    """The document in ``text`` as plain dicts, lists and scalars (YAML 1.2). Raises
    ``YAMLError`` on malformed YAML."""
    return YAML(typ="safe", pure=True).load(text)
