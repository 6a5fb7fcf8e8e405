"""A write error inside a staging folder names the file where the user will look for it."""

from __future__ import annotations

import errno
from pathlib import Path

from pipeline.fileio import in_place_of, staging_dir


def test_an_error_in_the_staging_folder_names_the_output_folder(tmp_path):
    out_dir = tmp_path / "data/bars"
    staging = staging_dir(out_dir)
    err = OSError(errno.ENOSPC, "No space left on device", str(staging / "audio/a.wav.npz"))
    named = in_place_of(err, staging, out_dir)
    assert isinstance(named, OSError) and named.errno == errno.ENOSPC
    assert named.filename == str(out_dir / "audio/a.wav.npz")
    elsewhere = FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "corpus/b.wav"))
    assert in_place_of(elsewhere, staging, out_dir) is elsewhere
    assert Path(staging).parent == out_dir.parent
