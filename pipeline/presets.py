"""Presets: params.yaml overlays that reproduce published setups (``presets/*.yaml``).

    python -m pipeline.presets list
    python -m pipeline.presets apply NAME [--params params.yaml] [--dry-run]

A preset file is a partial params.yaml plus two metadata keys, ``source`` (the paper / repository
it reproduces) and ``description``.  ``apply`` deep-merges the rest into the params file
(mappings are merged key by key, everything else -- lists included -- is replaced), records the
name in ``train.preset`` (MLflow tags the training run with it), validates the result with
:func:`pipeline.params.validate_params` and only then rewrites the file atomically.  The file
goes through a ruamel.yaml round trip (the library DVC edits it with, e.g. for ``dvc exp run -S``)
and only the lines of the values that change are rewritten: comments, key order and formatting,
DVC's one-item-per-line lists included, stay as they were.
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter

from pipeline.fileio import atomic_write
from pipeline.params import REPO_ROOT, ParamsError, deep_merge, validate_params
from pipeline.yamlio import parse_yaml

PRESETS_DIR = REPO_ROOT / "presets"
# what a preset says about itself, not params: its source, and what `bargan reproduce` reads
META_KEYS = ("source", "description", "dataset", "dataset_note", "paper")


def preset_names(presets_dir: Path = PRESETS_DIR) -> list[str]:
    return sorted(p.stem for p in Path(presets_dir).glob("*.yaml"))


def load_preset(
    name: str, presets_dir: Path = PRESETS_DIR
) -> tuple[dict[str, Any], dict[str, Any]]:
    """-> ``(overlay, metadata)`` of preset ``name``."""
    path = Path(presets_dir) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(preset_names(presets_dir)) or "none"
        raise ValueError(f"unknown preset {name!r}; known presets: {known}")
    data = parse_yaml(path.read_text())
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError(f"{path}: a preset is a mapping with a 'source' key")
    meta = {k: data.pop(k) for k in META_KEYS if k in data}
    return data, meta


def apply_preset(
    params: dict[str, Any], name: str, presets_dir: Path = PRESETS_DIR
) -> dict[str, Any]:
    """A validated copy of ``params`` with preset ``name`` applied (``params`` is unchanged)."""
    overlay, _meta = load_preset(name, presets_dir)
    merged = deep_merge(copy.deepcopy(params), with_name(overlay, name))
    validate_params(merged, source=f"params with preset {name}")
    return merged


def apply_to_file(
    name: str, params_path: Path, presets_dir: Path = PRESETS_DIR, dry_run: bool = False
) -> str:
    """Apply preset ``name`` to the params file; returns the new text (written unless dry run)."""
    overlay, _meta = load_preset(name, presets_dir)
    return overlay_file(
        params_path, with_name(overlay, name), f"{params_path} with preset {name}", dry_run
    )


def overlay_file(
    params_path: Path, overlay: dict[str, Any], source: str, dry_run: bool = False
) -> str:
    """Deep-merge ``overlay`` into the params file (:func:`merge_into_text`), validate the result
    (a :class:`ParamsError` naming ``source``), and rewrite the file atomically unless
    ``dry_run``; returns the new text."""
    params_path = Path(params_path)
    try:
        new_text = merge_into_text(params_path.read_text(), overlay)
    except YAMLError as err:
        raise ParamsError(f"{params_path}: not valid YAML ({err})") from err
    validate_params(parse_yaml(new_text), source=source)
    if not dry_run:
        atomic_write(params_path, lambda tmp: Path(tmp).write_text(new_text))
    return new_text


def merge_into_text(text: str, overlay: dict[str, Any]) -> str:
    """YAML ``text`` with ``overlay`` deep-merged in (as :func:`deep_merge`), by a ruamel.yaml
    round trip.  Only the entries whose value changes are rewritten; every other line (comments,
    blank lines, ``null`` spelled out or left empty, lists one item per line as DVC writes them or
    wrapped by hand) is kept as it was.  A list that is replaced keeps its flow or block style.
    """
    rt = _round_trip_yaml()
    before, after = rt.load(text), rt.load(text)
    if not isinstance(after, CommentedMap):
        raise ValueError("a params file is a YAML mapping")
    _merge_round_trip(after, overlay)
    baseline, merged = _dump(rt, before), _dump(rt, after)
    spliced = _splice(text, before, baseline, merged, rt)
    # the splice keeps the original lines; it must mean exactly what the full rewrite means
    return spliced if parse_yaml(spliced) == parse_yaml(merged) else merged


def with_name(overlay: dict[str, Any], name: str) -> dict[str, Any]:
    """The preset's overlay with ``train.preset`` set to its name (the MLflow run's tag)."""
    overlay = copy.deepcopy(overlay)
    overlay.setdefault("train", {})["preset"] = name
    return overlay


class _Representer(RoundTripRepresenter):
    """ruamel.yaml's round-trip representer (a subclass: DVC's own dumps stay as they are) that
    writes None as ``null`` (not an empty value) and floats so that PyYAML, which
    :func:`pipeline.params.load_params` reads with, reads them back as floats (``1.0e-05``)."""

    def represent_none(self, data: None) -> ScalarNode:
        return self.represent_scalar("tag:yaml.org,2002:null", "null")

    def represent_float(self, data: float) -> ScalarNode:
        node = super().represent_float(data)
        if "e" in node.value and "." not in node.value:
            node.value = node.value.replace("e", ".0e", 1)
        return node


_Representer.add_representer(type(None), _Representer.represent_none)
_Representer.add_representer(float, _Representer.represent_float)


def _round_trip_yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.Representer = _Representer
    rt.preserve_quotes = True
    rt.width = 4096  # a rewritten value stays on its lines, never re-wrapped
    return rt


def _dump(rt: YAML, doc: Any) -> str:
    buf = io.StringIO()
    rt.dump(doc, buf)
    return buf.getvalue()


def _merge_round_trip(target: CommentedMap, overlay: dict[str, Any]) -> None:
    """:func:`deep_merge` into a round-trip document; a list replacing a list is set in place,
    so that its style and the comments around it stay."""
    for key, value in overlay.items():
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge_round_trip(current, value)
        elif isinstance(value, list) and isinstance(current, CommentedSeq):
            _set_items(current, copy.deepcopy(value))
        else:
            target[key] = copy.deepcopy(value)


def _set_items(seq: CommentedSeq, items: list[Any]) -> None:
    if not seq and seq.fa.flow_style() is None:  # `[]` is flow style, though ruamel.yaml
        seq.fa.set_flow_style()  # leaves an empty list unmarked
    # a comment after the last item (e.g. the blank line before the next section) stays last
    tail = seq.ca.items.get(len(seq) - 1)
    seq.ca.items.clear()
    del seq[:]
    seq.extend(items)
    if tail is not None and seq:
        seq.ca.items[len(seq) - 1] = tail


def _splice(text: str, before: CommentedMap, baseline: str, merged: str, rt: YAML) -> str:
    """``text`` with the lines of each entry whose rendering differs between ``baseline`` (the
    unchanged document as ruamel.yaml writes it) and ``merged`` replaced by the merged lines;
    ``merged`` as it is when the two differ in their keys."""
    old_lines, base_lines, new_lines = (t.splitlines(True) for t in (text, baseline, merged))
    old = _entry_lines(before, len(old_lines))
    base = _entry_lines(rt.load(baseline), len(base_lines))
    new = _entry_lines(rt.load(merged), len(new_lines))
    if not list(old) == list(base) == list(new):
        return merged
    lines = list(old_lines)
    for path in reversed(old):  # bottom up: line numbers above stay valid
        if base_lines[slice(*base[path])] != new_lines[slice(*new[path])]:
            lines[slice(*old[path])] = new_lines[slice(*new[path])]
    return "".join(lines)


def _entry_lines(
    node: Any, end: int, path: tuple[Any, ...] = ()
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """``[first, stop)`` line range of each entry of a block mapping whose value is not itself a
    block mapping: from its key to the next key, so comment lines after a value belong to it."""
    if not isinstance(node, CommentedMap) or node.fa.flow_style():
        return {}
    keys = list(node)
    starts = [node.lc.key(key)[0] for key in keys] + [end]
    ranges: dict[tuple[Any, ...], tuple[int, int]] = {}
    for key, start, stop in zip(keys, starts[:-1], starts[1:], strict=True):
        value = node[key]
        if isinstance(value, CommentedMap) and not value.fa.flow_style():
            ranges.update(_entry_lines(value, stop, (*path, key)))
        else:
            ranges[(*path, key)] = (start, stop)
    return ranges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.presets", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list presets and their sources")
    apply = sub.add_parser("apply", help="deep-merge a preset into a params file")
    apply.add_argument("name")
    apply.add_argument("--params", type=Path, default=Path("params.yaml"))
    apply.add_argument("--dry-run", action="store_true", help="print the result, write nothing")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in preset_names():
            _overlay, meta = load_preset(name)
            print(f"{name}\n  {meta.get('description', '').strip()}")
            print(f"  source: {' '.join(str(meta['source']).split())}")
        return 0
    try:
        text = apply_to_file(args.name, args.params, dry_run=args.dry_run)
    except (ValueError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(text, end="")
    else:
        print(f"applied preset {args.name} to {args.params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
