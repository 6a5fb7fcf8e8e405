"""Hand-written tables beside a corpus name the line an editor shows, whatever blank and
comment lines come before it."""

from __future__ import annotations

import pytest

from pipeline.data.splits import PublishedSplitError, read_published_splits
from pipeline.stages.analyze import read_overrides
from pipeline.stages.common import StageError

HEADER = "path,bpm,first_downbeat,meter"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (f"{HEADER}\n\na.wav,120,0,4\n\nb.wav,fast,0,4\n", 5),
        (f"{HEADER}\n# tapped by ear\n#\na.wav,120,0,4\nb.wav,fast,0,4\n", 5),
        (f"# tempo per file\n\n{HEADER}\n\n# next\nb.wav,fast,0,4\n", 6),
        (f"{HEADER}\r\n\r\n\r\nb.wav,fast,0,4\r\n", 4),  # Windows line ends
        (f'{HEADER}\n"a\nb.wav",120,0,4\n,,,\nb.wav,fast,0,4\n', 5),  # a quoted line break
    ],
    ids=["blank", "comments", "before-header", "crlf", "multiline-cell"],
)
def test_an_override_error_names_the_line_in_the_file(tmp_path, content, line):
    (tmp_path / "overrides.csv").write_bytes(content.encode())
    with pytest.raises(StageError, match=rf"overrides.csv: line {line}: bpm 'fast' is not a"):
        read_overrides(tmp_path)


def test_blank_and_comment_lines_are_not_overrides(tmp_path):
    (tmp_path / "overrides.csv").write_text(f"\ufeff{HEADER}\n\n# by ear\na.wav,120,0.5,4\n\n")
    overrides = read_overrides(tmp_path)
    assert list(overrides) == ["a.wav"]
    assert overrides["a.wav"].bpm == 120 and overrides["a.wav"].first_downbeat == 0.5


def test_a_row_longer_than_the_header_is_named(tmp_path):
    (tmp_path / "overrides.csv").write_text(f"{HEADER}\n\na.wav,120,0,4,extra\n")
    with pytest.raises(StageError, match=r"overrides.csv: line 3: 5 cells where the header"):
        read_overrides(tmp_path)


def test_a_splits_error_names_the_line_in_the_file(tmp_path):
    (tmp_path / "splits.csv").write_text("path,split\n\na.wav,train\n# held out\n\nb.wav,dev\n")
    with pytest.raises(PublishedSplitError, match=r"splits.csv: line 6: split 'dev' is not one"):
        read_published_splits(tmp_path)
