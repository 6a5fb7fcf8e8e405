"""A tiny published-looking dataset made in code for the fetch and reproduce tests: three
synthesised drum loops with exact tempo, meter, first downbeat and a publisher's split, packed
as the archive a local HTTP server serves, and the registry entry that describes it."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pandas as pd

from pipeline.data.synth import make_corpus, random_specs
from tests.conftest import tiny_params

NAME = "tinyloops"


def make_loops(made: Path, parent: Path) -> Path:
    """Three synthesised drum loops with exact tempo, meter and first downbeat, laid out like
    a published dataset: tinyloops/audio/<n>.wav plus meta.csv naming genre and tempo."""
    params = tiny_params()["demo"]
    specs = random_specs(1, params["styles"], tuple(params["bpm_range"]), 5, params["seed"])
    truth = make_corpus(made, specs, params["sample_rate"])
    root = parent / NAME
    (root / "audio").mkdir(parents=True)
    rows = []
    for i, row in enumerate(truth.itertuples()):
        name = f"audio/{i:03d}.wav"
        (root / name).write_bytes((made / row.path).read_bytes())
        split = ("train", "validation", "test")[i % 3]  # the publisher's names
        rows.append((name, row.style, row.bpm, f"{row.beats_per_bar}-4", row.first_downbeat, split))
    rows.append(("audio/missing.wav", "techno", "120", "4-4", "0", "train"))  # listed, not shipped
    columns = ["file", "genre", "bpm", "signature", "downbeat", "split"]
    meta = pd.DataFrame(rows, columns=columns)
    meta.to_csv(root / "meta.csv", index=False)
    (root / "README.txt").write_text("not audio\n")
    return root


def zipped(root: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(root.rglob("*")):
            handle.write(path, path.relative_to(root.parent).as_posix())
    return buffer.getvalue()


def tarred(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as handle:
        handle.add(root, arcname=root.name)
    return buffer.getvalue()


def entry(url: str, data: bytes, fmt: str = "zip", filename: str | None = None) -> dict:
    return {
        "title": "Tiny loops (made in the test)",
        "homepage": "https://example.org/tinyloops",
        "kind": "audio",
        "licence": {"name": "CC0-1.0", "text": "No rights reserved."},
        "citation": "Test, A. (2026). Tiny loops.",
        "archives": [
            {
                "filename": filename or f"{NAME}.{fmt}",
                "urls": [url],
                "size": len(data),
                "checksum": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(data).hexdigest(),
                    "source": "computed by the test",
                },
                "format": fmt,
            }
        ],
        "root": NAME,
        "classes": {
            "from": "csv",
            "csv": "meta.csv",
            "path_column": "file",
            "class_column": "genre",
        },
        "tempo": {
            "csv": "meta.csv",
            "path_column": "file",
            "bpm_column": "bpm",
            "meter_column": "signature",
            "first_downbeat_column": "downbeat",
        },
        "splits": {
            "csv": "meta.csv",
            "path_column": "file",
            "split_column": "split",
            "names": {"validation": "valid"},
        },
    }
