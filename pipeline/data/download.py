"""Resumable, verified downloads: HTTP Range into ``<name>.part``, a checksum, then a rename.

A file reaches its final name only after its checksum matched, and ``<name>.verified`` records
against which checksum, so a finished download is hashed again only when the entry changes.
An interrupted transfer leaves the ``.part`` file, and the next call asks the server for the
rest (``Range: bytes=<have>-``). A file whose checksum does not match is moved aside as
``<name>.bad-checksum`` and never used.
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from pipeline.cache import file_digest
from pipeline.data.registry import Archive, Checksum

CHUNK = 1 << 20
TIMEOUT_S = 60
USER_AGENT = "bargan-fetch/1"


class DownloadError(RuntimeError):
    """One line naming the URL (or file) and what went wrong."""


def fetch_archive(archive: Archive, cache_dir: Path, progress: bool = True) -> Path:
    """The verified download of ``archive`` in ``cache_dir``, downloading what is missing.

    Mirrors in ``archive.urls`` are tried in order; the error of each is reported when all fail.
    """
    final = cache_dir / archive.filename
    if final.is_file() and already_verified(final, archive.checksum):
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in archive.urls:
        try:
            download_verified(url, final, archive.size, archive.checksum, progress)
            return final
        except DownloadError as err:
            failures.append(str(err))
    raise DownloadError("; ".join(failures))


def already_verified(final: Path, checksum: Checksum) -> bool:
    """Whether ``final`` (a finished download) matches ``checksum``: known from its stamp
    (``<name>.verified``), else hashed now. A file that does not match (the registry entry
    changed since) is set aside as ``.bad-checksum`` and downloaded again."""
    stamp = _stamp(final)
    if stamp.is_file() and stamp.read_text() == _stamp_text(checksum):
        return True
    if file_digest(final, checksum.algorithm) == checksum.value:
        stamp.write_text(_stamp_text(checksum))
        return True
    stamp.unlink(missing_ok=True)
    _set_aside(final)
    return False


def download_verified(
    url: str, final: Path, size: int | None, checksum: Checksum, progress: bool = True
) -> None:
    part = final.with_name(final.name + ".part")
    download_resumable(url, part, size, progress)
    if size is not None and part.stat().st_size != size:
        got = part.stat().st_size
        bad = _set_aside(part)
        raise DownloadError(
            f"{url}: {got} bytes where {size} were published; moved aside as {bad.name}"
        )
    digest = file_digest(part, checksum.algorithm)
    if digest != checksum.value:
        bad = _set_aside(part)
        raise DownloadError(
            f"{url}: checksum mismatch ({checksum.algorithm} {digest}, expected "
            f"{checksum.value}); moved aside as {bad}, not used"
        )
    _stamp(final).write_text(_stamp_text(checksum))
    os.replace(part, final)


def download_resumable(url: str, part: Path, size: int | None, progress: bool = True) -> None:
    """Append the rest of ``url`` to ``part`` (created if missing)."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have >= size:
        return  # complete (or too long: the size check names it)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the part is whole
            return
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with response:
        if have and response.status != 206:  # the server ignored the range: start again
            have = 0
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length is not None else size
        mode = "ab" if have else "wb"
        bar = tqdm(
            total=expected,
            initial=have,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 5.0,
            disable=not progress,
        )
        received = have
        try:
            with bar, open(part, mode) as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
            raise _interrupted(url, part, received, expected, type(err).__name__) from None
        except OSError as err:  # a full disk: name the file (a failed write() names none)
            if err.filename is None and err.errno is not None:
                raise type(err)(err.errno, err.strerror, str(part)) from err
            raise
    if expected is not None and received < expected:
        raise _interrupted(url, part, received, expected, "connection closed early")


def _interrupted(
    url: str, part: Path, received: int, expected: int | None, why: str
) -> DownloadError:
    of = f" of {expected}" if expected is not None else ""
    return DownloadError(
        f"{url}: transfer interrupted after {received}{of} bytes ({why}); "
        f"run the stage again to resume from {part}"
    )


def _stamp(final: Path) -> Path:
    return final.with_name(final.name + ".verified")


def _stamp_text(checksum: Checksum) -> str:
    return f"{checksum.algorithm}:{checksum.value}\n"


def _set_aside(path: Path) -> Path:
    """Move a download (finished, or its ``.part``) to ``<name>.bad-checksum``."""
    bad = path.with_name(path.name.removesuffix(".part") + ".bad-checksum")
    os.replace(path, bad)
    return bad
