"""What is written beside fetched files: the licence (``LICENSE.txt``) and where they came from
(``PROVENANCE.json``: URLs, checksums, date, citation)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pipeline.cache import file_digest
from pipeline.data.registry import Dataset

LICENSE_FILE = "LICENSE.txt"
PROVENANCE_FILE = "PROVENANCE.json"


def licence_text(dataset: Dataset) -> str:
    licence = dataset.licence
    lines = [
        f"{dataset.title}",
        f"{dataset.homepage}",
        "",
        f"Licence: {licence['name']}" + (f" ({licence['url']})" if licence.get("url") else ""),
        "",
        licence["text"].strip(),
        "",
        "Cite as:",
        "",
        dataset.citation,
        "",
    ]
    return "\n".join(lines)


def provenance(dataset: Dataset, labels: list[str], overrides: int) -> dict[str, Any]:
    return {
        "dataset": dataset.name,
        "title": dataset.title,
        "homepage": dataset.homepage,
        "kind": dataset.kind,
        "licence": dataset.licence["name"],
        "licence_url": dataset.licence.get("url"),
        "citation": dataset.citation,
        "registry_entry": dataset.path.name,
        "registry_entry_sha256": file_digest(dataset.path),
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "archives": [
            {
                "filename": archive.filename,
                "urls": list(archive.urls),
                "size": archive.size,
                "checksum": {
                    "algorithm": archive.checksum.algorithm,
                    "value": archive.checksum.value,
                    "published_by": archive.checksum.source,
                    "verified": True,
                },
            }
            for archive in dataset.archives
        ],
        "files": len(labels),
        "classes": dict(sorted(Counter(labels).items())),
        "tempo_overrides": overrides,
    }


def nothing_fetched() -> dict[str, Any]:
    """The record of a run with ``fetch.dataset: none`` (the same bytes every time)."""
    return {"dataset": None, "note": "fetch.dataset is none: nothing was downloaded"}


def model_provenance(dataset: Dataset) -> dict[str, Any]:
    """The record beside a fetched weights file: as for a dataset, without classes or tempi."""
    record = provenance(dataset, [], 0)
    del record["classes"], record["tempo_overrides"]
    record["files"] = [archive.filename for archive in dataset.archives]
    return record


def no_models_fetched() -> dict[str, Any]:
    """The record of a run with ``fetch.models: []`` (the same bytes every time)."""
    return {"models": [], "note": "fetch.models is empty: nothing was downloaded"}
