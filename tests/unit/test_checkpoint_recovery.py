"""Damaged checkpoints: the newest few are kept, an unusable one is named with its reason and
training resumes from the newest good one -- on the same curve as an uninterrupted run."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models import generator_file
from pipeline.models.generator_file import atomic_save
from pipeline.train import TrainConfig, checkpoint, load_checkpoint, train_gan
from pipeline.train import run_lock as run_folder_lock
from tests.conftest import tiny_train_config

pytestmark = pytest.mark.usefixtures("single_torch_thread")

SLOTS = ("checkpoint.pt", "checkpoint.1.pt", "checkpoint.2.pt")


def _config(**kw) -> TrainConfig:
    base = dict(latent_dim=16, steps=12, n_critic=2, checkpoint_every=4, log_every=3, seed=7)
    return tiny_train_config(**{**base, **kw})


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(4096) / 8000.0
    return (0.5 * np.sin(2 * np.pi * rng.uniform(100, 1000, (32, 1, 1)) * t)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(data: np.ndarray, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted 12-step run and its run folder (checkpoints at steps 12, 8 and 4)."""
    run_dir = tmp_path_factory.mktemp("reference")
    return train_gan(data, None, _config(), run_dir), run_dir


def _interrupted_run(data: np.ndarray, run_dir: Path) -> Path:
    """A run stopped after 8 of 12 steps (checkpoints at steps 8, 4 and 0); -> checkpoint.pt"""
    train_gan(data, None, _config(steps=8), run_dir)
    return run_dir / "checkpoint.pt"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _same_losses(a: list[dict], b: list[dict]) -> None:
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k in ("loss_d", "loss_g", "gp", "wasserstein"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-6, abs=1e-6), (ra["step"], k)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_newest_three_checkpoints_are_kept(reference) -> None:
    _, run_dir = reference
    assert [load_checkpoint(run_dir / name)["step"] for name in SLOTS] == [12, 8, 4]
    assert not (run_dir / "checkpoint.3.pt").exists()


def test_a_truncated_checkpoint_is_named_and_training_resumes_from_the_previous_one(
    reference, data: np.ndarray, tmp_path: Path, caplog
) -> None:
    full, _ = reference
    newest = _interrupted_run(data, tmp_path)
    _truncate(newest)
    with caplog.at_level(logging.WARNING):
        resumed = train_gan(data, None, _config(), tmp_path)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"unusable checkpoint {newest}: truncated or corrupt file (")
    assert resumed.resumed_from == 4 and resumed.steps_done == 12
    _same_losses(resumed.losses, full.losses)  # bit-identical continuation from step 4
    assert (tmp_path / "checkpoint.pt.corrupt").exists()  # kept for inspection, out of the way
    assert load_checkpoint(newest)["step"] == 12


def test_a_crash_between_rotation_and_save_resumes_from_the_previous_one(
    reference, data: np.ndarray, tmp_path: Path
) -> None:
    full, _ = reference
    _interrupted_run(data, tmp_path).unlink()  # checkpoint.pt rotated away, the new one unwritten
    resumed = train_gan(data, None, _config(), tmp_path)
    assert resumed.resumed_from == 4
    _same_losses(resumed.losses, full.losses)


def test_an_incomplete_checkpoint_is_passed_over(data: np.ndarray, tmp_path: Path, caplog) -> None:
    newest = _interrupted_run(data, tmp_path)
    ckpt = load_checkpoint(newest)
    del ckpt["opt_d"]
    atomic_save(ckpt, newest)
    with caplog.at_level(logging.WARNING):
        assert train_gan(data, None, _config(), tmp_path).resumed_from == 4
    assert _warnings(caplog)[0].startswith(
        f"unusable checkpoint {newest}: incomplete checkpoint (no opt_d)"
    )


class _Payload:
    """A pickle that would create a folder when loaded without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_a_malicious_checkpoint_is_refused_not_run(
    data: np.ndarray, tmp_path: Path, caplog
) -> None:
    newest = _interrupted_run(data, tmp_path / "run")
    marker = tmp_path / "payload-ran"
    with open(newest, "wb") as f:
        torch.save({"format": "bargan-checkpoint", "step": _Payload(marker)}, f)
    with caplog.at_level(logging.WARNING):
        resumed = train_gan(data, None, _config(), tmp_path / "run")
    assert not marker.exists()
    assert resumed.resumed_from == 4
    assert "refused" in caplog.text and "weights_only" in caplog.text
    with pytest.raises(checkpoint.CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "run" / "checkpoint.pt.corrupt")
    assert not marker.exists()


def test_no_usable_checkpoint_starts_again_naming_the_files(
    reference, data: np.ndarray, tmp_path: Path, caplog
) -> None:
    full, _ = reference
    _interrupted_run(data, tmp_path)
    damaged = sorted(tmp_path.glob("checkpoint*.pt"))
    for i, path in enumerate(damaged):
        if i % 3 == 0:
            _truncate(path)
        elif i % 3 == 1:
            path.write_bytes(b"")
        else:
            torch.save({"weights": torch.zeros(2)}, path)  # not a bargan file
    with caplog.at_level(logging.WARNING):
        result = train_gan(data, None, _config(), tmp_path)
    assert result.resumed_from == 0 and result.steps_done == 12
    _same_losses(result.losses, full.losses)
    last = _warnings(caplog)[-1]
    assert "no usable checkpoint" in last and "starts again from step 0" in last
    assert all(path.name in last for path in damaged), last
    # the newest is kept for inspection, the older ones are removed
    assert [p.name for p in tmp_path.glob("*.corrupt")] == ["checkpoint.pt.corrupt"]


def test_unusable_checkpoints_do_not_pile_up(data: np.ndarray, tmp_path: Path) -> None:
    _truncate(_interrupted_run(data, tmp_path))  # step 8 damaged: resumes from step 4
    assert train_gan(data, None, _config(), tmp_path).resumed_from == 4
    assert [p.name for p in tmp_path.glob("*.corrupt")] == ["checkpoint.pt.corrupt"]
    # the two newest damaged: one .corrupt still, the newest one's bytes
    newest, older = tmp_path / "checkpoint.pt", tmp_path / "checkpoint.1.pt"
    _truncate(newest)
    older.write_bytes(b"")
    assert train_gan(data, None, _config(steps=16), tmp_path).steps_done == 16
    assert [p.name for p in tmp_path.glob("*.corrupt")] == ["checkpoint.pt.corrupt"]
    assert (tmp_path / "checkpoint.pt.corrupt").stat().st_size > 0


def test_temporary_files_a_killed_trainer_left_are_removed_at_start(
    data: np.ndarray, tmp_path: Path
) -> None:
    """SIGKILL during an atomic write leaves its temporary file; the next trainer, holding the
    folder's lock, removes those of atomic_write's naming in its run folder and nothing else."""
    newest = _interrupted_run(data, tmp_path)
    stale = [
        tmp_path / ".checkpoint.pt.k3x9_q0a.tmp",  # a checkpoint cut short
        tmp_path / ".generator.pt.ab12cd34.tmp",
        tmp_path / ".progress.csv.zz99yy88.tmp",
    ]
    for path in stale:
        path.write_bytes(newest.read_bytes()[:100])
    kept = [tmp_path / "notes.tmp", tmp_path / ".keep.tmp", tmp_path / "sub"]
    kept[0].write_text("mine")
    kept[1].write_text("mine")
    kept[2].mkdir()
    (kept[2] / ".checkpoint.pt.k3x9_q0a.tmp").write_text("not this folder")
    assert train_gan(data, None, _config(), tmp_path).resumed_from == 8
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)
    assert (kept[2] / ".checkpoint.pt.k3x9_q0a.tmp").exists()


def test_truncated_generator_file_names_the_file_and_reason(reference, tmp_path: Path) -> None:
    full, _ = reference
    path = tmp_path / "generator.pt"
    path.write_bytes(full.generator_path.read_bytes()[:1000])
    with pytest.raises(checkpoint.CheckpointError) as exc:
        generator_file.read_generator(path)
    assert str(exc.value).startswith(f"{path}: truncated or corrupt file (")


def test_run_lock_is_exclusive_and_reentrant(tmp_path: Path) -> None:
    run_lock, busy = run_folder_lock.run_lock, run_folder_lock.RunFolderBusy
    with run_lock(tmp_path) as lock_file:
        assert lock_file.read_text().strip() == str(os.getpid())
        with run_lock(tmp_path):  # the stage holds it around train_gan, which takes it again
            pass
        errors: list[BaseException] = []

        def other() -> None:
            try:
                with run_lock(tmp_path):
                    pass
            except busy as err:
                errors.append(err)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert len(errors) == 1 and f"PID {os.getpid()}" in str(errors[0])
        assert str(tmp_path) in str(errors[0])
    with run_lock(tmp_path):  # released
        pass
