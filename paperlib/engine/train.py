"""Training engine: ``fit(cfg) -> run_dir``, one training run from its configuration to ``results.json``.

Paper Sec. 7.3 and the official training code. Defaults are the official settings: Adam, lr = 5e-6 x world size,
betas (0.9, 0.999), eps 1e-7 under mixed precision (1e-8 in fp32), weight decay 0, linear warm-up from 1% of the lr
over the first 1000 iterations then constant (:func:`lr_factor`), gradient-norm clip 1.0, batch 10 per process,
cross-entropy without weights or smoothing, early stopping on valid ``accuracy_1`` (top-1 without tolerance), seeds
1337 + rank, DistributedSampler + SyncBatchNorm + DDP.

Where things are: :func:`fit` (here) runs the pieces in order, and :class:`Trainer` (here) holds a run's moving parts:
evaluation, checkpoints, the stop rules. The step, the epoch, the batches, the plateau detector and the progress bar
are in :mod:`paperlib.engine.loop`; what the step optimises (``loss, logs = objective(batch, step)``) in
:mod:`paperlib.engine.objectives` (the paper's cross-entropy) and :mod:`paperlib.engine.recipes` (the plateau recipe);
what is saved and restored in :mod:`paperlib.engine.checkpointing`; the process group in
:mod:`paperlib.engine.distributed`; the run directory in :mod:`paperlib.engine.runs`.

Deviations (each is a config switch where it matters):
- ``betas``: the paper prints (0.99, 0.999); the official configs use (0.9, 0.999), which is the default here.
- Precision ``auto``: bf16 autocast on CUDA (no GradScaler needed), fp32 on CPU. ``precision=fp16`` reproduces the
  paper's V100 setting (fp16 autocast + GradScaler), which the official code used.
- Patience counts evaluations (``eval_every_steps=0`` evaluates once per epoch, as the official code, so it counts
  epochs), or, with ``patience_steps``, optimiser steps without a new best counted only once the training loss has
  left chance (:func:`paperlib.engine.loop.patience_ran_out`): equal rules for arms that leave their plateau at
  different steps, where equal step counts would favour the fast one; with ``patience_counts_valid_loss`` a new
  lowest valid loss counts as progress too (small valid sets make top-1 alone a noisy stop signal; the best
  checkpoint is still the best top-1). ``max_steps`` is then the run's cap, and
  ``results.json`` says whether a capped run was ``still_improving``. ``time_budget_min`` stops runs by minutes. With
  a time budget the progress bar counts minutes of the budget (steps in its postfix), else steps.
- Checkpoints: ``last.pt`` and ``best.pt`` (the official code keeps the best only), written atomically (temporary
  file, fsync, rename) in paperlib's checkpoint format (:mod:`paperlib.model.checkpoints`), loadable with
  ``torch.load(weights_only=True)``: RNG states are stored as tensors and lists, the config as plain data. Resume
  restores model, optimiser, scaler, scheduler, step/epoch/position in the epoch, best metric, early-stopping counter,
  time spent, and every rank's python/numpy/torch/CUDA RNG states; evaluation runs under
  :func:`paperlib.engine.evaluate.preserved_rng`, so evaluating never changes the training trajectory. On CPU a resumed
  run ends with weights identical to an uninterrupted one (tested): the sampler is seeded by (seed, epoch), the
  datasets seed each item by (seed, epoch, index), and dropout draws from the restored global RNG. ``metrics.jsonl``
  holds each step once: a resume drops what was logged after its checkpoint before training those steps again.
- Fine-tuning (``init_from``): weights from a paperlib or official checkpoint; ``init_carry_optimizer=true`` carries
  the Adam moments, the scaler and the scheduler position as the official code does (so there is no new warm-up; the
  optimiser state of an official file is re-indexed by parameter name), ``false`` starts them fresh. lr, betas and eps
  follow this run's config. Epoch and best metric restart at 0; the source checkpoint is recorded by
  reference (``init_from.json``: path, size, sha256), not copied: a run keeps two checkpoint files, last.pt and best.pt.
- Frozen backbones (``model.train_*_backbone=false``) stay in eval mode while training (BatchNorm statistics frozen).
- On CPU (gloo) SyncBatchNorm cannot run (PyTorch supports it on CUDA only): BatchNorm statistics are per process,
  and rank 0's buffers are broadcast before every evaluation and checkpoint, so all ranks hold identical models.
- Partial initialisation (not in the official code): ``init_strict=false`` loads what fits and keeps keys that are
  missing or of another shape at their fresh values (a 3-class head fine-tuned from a 21-class run, positional tables
  of another window length); ``init_skip`` names key prefixes never loaded ("feature extractors not pre-trained").
  Both are logged (``init_partial`` event with the keys) and need ``init_carry_optimizer=false``.
- Sanity tools: ``overfit_batches=N`` trains (and validates) on the same first N batches; a plateau detector warns
  when the loss stays near ln(C) (chance) for long, with the steps and minutes spent there.
- The plateau recipe (not in the paper or the official code; preset ``cpu-recipe``): ``recipe_init`` applies
  :func:`paperlib.engine.recipes.time_anchored_init` to a fresh head before any ``init_from`` weights are
  loaded, and ``aux_xcorr_weight`` / ``aux_match_weight`` add training-time losses; both come with the recipe's
  training objective (:class:`paperlib.engine.recipes.RecipeObjective`), whose logged ``loss`` is the paper's (so the
  plateau detector sees it; validation and checkpoints use the paper's model) next to ``aux_loss``, the weighted aux
  sum, and each unweighted term (``aux_xcorr``, ``aux_match``). Every variant gets the parts its architecture has;
  the ``recipe_init`` event lists them.

Multi-GPU and multi-node use (the paper trained on 8 GPUs; lr scales with the world size)::

    # one machine, 8 GPUs
    torchrun --standalone --nproc_per_node 8 -m paperlib train --preset paper-lrs3
    # two machines x 4 GPUs: run on each node, same rendezvous id and endpoint (host:port of a node that all can reach)
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv-backend c10d --rdzv-endpoint node0.example:29400 \\
        --rdzv-id sparsesync-lrs3 -m paperlib train --preset paper-lrs3
    # SLURM without torchrun: RANK/WORLD_SIZE/LOCAL_RANK are taken from SLURM_PROCID/SLURM_NPROCS/SLURM_LOCALID;
    # MASTER_ADDR and MASTER_PORT must then be exported by the batch script.

Only rank 0 writes the run directory; every rank evaluates a disjoint shard of valid/test and the logits are gathered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from paperlib.core.config import apply_overrides, config_hash, from_dict, to_dict
from paperlib.core.io import write_json_atomic
from paperlib.core.provenance import env_info
from paperlib.data.datasets import build_dataset
from paperlib.engine import recipes, runs
from paperlib.engine.checkpointing import (TrainState, carry_optimizer_state, load_init_weights,
                                           load_training_checkpoint, rank_rng, resume_checkpoint_path, rng_state,
                                           seed_everything, set_rng_state, trainable_names)
from paperlib.engine.config import RunConfig, TrainConfig, check_run_config, read_run_config, resolve
from paperlib.engine.distributed import (DistInfo, all_gather_object, any_rank, broadcast_object, enter_training,
                                         init_distributed, parameter_digest, sync_buffers)
from paperlib.engine.evaluate import evaluate, evaluate_dataset, preserved_rng, unwrap
from paperlib.engine.loop import (PlateauDetector, PlateauWarning, Progress, epoch_batches, eval_loader,
                                  last_progress_step, patience_ran_out, progress_plan, still_improving, train_loader,
                                  train_one_epoch)
from paperlib.engine.objectives import CrossEntropyObjective, TrainingObjective
from paperlib.model.checkpoints import save_checkpoint
from paperlib.model.sparsesync import build_model, to_channels_last
from paperlib.model.weights import load_checkpoint

SPLITS = ("train", "valid", "test")
INIT_SOURCE_FILE = "init_from.json"  # a fine-tuned run's reference to its source checkpoint (record_init_source)


# ---------------------------------------------------------------------------------------------------------------------
# the process: device, precision, learning-rate schedule


def lr_factor(step: int, warmup_steps: int = 1000, start_factor: float = 0.01) -> float:
    """Multiplier of the base lr after ``step`` optimiser steps: linear from ``start_factor`` to 1, then constant.

    Matches the official ``SequentialLR([LinearLR(start_factor, total_iters=warmup), ConstantLR(1)])`` stepped per
    iteration.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return start_factor + (1.0 - start_factor) * step / warmup_steps


def lr_schedule(optimizer: torch.optim.Optimizer, tc: TrainConfig,
                position: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-iteration warm-up schedule (:func:`lr_factor` of the optimiser steps taken), started at ``position``
    steps: the constructor sets every group's lr to ``initial_lr x lr_factor(position)`` (a fresh optimiser's lr is its
    ``initial_lr``; a carried one must hold ``initial_lr`` already)."""
    warm, start = tc.warmup_steps, tc.warmup_start_factor
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warm, start), last_epoch=position - 1)


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use train.device=cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA, fp32 elsewhere; fp16 needs CUDA (GradScaler)."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"train.precision must be auto|fp32|bf16|fp16, got {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("train.precision=fp16 (GradScaler) needs a CUDA device; use fp32 or bf16 on CPU")
    return precision


def adam_eps(cfg: TrainConfig, precision: str) -> float:
    if cfg.eps is not None:
        return cfg.eps
    return 1e-8 if precision == "fp32" else 1e-7


@dataclasses.dataclass
class Placement:
    """Where this process trains: its rank in the group, its device, its precision."""

    dinfo: DistInfo
    device: torch.device
    precision: str

    @property
    def main(self) -> bool:
        return self.dinfo.is_main


def setup_process(tc: TrainConfig) -> Placement:
    """Join the process group, pick the device and the precision, seed this rank's RNGs (seed + rank)."""
    dinfo = init_distributed(tc.ddp_timeout_s, tc.device)
    device = resolve_device(tc.device, dinfo.local_rank)
    precision = resolve_precision(tc.precision, device)
    seed_everything(tc.seed + dinfo.rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # official; fixed input shapes
    return Placement(dinfo, device, precision)


# ---------------------------------------------------------------------------------------------------------------------
# the run directory and its log


def open_run_dir(cfg: Any, where: Placement, ckpt: Mapping[str, Any] | None, run_dir: str | os.PathLike | None,
                 held: contextlib.ExitStack) -> Path:
    """The run's directory on every rank: a resumed run's own (locked by :func:`fit` before its checkpoint was read),
    else a new one (``run_dir``, which must not exist, or ``run_root/<name>-<time>``), locked by rank 0 (the lock is
    entered into ``held``) before it writes ``config.json`` and ``env.json``."""
    tc = cfg.train
    out_dir: Path | None = None
    if ckpt is not None:
        out_dir = Path(ckpt["_path"]).parent.parent
        if to_dict(cfg.model) != ckpt["run_config"]["model"]:
            raise ValueError(f"{ckpt['_path']}: the checkpoint's model config differs from the one given; resume with "
                             "the run's own config (python -m paperlib train --resume RUN_DIR)")
    elif where.main:
        if run_dir is not None:
            out_dir = Path(run_dir)
            out_dir.mkdir(parents=True, exist_ok=False)
        else:
            out_dir = runs.new_run_dir(tc.run_root, tc.name)
        held.enter_context(runs.lock_run_dir(out_dir))
    out_dir = Path(broadcast_object(str(out_dir) if out_dir is not None else None, where.dinfo))
    if where.main and ckpt is None:
        write_json_atomic(out_dir / runs.CONFIG_FILE, to_dict(cfg))
        write_json_atomic(out_dir / runs.ENV_FILE, env_info(str(where.device)) | {
            "world_size": where.dinfo.world_size, "precision": where.precision})
    return out_dir


def open_metrics(out_dir: Path, tc: TrainConfig, where: Placement,
                 ckpt: Mapping[str, Any] | None) -> runs.MetricsLogger:
    """Rank 0's metrics logger (a silent one elsewhere). A resumed run first drops what it logged after the checkpoint
    it resumes from (:func:`paperlib.engine.runs.rewind_metrics`): it logs those steps again."""
    if not where.main:
        return runs.MetricsLogger(None)
    if ckpt is None:
        return runs.MetricsLogger(out_dir, tensorboard=tc.tensorboard)
    step = int(ckpt["state"]["step"])
    runs.rewind_metrics(out_dir, ckpt.get("metrics_records"), step)
    return runs.MetricsLogger(out_dir, tensorboard=tc.tensorboard, purge_step=step + 1)


def log_event(logger: runs.MetricsLogger, step: int, event: Mapping[str, Any] | None) -> None:
    """Log ``event`` (``{"event": name, ...}``) as an event record at ``step``; None logs nothing."""
    if event:
        logger.log({"phase": "event", "event": event["event"], "step": step, **event})


# ---------------------------------------------------------------------------------------------------------------------
# model, objective, optimiser: fresh, fine-tuned or resumed


def training_objective(model: nn.Module, cfg: Any) -> TrainingObjective:
    """What the training step optimises (:mod:`paperlib.engine.objectives`): the recipe's objective when the run
    configures one (``train.recipe_init``, ``train.aux_*``), else the paper's cross-entropy."""
    return recipes.recipe_objective(model, cfg) or CrossEntropyObjective(model)


def initial_weights(objective: TrainingObjective, cfg: Any,
                    ckpt: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Initial weights of a fresh run, set before its run directory exists (a fine-tuning source that cannot be read
    or does not fit leaves no folder behind): the objective's initialisation, then the fine-tuning source's weights
    (``train.init_from``). A resumed run gets its weights with its state. Returns the events to log and what the
    source carries (optimiser, scheduler and scaler states; see
    :func:`paperlib.engine.checkpointing.load_init_weights`)."""
    tc = cfg.train
    if ckpt is not None:
        return [], {}
    events = [e for e in (objective.initialise(),) if e]
    if not tc.init_from:
        return events, {}
    carried = load_init_weights(objective.model, tc.init_from, strict=tc.init_strict, skip=tc.init_skip)
    if "kept_fresh" in carried:
        if tc.init_carry_optimizer:
            raise ValueError(f"{tc.init_from}: only part of the weights were loaded ({len(carried['kept_fresh'])} "
                             "keys kept fresh); set train.init_carry_optimizer=false")
        events.append({"event": "init_partial", "path": tc.init_from, "kept_fresh": carried["kept_fresh"],
                       "ignored": carried["ignored"]})
    return events, carried


def record_init_source(out_dir: Path, init_from: str) -> None:
    """``init_from.json``: the fine-tuning source by reference (absolute path, size, sha256), not a copy: a campaign
    run keeps only its own ``last.pt`` and ``best.pt`` (its parent's ``best.pt`` is the source)."""
    src = Path(init_from).resolve()
    digest = hashlib.sha256()
    with open(src, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    write_json_atomic(out_dir / INIT_SOURCE_FILE, {"path": str(src), "size": src.stat().st_size,
                                                   "sha256": digest.hexdigest()})


def place_objective(objective: TrainingObjective, tc: TrainConfig, where: Placement) -> TrainingObjective:
    """The objective (and the model in it) on the device; SyncBatchNorm under DDP on CUDA (converted in place)."""
    objective.to(where.device)
    if tc.memory_format == "channels_last" or (tc.memory_format == "auto" and where.device.type == "cpu"):
        to_channels_last(objective.model)
    if where.dinfo.enabled and tc.sync_batchnorm and where.device.type == "cuda":
        objective = nn.SyncBatchNorm.convert_sync_batchnorm(objective)
    return objective


@dataclasses.dataclass
class Optimisation:
    """The optimisation state of a run: what a checkpoint saves besides the model."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    state: TrainState
    plateau: PlateauDetector
    lr: float  # the base lr: base_lr x world size (when scaled)


def build_optimisation(model: nn.Module, cfg: Any, where: Placement, ckpt: Mapping[str, Any] | None,
                       carried: Mapping[str, Any], logger: runs.MetricsLogger) -> Optimisation:
    """Adam, the warm-up schedule, the GradScaler, the counters and the plateau detector: fresh, carried from the
    fine-tuning source (official fine-tuning: Adam moments and the schedule's position, so no new warm-up), or
    restored from ``ckpt`` (with the model's weights and this rank's RNG states)."""
    tc, dinfo = cfg.train, where.dinfo
    params = [p for p in model.parameters() if p.requires_grad]
    world_lr = tc.base_lr * (dinfo.world_size if tc.scale_lr_by_world_size else 1)
    optimizer = torch.optim.Adam(params, lr=world_lr, betas=tuple(tc.betas), eps=adam_eps(tc, where.precision),
                                 weight_decay=tc.weight_decay)
    scaler = torch.amp.GradScaler(where.device.type, enabled=where.precision == "fp16")
    plateau = PlateauDetector(cfg.geometry.num_classes, tc.plateau_rel_tol, tc.plateau_warn_steps,
                              tc.plateau_warn_minutes * 60)
    carry = ckpt is None and bool(tc.init_from) and tc.init_carry_optimizer
    position = 0
    if ckpt is not None:
        unwrap(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        position = int(ckpt["scheduler"]["last_epoch"])
    elif carry:
        position = carry_optimizer_state(optimizer, carried, world_lr, tc.init_from)
    scheduler = lr_schedule(optimizer, tc, position)
    if ckpt is None:
        if carry and "scaler" in carried and scaler.is_enabled():
            scaler.load_state_dict(carried["scaler"])
        if carry:
            log_event(logger, 0, {"event": "init_from", "path": tc.init_from, "carried_step": position})
        return Optimisation(optimizer, scheduler, scaler, TrainState(), plateau, world_lr)
    scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    state = TrainState(**ckpt["state"])
    state.resumes += 1
    state.stop_reason = None
    plateau.load_state_dict(ckpt.get("plateau", {}))
    rng = rank_rng(ckpt, dinfo.rank)
    if rng is not None:
        set_rng_state(rng)
    logger.log({"event": "resume", "step": state.step, "epoch": state.epoch, "from": ckpt["_path"],
                "phase": "event", "config": to_dict(cfg)})
    return Optimisation(optimizer, scheduler, scaler, state, plateau, world_lr)


# ---------------------------------------------------------------------------------------------------------------------
# data


@dataclasses.dataclass
class TrainData:
    """The splits of a run and how its epochs are cut into batches (``overfit``: the fixed sanity batches)."""

    datasets: Mapping[str, Dataset]
    overfit: list[Any] | None
    steps_per_epoch: int
    pin: bool

    @classmethod
    def build(cls, datasets: Mapping[str, Dataset], tc: TrainConfig, where: Placement) -> "TrainData":
        pin = where.device.type == "cuda"
        train_ds = datasets["train"]
        overfit = None
        if tc.overfit_batches > 0:
            first = epoch_batches(len(train_ds), tc.batch_size, 0, tc.seed, where.dinfo)[:tc.overfit_batches]
            with preserved_rng():
                overfit = list(train_loader(train_ds, first, 0, tc.seed, pin))
        steps = len(overfit) if overfit is not None else len(
            epoch_batches(len(train_ds), tc.batch_size, 0, tc.seed, where.dinfo))
        if steps == 0:
            raise ValueError(f"the train split is empty ({len(train_ds)} items)")
        return cls(datasets, overfit, steps, pin)

    def epoch(self, state: TrainState, tc: TrainConfig, dinfo: DistInfo) -> Iterable[Mapping[str, Any]]:
        """The batches left in ``state``'s epoch (the sampler order of (seed, epoch); workers seeded by epoch and
        rank)."""
        if self.overfit is not None:
            return self.overfit[state.step_in_epoch:]
        ds = self.datasets["train"]
        if hasattr(ds, "set_epoch"):  # per-item augmentation seeded by (seed, epoch, index)
            ds.set_epoch(state.epoch)
        batches = epoch_batches(len(ds), tc.batch_size, state.epoch, tc.seed, dinfo)[state.step_in_epoch:]
        loader_seed = (tc.seed * 1_000_003 + state.epoch) * 1024 + dinfo.rank
        return iter(train_loader(ds, batches, tc.num_workers, loader_seed, self.pin))

    def valid(self, tc: TrainConfig, dinfo: DistInfo) -> Iterable[Mapping[str, Any]]:
        """This rank's valid batches (the sanity batches in overfit mode)."""
        if self.overfit is not None:
            return self.overfit
        return eval_loader(self.datasets["valid"], tc.eval_batch_size or tc.batch_size, tc.num_workers, dinfo,
                           self.pin)


# ---------------------------------------------------------------------------------------------------------------------
# the run: clock, evaluation, checkpoints, stop rules


class Trainer:
    """A training run's moving parts once everything is built: every rank makes the same calls (the collectives
    inside line up), rank 0 alone writes.

    ``model`` is the paper's model (what is evaluated and saved); ``step_module`` is what the step calls: the training
    objective, DDP-wrapped under torchrun.
    """

    def __init__(self, cfg: Any, where: Placement, out_dir: Path, logger: runs.MetricsLogger, model: nn.Module,
                 step_module: nn.Module, opt: Optimisation, data: TrainData):
        self.cfg, self.tc, self.where = cfg, cfg.train, where
        self.out_dir, self.logger = out_dir, logger
        self.model, self.step_module = model, step_module
        self.opt, self.state, self.data = opt, opt.state, data
        self.num_classes = cfg.geometry.num_classes
        self.last_valid: dict[str, Any] | None = None
        self.evaluated_at = -1
        self.progress: Progress | None = None
        self.start_clock()

    # --- the clock: training and evaluation count, start-up does not ------------------------------------------------

    def start_clock(self) -> None:
        self.t_start = time.monotonic()
        budget = self.tc.time_budget_min
        self.deadline_at = None if budget is None else self.t_start + budget * 60 - self.state.elapsed_s

    def elapsed(self) -> float:
        return self.state.elapsed_s + (time.monotonic() - self.t_start)

    def deadline_passed(self) -> bool:
        """Has the time budget run out? Under DDP the ranks agree (any rank's clock past it stops all of them)."""
        if self.deadline_at is None:
            return False
        return any_rank(time.monotonic() >= self.deadline_at, self.where.dinfo, self.where.device)

    def stop_reason(self) -> str | None:
        tc, state = self.tc, self.state
        if tc.max_steps is not None and state.step >= tc.max_steps:
            return "max_steps"
        if self.deadline_passed():
            return "time_budget"
        learning_since = self.opt.plateau.off_chance_since
        if tc.stop_after_plateau_steps is not None and self.opt.plateau.left_at_step is not None and \
                state.step - self.opt.plateau.left_at_step >= tc.stop_after_plateau_steps:
            return "left_plateau"
        if tc.patience_steps is not None:
            if patience_ran_out(state.step, self.last_progress(), learning_since, tc.patience_steps):
                return "early_stopping"
        elif state.evals_since_best >= tc.patience:
            return "early_stopping"
        if state.epoch >= tc.epochs:
            return "epochs"
        return None

    def still_improving(self) -> bool:
        """Had patience not yet run out when the run stopped (so a run ended by its cap may have had more to give)? A
        run still at chance was not improving."""
        tc, state = self.tc, self.state
        if self.opt.plateau.off_chance_since is None:
            return False
        if tc.patience_steps is not None:
            return still_improving(state.step, self.last_progress(), tc.patience_steps)
        return state.evals_since_best < tc.patience

    def last_progress(self) -> int:
        """The step of the last evaluation patience counts as progress (:func:`last_progress_step`)."""
        state = self.state
        return last_progress_step(state.best_step, state.best_loss_step, self.tc.patience_counts_valid_loss)

    def next_stop_step(self) -> int | None:
        """The next step where the step loop must hand back: ``max_steps``, the next evaluation or checkpoint."""
        tc, step = self.tc, self.state.step
        targets = [tc.max_steps] if tc.max_steps is not None else []
        for every in (tc.eval_every_steps, tc.checkpoint_every_steps):
            if every > 0:
                targets.append((step // every + 1) * every)
        return min(targets) if targets else None

    # --- what is logged and shown -------------------------------------------------------------------------------------

    def start(self, fresh: bool) -> None:
        """The progress bar, and the ``start`` event of a ``fresh`` run (not a resumed one)."""
        tc, state = self.tc, self.state
        if self.where.main and tc.progress:
            plan = progress_plan(tc.max_steps, tc.time_budget_min, tc.epochs, self.data.steps_per_epoch)
            self.progress = Progress(plan, f"train {self.out_dir.name}", state.step, state.elapsed_s, tc.max_steps)
        if self.where.main and fresh:
            self.logger.log({"phase": "event", "event": "start", "step": 0, "world_size": self.where.dinfo.world_size,
                             "device": str(self.where.device), "precision": self.where.precision, "lr": self.opt.lr,
                             "steps_per_epoch": self.data.steps_per_epoch,
                             "trainable_params": sum(p.numel() for p in self.model.parameters() if p.requires_grad)})

    def log_train(self, rec: dict[str, Any]) -> None:
        enter_training(self.where.dinfo)  # before the first train record: from here a dead rank ends the others
        state, plateau = self.state, self.opt.plateau
        rec = {"phase": "train", "step": state.step, "epoch": state.epoch, "elapsed_s": self.elapsed(), **rec}
        msg = plateau.update(state.step, rec["loss"], rec["elapsed_s"])
        rec["at_chance"] = plateau.at_chance(rec["loss"])
        self.logger.log(rec)
        if msg and self.where.main:
            warnings.warn(msg, PlateauWarning, stacklevel=2)
            self.logger.log({"phase": "event", "event": "plateau", "step": state.step, "message": msg})
        if self.progress is not None:
            self.progress.note(loss=f"{rec['loss']:.3f}", lr=f"{rec['lr']:.2e}")

    def show_progress(self) -> None:
        enter_training(self.where.dinfo)  # the training-phase collective timeout from the first step on
        if self.progress is not None:
            self.progress.advance(self.state.step, self.elapsed())

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        self.logger.close()

    # --- evaluation and checkpoints -----------------------------------------------------------------------------------

    def save(self, name: str, metrics: Mapping[str, Any] | None = None) -> None:
        """last.pt / best.pt: model + everything a resume needs (collective: every rank calls it, rank 0 writes)."""
        state, opt, dinfo = self.state, self.opt, self.where.dinfo
        state.elapsed_s, self.t_start = self.elapsed(), time.monotonic()  # fold the time spent into the saved state
        sync_buffers(self.model, dinfo)
        rngs = all_gather_object(rng_state(), dinfo)  # every rank's RNG streams
        if not self.where.main:
            return
        save_checkpoint(self.out_dir / runs.CHECKPOINT_DIR / f"{name}.pt", unwrap(self.model), self.cfg.model,
                        run_config=to_dict(self.cfg), optimizer=opt.optimizer.state_dict(),
                        scheduler=opt.scheduler.state_dict(), scaler=opt.scaler.state_dict(),
                        state=dataclasses.asdict(state), plateau=opt.plateau.state_dict(), rng=rngs,
                        param_names=trainable_names(self.model), world_size=dinfo.world_size,
                        precision=self.where.precision, best_metric=state.best_metric, step=state.step,
                        epoch=state.epoch,
                        metrics={k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))},
                        metrics_records=self.logger.records, meta={"kind": "train", "run_dir": str(self.out_dir)})

    def validate(self) -> dict[str, Any]:
        sync_buffers(self.model, self.where.dinfo)
        res = evaluate(unwrap(self.model), self.data.valid(self.tc, self.where.dinfo), self.where.device,
                       self.num_classes, self.where.precision, progress=self.tc.progress and self.where.main,
                       desc="valid")
        self.logger.log({"phase": "valid", "step": self.state.step, "epoch": self.state.epoch,
                         "elapsed_s": self.elapsed(), **res})
        return res

    def validate_and_save(self) -> None:
        """Evaluate valid; a new best early-stopping metric saves best.pt (else patience runs down); then last.pt."""
        state = self.state
        self.last_valid = self.validate()
        self.evaluated_at = state.step
        metric = self.last_valid[self.tc.early_stop_metric]
        self.note_valid_loss()
        if metric > state.best_metric:
            state.best_metric, state.best_step, state.evals_since_best = metric, state.step, 0
            self.save("best", self.last_valid)
        else:
            state.evals_since_best += 1
        self.save("last", self.last_valid)

    def note_valid_loss(self) -> None:
        """Record a new lowest valid loss (progress for patience under ``patience_counts_valid_loss``)."""
        state, loss = self.state, self.last_valid.get("loss", math.nan)
        if loss < state.best_valid_loss:
            state.best_valid_loss, state.best_loss_step = float(loss), state.step

    # --- training ---------------------------------------------------------------------------------------------------

    def run_epoch(self) -> None:
        """Train through the rest of the current epoch, evaluating and checkpointing when due; hand back early when a
        stop rule fires."""
        tc, state, where = self.tc, self.state, self.where
        batches = self.data.epoch(state, tc, where.dinfo)
        while True:
            out = train_one_epoch(self.step_module, batches, self.opt.optimizer, self.opt.scheduler, self.opt.scaler,
                                  state=state, device=where.device, precision=where.precision,
                                  clip_grad_norm=tc.clip_grad_norm, log_every=tc.log_every,
                                  stop_at_step=self.next_stop_step(),
                                  deadline=self.deadline_passed if self.deadline_at is not None else None,
                                  on_log=self.log_train, on_step=self.show_progress)
            if out["exhausted"]:
                state.epoch += 1
                state.step_in_epoch = 0
            due = out["exhausted"] if tc.eval_every_steps <= 0 else state.step % tc.eval_every_steps == 0
            if due and state.step > 0 and self.evaluated_at != state.step:
                self.validate_and_save()
            elif tc.checkpoint_every_steps > 0 and state.step % tc.checkpoint_every_steps == 0 and out["steps"]:
                self.save("last", self.last_valid)
            if out["exhausted"] or self.stop_reason() is not None:
                return

    def finish(self, reason: str, datasets: Mapping[str, Dataset]) -> None:
        """Final valid (unless just done) and last.pt, then the test split with the best weights, then
        ``results.json``."""
        tc, state, dinfo = self.tc, self.state, self.where.dinfo
        state.stop_reason = reason
        if self.evaluated_at != state.step and state.step > 0:
            self.save("last", self.last_valid)  # RNG captured before the final evaluation: a resume continues from here
            self.last_valid = self.validate()
            self.note_valid_loss()
            if self.last_valid[tc.early_stop_metric] > state.best_metric:
                state.best_metric, state.best_step = self.last_valid[tc.early_stop_metric], state.step
                self.save("best", self.last_valid)
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        results: dict[str, Any] = {"stop_reason": reason, "steps": state.step, "epochs": state.epoch,
                                   "elapsed_s": self.elapsed(), "best_step": state.best_step,
                                   "best_valid_loss_step": state.best_loss_step,
                                   f"best_valid_{tc.early_stop_metric}": state.best_metric,
                                   "valid_last": self.last_valid,
                                   # resume is where a run continued from, not what it is: a resumed run keeps its hash
                                   "config_hash": config_hash(dataclasses.replace(
                                       self.cfg, train=dataclasses.replace(tc, resume=None))),
                                   "world_size": dinfo.world_size,
                                   "plateau_left_at_step": self.opt.plateau.left_at_step,
                                   "plateau_left_after_s": self.opt.plateau.left_after_s,
                                   "learning_since_step": self.opt.plateau.off_chance_since,
                                   "still_improving": self.still_improving()}
        if dinfo.enabled:
            sync_buffers(self.model, dinfo)
            digests = all_gather_object(parameter_digest(self.model), dinfo)
            results["rank_param_digests"] = digests
            results["ranks_in_sync"] = len(set(digests)) == 1
            if not results["ranks_in_sync"]:
                raise RuntimeError(f"DDP ranks hold different parameters after training: {digests}")
        if tc.test and self.data.overfit is None and state.step > 0:
            if dinfo.enabled:
                dist.barrier()
            best = self.out_dir / runs.CHECKPOINT_DIR / "best.pt"
            if best.is_file():
                unwrap(self.model).load_state_dict(load_checkpoint(best)["model"])
            test_res = evaluate_split(unwrap(self.model), self.cfg, "test", dinfo, self.where.device,
                                      self.where.precision, datasets, self.num_classes)
            self.logger.log({"phase": "test", "step": state.step, "epoch": state.epoch, **test_res})
            results["test"] = test_res
        bad = {s: ds.bad_files_summary() for s, ds in datasets.items() if hasattr(ds, "bad_files_summary")}
        if bad:  # files skipped in this process (DataLoader workers keep their own counts and log them)
            results["bad_files"] = bad
        if self.where.main:
            write_json_atomic(self.out_dir / runs.RESULTS_FILE, results)


# ---------------------------------------------------------------------------------------------------------------------
# fit


def fit(cfg: Any, *, model: nn.Module | None = None, datasets: Mapping[str, Dataset] | None = None,
        run_dir: str | os.PathLike | None = None) -> Path:
    """Train ``cfg`` (a :class:`paperlib.engine.config.RunConfig`) and return its run directory.

    ``model`` / ``datasets`` ({"train", "valid", "test"}) replace ``build_model(cfg.model)`` / ``build_dataset`` (tests,
    custom data). ``cfg.train.resume`` continues a run in its own directory; otherwise a new directory is created under
    ``cfg.train.run_root`` (or ``run_dir``, which must not exist yet).
    """
    check_run_config(cfg)
    tc: TrainConfig = cfg.train
    where = setup_process(tc)  # process group, device, precision, seeds

    with contextlib.ExitStack() as held:  # the run directory's lock (rank 0), released when fit ends in any way
        # a resumed run's directory is locked first: a run that another process trains is refused at once, and its
        # checkpoint is read only once this process owns the directory
        resume = resume_checkpoint_path(tc.resume) if tc.resume else None
        if resume is not None and where.main:
            held.enter_context(runs.lock_run_dir(resume.parent.parent))

        # model and data next: a bad data root fails before a new run directory exists
        model = model if model is not None else build_model(cfg.model)
        if datasets is None:
            datasets = {s: build_dataset(cfg.data, cfg.geometry, s, seed=tc.seed) for s in SPLITS}
        return _fit_locked(cfg, where, model, datasets, run_dir, held, resume)


def _fit_locked(cfg: Any, where: Placement, model: nn.Module, datasets: Mapping[str, Dataset],
                run_dir: str | os.PathLike | None, held: contextlib.ExitStack, resume: Path | None) -> Path:
    """:func:`fit` once a resumed run's directory is locked (a new one is created and locked by
    :func:`open_run_dir`)."""
    tc: TrainConfig = cfg.train
    ckpt = load_training_checkpoint(resume) if resume is not None else None

    # what the step optimises and its initial weights, before any folder exists (a bad init_from leaves none)
    objective = training_objective(model, cfg)
    events, carried = initial_weights(objective, cfg, ckpt)

    # the run directory: a new one, or the resumed run's own (its log rewound to the checkpoint)
    out_dir = open_run_dir(cfg, where, ckpt, run_dir, held)
    logger = open_metrics(out_dir, tc, where, ckpt)
    for event in events:
        log_event(logger, 0, event)
    if where.main and ckpt is None and tc.init_from:
        record_init_source(out_dir, tc.init_from)

    # optimiser state (fresh, fine-tuned or resumed)
    objective = place_objective(objective, tc, where)
    opt = build_optimisation(objective.model, cfg, where, ckpt, carried, logger)
    log_event(logger, opt.state.step, objective.start_event())
    step_module: nn.Module = objective
    if where.dinfo.enabled:
        ddp_ids = [where.device.index] if where.device.type == "cuda" else None
        step_module = nn.parallel.DistributedDataParallel(objective, device_ids=ddp_ids)
    if tc.compile:  # the step runs the compiled module; the model it shares parameters with is evaluated and saved
        step_module = torch.compile(step_module)

    # train until a stop rule fires, then the final evaluations and results.json
    data = TrainData.build(datasets, tc, where)
    trainer = Trainer(cfg, where, out_dir, logger, objective.model, step_module, opt, data)
    trainer.start(fresh=ckpt is None)
    try:
        while (reason := trainer.stop_reason()) is None:
            trainer.run_epoch()
        trainer.finish(reason, datasets)
    finally:
        trainer.close()
    return out_dir


def evaluate_split(model: nn.Module, cfg: Any, split: str, dinfo: DistInfo, device: torch.device, precision: str,
                   datasets: Mapping[str, Dataset] | None = None, num_classes: int | None = None) -> dict[str, Any]:
    """Evaluate on ``split`` with the data config's protocol: fixed offsets (one pass), or ``iter_times`` passes of
    random offsets (the dataset holds them as consecutive blocks) reported as mean and std."""
    tc = cfg.train
    ds = datasets[split] if datasets is not None and split in datasets else None
    if ds is None:
        ds = build_dataset(cfg.data, cfg.geometry, split, seed=tc.seed)
    passes = int(getattr(cfg.data, "iter_times", 1) or 1)
    if getattr(cfg.data, "fixed_offsets", False) or len(ds) % passes:
        passes = 1
    return evaluate_dataset(model, ds, passes, tc.eval_batch_size or tc.batch_size, tc.num_workers, device,
                            num_classes, precision, progress=tc.progress and dinfo.is_main, desc=split)


# ---------------------------------------------------------------------------------------------------------------------
# the configuration of a run (what ``python -m paperlib train`` resolves) and its failures


def resolve_train_config(*, preset: str | None = None, config_file: str | os.PathLike | None = None,
                         resume: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                         init_from: str | None = None) -> RunConfig:
    """The configuration of a training run, from one of three sources, then ``key=value`` ``overrides``:

    - ``resume``: the run's own configuration (read from its checkpoint; a run directory means its ``last.pt``) with
      ``train.resume`` set, so that :func:`fit` continues it (``init_from`` is not used);
    - ``config_file``: a resolved configuration saved as JSON (a run's ``config.json``,
      :func:`paperlib.engine.config.load_run_config`);
    - ``preset``: :func:`paperlib.engine.config.resolve` (defaults when None).

    ``init_from`` sets ``train.init_from`` (fine-tuning) after the overrides.
    """
    if resume:
        ck = load_training_checkpoint(resume)
        cfg = from_dict(RunConfig, ck["run_config"])
        if preset or config_file:
            raise ValueError("--resume uses the run's own config; give overrides only (e.g. train.max_steps=...)")
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=ck["_path"]))
        return check_run_config(apply_overrides(cfg, overrides))
    if config_file:
        if preset:
            raise ValueError("--config is a resolved config; give overrides on top of it, not a preset")
        cfg = check_run_config(apply_overrides(read_run_config(config_file), overrides), config_file)
    else:
        cfg = resolve(preset, overrides)
    if init_from:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, init_from=init_from))
    return cfg


def is_collective_failure(error: BaseException) -> bool:
    """True when ``error`` is a failed torch.distributed collective of an initialised process group: another rank died
    or did not answer within ``train.ddp_timeout_s`` (``torch.distributed.DistError`` is a RuntimeError; gloo and NCCL
    also raise plain RuntimeErrors, recognised by their text)."""
    text = str(error)
    markers = ("gloo", "nccl", "NCCL", "Connection closed", "Connection reset", "Broken pipe", "Timed out", "timed out")
    collective = isinstance(error, dist.DistError) or any(m in text for m in markers)
    return dist.is_available() and dist.is_initialized() and collective
