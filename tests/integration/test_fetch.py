"""The fetch stage against a local HTTP server: a dataset is downloaded, verified, unpacked and
run through the pipeline; a wrong checksum, a 404, a transfer cut halfway, a truncated archive
and a full disk each end in their own one-line error, and nothing half-written is ever used.
Weights files (fetch.models) are placed under data/pretrained/<entry>/ the same way."""

from __future__ import annotations

import hashlib
import io
import json
import re
import resource
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.stages.analyze import read_overrides
from tests.conftest import make_project, run, tiny_params, tool_env, write_params
from tests.http_server import FileServer
from tests.tiny_dataset import NAME, entry, make_loops, tarred, zipped

pytestmark = pytest.mark.integration

FETCH = [
    "python",
    "-m",
    "pipeline.stages.fetch",
    "--params",
    "params.yaml",
    "--registry-dir",
    "datasets",
    "--download-dir",
    "data/downloads",
    "--out-dir",
    "data/raw/fetched",
    "--models-dir",
    "data/pretrained",
]
WEIGHTS = "tinyweights"


@pytest.fixture(scope="module")
def loops(tmp_path_factory) -> Path:
    return make_loops(tmp_path_factory.mktemp("made"), tmp_path_factory.mktemp("dataset"))


def project(tmp_path: Path, registry_entry: dict) -> Path:
    params = tiny_params()
    params["fetch"]["dataset"] = NAME
    params["data"]["audio_dir"] = "data/raw/fetched"
    params["split"]["method"] = "published"
    root = make_project(tmp_path / "project", params)
    write_entry(root, registry_entry)
    return root


def write_entry(root: Path, registry_entry: dict) -> None:
    (root / "datasets" / f"{NAME}.yaml").write_text(yaml.safe_dump(registry_entry))


def fetch(root: Path, **kwargs) -> subprocess.CompletedProcess:
    return run(FETCH, root, check=False, **kwargs)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("ERROR")]


def assert_nothing_half_written(root: Path) -> None:
    """No fetched folder, no staging folder, no archive under its final name."""
    assert sorted(p.name for p in (root / "data/raw").iterdir()) == []
    downloads = root / "data/downloads" / NAME
    assert not (downloads / f"{NAME}.zip").exists()


def test_fetch_downloads_verifies_unpacks_and_the_pipeline_runs_on_it(tmp_path, loops):
    data = zipped(loops)
    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        root = project(tmp_path, entry(server.url(f"{NAME}.zip"), data))
        result = run(["dvc", "repro", "split"], root)
    assert "Running stage 'fetch'" in result.stdout

    fetched = root / "data/raw/fetched"
    wavs = sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*.wav"))
    assert wavs == ["breakbeat/audio/002.wav", "house/audio/001.wav", "techno/audio/000.wav"]
    assert not (fetched / "README.txt").exists() and not list(fetched.rglob("meta.csv"))
    # known tempi go to analyze as overrides, in the format it reads
    overrides = read_overrides(fetched)
    meta = pd.read_csv(loops / "meta.csv").iloc[:3]
    by_file = {w.split("/", 1)[1]: w for w in wavs}
    for row in meta.itertuples():
        override = overrides[by_file[row.file]]
        assert (override.bpm, override.first_downbeat, override.meter) == (
            float(row.bpm),
            float(row.downbeat),
            4,
        )
    # licence and provenance beside the audio
    assert "CC0-1.0" in (fetched / "LICENSE.txt").read_text()
    record = json.loads((fetched / "PROVENANCE.json").read_text())
    assert record["dataset"] == NAME and record["citation"] == "Test, A. (2026). Tiny loops."
    assert record["archives"][0]["urls"] == [server.url(f"{NAME}.zip")]
    assert record["archives"][0]["checksum"]["value"] == hashlib.sha256(data).hexdigest()
    assert record["fetched_at"] and record["classes"] == {"breakbeat": 1, "house": 1, "techno": 1}
    # the pipeline ran on it, with the known tempi
    tracks = pd.read_csv(root / "data/interim/analysis/tracks.csv")
    assert set(tracks.status) == {"ok"} and set(tracks.label) == {"breakbeat", "house", "techno"}
    assert set(tracks.method) == {"override"}
    # the publisher's split is kept: splits.csv beside the audio, then the split stage follows it
    published = pd.read_csv(fetched / "splits.csv")
    assert dict(zip(published.path, published.split, strict=True)) == {
        "techno/audio/000.wav": "train",
        "house/audio/001.wav": "valid",
        "breakbeat/audio/002.wav": "test",
    }
    manifest = pd.read_csv(root / "data/splits/manifest.csv")
    assert set(zip(manifest.path, manifest.split, strict=True)) == set(
        zip(published.path, published.split, strict=True)
    )
    # the download stays cached outside the output: a forced re-run downloads nothing
    before = len(server.requests)
    assert fetch(root).returncode == 0
    assert len(server.requests) == before


def test_wrong_checksum_sets_the_file_aside_and_never_uses_it(tmp_path, loops):
    data = zipped(loops)
    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        wrong = entry(server.url(f"{NAME}.zip"), data)
        wrong["archives"][0]["checksum"]["value"] = hashlib.sha256(b"other").hexdigest()
        root = project(tmp_path, wrong)
        result = fetch(root)
        assert result.returncode == 1
        [line] = error_lines(result)
        assert "checksum mismatch" in line and server.url(f"{NAME}.zip") in line
        downloads = root / "data/downloads" / NAME
        assert sorted(p.name for p in downloads.iterdir()) == [f"{NAME}.zip.bad-checksum"]
        assert_nothing_half_written(root)

        write_entry(root, entry(server.url(f"{NAME}.zip"), data))  # the right checksum
        assert fetch(root).returncode == 0
    assert (root / "data/raw/fetched/PROVENANCE.json").is_file()


def test_http_error_is_named(tmp_path, loops):
    data = zipped(loops)
    with FileServer() as server:
        root = project(tmp_path, entry(server.url("gone.zip"), data))
        result = fetch(root)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.endswith(f"{server.url('gone.zip')}: HTTP 404 Not Found")
    assert_nothing_half_written(root)
    assert not list((root / "data/downloads" / NAME).iterdir())


def test_transfer_cut_halfway_resumes_on_the_next_run(tmp_path, loops):
    data = zipped(loops)
    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        server.cut_once.add(f"{NAME}.zip")
        root = project(tmp_path, entry(server.url(f"{NAME}.zip"), data))
        first = fetch(root)
        assert first.returncode == 1
        [line] = error_lines(first)
        assert "transfer interrupted" in line and "run the stage again to resume" in line
        part = root / "data/downloads" / NAME / f"{NAME}.zip.part"
        assert part.stat().st_size == len(data) // 2
        assert_nothing_half_written(root)

        second = fetch(root)
        assert second.returncode == 0, second.stderr
        assert server.requests[-1] == (f"{NAME}.zip", f"bytes={len(data) // 2}-")
    final = root / "data/downloads" / NAME / f"{NAME}.zip"
    assert final.read_bytes() == data and not part.exists()
    assert len(list((root / "data/raw/fetched").rglob("*.wav"))) == 3


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_truncated_archive_is_named_and_nothing_is_unpacked(tmp_path, loops, fmt):
    whole = zipped(loops) if fmt == "zip" else tarred(loops)
    data = whole[: len(whole) * 2 // 3]  # as published: the checksum matches the broken file
    name = f"{NAME}.{fmt}"
    with FileServer() as server:
        server.files[name] = data
        root = project(tmp_path, entry(server.url(name), data, fmt))
        result = fetch(root)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"{name}: truncated or corrupt {fmt} archive" in line
    assert sorted(p.name for p in (root / "data/raw").iterdir()) == []


def test_full_disk_leaves_nothing_half_written_and_the_next_run_resumes(tmp_path, loops):
    """A file-size limit makes the download's write fail with EFBIG, as a full disk would."""
    data = zipped(loops)
    limit = len(data) // 3

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        root = project(tmp_path, entry(server.url(f"{NAME}.zip"), data))
        result = subprocess.run(
            [sys.executable, *FETCH[1:]],
            cwd=root,
            env=tool_env(root),
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=small_files,
        )
        assert result.returncode == 1
        [line] = error_lines(result)
        assert f"{NAME}.zip.part: File too large" in line
        assert "no output was left half-written" in line
        assert_nothing_half_written(root)
        part = root / "data/downloads" / NAME / f"{NAME}.zip.part"
        assert 0 < part.stat().st_size <= limit

        assert fetch(root).returncode == 0
    assert len(list((root / "data/raw/fetched").rglob("*.wav"))) == 3


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    """The zip ``data`` with one more (deflated) member."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr(f"{NAME}/{name}", content)
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_before_it_fills_the_disk(tmp_path, loops):
    """256 MB of zeros deflate to 250 kB: the archive passes its checksum and would unpack to
    a hundred times its size. The file-size limit stands in for a small disk: the refusal comes
    before anything is written, not from the disk filling up."""
    data = with_member(zipped(loops), "audio/zeros.wav", bytes(256 << 20))
    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        root = project(tmp_path, entry(server.url(f"{NAME}.zip"), data))
        result = limited_fetch(root, len(data) + (1 << 20))
    assert result.returncode == 1
    [line] = error_lines(result)
    archive = root / "data/downloads" / NAME / f"{NAME}.zip"
    unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert f"data/downloads/{NAME}/{NAME}.zip: its members unpack to " in line
    assert f"unpack to {unpacked / 1e6:.1f} MB, more than the {len(data) * 20 / 1e6:.1f} MB" in line
    assert "allowed (fetch.max_unpacked_ratio: 20 times its" in line
    assert line.endswith("refused, nothing unpacked")
    assert sorted(p.name for p in (root / "data/raw").iterdir()) == []
    assert sorted(p.name for p in archive.parent.iterdir()) == [
        f"{NAME}.zip",
        f"{NAME}.zip.verified",
    ]

    # an entry that declares what the archive unpacks to is believed, to 5 % and 1 MiB
    declared = entry(server.url(f"{NAME}.zip"), data)
    declared["archives"][0]["unpacked_size"] = 200_000_000
    write_entry(root, declared)
    result = fetch(root)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "its registry entry's unpacked_size, 200.0 MB, and 5% more" in line


def test_a_full_disk_while_unpacking_names_the_archive_and_the_member(tmp_path, loops):
    data = with_member(zipped(loops), "padding.bin", bytes(8 << 20))
    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        root = project(tmp_path, entry(server.url(f"{NAME}.zip"), data))
        result = limited_fetch(root, len(data) + (1 << 20))
    assert result.returncode == 1
    [line] = error_lines(result)
    assert f"data/downloads/{NAME}/{NAME}.zip: cannot unpack {NAME}/padding.bin into " in line
    assert "(File too large) after" in line and "<unknown file>" not in line
    assert sorted(p.name for p in (root / "data/raw").iterdir()) == []


def limited_fetch(root: Path, max_file_bytes: int) -> subprocess.CompletedProcess:
    """The fetch stage unable to write any file larger than ``max_file_bytes`` (EFBIG, as a
    full disk would fail it)."""

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, *FETCH[1:]],
        cwd=root,
        env=tool_env(root),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_files,
    )


def test_snakemake_fetches_and_prepares_the_same_bytes_as_dvc(tmp_path, loops):
    """Snakemake's fetch checkpoint feeds its per-track jobs; both executors write the same
    fetched files and the same splits (PROVENANCE.json differs only in its date)."""
    data = zipped(loops)
    with FileServer() as server:
        server.files[f"{NAME}.zip"] = data
        registry_entry = entry(server.url(f"{NAME}.zip"), data)
        by_dvc = project(tmp_path / "dvc", registry_entry)
        by_snakemake = project(tmp_path / "snakemake", registry_entry)
        run(["dvc", "repro", "split"], by_dvc)
        log = run(["snakemake", "--cores", "1", "data/splits"], by_snakemake)
    assert "localcheckpoint fetch:" in log.stdout + log.stderr

    def files(root: Path) -> dict[str, bytes]:
        found = {}
        for folder in ("data/raw/fetched", "data/splits"):
            for path in sorted((root / folder).rglob("*")):
                if path.is_file() and path.name != ".snakemake_timestamp":
                    data = path.read_bytes()
                    if path.name == "PROVENANCE.json":
                        record = json.loads(data)
                        record.pop("fetched_at")
                        data = json.dumps(record).encode()
                    found[path.relative_to(root).as_posix()] = data
        return found

    produced = files(by_dvc)
    assert "data/raw/fetched/overrides.csv" in produced and len(produced) > 6
    assert files(by_snakemake) == produced


def weights_entry(url: str, data: bytes) -> dict:
    """A registry entry of kind model: one weights file, as datasets/vggish-weights.yaml."""
    return {
        "title": "Tiny weights (made in the test)",
        "homepage": "https://example.org/tinyweights",
        "kind": "model",
        "licence": {"name": "Apache-2.0", "text": "Licensed under the Apache License 2.0."},
        "citation": "Test, B. (2026). Tiny weights.",
        "archives": [
            {
                "filename": f"{WEIGHTS}-1234.pth",
                "urls": [url],
                "size": None,
                "checksum": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(data).hexdigest(),
                    "source": "computed by the test",
                },
                "format": "file",
            }
        ],
        "classes": {"from": "none"},
    }


def weights_project(tmp_path: Path, registry_entry: dict, **fetch) -> Path:
    params = tiny_params()
    params["fetch"].update(fetch)
    root = make_project(tmp_path / "project", params)
    (root / "datasets" / f"{WEIGHTS}.yaml").write_text(yaml.safe_dump(registry_entry))
    return root


def set_models(root: Path, models: list[str]) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["fetch"]["models"] = models
    write_params(root, params)


def test_fetch_models_places_verified_weights_with_licence_and_provenance(tmp_path):
    data = b"not really weights, but bytes with a checksum\n" * 100
    with FileServer() as server:
        server.files["w.pth"] = data
        root = weights_project(tmp_path, weights_entry(server.url("w.pth"), data), models=[WEIGHTS])
        result = fetch(root)
        assert result.returncode == 0, result.stderr

        folder = root / "data/pretrained" / WEIGHTS
        assert sorted(p.name for p in folder.iterdir()) == [
            "LICENSE.txt",
            "PROVENANCE.json",
            f"{WEIGHTS}-1234.pth",
        ]
        assert (folder / f"{WEIGHTS}-1234.pth").read_bytes() == data
        assert "Apache-2.0" in (folder / "LICENSE.txt").read_text()
        record = json.loads((folder / "PROVENANCE.json").read_text())
        assert record["dataset"] == WEIGHTS and record["kind"] == "model"
        assert record["files"] == [f"{WEIGHTS}-1234.pth"]
        assert record["archives"][0]["urls"] == [server.url("w.pth")]
        assert record["archives"][0]["checksum"]["value"] == hashlib.sha256(data).hexdigest()
        # fetch.dataset none still writes its note; nothing else sits beside the entry folders
        note = json.loads((root / "data/raw/fetched/PROVENANCE.json").read_text())
        assert note["dataset"] is None
        assert [p.name for p in (root / "data/pretrained").iterdir()] == [WEIGHTS]
        assert (root / "data/downloads" / WEIGHTS / f"{WEIGHTS}-1234.pth").read_bytes() == data

        # no models: the folder holds only a note; naming them again downloads nothing
        set_models(root, [])
        assert fetch(root).returncode == 0
        assert [p.name for p in (root / "data/pretrained").iterdir()] == ["PROVENANCE.json"]
        note = json.loads((root / "data/pretrained/PROVENANCE.json").read_text())
        assert note["models"] == []
        set_models(root, [WEIGHTS])
        before = len(server.requests)
        assert fetch(root).returncode == 0
        assert len(server.requests) == before
    assert (folder / f"{WEIGHTS}-1234.pth").read_bytes() == data


def test_weights_with_a_wrong_checksum_are_set_aside_and_not_placed(tmp_path):
    data = b"weights" * 1000
    with FileServer() as server:
        server.files["w.pth"] = data
        wrong = weights_entry(server.url("w.pth"), data)
        wrong["archives"][0]["checksum"]["value"] = hashlib.sha256(b"other").hexdigest()
        root = weights_project(tmp_path, wrong, models=[WEIGHTS])
        result = fetch(root)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert "checksum mismatch" in line and server.url("w.pth") in line
    downloads = root / "data/downloads" / WEIGHTS
    assert [p.name for p in downloads.iterdir()] == [f"{WEIGHTS}-1234.pth.bad-checksum"]
    # neither output folder, nor a staging folder, was left behind
    assert sorted(p.name for p in (root / "data").iterdir()) == ["downloads", "raw"]
    assert list((root / "data/raw").iterdir()) == []


@pytest.mark.parametrize(
    ("fetch_params", "message"),
    [
        (
            {"models": [NAME]},
            rf"fetch\.models: datasets/{NAME}\.yaml is an audio dataset \(kind: audio\), "
            r"not a weights file: name it in fetch\.dataset",
        ),
        (
            {"dataset": WEIGHTS},
            rf"fetch\.dataset: datasets/{WEIGHTS}\.yaml is a weights file \(kind: model\), "
            r"not an audio dataset: name it in fetch\.models",
        ),
        ({"models": ["nosuch"]}, r"fetch\.models: datasets/nosuch\.yaml: no such registry entry"),
    ],
)
def test_an_entry_of_the_wrong_kind_is_named_before_anything_is_downloaded(
    tmp_path, fetch_params, message
):
    data = b"weights"
    with FileServer() as server:
        server.files["w.pth"] = data
        root = weights_project(tmp_path, weights_entry(server.url("w.pth"), data), **fetch_params)
        write_entry(root, entry(server.url(f"{NAME}.zip"), b"audio"))
        result = fetch(root)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert re.search(message, line), line
    assert server.requests == []
    assert list((root / "data").glob("*")) == []
