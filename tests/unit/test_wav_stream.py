"""Writing a track piece by piece: a plain WAV when it fits (the same bytes as write_audio),
RF64 when a WAV's 32-bit sizes cannot hold it, nothing left behind when it fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.io import read_audio, write_audio
from pipeline.audio.wav_stream import container_for, wav_bytes, write_wav_stream

SR = 8000


def pieces(n: int, length: int, channels: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(-1.2, 1.2, (channels, length)).astype(np.float32) for _ in range(n)]


def test_a_track_that_fits_is_the_wav_write_audio_writes(tmp_path: Path):
    parts = pieces(5, 3000, 2)
    streamed = tmp_path / "streamed.wav"
    assert write_wav_stream(streamed, iter(parts), SR, 2, 15000) == "WAV"
    whole = tmp_path / "whole.wav"
    write_audio(whole, np.concatenate(parts, axis=1), SR)
    assert streamed.read_bytes() == whole.read_bytes()
    assert streamed.stat().st_size == wav_bytes(15000, 2)


def test_a_track_a_wav_cannot_hold_is_written_as_rf64(tmp_path: Path):
    parts = pieces(4, 2500, 1)
    limit = wav_bytes(10000, 1) + 1000  # a WAV limit this small stands in for 4 GiB
    assert container_for(10000, 1, limit) == "RF64"
    assert container_for(10000, 1) == "WAV"
    assert container_for(2**31, 1) == "RF64"  # 4 GiB of 16-bit samples
    out = tmp_path / "long.wav"
    assert write_wav_stream(out, iter(parts), SR, 1, 10000, limit=limit) == "RF64"
    assert out.read_bytes()[:4] == b"RF64"
    assert sf.info(str(out)).format == "RF64"
    audio, rate = read_audio(out)
    assert rate == SR and audio.shape == (1, 10000)
    expected = np.clip(np.concatenate(parts, axis=1), -1, 1)
    np.testing.assert_allclose(audio, expected, atol=1 / 32767)


def test_a_failure_leaves_no_file_and_an_old_one_untouched(tmp_path: Path):
    out = tmp_path / "track.wav"
    out.write_bytes(b"old")

    def failing():
        yield from pieces(2, 1000, 1)
        raise RuntimeError("the generator stopped")

    with pytest.raises(RuntimeError, match="the generator stopped"):
        write_wav_stream(out, failing(), SR, 1, 3000)
    with pytest.raises(RuntimeError, match="2000 frames were made, 3000 expected"):
        write_wav_stream(out, iter(pieces(2, 1000, 1)), SR, 1, 3000)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track.wav"]
