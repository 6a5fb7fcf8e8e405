"""Unpacking: good archives unpack, broken or escaping ones are refused naming the file."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from pipeline.data.unpack import SizeLimit, UnpackError, _Budget, size_limit, unpack


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


# --- bounded unpacked size ---------------------------------------------------------------------
BOMB = 64 << 20  # zeros: a deflated zip of them is about 64 kB


def zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("bomb/a.wav", b"RIFF")
        handle.writestr("bomb/zeros.wav", bytes(BOMB))
    return path


def tar_bomb(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as handle:
        info = tarfile.TarInfo("bomb/zeros.wav")
        info.size = BOMB
        handle.addfile(info, io.BytesIO(bytes(BOMB)))
    return path


@pytest.mark.parametrize("fmt, make", [("zip", zip_bomb), ("tar.gz", tar_bomb)])
def test_an_archive_unpacking_past_its_limit_is_refused_before_anything_is_written(
    tmp_path: Path, fmt, make
):
    archive = make(tmp_path / f"bomb.{fmt}")
    assert archive.stat().st_size * 100 < BOMB
    limit = size_limit(None, archive.stat().st_size, 20)
    assert limit.max_bytes == archive.stat().st_size * 20
    out = tmp_path / "out"
    with pytest.raises(UnpackError) as refused:
        unpack(archive, out, fmt, limit)
    message = str(refused.value)
    assert message.startswith(f"{archive}: its members unpack to 67.1 MB, more than the ")
    assert "allowed (fetch.max_unpacked_ratio: 20 times its " in message
    assert message.endswith("refused, nothing unpacked")
    assert list(out.rglob("*")) == []


def test_a_declared_unpacked_size_sets_the_limit(tmp_path: Path):
    archive = zip_bomb(tmp_path / "big.zip")
    assert unpack(archive, tmp_path / "fits", "zip", size_limit(BOMB + 4, 1, 20)) == BOMB + 4
    assert (tmp_path / "fits/bomb/zeros.wav").stat().st_size == BOMB
    with pytest.raises(UnpackError, match=r"big\.zip: .*unpacked_size, 60\.0 MB, and 5% more"):
        unpack(archive, tmp_path / "small", "zip", size_limit(60_000_000, 1, 20))


def test_bytes_written_are_counted_past_what_headers_declare(tmp_path: Path):
    """Headers can lie; the bytes a member really yields are counted as they are written."""
    budget = _Budget(tmp_path / "a.zip", tmp_path, SizeLimit(3 << 20, "a test limit"))
    budget.declare(1000)  # what a lying header might say
    budget.member = "x.wav"
    with pytest.raises(UnpackError, match=r"a\.zip: unpacked more than the 3\.1 MB allowed"):
        budget.copy(io.BytesIO(bytes(10 << 20)), tmp_path / "x.wav")
    assert (tmp_path / "x.wav").stat().st_size <= 3 << 20
