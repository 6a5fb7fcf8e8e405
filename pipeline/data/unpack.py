"""Unpacking downloaded archives (zip, tar.gz, tar) into a folder, refusing broken ones.

A truncated or corrupt archive is an :class:`UnpackError` naming the file; so is a member that
would land outside the target folder. Callers unpack into a temporary folder and rename it
into place only when everything succeeded.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path


class UnpackError(RuntimeError):
    """One line naming the archive and why it cannot be unpacked."""


def unpack(archive: Path, into: Path, fmt: str) -> None:
    into.mkdir(parents=True, exist_ok=True)
    try:
        if fmt == "zip":
            _unzip(archive, into)
        elif fmt in ("tar.gz", "tar"):
            _untar(archive, into)
        elif fmt == "file":
            shutil.copyfile(archive, into / archive.name)
        else:
            raise UnpackError(f"{archive}: unknown archive format {fmt!r}")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        raise UnpackError(
            f"{archive}: truncated or corrupt {fmt} archive ({err or type(err).__name__}); "
            "delete it and fetch again"
        ) from None


def _unzip(archive: Path, into: Path) -> None:
    # extractall checks every member's CRC: a corrupt member raises BadZipFile
    with zipfile.ZipFile(archive) as handle:
        for member in handle.infolist():
            _check_inside(archive, into, member.filename)
        handle.extractall(into)


def _untar(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as handle:
        for member in handle:
            _check_inside(archive, into, member.name)
            if member.issym() or member.islnk():
                raise UnpackError(f"{archive}: member {member.name} is a link; refused")
            if not (member.isfile() or member.isdir()):
                raise UnpackError(f"{archive}: member {member.name} is not a file; refused")
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 (and security backports)
            handle.extractall(into, filter="data")
        else:  # every member was checked above: files and folders inside `into` only
            handle.extractall(into)


def _check_inside(archive: Path, into: Path, name: str) -> None:
    target = (into / name).resolve()
    if not target.is_relative_to(into.resolve()):
        raise UnpackError(f"{archive}: member {name} would land outside {into}; refused")
