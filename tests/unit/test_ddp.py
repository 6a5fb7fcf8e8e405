"""Data-parallel training: two CPU processes with Gloo, set up as ``torchrun`` would."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from pipeline.train import TrainConfig, load_checkpoint, load_generator
from tests.conftest import tiny_train_config

WORLD = 2


def _config() -> TrainConfig:
    return tiny_train_config(
        model_dim=2,
        batch_size=4,  # global: 2 bars per process
        steps=3,
        n_critic=2,
        checkpoint_every=2,
        seed=3,
        ema_decay=0.9,
        num_classes=2,
        r1_gamma=0.5,  # a penalty through the plain discriminator besides the GP
        mode_seeking=0.1,
    )


def _worker(
    rank: int, port: int, run_dir: str, out_dir: str, rank1_time_limit: float | None = None
) -> None:
    os.environ.update(
        WORLD_SIZE=str(WORLD),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    from pipeline.train import loop

    seen: dict[str, object] = {}
    step = loop._Trainer.step

    def spy(self, s):  # keep a handle on this process's trainer to read its final weights
        seen["trainer"] = self
        return step(self, s)

    loop._Trainer.step = spy
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((16, 1, 4096)) * 0.2).astype(np.float32)
    logged: list[int] = []
    result = loop.train_gan(
        data,
        np.arange(16) % 2,
        _config(),
        Path(run_dir),
        on_log=lambda s, _m: logged.append(s),
        time_limit_s=rank1_time_limit if rank == 1 else None,
    )
    trainer = seen["trainer"]
    torch.save(
        {
            "G": trainer.G.state_dict(),
            "D": trainer.D.state_dict(),
            "G_ema": trainer.G_ema.state_dict(),
            "steps_done": result.steps_done,
            "losses": result.losses,
            "logged": logged,
            "group_left": not torch.distributed.is_initialized(),
        },
        Path(out_dir) / f"rank{rank}.pt",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_training(tmp_path: Path) -> None:
    run_dir, out_dir = tmp_path / "run", tmp_path / "out"
    out_dir.mkdir()
    mp.spawn(_worker, args=(_free_port(), str(run_dir), str(out_dir)), nprocs=WORLD, join=True)

    r0, r1 = (torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(WORLD))
    assert r0["steps_done"] == r1["steps_done"] == 3
    assert r0["logged"] == [1, 2, 3] and r1["logged"] == []  # only rank 0 logs
    assert r0["group_left"] and r1["group_left"]  # the process group it created is destroyed
    # metrics are averaged over the ranks, so both ranks record the same history
    assert r0["losses"] == r1["losses"]
    assert all(r["r1"] > 0 and r["mode_seeking"] > 0 for r in r0["losses"])
    # DDP keeps the replicas identical: same initial weights, all-reduced gradients
    for net in ("G", "D", "G_ema"):
        for key, value in r0[net].items():
            assert torch.equal(value, r1[net][key]), (net, key)

    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["step"] == 3
    for key, value in ckpt["generator"].items():
        assert torch.equal(value, r0["G"][key]), key
    generator, config = load_generator(run_dir / "generator.pt")
    assert config == _config()
    z = generator.sample_latent(2, generator=torch.Generator().manual_seed(0), device="cpu")
    assert generator(z, torch.tensor([0, 1])).shape == (2, 1, 4096)
    assert not list(run_dir.glob("*.tmp"))


def test_time_limit_on_one_rank_stops_every_rank_at_the_same_step(tmp_path: Path) -> None:
    run_dir, out_dir = tmp_path / "run", tmp_path / "out"
    out_dir.mkdir()
    args = (_free_port(), str(run_dir), str(out_dir), 0.0)  # rank 1 is out of time at once
    mp.spawn(_worker, args=args, nprocs=WORLD, join=True)

    r0, r1 = (torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(WORLD))
    assert r0["steps_done"] == r1["steps_done"] == 1  # rank 0 had no limit: it stopped too
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == 1
    assert (run_dir / "generator.pt").exists()
