"""TrainConfig, checkpoints and the resumable training loop (CPU, tiny models)."""

from __future__ import annotations

import logging
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import hardware
from pipeline.models.generator_file import atomic_save, build_generator
from pipeline.train import (
    LOSSES,
    GanLoss,
    TrainConfig,
    TrainingInterrupted,
    load_checkpoint,
    load_generator,
    save_generator,
    train_gan,
)
from pipeline.train import config as config_module
from pipeline.train.losses import wasserstein_d_loss, wasserstein_g_loss
from tests.conftest import tiny_train_config

LENGTH = 4096


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _config(**kw) -> TrainConfig:
    base = dict(
        length=LENGTH,
        latent_dim=16,
        steps=12,
        n_critic=2,
        checkpoint_every=4,
        log_every=3,
        seed=7,
        ema_decay=0.9,
    )
    return tiny_train_config(**{**base, **kw})


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(LENGTH) / 8000.0
    freqs = rng.uniform(100, 1000, size=(32, 1, 1))
    return (0.5 * np.sin(2 * np.pi * freqs * t)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(data: np.ndarray, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted 12-step run."""
    run_dir = tmp_path_factory.mktemp("reference")
    logged: list[tuple[int, dict[str, float]]] = []
    torch.manual_seed(1234)
    before = torch.rand(3)
    torch.manual_seed(1234)
    result = train_gan(data, None, _config(), run_dir, on_log=lambda s, m: logged.append((s, m)))
    after = torch.rand(3)
    return result, logged, run_dir, torch.equal(before, after)


def _same_history(
    a: list[dict[str, float]], b: list[dict[str, float]], rel: float = 1e-6, abs: float = 1e-6
) -> None:
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k in ("loss_d", "loss_g", "gp", "wasserstein"):
            assert ra[k] == pytest.approx(rb[k], rel=rel, abs=abs), (ra["step"], k)


# --- config ---------------------------------------------------------------------------------------
def test_config_roundtrip_and_validation() -> None:
    cfg = _config(betas=(0.0, 0.99), num_classes=3, extra={"phase_shuffle_radius": 1})
    d = cfg.to_dict()
    assert d["betas"] == [0.0, 0.99]
    back = TrainConfig.from_dict(d)
    assert back == cfg and back.betas == (0.0, 0.99)
    defaults = TrainConfig(sample_rate=16000, length=16384)
    assert (
        defaults.arch,
        defaults.loss,
        defaults.latent_dim,
        defaults.model_dim,
        defaults.n_critic,
    ) == ("wavegan", "wgan-gp", 100, 64, 5)
    assert (
        defaults.lr_g,
        defaults.lr_d,
        defaults.betas,
        defaults.gp_lambda,
        defaults.ema_decay,
    ) == (1e-4, 1e-4, (0.5, 0.9), 10.0, 0.999)
    assert defaults.resolved_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(ValueError, match="ema_decay"):
        _config(ema_decay=1.0)


# --- training / resume ----------------------------------------------------------------------
def test_training_run_outputs(reference) -> None:
    result, logged, run_dir, caller_rng_untouched = reference
    assert result.steps_done == 12
    assert [r["step"] for r in result.losses] == list(range(1, 13))
    assert all(
        np.isfinite([r[k] for k in ("loss_d", "loss_g", "gp", "wasserstein")]).all()
        for r in result.losses
    )
    assert result.checkpoint_path == run_dir / "checkpoint.pt" and result.checkpoint_path.exists()
    assert result.generator_path == run_dir / "generator.pt" and result.generator_path.exists()
    assert [s for s, _ in logged] == [3, 6, 9, 12]
    assert set(logged[0][1]) >= {"loss_d", "loss_g", "gp", "wasserstein", "steps_per_sec"}
    assert logged[0][1]["gp"] > 0
    assert caller_rng_untouched  # the global torch RNG is forked, not consumed
    ckpt = load_checkpoint(result.checkpoint_path)
    assert ckpt["step"] == 12
    assert set(ckpt) >= {
        "config",
        "generator",
        "discriminator",
        "ema_generator",
        "opt_g",
        "opt_d",
        "rng",
        "losses",
    }
    assert set(ckpt["rng"]) >= {"torch", "cuda", "numpy", "python", "generators"}
    assert not list(run_dir.glob("*.tmp"))


def test_resume_reproduces_uninterrupted_run(reference, data: np.ndarray, tmp_path: Path) -> None:
    full, *_ = reference
    first = train_gan(data, None, _config(steps=6), tmp_path)
    assert first.steps_done == 6
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 6
    resumed = train_gan(data, None, _config(steps=12), tmp_path)  # fresh call = fresh trainer state
    assert resumed.resumed_from == 6 and resumed.steps_done == 12
    _same_history(resumed.losses, full.losses)
    # the final generators are identical too
    g_full, _ = load_generator(full.generator_path)
    g_res, _ = load_generator(resumed.generator_path)
    for (k, a), (_, b) in zip(g_full.state_dict().items(), g_res.state_dict().items(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), k


def test_resume_with_different_config_names_keys(
    reference, data: np.ndarray, tmp_path: Path
) -> None:
    train_gan(data, None, _config(steps=2), tmp_path)
    with pytest.raises(ValueError, match=r"lr_g.*seed|seed.*lr_g") as exc:
        train_gan(data, None, _config(steps=4, lr_g=3e-4, seed=8), tmp_path)
    assert "batch_size" not in str(exc.value)
    with pytest.raises(ValueError, match="shape"):
        train_gan(data[:16], None, _config(steps=4), tmp_path)


def test_sigterm_checkpoints_and_resumes(
    reference, data: np.ndarray, tmp_path: Path, caplog
) -> None:
    full, *_ = reference
    sentinel_calls: list[int] = []

    def previous(signum, frame):
        sentinel_calls.append(signum)

    old = signal.signal(signal.SIGTERM, previous)
    try:

        def on_log(step: int, _m: dict[str, float]) -> None:
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)

        with caplog.at_level(logging.WARNING), pytest.raises(TrainingInterrupted) as exc:
            train_gan(data, None, _config(steps=12), tmp_path, on_log=on_log)
        assert exc.value.code == 143 and exc.value.step == 3
        assert caplog.records[-1].getMessage() == (
            f"SIGTERM: stopped at step 3; checkpoint saved to {tmp_path / 'checkpoint.pt'}; "
            "run the same command to resume"
        )
        assert signal.getsignal(signal.SIGTERM) is previous  # handler restored
        assert sentinel_calls == []  # our handler took the signal, not the previous one
    finally:
        signal.signal(signal.SIGTERM, old)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3
    assert not (tmp_path / "generator.pt").exists()
    resumed = train_gan(data, None, _config(steps=12), tmp_path)
    _same_history(resumed.losses, full.losses)


def test_sigint_stops_like_sigterm_and_says_how_to_resume(
    reference, data: np.ndarray, tmp_path: Path, caplog
) -> None:
    full, *_ = reference
    inherited = signal.getsignal(signal.SIGINT)
    # A process started in the background by a shell inherits SIGINT ignored, and training
    # rightly leaves an ignored SIGINT alone: give this test Python's usual Ctrl-C handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGINT)

    def on_log(step: int, _m: dict[str, float]) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    stopped: BaseException | None = None
    try:
        with caplog.at_level(logging.WARNING):
            try:
                train_gan(data, None, _config(steps=12), tmp_path, on_log=on_log)
            except BaseException as err:  # today's code lets KeyboardInterrupt through mid-step
                stopped = err
    finally:
        after = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, inherited)
    assert isinstance(stopped, TrainingInterrupted), repr(stopped)
    assert stopped.code == 130 and stopped.step == 3
    assert after is before  # handler restored
    path = tmp_path / "checkpoint.pt"
    line = f"SIGINT: stopped at step 3; checkpoint saved to {path}; run the same command to resume"
    assert caplog.records[-1].getMessage() == line
    assert str(stopped) == line
    assert load_checkpoint(path)["step"] == 3
    resumed = train_gan(data, None, _config(steps=12), tmp_path)
    _same_history(resumed.losses, full.losses)


def test_progress_lines_in_logs_without_a_terminal(
    data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from pipeline.train import loop

    monkeypatch.setattr(loop, "LOG_LINE_SECONDS", 0.0)  # a line at every log step
    with caplog.at_level(logging.INFO, logger=loop.log.name):
        train_gan(data, None, _config(steps=6), tmp_path)  # pytest's stderr is no terminal
    lines = [r.getMessage() for r in caplog.records if "steps/s" in r.getMessage()]
    assert [line.split(",")[0] for line in lines] == ["step 3/6", "step 6/6"]
    assert all(re.search(r"loss_d -?\d.*loss_g -?\d", line) for line in lines)


def test_time_limit_stops_cleanly_and_resumes(reference, data: np.ndarray, tmp_path: Path) -> None:
    full, *_ = reference
    early = train_gan(data, None, _config(), tmp_path, time_limit_s=0.0)
    assert early.steps_done == 1  # the step under way finishes
    assert load_checkpoint(early.checkpoint_path)["step"] == 1
    assert early.generator_path.exists()
    resumed = train_gan(data, None, _config(), tmp_path)
    assert resumed.resumed_from == 1 and resumed.steps_done == 12
    _same_history(resumed.losses, full.losses)


# --- fast paths: bf16 autocast, torch.compile, streamed batches ------------------------------
@contextmanager
def _conv_output_dtypes(module_type: type[torch.nn.Module]) -> Iterator[set[torch.dtype]]:
    """Record the output dtype of every forward of ``module_type`` while the context is open."""
    seen: set[torch.dtype] = set()

    def hook(module, _inputs, output):
        if isinstance(module, module_type):
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def test_bf16_autocast_runs_networks_in_bf16_and_penalty_in_fp32(
    reference, data: np.ndarray, tmp_path: Path
) -> None:
    full, *_ = reference
    with _conv_output_dtypes(torch.nn.Conv1d) as seen:
        res = train_gan(data, None, _config(steps=4, amp=True), tmp_path)
    # the G/D training passes ran in bf16; the gradient penalty's critic pass ran in fp32
    assert seen == {torch.bfloat16, torch.float32}
    assert all(np.isfinite([r[k] for k in ("loss_d", "loss_g", "gp")]).all() for r in res.losses)
    first_amp, first_fp32 = res.losses[0], full.losses[0]
    assert first_amp["loss_d"] != first_fp32["loss_d"]  # autocast really changed the numerics
    assert first_amp["loss_d"] == pytest.approx(first_fp32["loss_d"], rel=0.02)
    assert first_amp["gp"] == pytest.approx(first_fp32["gp"], rel=0.02)
    ckpt = load_checkpoint(res.checkpoint_path)
    weights = [t for t in ckpt["generator"].values() if t.is_floating_point()]
    assert all(t.dtype == torch.float32 for t in weights)  # autocast keeps fp32 master weights


def test_fp32_training_never_leaves_fp32(data: np.ndarray, tmp_path: Path) -> None:
    with _conv_output_dtypes(torch.nn.Conv1d) as seen:
        train_gan(data, None, _config(steps=1), tmp_path)
    assert seen == {torch.float32}


def test_compiled_run_matches_eager_and_resumes_eagerly(
    reference, data: np.ndarray, tmp_path: Path
) -> None:
    full, *_ = reference
    compiled = train_gan(data, None, _config(steps=6, compile=True), tmp_path)
    # the first step is the same computation; after it, fused kernels' reordered float sums are
    # amplified by the GAN dynamics, so the curves agree closely rather than bit for bit
    _same_history(compiled.losses[:1], full.losses[:1], rel=1e-5)
    _same_history(compiled.losses, full.losses[:6], rel=1e-2, abs=5e-3)
    ckpt = load_checkpoint(compiled.checkpoint_path)
    assert not any("_orig_mod" in k for k in ckpt["generator"])  # plain module state, portable
    # compile may change on resume: the eager continuation follows the same curve
    resumed = train_gan(data, None, _config(steps=12), tmp_path)
    assert resumed.resumed_from == 6
    _same_history(resumed.losses, full.losses, rel=1e-2, abs=5e-3)


def test_streamed_batches_match_resident_data(
    reference, data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path for a training set too large for the GPU: batches gathered on the host."""
    from pipeline.train import loop

    full, *_ = reference
    placed: list[bool] = []
    place = loop._place_data

    def keep_on_host(data_t, labels_t, device):
        data_t, labels_t, _resident = place(data_t, labels_t, device)
        placed.append(False)
        return data_t, labels_t, False

    monkeypatch.setattr(loop, "_place_data", keep_on_host)
    streamed = train_gan(data, None, _config(), tmp_path)
    assert placed == [False]
    _same_history(streamed.losses, full.losses)


@pytest.mark.parametrize("loss", ["hinge", "non-saturating", "least-squares"])
def test_other_losses_conditional_stereo(loss: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((12, 2, 3000)) * 0.2).astype(np.float32)
    y = np.arange(12) % 3
    cfg = _config(
        loss=loss, channels=2, length=3000, num_classes=3, steps=2, n_critic=1, log_every=1
    )
    res = train_gan(x, y, cfg, tmp_path)
    assert res.steps_done == 2
    assert all(r["gp"] == 0.0 for r in res.losses)
    g, cfg_back = load_generator(res.generator_path)
    assert cfg_back == cfg
    assert g(g.sample_latent(2), torch.tensor([0, 2])).shape == (2, 2, 3000)


def test_data_validation(data: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="channels"):
        train_gan(data, None, _config(channels=2), tmp_path)
    with pytest.raises(ValueError, match="samples"):
        train_gan(data[..., :100], None, _config(), tmp_path)
    with pytest.raises(ValueError, match="labels"):
        train_gan(data, None, _config(num_classes=2), tmp_path)
    with pytest.raises(ValueError, match="num_classes"):
        train_gan(data, np.zeros(len(data), dtype=int), _config(), tmp_path)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        train_gan(data, np.full(len(data), 5), _config(num_classes=2), tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()


# --- checkpoint files ----------------------------------------------------------------------
def test_atomic_save_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoint.pt"
    atomic_save({"step": 1}, target)
    original = target.read_bytes()

    def failing_save(obj, f, *a, **kw):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": 2}, target)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temp file left
    assert target.read_bytes() == original
    assert torch.load(target, weights_only=True) == {"step": 1}
    # a failure on a fresh path leaves nothing at all
    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        atomic_save({"step": 2}, tmp_path / "new.pt")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_load_generator_matches_ema_generator(reference, tmp_path: Path) -> None:
    result, *_ = reference
    ckpt = load_checkpoint(result.checkpoint_path)
    cfg = TrainConfig.from_dict(ckpt["config"])
    ema = build_generator(cfg)
    ema.load_state_dict(ckpt["ema_generator"])
    raw = build_generator(cfg)
    raw.load_state_dict(ckpt["generator"])
    g, cfg2 = load_generator(result.generator_path)
    assert cfg2 == cfg
    assert not g.training
    z = g.sample_latent(3, generator=torch.Generator().manual_seed(0), device="cpu")
    with torch.no_grad():
        out = g(z)
        assert torch.equal(out, ema(z))
        assert not torch.allclose(out, raw(z))  # EMA weights, not the raw generator
    # save_generator / load_generator round trip
    path = save_generator(tmp_path / "g.pt", ema, cfg)
    g2, _ = load_generator(path)
    with torch.no_grad():
        assert torch.equal(g2(z), out)
    assert os.path.getsize(path) < os.path.getsize(result.checkpoint_path)


# --- NaN guard ----------------------------------------------------------------------
def _nan_loss(fail_calls: set[int] | None) -> GanLoss:
    """wgan-gp whose d_loss returns NaN on the given call numbers (None = always)."""
    calls = {"n": 0}

    def d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = wasserstein_d_loss(real, fake)
        if fail_calls is None or calls["n"] in fail_calls:
            return loss * float("nan")
        return loss

    return GanLoss("nan-test", d_loss, wasserstein_g_loss, gradient_penalty=True)


def test_nan_guard_recovers(
    data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    # n_critic=2: call 11 is the first critic update of step 6 -> reload the step-4 checkpoint
    monkeypatch.setitem(LOSSES, "nan-test", _nan_loss({11}))
    cfg = _config(loss="nan-test", steps=8)
    with caplog.at_level(logging.WARNING):
        res = train_gan(data, None, cfg, tmp_path)
    assert res.steps_done == 8 and res.recoveries == 1
    assert [r["step"] for r in res.losses] == list(range(1, 9))
    assert all(np.isfinite(r["loss_d"]) for r in res.losses)
    assert "non-finite loss at step 6" in caplog.text
    assert load_checkpoint(res.checkpoint_path)["step"] == 8


def test_nan_guard_gives_up_after_three_failures(
    data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(LOSSES, "nan-test", _nan_loss(None))
    with pytest.raises(RuntimeError, match=r"non-finite loss at step 1 .*3 consecutive failures"):
        train_gan(data, None, _config(loss="nan-test", steps=4), tmp_path)


def test_nan_data_raises(data: np.ndarray, tmp_path: Path) -> None:
    bad = np.full_like(data, np.nan)
    with pytest.raises(RuntimeError, match="NaN"):
        train_gan(bad, None, _config(steps=4), tmp_path)


# --- amp: auto ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu avx2 avx512f avx512_bf16 avx512_vnni", True),  # AMD Zen 4, Intel Cooper Lake
        ("fpu avx2 avx512f amx_bf16 amx_tile", True),  # Intel Sapphire Rapids
        ("fpu avx2 avx512f avx512bw avx512_vnni", False),  # AVX-512 without bf16 units
        ("fpu avx2 fma", False),
    ],
)
def test_auto_amp_follows_the_cpus_bf16_units(tmp_path: Path, monkeypatch, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert hardware.cpu_flags(cpuinfo) == set(flags.split())
    monkeypatch.setattr(hardware, "cpu_flags", lambda: set(flags.split()))
    assert _config(amp="auto").resolved_amp() is expected
    assert _config(amp=True).resolved_amp() and not _config(amp=False).resolved_amp()


def test_auto_amp_without_cpuinfo_is_fp32(tmp_path: Path) -> None:
    assert hardware.cpu_flags(tmp_path / "missing") == set()
    assert config_module.native_bf16(torch.device("meta")) is False


def test_auto_amp_on_this_machine_trains_as_its_resolution_says(
    data: np.ndarray, tmp_path: Path
) -> None:
    """The real flags of this CPU, the real trainer: bf16 passes exactly when auto says so."""
    config = _config(steps=1, amp="auto")
    with _conv_output_dtypes(torch.nn.Conv1d) as seen:
        result = train_gan(data, None, config, tmp_path)
    bf16 = config_module.native_bf16(torch.device("cpu"))
    assert (torch.bfloat16 in seen) is bf16
    assert load_checkpoint(result.checkpoint_path)["config"]["amp"] == "auto"  # resolved anew


@pytest.mark.parametrize("value", ["yes", 1.5, None])
def test_amp_takes_true_false_or_auto(value) -> None:
    with pytest.raises(ValueError, match="amp must be true, false or auto"):
        _config(amp=value)
