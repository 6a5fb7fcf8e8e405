"""The acid/smpl tags as other readers see them: the test's own RIFF reader and libsndfile's
header log, on files whose data chunk has an odd size (a pad byte must follow it)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.io import encode_wav
from pipeline.export.riff import LoopTags, add_chunks, loop_chunks, whole_bar_loop
from pipeline.export.wav import write_bars_wav, write_tagged_wav
from tests.wav_tags import read_wav_tags


def test_odd_sized_data_is_padded_and_libsndfile_reads_the_tags(tmp_path):
    audio = np.linspace(-0.5, 0.5, 3 * 4001, dtype=np.float32)[None]  # 24-bit mono: odd bytes
    path = write_bars_wav(tmp_path / "x.wav", audio, 11025, 4001, 132.3, 3, bits=24)
    tags = read_wav_tags(path)
    assert tags.chunk_ids[-2:] == ["acid", "smpl"] and tags.frames == 3 * 4001
    assert tags.acid["beats"] == 9 and tags.acid["meter"] == (3, 4)
    assert tags.acid["tempo"] == pytest.approx(132.3, abs=1e-4)
    assert tags.smpl["loops"][0]["end"] == 3 * 4001 - 1
    assert tags.smpl["period_ns"] == 90703  # 1e9 / 11025, rounded
    data, rate = sf.read(path, dtype="float32")
    assert rate == 11025 and np.allclose(data, audio[0], atol=1e-6)
    log = sf.info(str(path)).extra_info  # libsndfile's own parse of the chunks
    assert "Beats     : 9" in log and "Meter     : 3/4" in log and "Tempo     : 132.3" in log
    assert "Loop" in log and "StretchOn" in log and "RootNoteInvalid" in log
    assert "Loop Count   : 1" in log and "End : 12002" in log


def test_tags_are_replaced_not_repeated():
    wav = encode_wav(np.zeros((2, 100), np.float32), 8000)
    first = add_chunks(wav, loop_chunks(whole_bar_loop(100, 1, 8000, 120.0, 4)))
    second = add_chunks(first, loop_chunks(whole_bar_loop(100, 2, 8000, 90.0, 2)))
    assert second.count(b"acid") == 1 and second.count(b"smpl") == 1
    assert len(second) == len(first)


def test_bad_tags_are_refused(tmp_path):
    with pytest.raises(ValueError, match="tempo must be > 0"):
        LoopTags(0.0, 4, 4, 8000, 0, 99)
    with pytest.raises(ValueError, match="cannot hold 3 bar"):
        whole_bar_loop(2, 3, 8000, 120.0, 4)
    with pytest.raises(ValueError, match="past the audio"):
        write_tagged_wav(tmp_path / "x.wav", np.zeros((1, 10)), whole_bar_loop(20, 1, 8000, 1, 1))
    with pytest.raises(ValueError, match="not a whole number"):
        write_bars_wav(tmp_path / "x.wav", np.zeros((1, 10)), 8000, 3, 120.0, 4)
    with pytest.raises(ValueError, match="bit depth 8"):
        encode_wav(np.zeros((1, 10)), 8000, bits=8)
    assert not (tmp_path / "x.wav").exists()
