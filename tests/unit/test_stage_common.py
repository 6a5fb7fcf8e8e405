"""The stage runner's shared parts: ids, error naming, the process pool."""

from __future__ import annotations

import errno
from pathlib import Path
from urllib.parse import unquote

import pytest

from pipeline.stages.common import describe_os_error, parallel_map, track_id


@pytest.mark.parametrize(
    "relative", ["techno/x.wav", "techno__x.wav", "a b/%41 #?.wav", "ä/ü.flac", "x"]
)
def test_track_ids_are_file_names_that_give_the_path_back(relative):
    root = Path("/corpus")
    track = track_id(root / relative, root)
    assert "/" not in track and unquote(track) == relative


def test_flattened_lookalikes_get_different_ids():
    root = Path("/corpus")
    assert track_id(root / "techno/x.wav", root) != track_id(root / "techno__x.wav", root)


def _fails_on_two(x: int) -> int:
    if x == 2:
        raise ValueError("bad value")
    return x


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_error_in_a_worker_names_its_item(jobs):
    with pytest.raises(ValueError, match="bad value") as caught:
        list(parallel_map(_fails_on_two, [1, 2, 3], jobs, "test"))
    assert caught.value.__notes__ == ["while processing 2"]


def test_a_full_disk_is_one_line_with_the_file_and_what_to_do():
    message = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "out/x.npz"))
    assert message.startswith("out/x.npz: No space left on device")
    assert "free space" in message and "\n" not in message
    assert describe_os_error(PermissionError(13, "Permission denied", "a.csv")) == (
        "a.csv: Permission denied"
    )
