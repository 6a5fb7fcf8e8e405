from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio.io import AudioError, find_audio_files, read_audio, to_channels, write_audio
from pipeline.audio.resample import resample


def test_round_trip_and_channel_layout(tmp_path):
    audio = np.stack([np.linspace(-0.5, 0.5, 1000), np.zeros(1000)]).astype(np.float32)
    write_audio(tmp_path / "a.wav", audio, 22050)
    back, sr = read_audio(tmp_path / "a.wav")
    assert sr == 22050 and back.shape == (2, 1000)
    assert np.allclose(back, audio, atol=1 / 32767)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary left behind


@pytest.mark.parametrize(
    ("content", "reason"), [(b"", "empty file"), (b"RIFF1234WAVE" * 3, "unreadable")]
)
def test_bad_files_name_the_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        read_audio(path)
    assert str(path) in str(info.value)


def test_odd_rates_and_channel_counts(tmp_path):
    sf.write(tmp_path / "low.wav", np.zeros((800, 1)), 8000)
    sf.write(tmp_path / "six.flac", np.zeros((9600, 6)), 96000)
    sf.write(tmp_path / "too_slow.wav", np.zeros((100, 1)), 4000)
    assert read_audio(tmp_path / "low.wav")[0].shape == (1, 800)
    audio, sr = read_audio(tmp_path / "six.flac")
    assert audio.shape == (6, 9600) and sr == 96000
    with pytest.raises(AudioError, match="sample rate 4000"):
        read_audio(tmp_path / "too_slow.wav")


def test_find_audio_files_skips_hidden_and_other_files(tmp_path):
    for name in ["a.wav", "b.FLAC", "._a.wav", "notes.txt", "sub/c.aiff"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_audio_files(tmp_path)] == ["a.wav", "b.FLAC", "c.aiff"]


def test_to_channels():
    six = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert to_channels(six, 1).shape == (1, 2)
    assert np.allclose(to_channels(six, 2), [six[0::2].mean(0), six[1::2].mean(0)])
    assert to_channels(six[:1], 2).shape == (2, 2)


def test_resample_is_anti_aliased():
    sr = 44100
    t = np.arange(sr) / sr
    tone = np.sin(2 * np.pi * 15000 * t).astype(np.float32)  # above the 8 kHz Nyquist of 16 kHz
    out = resample(tone[None], sr, 16000)
    assert out.shape == (1, 16000)
    assert np.sqrt(np.mean(out**2)) < 0.01  # filtered, not folded back to 1 kHz
    low = resample(np.sin(2 * np.pi * 440 * t)[None].astype(np.float32), sr, 16000)
    assert 0.65 < np.sqrt(np.mean(low**2)) < 0.75
