"""Resumable, verified downloads from a local HTTP server (no project, no pipeline)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.data.download import DownloadError, fetch_archive
from pipeline.data.registry import Archive, Checksum
from tests.http_server import FileServer

DATA = bytes(range(256)) * 400


def archive(urls: list[str], data: bytes = DATA, size: int | None = None) -> Archive:
    digest = hashlib.sha256(data).hexdigest()
    return Archive("blob.bin", tuple(urls), size, Checksum("sha256", digest, "test"), "file")


def test_download_is_verified_and_stamped(tmp_path: Path):
    with FileServer() as server:
        server.files["blob.bin"] = DATA
        path = fetch_archive(archive([server.url("blob.bin")], size=len(DATA)), tmp_path, False)
        assert path.read_bytes() == DATA
        assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "blob.bin.verified"]
        fetch_archive(archive([server.url("blob.bin")]), tmp_path, False)
        assert len(server.requests) == 1  # verified before: not downloaded again


def test_mirrors_are_tried_in_turn_and_every_failure_is_named(tmp_path: Path):
    with FileServer() as server:
        server.files["blob.bin"] = DATA
        urls = [server.url("missing.bin"), server.url("blob.bin")]
        assert fetch_archive(archive(urls), tmp_path, False).read_bytes() == DATA
        with pytest.raises(DownloadError) as err:
            fetch_archive(archive([server.url("a"), server.url("b")]), tmp_path / "x", False)
    assert str(err.value) == (
        f"{server.url('a')}: HTTP 404 Not Found; {server.url('b')}: HTTP 404 Not Found"
    )


def test_resume_after_a_cut_asks_for_the_rest(tmp_path: Path):
    with FileServer() as server:
        server.files["blob.bin"] = DATA
        server.cut_once.add("blob.bin")
        entry = archive([server.url("blob.bin")])
        with pytest.raises(DownloadError, match="transfer interrupted after 51200 of 102400"):
            fetch_archive(entry, tmp_path, False)
        assert (tmp_path / "blob.bin.part").stat().st_size == len(DATA) // 2
        assert fetch_archive(entry, tmp_path, False).read_bytes() == DATA
    assert server.requests == [("blob.bin", None), ("blob.bin", f"bytes={len(DATA) // 2}-")]


def test_a_part_as_long_as_published_is_not_downloaded_again(tmp_path: Path):
    (tmp_path / "blob.bin.part").write_bytes(DATA)
    path = fetch_archive(archive(["http://127.0.0.1:9/never"], size=len(DATA)), tmp_path, False)
    assert path.read_bytes() == DATA


def test_a_longer_file_than_published_is_set_aside(tmp_path: Path):
    with FileServer() as server:
        server.files["blob.bin"] = DATA + b"extra"
        with pytest.raises(DownloadError, match=r"102405 bytes where 102400 were published"):
            fetch_archive(archive([server.url("blob.bin")], size=len(DATA)), tmp_path, False)
    assert (tmp_path / "blob.bin.bad-checksum").is_file()
    assert not (tmp_path / "blob.bin").exists()


def test_a_download_that_no_longer_matches_its_entry_is_set_aside(tmp_path: Path):
    with FileServer() as server:
        server.files["blob.bin"] = DATA
        fetch_archive(archive([server.url("blob.bin")]), tmp_path, False)
        server.files["blob.bin"] = b"new release"
        path = fetch_archive(archive([server.url("blob.bin")], b"new release"), tmp_path, False)
    assert path.read_bytes() == b"new release"
    assert (tmp_path / "blob.bin.bad-checksum").read_bytes() == DATA


def test_unreachable_server_is_named(tmp_path: Path):
    with pytest.raises(DownloadError, match=r"^http://127\.0\.0\.1:9/x: cannot connect"):
        fetch_archive(archive(["http://127.0.0.1:9/x"]), tmp_path, False)
