"""Unpacking downloaded archives (zip, tar.gz, tar) into a folder, refusing broken ones.

A truncated or corrupt archive is an :class:`UnpackError` naming the file; so is a member that
would land outside the target folder, an archive that would unpack to more than its
:class:`SizeLimit` (a checksum pins an archive's bytes, not its expansion: a 1 MB zip of zeros
unpacks to a gigabyte) or to more than the disk has free, and a write that fails (a full disk).
The sizes the members declare are checked before anything is written, and the bytes actually
written are counted while unpacking, so no header can lie past the limit. Callers unpack into
a temporary folder and rename it into place only when everything succeeded.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
DECLARED_MARGIN = 0.05  # a registry's unpacked_size may be rounded: 5 % (and 1 MiB) more is fine
MARGIN_BYTES = 1 << 20


class UnpackError(RuntimeError):
    """One line naming the archive and why it cannot be unpacked."""


@dataclass(frozen=True)
class SizeLimit:
    """The most an archive may unpack to, and where that number comes from (for the error)."""

    max_bytes: int
    reason: str


def size_limit(unpacked_size: int | None, download_bytes: int, max_ratio: float) -> SizeLimit:
    """The registry's declared ``unpacked_size`` with a margin, or else ``max_ratio`` times the
    archive's own size (``fetch.max_unpacked_ratio``)."""
    if unpacked_size is not None:
        return SizeLimit(
            int(unpacked_size * (1 + DECLARED_MARGIN)) + MARGIN_BYTES,
            f"its registry entry's unpacked_size, {human(unpacked_size)}, and "
            f"{DECLARED_MARGIN:.0%} more",
        )
    return SizeLimit(
        int(download_bytes * max_ratio),
        f"fetch.max_unpacked_ratio: {max_ratio:g} times its {human(download_bytes)}; "
        "a registry entry may declare unpacked_size instead",
    )


def unpack(archive: Path, into: Path, fmt: str, limit: SizeLimit | None = None) -> int:
    """Unpack ``archive`` (``fmt``: zip, tar.gz, tar or file) into ``into``; returns the bytes
    written. Every failure is an :class:`UnpackError` naming ``archive``."""
    into.mkdir(parents=True, exist_ok=True)
    budget = _Budget(archive, into, limit)
    try:
        if fmt == "zip":
            _unzip(archive, into, budget)
        elif fmt in ("tar.gz", "tar"):
            _untar(archive, into, budget)
        elif fmt == "file":
            budget.declare(archive.stat().st_size)
            budget.member = archive.name
            with open(archive, "rb") as source:
                budget.copy(source, into / archive.name)
        else:
            raise UnpackError(f"{archive}: unknown archive format {fmt!r}")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        raise UnpackError(
            f"{archive}: truncated or corrupt {fmt} archive ({err or type(err).__name__}); "
            "delete it and fetch again"
        ) from None
    except OSError as err:  # a full disk: write() names no file, so name the archive and member
        raise UnpackError(
            f"{archive}: cannot unpack {budget.member or 'it'} into {into} "
            f"({err.strerror or err}) after {human(budget.written)}"
        ) from None
    return budget.written


def _unzip(archive: Path, into: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as handle:
        members = handle.infolist()
        for member in members:
            _check_inside(archive, into, member.filename)
        budget.declare(sum(m.file_size for m in members if not m.is_dir()))
        for member in members:
            target = into / member.filename
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            budget.member = member.filename
            # reading a member to its end checks its CRC: a corrupt member raises BadZipFile
            with handle.open(member) as source:
                budget.copy(source, target)


def _untar(archive: Path, into: Path, budget: _Budget) -> None:
    with tarfile.open(archive, "r:*") as handle:
        members = handle.getmembers()
        for member in members:
            _check_inside(archive, into, member.name)
            if member.issym() or member.islnk():
                raise UnpackError(f"{archive}: member {member.name} is a link; refused")
            if not (member.isfile() or member.isdir()):
                raise UnpackError(f"{archive}: member {member.name} is not a file; refused")
        budget.declare(sum(m.size for m in members if m.isfile()))
        for member in members:
            target = into / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            budget.member = member.name
            source = handle.extractfile(member)
            assert source is not None  # a regular file, checked above
            with source:
                budget.copy(source, target)


def _check_inside(archive: Path, into: Path, name: str) -> None:
    target = (into / name).resolve()
    if not target.is_relative_to(into.resolve()):
        raise UnpackError(f"{archive}: member {name} would land outside {into}; refused")


@dataclass
class _Budget:
    """Bytes unpacked so far from one archive, against its limit and the disk's free space."""

    archive: Path
    into: Path
    limit: SizeLimit | None
    written: int = 0
    member: str | None = field(default=None)

    def declare(self, total: int) -> None:
        """Refuse, before anything is written, what the members say they unpack to."""
        if self.limit is not None and total > self.limit.max_bytes:
            raise UnpackError(
                f"{self.archive}: its members unpack to {human(total)}, more than the "
                f"{human(self.limit.max_bytes)} allowed ({self.limit.reason}); refused, "
                "nothing unpacked"
            )
        free = shutil.disk_usage(self.into).free
        if total > free:
            raise UnpackError(
                f"{self.archive}: its members unpack to {human(total)}, and {self.into} has "
                f"{human(free)} free; nothing unpacked (free space, then run the stage again)"
            )

    def copy(self, source: BinaryIO, target: Path) -> None:
        """Copy ``source`` to ``target`` counting the bytes; past the limit, stop and refuse."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while chunk := source.read(CHUNK):
                self.written += len(chunk)
                if self.limit is not None and self.written > self.limit.max_bytes:
                    raise UnpackError(
                        f"{self.archive}: unpacked more than the {human(self.limit.max_bytes)} "
                        f"allowed ({self.limit.reason}) at member {self.member}, more than its "
                        "headers declare; refused"
                    )
                out.write(chunk)


def human(n: float) -> str:
    """Bytes as the README writes them: 1.2 GB, 340 MB (powers of 1000, as publishers do)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"
