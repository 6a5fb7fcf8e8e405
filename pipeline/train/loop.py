"""Resumable GAN training loop.

One *step* is one generator update preceded by ``n_critic`` discriminator updates.

Randomness comes from two dedicated ``torch.Generator`` objects -- ``data`` (CPU; batch
indices) and ``noise`` (on the training device; latents, gradient-penalty interpolation
weights, phase-shuffle offsets) -- plus the global torch RNG for weight initialisation.
Their states (and the global torch/numpy/python states) go into every checkpoint, so a run
stopped at step k and resumed continues with exactly the same random stream; on CPU the
resumed loss curve is bit-identical to an uninterrupted run.  The global torch RNG is forked
for the duration of :func:`train_gan`, so the caller's torch random state is left as it was
(except on resume, where numpy/python global states are restored from the checkpoint).

Training domain: generators with ``to_training_domain`` / ``forward_training`` (SpecGAN) are
trained on what those return; the real set is converted once, after augmentation.

Speed: ``config.amp`` runs the G/D forward passes under bf16 autocast on any device (a GPU
speed-up, and one on CPUs with bf16 units; CPUs without them get slower, so ``"auto"`` turns it
on only where :func:`pipeline.train.config.native_bf16` finds the units) and
``config.compile`` wraps them in ``torch.compile``; the gradient penalty and R1 always run eager
in fp32 on the uncompiled discriminator (double backward through compiled graphs is not
supported).

Multi-process (``torchrun``, ``WORLD_SIZE > 1``): G and D are wrapped in
``DistributedDataParallel``; ``config.batch_size`` is the GLOBAL batch, split evenly over the
ranks.  Every rank draws the same global batch indices from the ``data`` stream and keeps its
own slice, so the data order matches a single-process run; ``noise`` streams are seeded per
rank.  Per-step metrics are averaged over ranks (so the NaN guard and SIGTERM handling decide
the same on every rank); only rank 0 takes the run folder's lock, writes checkpoints and the
generator file and calls ``on_log`` / ``on_preview``.  On resume ranks > 0 reseed their noise
stream (the checkpoint holds rank 0's), so a multi-process resume is exact in data order but
not bit-identical.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pipeline.fileio import remove_stale_temporaries
from pipeline.models.generator_file import save_generator
from pipeline.models.registry import build_models_for, label_count
from pipeline.train import distributed
from pipeline.train.augment import add_noise_copies
from pipeline.train.checkpoint import (
    find_resumable,
    restore_rng_state,
    rotate_checkpoints,
    save_checkpoint,
)
from pipeline.train.config import TrainConfig
from pipeline.train.distributed import DistInfo
from pipeline.train.losses import (
    GanLoss,
    get_loss,
    gradient_penalty,
    mode_seeking_loss,
    r1_penalty,
)
from pipeline.train.run_lock import run_lock

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
GENERATOR_NAME = "generator.pt"
MAX_CONSECUTIVE_FAILURES = 3
METRIC_KEYS = ("loss_d", "loss_g", "gp", "wasserstein", "r1", "mode_seeking")
RESIDENT_FRACTION = 0.5  # move the data set to the GPU when it needs < this share of free memory
CONVERT_CHUNK = 256  # bars per to_training_domain call
LOG_LINE_SECONDS = 30.0  # progress lines in logs when there is no terminal for the bar
NOISE_SEED_STRIDE = 1_000_003  # rank r's noise stream starts at seed + 1 + r * stride

LogFn = Callable[[int, dict[str, float]], None]
PreviewFn = Callable[[int, nn.Module], None]


@dataclass
class TrainResult:
    steps_done: int
    losses: list[dict[str, float]]  # one record per step: {"step", *METRIC_KEYS}
    checkpoint_path: Path
    generator_path: Path | None
    resumed_from: int = 0
    recoveries: int = 0  # number of non-finite-loss reloads during this call
    config: TrainConfig | None = field(default=None, repr=False)


class TrainingInterrupted(SystemExit):
    """Raised after SIGTERM or SIGINT once the current step has finished and a checkpoint is
    written.

    A ``SystemExit`` (exit status 128 + the signal: 143 for SIGTERM, 130 for SIGINT) so an
    uncaught interrupt ends the process as the signal would have, but only after the state is
    safely on disk. ``str()`` is the line to show the user.
    """

    def __init__(self, step: int, checkpoint_path: Path, signum: int = signal.SIGTERM):
        super().__init__(128 + int(signum))
        self.step = step
        self.checkpoint_path = checkpoint_path
        self.signum = int(signum)

    def __str__(self) -> str:
        return (
            f"{signal.Signals(self.signum).name}: stopped at step {self.step}; checkpoint "
            f"saved to {self.checkpoint_path}; run the same command to resume"
        )


class NonFiniteLossError(RuntimeError):
    pass


class ResumeMismatch(ValueError):
    """A run folder's checkpoint was trained with other settings (or data) than these;
    ``differences`` holds ``(what, in the checkpoint, now)`` for each."""

    def __init__(self, path: Path, differences: list[tuple[str, object, object]]) -> None:
        self.path = path
        self.differences = differences
        detail = "; ".join(f"{k}: checkpoint={old!r}, now={new!r}" for k, old, new in differences)
        names = ", ".join(k for k, _, _ in differences)
        may_change = ", ".join(sorted(TrainConfig.RESUMABLE_KEYS))
        super().__init__(
            f"cannot resume from {path}: the training config differs in {names} ({detail}). "
            f"Use the original config or a new run directory (only {may_change} may change)."
        )


# --- helpers --------------------------------------------------------------------------------
def _prepare_data(
    data: np.ndarray | Tensor, labels: np.ndarray | Tensor | None, config: TrainConfig
) -> tuple[Tensor, Tensor | None]:
    if isinstance(data, np.ndarray):
        data_t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    elif isinstance(data, Tensor):
        data_t = data.detach().to(torch.float32)
    else:
        raise TypeError(f"data must be a numpy array or torch tensor, got {type(data).__name__}")
    if data_t.dim() != 3:
        raise ValueError(f"data must have shape [N, C, T], got {tuple(data_t.shape)}")
    n, c, t = data_t.shape
    if n < 1:
        raise ValueError("data set is empty")
    if c != config.channels:
        raise ValueError(f"data has {c} channels but config.channels = {config.channels}")
    if t != config.length:
        raise ValueError(f"data clips have {t} samples but config.length = {config.length}")

    count = label_count(config)  # classes, or clusters under self-conditioning
    if count > 0:
        if labels is None:
            raise ValueError(f"the models embed {count} labels but no labels were given")
        labels_t = (
            torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels)
            .to(torch.long)
            .reshape(-1)
        )
        if labels_t.numel() != n:
            raise ValueError(f"got {labels_t.numel()} labels for {n} clips")
        if labels_t.min() < 0 or labels_t.max() >= count:
            raise ValueError(
                f"labels must be in [0, {count}), "
                f"got range [{int(labels_t.min())}, {int(labels_t.max())}]"
            )
    else:
        if labels is not None:
            raise ValueError("labels were given but config.num_classes = 0 (unconditional model)")
        labels_t = None
    return data_t, labels_t


def _place_data(
    data: Tensor, labels: Tensor | None, device: torch.device
) -> tuple[Tensor, Tensor | None, bool]:
    """Move the training set to ``device`` once when it fits; returns (data, labels, resident)."""
    if device.type == "cpu":
        return data.contiguous(), labels, True
    nbytes = data.numel() * data.element_size()
    resident = False
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        resident = nbytes < RESIDENT_FRACTION * free
    else:  # other accelerators: try, fall back to host memory
        resident = True
    if resident:
        try:
            data = data.to(device)
        except torch.OutOfMemoryError:
            resident = False
    if not resident:
        log.info(
            "training set (%.1f GiB) kept in host memory; batches copied per step", nbytes / 2**30
        )
        data = data.contiguous().pin_memory() if device.type == "cuda" else data.contiguous()
    if labels is not None:
        labels = labels.to(device)
    return data, labels, resident


@contextmanager
def _stop_flag() -> Iterator[dict[str, int]]:
    """Install SIGTERM and SIGINT handlers that only record the signal (``flag["signum"]``, 0
    while none came); restore the previous handlers on exit. A second SIGINT raises
    ``KeyboardInterrupt`` at once (a second Ctrl-C: stop now). SIGINT is left alone when it is
    ignored (a background job). Outside the main thread signal handlers cannot be installed:
    the flag then stays 0."""
    flag = {"signum": 0}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if signum == signal.SIGINT and flag["signum"] == signal.SIGINT:
            raise KeyboardInterrupt
        if not flag["signum"]:
            flag["signum"] = signum
            name = signal.Signals(signum).name
            log.warning("%s received: finishing the current step and writing a checkpoint", name)

    signums = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signums.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield flag
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """EMA with warm-up: effective decay ``min(decay, (1 + step) / (10 + step))`` so short runs
    are not dominated by the initial weights.  ``decay == 0`` makes the EMA a plain copy."""
    d = min(decay, (1.0 + step) / (10.0 + step))
    ema_p = list(ema.parameters())
    model_p = [p.detach() for p in model.parameters()]
    with torch.no_grad():
        torch._foreach_lerp_(ema_p, model_p, 1.0 - d)
        for eb, mb in zip(ema.buffers(), model.buffers(), strict=True):
            eb.copy_(mb)


class _TrainingView(nn.Module):
    """``forward`` = ``generator.forward_training``, so DDP and torch.compile can wrap it."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator.forward_training(z, labels)


class _Trainer:
    def __init__(
        self,
        data: Tensor,
        labels: Tensor | None,
        config: TrainConfig,
        device: torch.device,
        resident: bool,
        dist_info: DistInfo,
        source_shape: tuple[int, ...],
    ):
        self.labels = labels
        self.config = config
        self.device = device
        self.resident = resident
        self.dist = dist_info
        self.source_shape = source_shape
        self.n = data.shape[0]
        if config.batch_size % dist_info.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} is not divisible by the "
                f"{dist_info.world_size} training processes"
            )
        self.local_batch = config.batch_size // dist_info.world_size
        if config.mode_seeking > 0 and self.local_batch < 2:
            raise ValueError("mode_seeking needs at least 2 examples per process")
        self.loss_fn: GanLoss = get_loss(config.loss)
        self.amp = config.resolved_amp()

        torch.manual_seed(config.seed)
        g, d = build_models_for(config)
        self.G = g.to(device).train()
        self.D = d.to(device).train()
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=config.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=config.betas)

        self.rng_data = torch.Generator(device="cpu").manual_seed(config.seed)
        self.rng_noise = torch.Generator(device=device).manual_seed(self._noise_seed())
        if hasattr(self.D, "set_phase_shuffle_generator"):
            self.D.set_phase_shuffle_generator(self.rng_noise)

        self.data = self._to_training_domain(data)
        g_train: nn.Module = _TrainingView(self.G) if hasattr(g, "forward_training") else self.G
        d_train: nn.Module = self.D
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            # gradients live in the all-reduce buckets: one copy less, less memory
            ddp_kw = dict(device_ids=ids, broadcast_buffers=False, gradient_as_bucket_view=True)
            g_train = DDP(g_train, **ddp_kw)
            d_train = DDP(d_train, **ddp_kw)
        # The G step needs D without DDP: D's parameters get no gradient there, which DDP's
        # reducer would wait for.  Penalties use the plain eager self.D.
        d_plain: nn.Module = self.D
        if config.compile:
            g_train = torch.compile(g_train)
            d_train = torch.compile(d_train)
            d_plain = torch.compile(self.D) if dist_info.enabled else d_train
        self.G_train, self.D_train, self.D_plain = g_train, d_train, d_plain

    def _noise_seed(self, step: int = 0) -> int:
        # rank 0 (and single-process runs) keep seed + 1; step > 0 only when reseeding on resume
        return self.config.seed + 1 + self.dist.rank * NOISE_SEED_STRIDE + step

    @torch.no_grad()
    def _to_training_domain(self, data: Tensor) -> Tensor:
        convert = getattr(self.G, "to_training_domain", None)
        if convert is None:
            return data
        parts = [
            convert(chunk.to(self.device, non_blocking=True)).float().to(data.device)
            for chunk in data.split(CONVERT_CHUNK)
        ]
        out = torch.cat(parts)
        if data.device.type == "cpu" and self.device.type == "cuda":
            out = out.pin_memory()
        return out

    @property
    def rngs(self) -> dict[str, torch.Generator]:
        return {"data": self.rng_data, "noise": self.rng_noise}

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _indices(self) -> Tensor:
        """This process's slice of a global batch of indices drawn from the data stream."""
        idx = torch.randint(self.n, (self.config.batch_size,), generator=self.rng_data)
        if self.dist.enabled:
            b = self.local_batch
            idx = idx[self.dist.rank * b : (self.dist.rank + 1) * b]
        return idx

    def _real_batch(self) -> tuple[Tensor, Tensor | None]:
        idx = self._indices()
        if self.resident:
            idx_d = idx.to(self.device)
            x = self.data.index_select(0, idx_d)
        else:
            x = self.data.index_select(0, idx).to(self.device, non_blocking=True)
            idx_d = idx.to(self.device)
        y = self.labels.index_select(0, idx_d) if self.labels is not None else None
        return x, y

    def _fake_labels(self) -> Tensor | None:
        if self.labels is None:
            return None
        return self.labels.index_select(0, self._indices().to(self.device))

    def step(self, step: int) -> Tensor:
        """One training step; returns the detached metrics in ``METRIC_KEYS`` order (critic
        values averaged over the ``n_critic`` updates; ``loss_d`` includes the penalties)."""
        cfg = self.config
        b = self.local_batch
        G, D = self.G, self.D
        zero = torch.zeros((), device=self.device)
        sum_d, sum_gp, sum_w, sum_r1 = zero.clone(), zero.clone(), zero.clone(), zero.clone()

        D.requires_grad_(True)
        # Lazy R1 (Karras et al. 2020): the penalty on one critic update in r1_interval steps,
        # weighted by the interval, costs a fraction of its double backward for the same effect.
        lazy_r1 = cfg.r1_gamma > 0 and step % cfg.r1_interval == 0
        for critic_update in range(cfg.n_critic):
            real, y = self._real_batch()
            z = G.sample_latent(b, generator=self.rng_noise, device=self.device)
            with torch.no_grad(), self._autocast():
                fake = self.G_train(z, y)
            with self._autocast():
                both = torch.cat([real, fake.to(real.dtype)])
                y2 = torch.cat([y, y]) if y is not None else None
                scores = self.D_train(both, y2).float()
            d_real, d_fake = scores[:b], scores[b:]
            loss_d = self.loss_fn.d_loss(d_real, d_fake)
            if self.loss_fn.gradient_penalty:
                gp = gradient_penalty(D, real, fake, y, lam=cfg.gp_lambda, generator=self.rng_noise)
            else:
                gp = zero
            if lazy_r1 and critic_update == 0:
                r1 = r1_penalty(D, real, y, gamma=cfg.r1_gamma * cfg.r1_interval)
            else:
                r1 = zero
            self.opt_d.zero_grad(set_to_none=True)
            (loss_d + gp + r1).backward()
            self.opt_d.step()
            sum_d += loss_d.detach() + gp.detach() + r1.detach()
            sum_gp += gp.detach()
            sum_r1 += r1.detach()
            sum_w += (d_real.mean() - d_fake.mean()).detach()

        D.requires_grad_(False)
        y = self._fake_labels()
        z = G.sample_latent(b, generator=self.rng_noise, device=self.device)
        pairs = b // 2 if cfg.mode_seeking > 0 else 0
        if pairs and y is not None:  # mode seeking compares two latents under the same label
            y = torch.cat([y[:pairs], y[:pairs], y[2 * pairs :]])
        with self._autocast():
            fake = self.G_train(z, y)
            scores = self.D_plain(fake, y).float()
        loss_g = self.loss_fn.g_loss(scores)
        if pairs:
            second = slice(pairs, 2 * pairs)
            ms = mode_seeking_loss(fake[:pairs], fake[second], z[:pairs], z[second])
            total_g = loss_g + cfg.mode_seeking * ms
        else:
            ms, total_g = zero, loss_g
        self.opt_g.zero_grad(set_to_none=True)
        total_g.backward()
        self.opt_g.step()
        D.requires_grad_(True)
        _ema_update(self.G_ema, G, cfg.ema_decay, step)

        k = float(cfg.n_critic)
        return torch.stack(
            [
                sum_d / k,
                loss_g.detach().float(),
                sum_gp / k,
                sum_w / k,
                sum_r1 / k,
                ms.detach().float(),
            ]
        )

    def preview(self, step: int, on_preview: PreviewFn) -> None:
        """``on_preview(step, ema_generator)`` with the EMA generator in eval mode, no grad."""
        was_training = self.G_ema.training
        self.G_ema.eval()
        try:
            with torch.no_grad():
                on_preview(step, self.G_ema)
        finally:
            self.G_ema.train(was_training)

    # --- state ---------------------------------------------------------------------------------
    def save(self, path: Path, step: int, losses: list[dict[str, float]]) -> Path:
        """Write the checkpoint to ``path`` after shifting the older ones
        (:func:`~pipeline.train.checkpoint.rotate_checkpoints`); rank 0 only."""
        if not self.dist.is_main:
            return path
        rotate_checkpoints(path)
        return save_checkpoint(
            path,
            config=self.config,
            step=step,
            generator=self.G,
            discriminator=self.D,
            ema_generator=self.G_ema,
            opt_g=self.opt_g,
            opt_d=self.opt_d,
            losses=losses,
            rng_generators=self.rngs,
            extra={"data_shape": list(self.source_shape)},
        )

    def load(self, ckpt: dict, *, restore_rng: bool) -> tuple[int, list[dict[str, float]]]:
        self.G.load_state_dict(ckpt["generator"])
        self.D.load_state_dict(ckpt["discriminator"])
        self.G_ema.load_state_dict(ckpt["ema_generator"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        step = int(ckpt["step"])
        if restore_rng:
            try:
                restore_rng_state(ckpt["rng"], self.rngs)
            except RuntimeError as exc:  # e.g. CPU checkpoint resumed on CUDA: other RNG type
                log.warning(
                    "noise RNG state not restorable on %s (%s); reseeding it -- the run "
                    "continues but will not match an uninterrupted one",
                    self.device,
                    exc,
                )
                restore_rng_state(ckpt["rng"], {"data": self.rng_data})
                self.rng_noise.manual_seed(self._noise_seed(step))
            if not self.dist.is_main:  # the checkpoint holds rank 0's noise stream
                self.rng_noise.manual_seed(self._noise_seed(step))
        return step, [dict(r) for r in ckpt["losses"]]


def _check_resumable(
    ckpt: dict, config: TrainConfig, data_shape: tuple[int, ...], path: Path
) -> None:
    try:
        saved = TrainConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as err:  # written by a version with other settings
        raise ResumeMismatch(path, [("settings", str(err), "this version's")]) from None
    diff = config.diff(saved, ignore=TrainConfig.RESUMABLE_KEYS)
    if diff:
        raise ResumeMismatch(path, [(k, old, new) for k, (new, old) in sorted(diff.items())])
    saved_shape = ckpt.get("extra", {}).get("data_shape")
    if saved_shape is not None and list(saved_shape) != list(data_shape):
        raise ResumeMismatch(path, [("data shape", tuple(saved_shape), tuple(data_shape))])


def _set_aside(skipped: list[tuple[Path, str]], *, resuming: bool, run_dir: Path) -> None:
    """Warn about each unusable checkpoint (file and reason) and rename it ``<name>.corrupt``,
    so it neither takes a slot of the rotation nor is reported again. Only the newest one is
    kept for inspection: older ``*.corrupt`` files are removed, so they cannot pile up."""
    for i, (path, reason) in enumerate(skipped):  # newest first
        if i:
            path.unlink(missing_ok=True)
            log.warning("unusable checkpoint %s: %s; removed (an older one)", path, reason)
            continue
        aside = path.with_name(path.name + ".corrupt")
        for old in run_dir.glob("*.corrupt"):
            if old != aside:
                old.unlink(missing_ok=True)
        os.replace(path, aside)
        log.warning("unusable checkpoint %s: %s; renamed %s", path, reason, aside.name)
    if skipped and not resuming:
        names = ", ".join(path.name for path, _ in skipped)
        log.warning(
            "no usable checkpoint in %s (%s): training starts again from step 0", run_dir, names
        )


def _reload(ckpt_path: Path) -> dict:
    """The newest usable checkpoint, for the non-finite-loss guard."""
    found = find_resumable(ckpt_path)
    if found.checkpoint is None:
        problems = "; ".join(f"{p}: {reason}" for p, reason in found.skipped) or "none found"
        raise NonFiniteLossError(f"non-finite loss and no checkpoint to go back to ({problems})")
    return found.checkpoint


# --- public entry point ----------------------------------------------------------------------
def train_gan(
    data: np.ndarray | Tensor,
    labels: np.ndarray | None,
    config: TrainConfig,
    run_dir: Path,
    on_log: LogFn | None = None,
    on_preview: PreviewFn | None = None,
    time_limit_s: float | None = None,
) -> TrainResult:
    """Train ``config.arch`` on ``data`` ([N, C, T] float32 in [-1, 1]) for ``config.steps`` steps.

    * Holds the run folder's lock (:func:`pipeline.train.run_lock.run_lock`) throughout: a
      second trainer on ``run_dir`` gets :class:`~pipeline.train.run_lock.RunFolderBusy`.
    * Resumes from the newest usable checkpoint: ``run_dir/checkpoint.pt``, else the older
      ``checkpoint.1.pt``, ... (config must match except for ``TrainConfig.RESUMABLE_KEYS``;
      otherwise ``ValueError`` naming the differing keys). A checkpoint that cannot be loaded
      (truncated, corrupt, incomplete, unsafe) is logged as a warning with the reason and
      renamed ``<name>.corrupt``; when none is usable, training starts again from step 0.
    * Checkpoints every ``config.checkpoint_every`` steps, at the end, and at step 0 of a fresh
      run, keeping the newest ``KEEP_CHECKPOINTS`` (:mod:`pipeline.train.checkpoint`); writes
      ``run_dir/generator.pt`` (EMA generator) at the end.
    * ``on_log(step, {*METRIC_KEYS, "steps_per_sec"})`` every ``config.log_every`` steps (loss
      values averaged since the previous call).
    * ``on_preview(step, ema_generator)`` every ``config.preview_every`` steps (eval mode, no
      grad; the generator returns audio ``[B, C, T]``), e.g. to log audio and spectrograms.
    * ``config.augment_noise_copies > 0``: trains on that many noisy copies of every bar
      (:func:`pipeline.train.augment.add_noise_copies`, seeded by ``config.seed``).
    * Under ``torchrun`` (``WORLD_SIZE > 1``) trains data-parallel; see the module docstring.
    * SIGTERM or SIGINT: the current step finishes, a checkpoint is written, the previous
      handlers are restored, the line "stopped at step N; checkpoint saved to PATH; run the
      same command to resume" is logged as a warning and :class:`TrainingInterrupted` (a
      ``SystemExit``, code 143 or 130) is raised. A second SIGINT stops at once.
    * ``time_limit_s``: stop after the step that passes this many seconds since the call began,
      checkpoint, write the generator and return normally (``steps_done < config.steps``); a
      later call resumes. Under ``torchrun`` the ranks stop at the same step.
    * Non-finite losses: the last checkpoint is reloaded (random streams continue, so a
      different batch/noise is drawn) and training continues; after
      ``MAX_CONSECUTIVE_FAILURES`` failures without getting past the failing step a
      :class:`NonFiniteLossError` (``RuntimeError``) is raised.
    """
    deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT_NAME
    gen_path = run_dir / GENERATOR_NAME
    dist_info, device = distributed.setup(config.resolved_device())
    lock = ExitStack()
    try:
        if dist_info.is_main:
            lock.enter_context(run_lock(run_dir))
            for stale in remove_stale_temporaries(run_dir):  # left by a killed trainer
                log.info("removed %s, left by an earlier trainer that was killed", stale.name)
        data_t, labels_t = _prepare_data(data, labels, config)
        source_shape = tuple(data_t.shape)
        found = find_resumable(ckpt_path)
        existing = found.checkpoint
        if existing is not None:
            _check_resumable(existing, config, source_shape, found.path)
        distributed.barrier(dist_info)  # all ranks have looked before rank 0 writes step 0
        if dist_info.is_main:
            _set_aside(found.skipped, resuming=found.path is not None, run_dir=run_dir)
        if config.augment_noise_copies > 0:
            data_t = add_noise_copies(
                data_t, config.augment_noise_copies, config.augment_snr_db, config.seed
            )
            if labels_t is not None:
                labels_t = labels_t.repeat(config.augment_noise_copies)
        data_t, labels_t, resident = _place_data(data_t, labels_t, device)

        fork_devices = (
            [device.index if device.index is not None else torch.cuda.current_device()]
            if device.type == "cuda"
            else []
        )
        prev_benchmark = torch.backends.cudnn.benchmark
        with torch.random.fork_rng(devices=fork_devices), _stop_flag() as stop:
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True
            try:
                trainer = _Trainer(
                    data_t, labels_t, config, device, resident, dist_info, source_shape
                )
                del data_t
                if existing is not None:
                    step, history = trainer.load(existing, restore_rng=True)
                    log.info("resuming from %s at step %d", found.path, step)
                else:
                    step, history = 0, []
                    trainer.save(ckpt_path, 0, history)
                del existing, found
                start = step
                result = _run(
                    trainer,
                    config,
                    ckpt_path,
                    step,
                    history,
                    on_log,
                    on_preview,
                    stop,
                    deadline,
                )
            finally:
                torch.backends.cudnn.benchmark = prev_benchmark

        if dist_info.is_main:
            save_generator(gen_path, trainer.G_ema, config)
        distributed.barrier(dist_info)  # outputs exist when any rank returns
    finally:
        lock.close()
        distributed.teardown(dist_info)
    return TrainResult(
        steps_done=result[0],
        losses=result[1],
        checkpoint_path=ckpt_path,
        generator_path=gen_path,
        resumed_from=start,
        recoveries=result[2],
        config=config,
    )


def _run(
    trainer: _Trainer,
    config: TrainConfig,
    ckpt_path: Path,
    step: int,
    history: list[dict[str, float]],
    on_log: LogFn | None,
    on_preview: PreviewFn | None,
    stop: dict[str, int],
    deadline: float | None,
) -> tuple[int, list[dict[str, float]], int]:
    dist_info = trainer.dist
    main = dist_info.is_main
    failures = 0
    fail_at = -1
    recoveries = 0
    last_saved = step
    window: list[list[float]] = []
    t_window = time.perf_counter()
    last_line = t_window
    steps_in_window = 0
    bar = tqdm(
        total=config.steps,
        initial=step,
        unit="step",
        dynamic_ncols=True,
        disable=not (main and sys.stderr.isatty()),
        desc="train",
    )
    if step == 0 and on_preview is not None and main and config.preview_every:
        trainer.preview(0, on_preview)  # the untrained generator: the baseline for progress
    try:
        while step < config.steps:
            metrics_t = trainer.step(step)
            out_of_time = deadline is not None and time.perf_counter() >= deadline
            if dist_info.enabled:
                # one collective per step: rank-averaged metrics, "any rank got SIGTERM/SIGINT"
                # and "any rank is out of time"
                flags = [float(stop["signum"] > 0), float(out_of_time)]
                flags_t = torch.tensor(flags, device=metrics_t.device)
                packed = torch.cat([metrics_t.float(), flags_t])
                packed = distributed.all_reduce_mean(packed, dist_info)
                metrics_t, flags_t = packed[:-2], packed[-2:] > 0
                if flags_t[0] and not stop["signum"]:
                    stop["signum"] = signal.SIGTERM  # another rank's signal
                out_of_time = bool(flags_t[1])
            values = metrics_t.tolist()
            if not all(math.isfinite(v) for v in values):
                failures += 1
                fail_at = max(fail_at, step + 1)
                bad = dict(zip(METRIC_KEYS, values, strict=True))
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    raise NonFiniteLossError(
                        f"non-finite loss at step {step + 1} ({bad}); {failures} consecutive "
                        f"failures after reloading {ckpt_path} (last good step {last_saved}). "
                        "Training diverged or the data contains NaN/Inf; try a lower learning "
                        "rate, check the input data, or start from an earlier checkpoint."
                    )
                log.warning(
                    "non-finite loss at step %d (%s); reloading %s (attempt %d/%d)",
                    step + 1,
                    bad,
                    ckpt_path,
                    failures,
                    MAX_CONSECUTIVE_FAILURES,
                )
                step, history = trainer.load(_reload(ckpt_path), restore_rng=False)
                bar.n = step
                bar.refresh()
                recoveries += 1
                window.clear()
                continue

            step += 1
            steps_in_window += 1
            if step >= fail_at:
                failures = 0
            record = {"step": step, **dict(zip(METRIC_KEYS, values, strict=True))}
            history.append(record)
            window.append(values)
            bar.update(1)

            if step % config.checkpoint_every == 0 or step == config.steps or stop["signum"]:
                trainer.save(ckpt_path, step, history)
                last_saved = step

            if step % config.log_every == 0:
                now = time.perf_counter()
                means = np.mean(np.asarray(window), axis=0) if window else values
                metrics = {k: float(v) for k, v in zip(METRIC_KEYS, means, strict=True)}
                metrics["steps_per_sec"] = steps_in_window / max(now - t_window, 1e-9)
                bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items()}, refresh=False)
                if bar.disable and main and now - last_line >= LOG_LINE_SECONDS:
                    last_line = now  # no terminal (a job log): a progress line now and then
                    log.info(
                        "step %d/%d, %.2f steps/s, loss_d %.4g, loss_g %.4g",
                        step,
                        config.steps,
                        metrics["steps_per_sec"],
                        metrics["loss_d"],
                        metrics["loss_g"],
                    )
                if on_log is not None and main:
                    on_log(step, metrics)
                window.clear()
                steps_in_window = 0
                t_window = now

            if (
                on_preview is not None
                and main
                and config.preview_every
                and step % config.preview_every == 0
            ):
                trainer.preview(step, on_preview)

            if stop["signum"]:
                if last_saved != step:
                    trainer.save(ckpt_path, step, history)
                distributed.barrier(dist_info)
                interrupted = TrainingInterrupted(step, ckpt_path, stop["signum"])
                if main:
                    log.warning("%s", interrupted)
                raise interrupted
            if out_of_time:
                log.info("time limit reached after step %d of %d", step, config.steps)
                break
        if last_saved != step:  # e.g. resumed with steps <= checkpoint step
            trainer.save(ckpt_path, step, history)
    finally:
        bar.close()
    return step, history, recoveries
