"""Shared test helpers: tiny projects copied to a temporary folder, run with the real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml

if TYPE_CHECKING:
    from pipeline.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
ASD_FIXTURES = REPO.parent / "shared" / "fixtures" / "asd"
# Outside CI a checkout may lack ../shared; in CI (CI=true) missing fixtures must fail, not skip.
requires_asd_fixtures = pytest.mark.skipif(
    not ASD_FIXTURES.is_dir() and not os.environ.get("CI"),
    reason=f"shared .asd fixtures not found at {ASD_FIXTURES}",
)
PROJECT_FILES = (
    "pipeline",
    "workflow",
    "datasets",
    "dvc.yaml",
    "Snakefile",
    "params.yaml",
    "requirements.lock",  # the environment fingerprint's lock digest
    "requirements-build.lock",
    ".dvcignore",
    ".gitignore",
)


def tiny_params() -> dict:
    """params.yaml scaled down so the whole graph runs in seconds on a CPU."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["demo"].update(
        styles=["techno", "house", "breakbeat"],
        tracks_per_style=1,
        bars_per_track=5,
        bpm_range=[110, 140],
        sample_rate=22050,
    )
    params["analyze"].update(jobs=1)
    params["bars"].update(sample_rate=8000, jobs=1)
    params["split"].update(valid_fraction=0.34, test_fraction=0.0)
    params["train"].update(
        model_dim=4,
        batch_size=4,
        steps=3,
        n_critic=1,
        checkpoint_every=2,
        log_every=1,
        latent_dim=8,
        device="cpu",
        preview_every=2,
        # about two clusters per class, as the default makes at corpus scale (self-conditioning)
        bars_per_cluster=2,
    )
    # One Griffin-Lim iteration instead of PGHI, whose heap integration (Python) costs 0.1 s a
    # bar here and was a third of every tiny run; tests/unit/test_pghi.py, the metric ladder's
    # resynthesised rung and the ONNX test run PGHI.
    params["train"]["model"]["specgan"].update(phase="griffin-lim", griffin_lim_iters=1)
    params["sample"].update(
        n_bars=3, score_bars=6, interpolation_bars=4, interpolation_keyframes=2, loop_repeats=2
    )
    # Timing synthesis is evaluate's slowest part at this size: one small batch, timed once.
    params["evaluate"].update(rtf_batch_sizes=[1, 2], rtf_repeats=1)
    return params


def tiny_train_config(**overrides) -> TrainConfig:
    """A TrainConfig that trains in about a second on a CPU; keyword arguments override it."""
    from pipeline.train.config import TrainConfig

    base = dict(
        sample_rate=8000,
        length=4096,
        channels=1,
        latent_dim=8,
        model_dim=4,
        batch_size=4,
        steps=2,
        n_critic=1,
        checkpoint_every=1,
        log_every=1,
        device="cpu",
    )
    return TrainConfig(**{**base, **overrides})


def seam_clicks_db(audio: np.ndarray, sample_rate: int, bar_samples: int) -> np.ndarray:
    """Click of every bar seam ``k * bar_samples`` of ``audio`` (``[channels, n * bar_samples]``
    or 1-D), in dB, as the pipeline's seam metric (:func:`pipeline.metrics.seams.seam_click_db`)
    measures it.

    That metric hears the seam of a looped bar, so each seam is made one: the bar-long stretch
    around it is rotated so that the seam is where it wraps. The cut this leaves in the middle
    is crossfaded (equal power, 5 ms, into the audio that precedes the stretch) so that only the
    seam itself can click. About 0 dB: the seam is no louder in the highs than the audio around it.
    """
    from pipeline.metrics.seams import seam_click_db
    from pipeline.sample.assemble import equal_power_fades

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    half = bar_samples // 2
    fade = max(2, round(sample_rate * 0.005))
    fade_in, fade_out = equal_power_fades(fade)
    loops = []
    for seam in range(bar_samples, audio.shape[1], bar_samples):
        after = audio[:, seam : seam + half].copy()
        before = audio[:, seam - half : seam]
        lead_in = audio[:, seam - half - fade : seam - half]
        after[:, -fade:] = after[:, -fade:] * fade_out + lead_in * fade_in
        loops.append(np.concatenate([after, before], axis=1))
    return seam_click_db(np.stack(loops), sample_rate)


def tool_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PYTHONPATH"] = str(root)  # the copy's pipeline package, not the checkout's
    return env


def run(
    cmd: list[str],
    root: Path,
    check: bool = True,
    timeout: int = 600,
    extra_env: dict[str, str] | None = None,
):
    env = {**tool_env(root), **(extra_env or {})}
    result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    return result


def make_project(root: Path, params: dict | None = None) -> Path:
    """A copy of the project (code, graph, schema) with its own git and DVC repositories."""
    root.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    write_params(root, params or tiny_params())
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    run(["dvc", "config", "core.analytics", "false"], root)
    return root


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def make_track(path: Path, bpm: float, style: str = "techno", seed: int = 0) -> None:
    """A synthesised five-bar drum loop at ``bpm`` (22.05 kHz), written to ``path``."""
    from pipeline.audio.io import write_audio
    from pipeline.data.synth import SynthTrackSpec, render_track

    audio, _, _ = render_track(SynthTrackSpec(style=style, bpm=bpm, n_bars=5, seed=seed), 22050)
    write_audio(path, audio, 22050)


def write_overrides(corpus: Path, tempi: dict[str, float]) -> None:
    """``corpus/overrides.csv`` giving each recording its tempo (first downbeat 0, 4/4), so
    analyze runs no beat tracker."""
    lines = ["path,bpm,first_downbeat,meter", *(f"{p},{bpm},0,4" for p, bpm in tempi.items())]
    (corpus / "overrides.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny models run fastest single-threaded; OpenMP threads oversubscribed on a busy 2-core
    machine slow the model tests down about tenfold. Use with
    ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def labels_for(n: int, num_classes: int):
    """Class labels 0, 1, ... cycling over ``num_classes`` (None for unconditional models)."""
    import torch

    return torch.arange(n) % num_classes if num_classes else None


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")
