"""Unpacking: good archives unpack, broken or escaping ones are refused naming the file."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from pipeline.data.unpack import UnpackError, unpack


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def test_zip_and_tar_gz_unpack(tmp_path: Path):
    unpack(make_zip(tmp_path / "a.zip", {"d/x.wav": b"x"}), tmp_path / "z", "zip")
    assert (tmp_path / "z/d/x.wav").read_bytes() == b"x"
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        info = tarfile.TarInfo("d/y.wav")
        info.size = 1
        handle.addfile(info, io.BytesIO(b"y"))
    unpack(archive, tmp_path / "t", "tar.gz")
    assert (tmp_path / "t/d/y.wav").read_bytes() == b"y"


def test_corrupt_member_is_named(tmp_path: Path):
    archive = make_zip(tmp_path / "a.zip", {"x.wav": b"a" * 1000})
    data = bytearray(archive.read_bytes())
    data[data.index(b"a" * 100) + 10] ^= 0xFF  # flip a byte inside the stored member
    archive.write_bytes(bytes(data))
    with pytest.raises(UnpackError, match=r"a\.zip: truncated or corrupt zip archive"):
        unpack(archive, tmp_path / "out", "zip")


def test_member_outside_the_folder_is_refused(tmp_path: Path):
    archive = make_zip(tmp_path / "a.zip", {"../evil.wav": b"x"})
    with pytest.raises(UnpackError, match=r"member \.\./evil\.wav would land outside"):
        unpack(archive, tmp_path / "out", "zip")
    assert not (tmp_path / "evil.wav").exists()


def test_a_tar_member_that_is_neither_file_nor_folder_is_refused(tmp_path):
    archive = tmp_path / "odd.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        data = b"RIFF"
        info = tarfile.TarInfo("audio/a.wav")
        info.size = len(data)
        handle.addfile(info, io.BytesIO(data))
        fifo = tarfile.TarInfo("audio/pipe")
        fifo.type = tarfile.FIFOTYPE
        handle.addfile(fifo)
    with pytest.raises(UnpackError, match=r"member audio/pipe is not a file; refused"):
        unpack(archive, tmp_path / "out", "tar.gz")
    assert not (tmp_path / "out" / "audio" / "a.wav").exists()
