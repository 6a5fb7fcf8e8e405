"""What every stage program shares: argument parsing, params, logging, parallel maps."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from tqdm import tqdm

from pipeline.params import ParamsError, load_params

CPU_THREADS_ENV = "BARGAN_CPU_THREADS"
T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("bargan")


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    return parser


def run_stage(main: Callable[[argparse.Namespace, dict[str, Any]], None], parser) -> None:
    """Parse args, validate params (fail fast naming the key), run, exit non-zero on error."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser.parse_args()
    try:
        pin_cpu_threads()
    except ValueError as err:
        log.error("%s", err)
        sys.exit(2)
    try:
        params = load_params(args.params)
    except ParamsError as err:
        log.error("invalid parameters: %s", err)
        sys.exit(2)
    try:
        main(args, params)
    except StageError as err:
        log.error("%s", err)
        sys.exit(1)
    except OSError as err:  # read-only or missing folders, a full disk, a vanished input
        log.error("%s", describe_os_error(err))
        sys.exit(1)


def pin_cpu_threads() -> int:
    """Give the stage's numeric libraries (BLAS, OpenMP, torch) one CPU thread count, whoever
    started it, and return it. Snakemake sets OMP_NUM_THREADS to a job's threads (1), DVC leaves
    it unset, and a sum split over another number of threads rounds differently: the two
    executors would write different bytes. ``BARGAN_CPU_THREADS`` sets the count (default:
    every CPU of the machine)."""
    value = os.environ.get(CPU_THREADS_ENV, "").strip()
    try:
        threads = int(value) if value else (os.cpu_count() or 1)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{CPU_THREADS_ENV}={value!r}: expected a whole number of threads >= 1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return threads


def describe_os_error(err: OSError) -> str:
    """One line naming the file and the reason, with what to do when the disk is full."""
    where = err.filename if err.filename is not None else "<unknown file>"
    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason += (
            " (the disk is full or a file-size limit was reached; free space and run the "
            "stage again: no output was left half-written)"
        )
    return f"{where}: {reason}"


def add_per_track_arguments(p: argparse.ArgumentParser, verb: str) -> None:
    """``--audio-dir``, ``--cache-dir`` and ``--only`` of a stage whose work is one cached job
    per track (:func:`pipeline.cache.cached_track`): ``--only`` is Snakemake's per-track job."""
    p.add_argument("--audio-dir", type=Path, required=True, help="the recordings")
    p.add_argument("--cache-dir", type=Path, default=None, help="per-track result cache")
    p.add_argument(
        "--only",
        help=f"{verb} this one track (path under --audio-dir) into the cache and write nothing "
        "else; Snakemake's per-track jobs use it",
    )


def require_cache_dir(cache_dir: Path | None) -> Path:
    """A per-track job (``--only``) writes only to the cache: it needs one."""
    if cache_dir is None:
        raise StageError("--only needs --cache-dir: the per-track result goes to the cache")
    return cache_dir


class StageError(RuntimeError):
    """A stage cannot produce its outputs (e.g. nothing usable remains)."""


def track_id(path: Path, root: Path) -> str:
    """A file-name-safe, unique and reversible id for a recording: its path under the corpus
    root, percent-encoded ('techno/x 1.wav' -> 'techno%2Fx%201.wav'; ``urllib.parse.unquote``
    gives the path back). Replacing '/' alone would give 'a/b.wav' and 'a__b.wav' one id."""
    return quote(path.relative_to(root).as_posix(), safe="")


# the columns naming a recording in tracks.csv and bars.csv, read back as the text they are:
# a class folder "01" is not the number 1, and "0" is not a missing class
SOURCE_DTYPES = {"track": str, "path": str, "label": str, "published_split": str}


def class_name(path: Path, root: Path) -> str:
    """The class label of a recording is its top-level folder under the corpus root."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""


def parallel_map(
    function: Callable[[T], R], items: Sequence[T], jobs: int, desc: str
) -> Iterable[R]:
    """Map over items with a process pool (or in-process for one job), in order, with progress.
    An unexpected error says which item it came from, even from a worker process."""
    disable = not sys.stderr.isatty()
    function = _NamingItem(function)
    if jobs <= 1 or len(items) <= 1:
        yield from tqdm(map(function, items), total=len(items), desc=desc, disable=disable)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(function, items)
        yield from tqdm(results, total=len(items), desc=desc, disable=disable)


class _NamingItem:
    """``function`` whose exceptions carry a note naming the item (notes survive pickling)."""

    def __init__(self, function: Callable) -> None:
        self.function = function

    def __call__(self, item):
        try:
            return self.function(item)
        except Exception as err:
            err.add_note(f"while processing {_describe_item(item)}")
            raise


def _describe_item(item: Any) -> str:
    if isinstance(item, dict) and "path" in item:
        return str(item["path"])
    return str(item)
