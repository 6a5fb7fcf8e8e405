"""Every failure named, nothing lost: hostile corpora, bad overrides, bad params, failed writes.

The stage programs run as the executors run them (a subprocess each), on tiny corpora made
here. Tempi come from overrides.csv, so no beat tracker runs and each stage takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.audio.warp import load_warp_map
from tests.conftest import (
    REPO,
    make_track,
    run,
    tiny_params,
    tool_env,
    write_overrides,
    write_params,
)

pytestmark = pytest.mark.integration


def stage(root: Path, name: str, *args: str, preexec=None) -> subprocess.CompletedProcess:
    """``python -m pipeline.stages.<name> --params params.yaml ...`` in ``root``."""
    command = [sys.executable, "-m", f"pipeline.stages.{name}", "--params", "params.yaml", *args]
    return subprocess.run(
        command,
        cwd=root,
        env={**tool_env(REPO), "OMP_NUM_THREADS": "1"},  # this checkout's code
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec,
    )


def analyze(root: Path, corpus: str = "corpus", preexec=None) -> subprocess.CompletedProcess:
    return stage(root, "analyze", "--audio-dir", corpus, "--out-dir", "analysis", preexec=preexec)


def bars(root: Path, corpus: str = "corpus", preexec=None) -> subprocess.CompletedProcess:
    return stage(
        root,
        "bars",
        "--audio-dir",
        corpus,
        "--analysis-dir",
        "analysis",
        "--out-dir",
        "bars",
        preexec=preexec,
    )


def assert_named_failure(result: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 1 with one ERROR line naming each of ``names``, and no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with params.yaml (tiny) for running stage programs in."""
    write_params(tmp_path, tiny_params())
    return tmp_path


# --- 1. one id per recording ------------------------------------------------------------------
def test_paths_that_flatten_alike_keep_their_own_warp_maps_and_bars(project):
    corpus = project / "corpus"
    make_track(corpus / "techno/x.wav", 124, "techno", seed=1)
    make_track(corpus / "techno__x.wav", 100, "house", seed=2)
    write_overrides(corpus, {"techno/x.wav": 124, "techno__x.wav": 100})
    assert analyze(project).returncode == 0
    assert bars(project).returncode == 0

    tracks = pd.read_csv(project / "analysis/tracks.csv", keep_default_na=False)
    assert tracks.track.nunique() == 2
    for row in tracks.itertuples():
        assert unquote(row.track) == row.path  # reversible
        _, info = load_warp_map(project / "analysis/warp" / f"{row.track}.json")
        assert info["path"] == row.path
    manifest = pd.read_csv(project / "bars/bars.csv", keep_default_na=False)
    files = manifest.groupby("path").bars_file.unique()
    assert len(files) == 2 and set(files["techno/x.wav"]).isdisjoint(files["techno__x.wav"])
    assert set(manifest[manifest.path == "techno/x.wav"].label) == {"techno"}
    counts = manifest.groupby("path").size()
    # 5 bars at 124 BPM and 5 at 100 BPM; sharing one file would give one track's bars to both
    for path in ("techno/x.wav", "techno__x.wav"):
        with np.load(project / "bars" / files[path][0]) as packed:
            assert len(packed["bars"]) == counts[path]


# --- 5 and 8. overrides.csv ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("path,bpm,first_downbeat,meter\na.wav,fast,0,4\n", ["line 2", "bpm 'fast'"]),
        ("", ["empty file", "path,bpm,first_downbeat,meter"]),
        ("path,bpm,first_downbeat,meter\na.wav,inf,0,4\n", ["line 2", "not a finite number"]),
        ("path,bpm,first_downbeat,meter\na.wav,120,0,3.7\n", ["line 2", "meter 3.7"]),
        ("path,bpm,first_downbeat,meter\na.wav,120,0,4\na.wav,90,0,4\n", ["line 3", "second"]),
        ("path,bpm,meter\na.wav,120,4\n", ["missing columns", "first_downbeat"]),
        ("path,bpm,first_downbeat,meter\na.wav,0,0,4\n", ["line 2", "bpm 0 outside"]),
        ("path,bpm,first_downbeat,meter\n\n# by ear\n\na.wav,x,0,4\n", ["line 5", "bpm 'x'"]),
    ],
    ids=["text", "empty", "inf", "fractional-meter", "duplicate", "no-column", "zero", "blanks"],
)
def test_bad_overrides_are_named_by_line_and_column(project, content, named):
    corpus = project / "corpus"
    make_track(corpus / "a.wav", 120)
    (corpus / "overrides.csv").write_text(content)
    result = analyze(project)
    assert_named_failure(result, "overrides.csv", *named)
    assert not (project / "analysis/tracks.csv").exists()


# --- 8. what the corpus scan skips is listed, hidden folders are not the corpus ----------------
def test_dangling_links_folders_hidden_audio_and_truncated_files_are_reported(project):
    corpus = project / "corpus"
    make_track(corpus / "techno/good.wav", 120)
    make_track(corpus / ".trash/old.wav", 120)
    make_track(corpus / "techno/cut.wav", 120)
    data = (corpus / "techno/cut.wav").read_bytes()
    (corpus / "techno/cut.wav").write_bytes(data[: len(data) * 3 // 4])
    (corpus / "techno/folder.wav").mkdir()
    (corpus / "techno/gone.wav").symlink_to(corpus / "techno/nowhere.wav")
    write_overrides(corpus, {"techno/good.wav": 120, "techno/cut.wav": 120})
    result = analyze(project)
    assert result.returncode == 0, result.stderr

    tracks = pd.read_csv(project / "analysis/tracks.csv", keep_default_na=False)
    rows = {row.path: row for row in tracks.itertuples()}
    assert set(rows) == {
        "techno/good.wav",
        "techno/cut.wav",
        "techno/folder.wav",
        "techno/gone.wav",
    }
    assert rows["techno/folder.wav"].status == "rejected"
    assert "folder" in rows["techno/folder.wav"].reason
    assert rows["techno/gone.wav"].status == "rejected"
    assert "dangling link" in rows["techno/gone.wav"].reason
    assert rows["techno/cut.wav"].status == "ok"
    assert rows["techno/cut.wav"].warning.startswith("truncated")
    assert rows["techno/good.wav"].warning == ""
    assert "techno/cut.wav: truncated" in result.stderr
    assert "WARNING" in result.stderr and "techno/gone.wav" in result.stderr


# --- 9. when no bar survives the reasons are kept -------------------------------------------
def test_no_surviving_bar_still_writes_the_reasons(project):
    params = tiny_params()
    params["bars"].update(min_stretch=1.5, max_stretch=2.0)  # 120 -> bars.bpm: out of range
    write_params(project, params)
    corpus = project / "corpus"
    make_track(corpus / "a.wav", 120)
    write_overrides(corpus, {"a.wav": 120})
    assert analyze(project).returncode == 0
    result = bars(project)
    assert_named_failure(result, "no usable bars", "rejects.csv")
    rejects = pd.read_csv(project / "bars/rejects.csv")
    assert len(rejects) >= 1 and rejects.reason.str.contains("stretch").all()


# --- 12. outputs get the mode any new file would ----------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_follow_the_umask(project, umask):
    corpus = project / "corpus"
    make_track(corpus / "a.wav", 120)
    write_overrides(corpus, {"a.wav": 120})
    assert analyze(project, preexec=lambda: os.umask(umask)).returncode == 0
    assert bars(project, preexec=lambda: os.umask(umask)).returncode == 0
    outputs = [
        project / "analysis/tracks.csv",
        *(project / "analysis/warp").iterdir(),
        project / "bars/bars.csv",
        *(project / "bars/audio").iterdir(),
    ]
    assert {oct(path.stat().st_mode & 0o777) for path in outputs} == {oct(0o666 & ~umask)}


# --- write errors at the outputs ------------------------------------------------------------
def _limit_file_size(limit: int):
    """A full disk, as far as the writer can tell: writes past ``limit`` bytes fail (EFBIG)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _leftover_temporaries(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".tmp" in p.name]


def test_a_full_disk_at_an_output_is_named_and_leaves_no_partial_file(project):
    corpus = project / "corpus"
    make_track(corpus / "a.wav", 120)
    write_overrides(corpus, {"a.wav": 120})
    result = analyze(project, preexec=_limit_file_size(256))
    assert_named_failure(result, "analysis/warp/a.wav.json", "File too large", "free space")
    assert not _leftover_temporaries(project)
    assert not (project / "analysis/warp/a.wav.json").exists()


def test_a_full_disk_under_rubber_band_is_named(project):
    corpus = project / "corpus"
    make_track(corpus / "a.wav", 120)
    write_overrides(corpus, {"a.wav": 120})
    assert analyze(project).returncode == 0
    result = bars(project, preexec=_limit_file_size(2048))
    assert_named_failure(result, "Rubber Band", "scratch audio", "full disk")
    assert not (project / "bars/bars.csv").exists()


@pytest.mark.parametrize("output", ["analysis/tracks.csv", "analysis/warp/a.wav.json"])
def test_an_unwritable_output_is_named(project, output):
    corpus = project / "corpus"
    make_track(corpus / "a.wav", 120)
    write_overrides(corpus, {"a.wav": 120})
    (project / output).mkdir(parents=True)  # a folder where the file must go
    assert_named_failure(analyze(project), output, "Is a directory")


def test_a_missing_corpus_folder_is_named(project):
    assert_named_failure(analyze(project, corpus="no-such-folder"), "no-such-folder")


# --- a hand re-run of bars replaces its folder whole, or leaves it as it was ------------------
def _two_recordings_cut(project: Path) -> Path:
    corpus = project / "corpus"
    make_track(corpus / "a.wav", 120, seed=1)
    make_track(corpus / "b.wav", 100, seed=2)
    write_overrides(corpus, {"a.wav": 120, "b.wav": 100})
    assert analyze(project).returncode == 0
    assert bars(project).returncode == 0
    return corpus


def test_a_bars_run_that_stops_part_way_leaves_the_previous_result_whole(project):
    corpus = _two_recordings_cut(project)
    before = _digests(project / "bars")
    params = tiny_params()
    params["bars"]["bpm"] = 125  # every bar of a.wav, rendered first, changes
    write_params(project, params)
    (corpus / "b.wav").unlink()  # gone after analysis: the run stops at it
    assert_named_failure(bars(project), "corpus/b.wav", "No such file")
    assert _digests(project / "bars") == before  # no new bars beside the old bars.csv
    assert not _leftover_temporaries(project)


def test_a_bars_rerun_keeps_no_bars_of_a_recording_gone_from_the_corpus(project):
    corpus = _two_recordings_cut(project)
    (corpus / "b.wav").unlink()
    write_overrides(corpus, {"a.wav": 120})
    assert analyze(project).returncode == 0
    assert bars(project).returncode == 0
    assert set(pd.read_csv(project / "bars/bars.csv").path) == {"a.wav"}
    assert [p.name for p in (project / "bars/audio").iterdir()] == ["a.wav.npz"]
    assert not _leftover_temporaries(project)


# --- 6 and 7. the executors: a corpus path with a space; bad params keep old outputs ----------
def _project_with_spaced_corpus(tiny_project: Path) -> Path:
    corpus = tiny_project / "data/raw/my corpus"
    make_track(corpus / "techno/a b.wav", 124, "techno", seed=1)
    make_track(corpus / "house/c.wav", 118, "house", seed=2)
    write_overrides(corpus, {"techno/a b.wav": 124, "house/c.wav": 118})
    params = tiny_params()
    params["data"]["audio_dir"] = "data/raw/my corpus"
    write_params(tiny_project, params)
    return tiny_project


def test_dvc_takes_a_corpus_path_with_a_space_and_a_bad_param_keeps_the_outputs(tiny_project):
    root = _project_with_spaced_corpus(tiny_project)
    run(["dvc", "repro", "bars"], root)
    manifest = root / "data/bars/bars.csv"
    assert set(pd.read_csv(manifest).path) == {"techno/a b.wav", "house/c.wav"}
    before = manifest.read_bytes()

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["bars"]["sample_rate"] = 4000  # below the schema's minimum
    write_params(root, params)
    result = run(["dvc", "repro", "bars"], root, check=False)
    assert result.returncode != 0
    assert "bars.sample_rate" in result.stdout + result.stderr
    assert manifest.read_bytes() == before  # DVC never reached the bars stage
    assert (root / "data/interim/analysis/tracks.csv").is_file()


def test_snakemake_takes_a_corpus_path_with_a_space(tiny_project):
    root = _project_with_spaced_corpus(tiny_project)
    run(["snakemake", "--cores", "1", "data/bars"], root)
    assert set(pd.read_csv(root / "data/bars/bars.csv").path) == {"techno/a b.wav", "house/c.wav"}


@pytest.mark.parametrize("audio_dir", ['data/"x"', "data/$HOME", "-data", "data/a\nb"])
def test_a_corpus_path_no_shell_can_carry_is_refused_naming_the_key(project, audio_dir):
    params = tiny_params()
    params["data"]["audio_dir"] = audio_dir
    write_params(project, params)
    result = stage(project, "check_params", "--out", "params.valid")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data.audio_dir" in result.stderr
    assert not (project / "params.valid").exists()


# --- a kill point: SIGKILL mid-stage, then the executor's re-run gives the clean result -------
def _wait_for_program(module: str, root: Path, timeout: float = 60.0) -> int:
    """PID of ``python -m <module>`` running in ``root``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if module.encode() in cmdline and cwd == str(root):
                return int(proc.name)
        time.sleep(0.05)
    raise AssertionError(f"{module} did not start in {root}")


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_stage_killed_midway_is_redone_whole_by_dvc(tiny_project):
    root = _project_with_spaced_corpus(tiny_project)
    run(["dvc", "repro", "analyze"], root)
    repro = subprocess.Popen(
        ["dvc", "repro", "bars"],
        cwd=root,
        env=tool_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.kill(_wait_for_program("pipeline.stages.bars", root), signal.SIGKILL)
    output, _ = repro.communicate(timeout=120)
    assert repro.returncode != 0, output

    run(["dvc", "repro", "bars"], root)
    resumed = _digests(root / "data/bars")
    assert not [name for name in resumed if ".tmp" in name]  # no temporary survived the kill
    run(["dvc", "repro", "--force", "bars"], root)
    assert _digests(root / "data/bars") == resumed
