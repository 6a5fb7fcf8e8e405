from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio.analysis import AnalyzeOptions, Override, analyze_track
from pipeline.audio.io import AudioError, write_audio
from pipeline.cache import ResultCache, cached_track, make_key
from pipeline.data.synth import SynthTrackSpec, render_track


@pytest.fixture(scope="module")
def techno(tmp_path_factory):
    path = tmp_path_factory.mktemp("a") / "techno.wav"
    audio, downbeats, _ = render_track(SynthTrackSpec("techno", 128, 6, lead_in_seconds=0.7), 22050)
    write_audio(path, audio, 22050)
    return path, downbeats


def test_librosa_fallback_finds_tempo_and_downbeats(techno):
    path, downbeats = techno
    warp, info = analyze_track(path, AnalyzeOptions(method="librosa", meters=(4,)))
    assert info["method"] == "librosa"
    assert info["bpm"] == pytest.approx(128, rel=0.02)
    found = warp.bar_starts(info["duration"])
    error = np.abs(found[:, None] - downbeats[None, :]).min(axis=1)
    assert np.median(error) < 0.03


def test_override_wins_over_trackers(techno):
    path, _ = techno
    warp, info = analyze_track(path, AnalyzeOptions(), Override(100.0, 0.25, 3))
    assert info["method"] == "override" and info["meter"] == 3
    assert warp.bar_starts(info["duration"])[:2] == pytest.approx([0.25, 0.25 + 1.8])


def test_silent_track_is_rejected(tmp_path):
    path = tmp_path / "quiet.wav"
    write_audio(path, np.zeros((1, 8000 * 3), np.float32), 8000)
    with pytest.raises(AudioError, match="silent"):
        analyze_track(path, AnalyzeOptions())


def test_result_cache_round_trip_and_disabled(tmp_path):
    cache = ResultCache(tmp_path, "analyze")
    key = make_key("audio-digest", {"a": 1})
    assert cache.get_json(key) is None
    cache.put_json(key, {"status": "ok"})
    assert cache.get_json(key) == {"status": "ok"}
    assert make_key("audio-digest", {"a": 2}) != key
    cache.path(key, "json").write_text("{broken")
    assert cache.get_json(key) is None  # damaged entries are recomputed, not trusted
    assert ResultCache(None, "analyze").get_json(key) is None


def test_cached_track_computes_once_and_recomputes_an_incomplete_entry(tmp_path):
    """The per-track pattern of analyze and bars: JSON result plus optional arrays."""
    cache, key, calls = ResultCache(tmp_path, "bars"), make_key("track"), []

    def compute():
        calls.append(1)
        return {"rows": [1, 2]}, {"bars": np.arange(4, dtype=np.int16)}

    first = cached_track(cache, key, compute, arrays=True)
    again = cached_track(cache, key, compute, arrays=True)
    assert (first[2], again[2], len(calls)) == (False, True, 1)
    assert again[0] == {"rows": [1, 2]} and np.array_equal(again[1]["bars"], np.arange(4))
    cache.path(key, "npz").write_bytes(b"damaged")
    assert cached_track(cache, key, compute, arrays=True)[2] is False and len(calls) == 2
    with pytest.raises(ValueError):  # a failure stores nothing
        cached_track(cache, make_key("other"), lambda: (_ for _ in ()).throw(ValueError("x")))
    assert cache.get_json(make_key("other")) is None
    assert cached_track(ResultCache(None, "x"), key, compute)[2] is False  # disabled
