"""``bargan generate``: checkpoint in, wav out, at a tempo other than the training tempo, with
seams that do not click, and clear errors for bad checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal.windows import hann

from pipeline.audio.io import read_audio
from pipeline.cli import main
from pipeline.grid import bar_samples_at
from pipeline.models.generator_file import atomic_save, build_generator, save_generator
from pipeline.train import TrainConfig, train_gan
from tests.conftest import REPO, run, seam_clicks_db, tiny_train_config
from tests.wav_tags import read_wav_tags

pytestmark = pytest.mark.integration

SR, BAR = 8000, 16000  # training bars: 2 s at 8 kHz = 4 beats at 120 BPM
CLICK_THRESHOLD_DB = 5.0  # seam high-band energy at most about 3x the audio around it


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """generator.pt of a 2-step training run on random data."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = tiny_train_config(sample_rate=SR, length=BAR)
        data = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 1, BAR)).astype(np.float32)
        result = train_gan(data, None, config, tmp_path_factory.mktemp("run"))
    finally:
        torch.set_num_threads(n)
    assert result.generator_path is not None
    return result.generator_path


@pytest.fixture(scope="module")
def smooth(trained: Path) -> Path:
    """The trained generator with its output layer made a smooth (Hann) interpolator.

    After 2 steps the generator's bars are broadband noise, in which no seam stands out, cut or
    not. Bars with mostly low-frequency content that do not meet at their edges (like real
    music) are what make a hard cut click; this turns the same checkpoint into such a
    generator, so the click threshold is shown to catch a hard cut of its bars.
    """
    obj = torch.load(trained, map_location="cpu", weights_only=True)
    state = obj["state_dict"]
    layers = [k for k in state if k.startswith("net.") and k.endswith(".weight")]
    last = max(layers, key=lambda k: int(k.split(".")[1]))
    weight = state[last]  # ConvTranspose1d [in, channels, kernel]
    signs = torch.randint(0, 2, (*weight.shape[:2], 1), generator=torch.Generator().manual_seed(0))
    state[last] = (signs * 2 - 1) * torch.tensor(hann(weight.shape[2]), dtype=weight.dtype) * 50
    return atomic_save(obj, trained.parent / "smooth-generator.pt")


def test_generate_writes_a_16_bar_track_at_another_tempo_without_clicks(smooth, tmp_path):
    out = tmp_path / "track.wav"
    cmd = [sys.executable, "-m", "pipeline.cli", "generate", "--checkpoint", str(smooth)]
    result = run([*cmd, "--out", str(out), "--bars", "16", "--bpm", "100", "--seed", "3"], REPO)
    assert "16 bars at 100 BPM (generator trained at 120 BPM" in result.stdout

    audio, sr = read_audio(out)
    new_bar = bar_samples_at(SR, 100, 4)
    assert new_bar == 19200 and sr == SR
    assert audio.shape == (1, 16 * new_bar)
    assert np.abs(audio).max() > 0.05  # real audio, not silence
    # tagged as one loop of 16 bars at the new tempo, as a DAW reads it
    tags = read_wav_tags(out)
    assert tags.acid["tempo"] == 100 and tags.acid["beats"] == 64 and tags.acid["stretch"]
    assert tags.acid["meter"] == (4, 4)
    assert [(loop["start"], loop["end"]) for loop in tags.smpl["loops"]] == [(0, 16 * new_bar - 1)]
    crossfaded = seam_clicks_db(audio, sr, new_bar)
    assert crossfaded.max() < CLICK_THRESHOLD_DB, crossfaded

    # The same bars joined with hard cuts (same seed, no crossfade) do click.
    hard_out = tmp_path / "hard.wav"
    args = ["generate", "--checkpoint", str(smooth), "--out", str(hard_out), "--bars", "16"]
    assert main([*args, "--bpm", "100", "--seed", "3", "--crossfade-ms", "0"]) == 0
    hard_audio, _ = read_audio(hard_out)
    assert hard_audio.shape == audio.shape
    hard = seam_clicks_db(hard_audio, sr, new_bar)
    assert (hard > CLICK_THRESHOLD_DB).sum() >= 3 and hard.max() > CLICK_THRESHOLD_DB + 10, hard


def test_generate_at_the_training_tempo_and_deterministic(trained, tmp_path):
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for path in paths:
        args = ["generate", "--checkpoint", str(trained), "--out", str(path), "--bars", "3"]
        assert main([*args, "--interpolation", "linear", "--seed", "5"]) == 0
    first, sr = read_audio(paths[0])
    assert sr == SR and first.shape == (1, 3 * BAR)
    np.testing.assert_array_equal(first, read_audio(paths[1])[0])


def test_generate_picks_a_class_by_name_or_index(tmp_path):
    config = TrainConfig(sample_rate=SR, length=4000, latent_dim=8, model_dim=4, num_classes=3)
    torch.manual_seed(0)
    models = tmp_path / "data" / "models"
    checkpoint = save_generator(models / "generator.pt", build_generator(config), config)
    splits = tmp_path / "data" / "splits"
    splits.mkdir(parents=True)
    (splits / "info.json").write_text(json.dumps({"classes": ["breakbeat", "house", "techno"]}))

    def generate(name: str, *extra: str) -> int:
        args = ["generate", "--checkpoint", str(checkpoint), "--out", str(tmp_path / name)]
        return main([*args, "--bars", "2", "--beats-per-bar", "1", *extra])

    assert generate("by_name.wav", "--class", "house") == 0
    assert generate("by_index.wav", "--class", "1") == 0
    assert generate("other.wav", "--class", "0") == 0
    by_name = read_audio(tmp_path / "by_name.wav")[0]
    np.testing.assert_array_equal(by_name, read_audio(tmp_path / "by_index.wav")[0])
    assert not np.array_equal(by_name, read_audio(tmp_path / "other.wav")[0])


def test_generate_errors_name_the_problem(trained, tmp_path, capsys):
    def error(*args: str) -> str:
        assert main(["generate", "--out", str(tmp_path / "x.wav"), *args]) == 2
        return capsys.readouterr().err

    missing = tmp_path / "nope" / "generator.pt"
    assert f"checkpoint {missing} not found" in error("--checkpoint", str(missing))
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    assert f"{junk} is not a bargan generator file" in error("--checkpoint", str(junk))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    assert f"{other} is not a bargan generator file" in error("--checkpoint", str(other))
    training = trained.parent / "checkpoint.pt"
    assert "training checkpoint, not a generator file" in error("--checkpoint", str(training))
    assert "unconditional generator" in error("--checkpoint", str(trained), "--class", "1")
    assert "--bars must be at least 1" in error("--checkpoint", str(trained), "--bars", "0")
    assert not (tmp_path / "x.wav").exists()


def test_a_truncated_generator_file_is_one_line_naming_it(trained, tmp_path, capsys):
    truncated = tmp_path / "generator.pt"
    truncated.write_bytes(trained.read_bytes()[:2000])
    args = ["generate", "--checkpoint", str(truncated), "--out", str(tmp_path / "x.wav")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{truncated} is not a bargan generator file, or a damaged one" in err
    assert "truncated or corrupt file (PytorchStreamReader failed" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_says_so(trained, tmp_path, capsys):
    args = ["generate", "--checkpoint", str(trained), "--out", str(tmp_path / "x.wav")]
    assert main([*args, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bargan generate: error: --device cuda: CUDA is not available")
    assert err.count("\n") == 1 and "generator file" not in err
    assert main([*args, "--device", "nonsense"]) == 2
    assert "--device nonsense: not a torch device" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_generator_metadata_is_stored_and_read(tmp_path, capsys):
    from pipeline.models.generator_file import copy_generator, generator_metadata, load

    config = tiny_train_config(length=12000, steps=1)
    data = np.random.default_rng(0).normal(0, 0.1, (8, 1, 12000)).astype(np.float32)
    result = train_gan(data, None, config, tmp_path / "run")
    assert generator_metadata(result.generator_path) == {}
    out = copy_generator(
        result.generator_path,
        tmp_path / "generator.pt",
        {"bpm": 160.0, "beats_per_bar": 4, "classes": []},
    )
    assert generator_metadata(out)["bpm"] == 160.0
    load(out)  # still a valid generator file
    # 12000 samples at 8 kHz are 4 beats at 160 BPM: the CLI takes beats_per_bar from the file
    code = main(
        ["generate", "--checkpoint", str(out), "--out", str(tmp_path / "t.wav"), "--bars", "2"]
    )
    assert code == 0
    assert "160 BPM, 4 beats per bar" in capsys.readouterr().out


# --- long tracks: streamed to disk --------------------------------------------------------------
PEAK_RSS = "peak-rss-kib"
MEASURED = (
    "import resource, sys\n"
    "from pipeline.cli import main\n"
    "code = main(sys.argv[1:])\n"
    f"print('{PEAK_RSS}', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def long_bars(tmp_path_factory) -> Path:
    """An (untrained) generator of 2 s bars at 16 kHz, cheap enough to make thousands."""
    config = TrainConfig(sample_rate=16000, length=32000, latent_dim=8, model_dim=2)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("long") / "generator.pt"
    return save_generator(path, build_generator(config), config)


def generate_measured(checkpoint: Path, out: Path, bars: int):
    """``bargan generate`` in its own process: the result and the process's peak RSS in MiB."""
    args = ["generate", "--checkpoint", str(checkpoint), "--out", str(out), "--bars", str(bars)]
    result = run([sys.executable, "-c", MEASURED, *args], REPO)
    line = next(x for x in result.stdout.splitlines() if x.startswith(PEAK_RSS))
    return result, int(line.split()[1]) / 1024


def test_a_long_track_is_streamed_to_disk_with_its_size_first_and_progress(long_bars, tmp_path):
    short, short_peak = generate_measured(long_bars, tmp_path / "short.wav", 64)
    out = tmp_path / "long.wav"
    long, long_peak = generate_measured(long_bars, out, 2000)
    # 2000 bars are 64 million samples: 244 MiB as float32, which one copy of the whole track
    # in memory would add; made a piece at a time, the peak stays where 64 bars put it
    assert long_peak - short_peak < 60, (short_peak, long_peak)
    assert sf.info(str(out)).frames == 2000 * 32000
    tags = read_wav_tags(out)  # streamed, then tagged in place: 2000 bars of 4 beats at 120
    assert (tags.frames, tags.acid["beats"], tags.acid["tempo"]) == (2000 * 32000, 8000, 120)
    assert tags.smpl["loops"][0]["end"] == 2000 * 32000 - 1
    lines = long.stdout.splitlines()
    size = 44 + 2000 * 32000 * 2
    assert lines[0] == f"writing {out}: 2000 bars, 1 h 7 min, {size / 2**20:.1f} MiB"
    assert lines[1].startswith(f"wrote {out}: 2000 bars at 120 BPM")
    assert "2000/2000" in long.stderr  # the progress bar, on stderr
    assert short.stdout.startswith(f"writing {tmp_path / 'short.wav'}: 64 bars, 2 min,")


def test_a_track_larger_than_a_wav_is_refused_in_one_line_unless_rf64(long_bars, tmp_path, capsys):
    out = tmp_path / "long.wav"
    args = ["generate", "--checkpoint", str(long_bars), "--out", str(out)]
    assert main([*args, "--bars", "100000"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "bargan generate: error: --bars 100000: the track would take 6.0 GiB, more than a WAV "
        "file can hold (4 GiB); use fewer --bars, or --rf64 to write it as RF64\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_track_larger_than_the_free_space_is_refused_in_one_line(long_bars, tmp_path, capsys):
    out = tmp_path / "huge.wav"
    args = ["generate", "--checkpoint", str(long_bars), "--out", str(out), "--rf64"]
    assert main([*args, "--bars", str(10**10)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    size = (44 + 10**10 * 32000 * 2) / 2**40
    assert err.startswith(
        f"bargan generate: error: --out {out}: 10000000000 bars need {size:.1f} TiB"
    )
    assert "free there; use fewer --bars or another folder" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
