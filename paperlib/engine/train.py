"""Training engine: ``fit(cfg) -> run_dir`` around ``train_one_epoch`` and :func:`paperlib.engine.evaluate.evaluate`.

Paper Sec. 7.3 and official_implementation.md section 4. Defaults are the official settings: Adam,
lr = 5e-6 x world size, betas (0.9, 0.999), eps 1e-7 under mixed precision (1e-8 in fp32), weight decay 0, linear
warm-up from 1% of the lr over the first 1000 iterations then constant (:func:`lr_factor`), gradient-norm clip 1.0,
batch 10 per process, cross-entropy without weights or smoothing, early stopping on valid ``accuracy_1`` (top-1
without tolerance), seeds 1337 + rank, DistributedSampler + SyncBatchNorm + DDP.

Deviations (each is a config switch where it matters):
- ``betas``: the paper prints (0.99, 0.999); the official configs use (0.9, 0.999), which is the default here.
- Precision ``auto``: bf16 autocast on CUDA (no GradScaler needed), fp32 on CPU. ``precision=fp16`` reproduces the
  paper's V100 setting (fp16 autocast + GradScaler), which the official code used.
- Patience counts evaluations (``eval_every_steps=0`` evaluates once per epoch, as the official code, so it counts
  epochs); ``max_steps`` and ``time_budget_min`` stop short runs (the ``mini`` profile trains by minutes).
- Checkpoints: ``last.pt`` and ``best.pt`` (the official code keeps the best only), written atomically (temporary
  file, fsync, rename) in paperlib's checkpoint format (:mod:`paperlib.model.checkpoints`), loadable with
  ``torch.load(weights_only=True)``: RNG states are stored as tensors and lists, the config as plain data. Resume
  restores model, optimiser, scaler, scheduler, step/epoch/position in the epoch, best metric, early-stopping counter,
  time spent, and every rank's python/numpy/torch/CUDA RNG states; evaluation runs under
  :func:`paperlib.engine.evaluate.preserved_rng`, so evaluating never changes the training trajectory. On CPU a resumed run
  ends with weights identical to an uninterrupted one (tested): the sampler is seeded by (seed, epoch), the datasets
  seed each item by (seed, epoch, index), and dropout draws from the restored global RNG.
- Fine-tuning (``init_from``): weights from a paperlib or official checkpoint; ``init_carry_optimizer=true`` carries
  the Adam moments, the scaler and the scheduler position as the official code does (so there is no new warm-up; the
  optimiser state of an official file is re-indexed by parameter name), ``false`` starts them fresh. lr, betas and eps
  follow this run's config. Epoch and best metric restart at 0; the source checkpoint is copied into the run directory.
- Frozen backbones (``model.train_*_backbone=false``) stay in eval mode while training (BatchNorm statistics frozen).
- On CPU (gloo) SyncBatchNorm cannot run (PyTorch supports it on CUDA only): BatchNorm statistics are per process,
  and rank 0's buffers are broadcast before every evaluation and checkpoint, so all ranks hold identical models.
- Partial initialisation (not in the official code): ``init_strict=false`` loads what fits and keeps keys that are
  missing or of another shape at their fresh values (a 3-class head fine-tuned from a 21-class run, positional tables
  of another window length); ``init_skip`` names key prefixes never loaded ("feature extractors not pre-trained").
  Both are logged (``init_partial`` event with the keys) and need ``init_carry_optimizer=false``.
- Sanity tools: ``overfit_batches=N`` trains (and validates) on the same first N batches; a plateau detector warns
  when the loss stays near ln(C) (chance) for long, with the steps and minutes spent there (issue 11).
- The issue-11 recipe (not in the paper or the official code; preset ``cpu-recipe``): ``recipe_init`` applies
  :func:`paperlib.engine.recipes.time_anchored_init` to a fresh SparseSync head before any ``init_from`` weights are loaded,
  and ``aux_xcorr_weight`` / ``aux_match_weight`` add training-time losses through
  :class:`paperlib.engine.recipes.AuxLossModel` (the step's view: its logits are the model's, so the logged ``loss``, the
  plateau detector, validation and checkpoints all see the paper's model; the weighted aux sum is logged as
  ``aux_loss``). Parts that need selectors are skipped, with a log event, for the other variants. The aux terms are
  read with ``float()`` every step (a host sync on CUDA): the recipe is meant for the CPU-sized runs.

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

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from paperlib.core.io import write_json_atomic
from paperlib.core.provenance import env_info
from paperlib.engine import runs
from paperlib.engine.config import TrainConfig
from paperlib.engine.evaluate import (autocast_context, evaluate, evaluate_dataset, preserved_rng, shard_indices,
                               unwrap)


# ---------------------------------------------------------------------------------------------------------------------
# pure pieces: LR schedule, precision, plateau detection


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


class PlateauWarning(UserWarning):
    """The loss has stayed at the chance level ln(C) for long (see issue 11 and the README)."""


class PlateauDetector:
    """Track how long the training loss sits at chance, ``loss >= (1 - rel_tol) * ln(C)``, and warn when it is long.

    ``update(step, loss, elapsed_s)`` returns a warning message when the time at chance first passes ``warn_steps`` or
    ``warn_seconds``, and again each time the number of steps doubles; ``None`` otherwise. When the loss drops below the
    band, ``left_at_step`` / ``left_after_s`` record where the run left the plateau.
    """

    def __init__(self, num_classes: int, rel_tol: float = 0.05, warn_steps: int = 1000, warn_seconds: float = 300.0):
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.level = math.log(num_classes)
        self.rel_tol = rel_tol
        self.warn_steps = warn_steps
        self.warn_seconds = warn_seconds
        self.start_step: int | None = None
        self.start_s: float | None = None
        self.next_warn_steps: float = warn_steps
        self.warned = False
        self.left_at_step: int | None = None
        self.left_after_s: float | None = None

    def at_chance(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss >= (1.0 - self.rel_tol) * self.level

    def update(self, step: int, loss: float, elapsed_s: float) -> str | None:
        if not self.at_chance(loss):
            if self.start_step is not None and self.left_at_step is None:
                self.left_at_step, self.left_after_s = step, elapsed_s
            self.start_step = self.start_s = None
            self.warned = False
            self.next_warn_steps = self.warn_steps
            return None
        if self.start_step is None:
            self.start_step, self.start_s = step, elapsed_s
        steps, secs = step - self.start_step, elapsed_s - (self.start_s or 0.0)
        due = steps >= self.next_warn_steps or (not self.warned and secs >= self.warn_seconds)
        if not due or steps == 0:
            return None
        self.warned = True
        self.next_warn_steps = max(self.next_warn_steps, steps) * 2
        return (f"training loss {loss:.3f} has stayed at chance level ln({self.num_classes}) = {self.level:.3f} "
                f"(within {self.rel_tol:.0%}) for {steps} steps / {secs / 60:.1f} min since step {self.start_step}: "
                "the model is not learning yet (the SparseSync plateau; see the README section on leaving it)")

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("start_step", "start_s", "next_warn_steps", "warned", "left_at_step",
                                               "left_after_s")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


# ---------------------------------------------------------------------------------------------------------------------
# distributed plumbing


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(timeout_s: float = 600.0, device_name: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's (or SLURM's) environment; a no-op for a single process."""
    env = os.environ
    if "RANK" not in env and "SLURM_PROCID" in env and int(env.get("SLURM_NPROCS", "1")) > 1:
        env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], env["SLURM_NPROCS"]
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(env["RANK"]), world, int(env.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in env]
        if missing:
            raise RuntimeError(f"distributed run (WORLD_SIZE={world}) without {missing}: launch with torchrun, or "
                               "export MASTER_ADDR/MASTER_PORT in the batch script")
        use_cuda = torch.cuda.is_available() and device_name != "cpu"
        if use_cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    return info


def _broadcast_object(obj: Any, dinfo: DistInfo) -> Any:
    if not dinfo.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _all_gather_object(obj: Any, dinfo: DistInfo) -> list[Any]:
    if not dinfo.enabled:
        return [obj]
    out: list[Any] = [None] * dinfo.world_size
    dist.all_gather_object(out, obj)
    return out


def parameter_digest(model: nn.Module) -> str:
    """sha256 of all parameters and buffers (bytes), to prove ranks hold identical models."""
    h = hashlib.sha256()
    for name, t in sorted(unwrap(model).state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------------
# RNG and checkpoint state (plain data only: loadable with weights_only=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    py = random.getstate()
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a paperlib training checkpoint (a run directory means its ``checkpoints/last.pt``) with
    ``weights_only=True`` through :func:`paperlib.model.weights.load_checkpoint` (no code from the file ever runs)."""
    from paperlib.model import weights

    path = Path(path)
    if path.is_dir():
        cand = path / runs.CHECKPOINT_DIR / "last.pt"
        if not cand.is_file():
            raise FileNotFoundError(f"{path}: no {runs.CHECKPOINT_DIR}/last.pt to resume from")
        path = cand
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    ckpt = weights.load_checkpoint(path)
    missing = [k for k in ("run_config", "optimizer", "scheduler", "state", "rng") if k not in ckpt]
    if missing:
        raise RuntimeError(f"{path}: a weights-only checkpoint (no {missing}); it can initialise a run "
                           "(train.init_from) but not resume one")
    ckpt["_path"] = str(path)
    return ckpt


@dataclass
class TrainState:
    """Counters that a resume restores (all plain numbers)."""

    step: int = 0  # optimiser steps done
    epoch: int = 0  # current epoch
    step_in_epoch: int = 0  # batches of the current epoch already trained on
    best_metric: float = -math.inf
    best_step: int = -1
    evals_since_best: int = 0
    elapsed_s: float = 0.0  # wall time spent in earlier attempts (resume adds to it)
    resumes: int = 0
    stop_reason: str | None = None


# ---------------------------------------------------------------------------------------------------------------------
# model helpers


def set_train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, then every submodule whose parameters are all frozen goes back to eval mode."""
    model.train()
    for module in unwrap(model).modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
    return model


def _num_classes(cfg: Any) -> int:
    for sect, name in (("model", "num_classes"), ("model", "num_offset_cls"), ("data", "num_classes")):
        v = getattr(getattr(cfg, sect, None), name, None)
        if isinstance(v, int):
            return v
    raise AttributeError("cannot find the number of offset classes in the config (model.num_classes)")


# ---------------------------------------------------------------------------------------------------------------------
# data loaders


class _FixedBatches(torch.utils.data.Sampler):
    """A batch sampler over a precomputed list of index batches."""

    def __init__(self, batches: list[list[int]]):
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int, dinfo: DistInfo) -> list[list[int]]:
    """This rank's index batches for ``epoch``: DistributedSampler order (seeded by seed and epoch, shuffled, shards
    padded to equal length), full batches only when there is at least one full batch."""
    sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=dinfo.world_size, rank=dinfo.rank,
                                                  shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches = batches[:-1]
    return batches


def _loader(ds: Dataset, batches: list[list[int]], num_workers: int, seed: int, pin: bool) -> DataLoader:
    # A private generator: creating the iterator (worker base seed) never draws from the global torch RNG, so a resumed
    # run that creates its iterator mid-epoch keeps the same global RNG stream as an uninterrupted one.
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(ds, batch_sampler=_FixedBatches(batches), num_workers=num_workers, generator=gen,
                      pin_memory=pin, persistent_workers=False)


def eval_loader(ds: Dataset, batch_size: int, num_workers: int, dinfo: DistInfo, pin: bool = False) -> DataLoader:
    """A rank's disjoint shard of ``ds`` in order (no padding duplicates; gathered by evaluate)."""
    sub = Subset(ds, shard_indices(len(ds), dinfo.rank, dinfo.world_size)) if dinfo.enabled else ds
    return DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin)


# ---------------------------------------------------------------------------------------------------------------------
# one epoch


def train_one_epoch(model: nn.Module, batches: Iterable[Mapping[str, Any]], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, *,
                    state: TrainState, device: torch.device, precision: str = "fp32", clip_grad_norm: float = 1.0,
                    log_every: int = 50, stop_at_step: int | None = None,
                    deadline: float | Callable[[], bool] | None = None,
                    on_log: Callable[[dict[str, Any]], None] | None = None, pbar: Any = None) -> dict[str, Any]:
    """Train on ``batches`` until they run out, ``state.step`` reaches ``stop_at_step`` or ``deadline`` passes
    (``time.monotonic()`` seconds, or a callable saying whether it has passed: under DDP every rank must agree).

    One step: zero_grad, autocast forward, cross-entropy, scaled backward, unscale, clip, step, scheduler. Loss values
    stay on the device and are read (``.item()``) only every ``log_every`` steps (and at the end); on CPU the loss is
    checked every step, so a non-finite loss raises at the step that produced it. Returns
    ``{"loss": mean loss, "steps": steps done, "exhausted": batches ran out}``.
    """
    from paperlib.engine.recipes import AuxLossModel

    set_train_mode(model)
    params = [p for p in model.parameters() if p.requires_grad]
    with_aux = isinstance(unwrap(model), AuxLossModel)
    check_each_step = device.type == "cpu"
    total = torch.zeros((), device=device, dtype=torch.float64)
    window = torch.zeros((), device=device, dtype=torch.float64)
    window_aux = torch.zeros((), device=device, dtype=torch.float64)
    n = n_window = 0
    exhausted = True
    past = deadline if callable(deadline) else (lambda: deadline is not None and time.monotonic() >= deadline)
    for batch in batches:
        video = batch["video"].to(device, non_blocking=True)  # (B, T, 3, H, W)
        audio = batch["audio"].to(device, non_blocking=True)  # (B, 1, F, Ta)
        target = torch.as_tensor(batch["target"]).to(device, non_blocking=True).long()  # (B,)
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(device, precision):
            if with_aux:  # logits are the model's own; aux: the recipe's weighted training-only losses
                logits, aux, _ = model(video, audio, target, state.step)  # (B, C), ()
            else:
                logits = model(video, audio)  # (B, C)
        loss = F.cross_entropy(logits.float(), target)
        if check_each_step and not math.isfinite(loss.item()):
            raise FloatingPointError(f"non-finite training loss {loss.item()} at step {state.step + 1} "
                                     f"(epoch {state.epoch}, lr {optimizer.param_groups[0]['lr']:.3g})")
        # fp16: the scaler multiplies the loss so small gradients survive, then unscales before clipping
        scaler.scale(loss + aux.float() if with_aux else loss).backward()
        scaler.unscale_(optimizer)
        if clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
        scaler.step(optimizer)  # skipped by the scaler when fp16 gradients overflowed
        scaler.update()
        scheduler.step()  # per iteration, as the official warm-up
        state.step += 1
        state.step_in_epoch += 1
        total += loss.detach()
        window += loss.detach()
        if with_aux:
            window_aux += aux.detach()
        n += 1
        n_window += 1
        if state.step % log_every == 0:
            mean = window.item() / n_window
            if not math.isfinite(mean):
                raise FloatingPointError(f"non-finite training loss (mean {mean} over steps {state.step - n_window + 1}"
                                         f"..{state.step}, epoch {state.epoch})")
            if on_log is not None:
                rec = {"loss": mean, "lr": optimizer.param_groups[0]["lr"]}
                if with_aux:
                    rec["aux_loss"] = window_aux.item() / n_window
                on_log(rec)
            window.zero_()
            window_aux.zero_()
            n_window = 0
        if pbar is not None:
            pbar.update(1)
        if (stop_at_step is not None and state.step >= stop_at_step) or past():
            exhausted = False
            break
    mean_loss = total.item() / n if n else math.nan
    if n and not math.isfinite(mean_loss):
        raise FloatingPointError(f"non-finite training loss (mean {mean_loss} over the last {n} steps)")
    return {"loss": mean_loss, "steps": n, "exhausted": exhausted}


# ---------------------------------------------------------------------------------------------------------------------
# fit


def _build_parts(cfg: Any) -> tuple[nn.Module, Callable[..., Dataset]]:
    from paperlib.data.datasets import build_dataset
    from paperlib.model.sparsesync import build_model

    return build_model(cfg.model), build_dataset


def _load_init_weights(model: nn.Module, path: str, strict: bool = True,
                       skip: Sequence[str] = ()) -> dict[str, Any]:
    """Copy weights from a paperlib or official checkpoint into ``model``.

    ``strict``: keys and shapes must match exactly (else a ValueError names them). Not strict: keys missing from the
    file, extra in it or of another shape are left at ``model``'s current values (e.g. a 3-class classifier fine-tuned
    from a 21-class run, positional tables of another window length). ``skip``: key prefixes never copied (e.g.
    ``visual_backbone.``: "feature extractors not pre-trained"). Returns ``{"optimizer", "scheduler", "scaler"}``
    states found in the file (only when everything was copied), the optimiser state re-indexed to ``model``'s
    trainable parameters (official files: by parameter name through the key map), and ``"kept_fresh"``: the keys
    left at their fresh values.
    """
    from paperlib.model import checkpoints, weights

    src_model, _ = checkpoints.load_model(path)
    src = src_model.state_dict()
    dst = model.state_dict()
    skipped = sorted(k for k in dst if any(k.startswith(p) for p in skip))
    missing = sorted(set(dst) - set(src) - set(skipped))
    extra = sorted(set(src) - set(dst))
    bad = sorted(k for k in set(dst) & set(src) if src[k].shape != dst[k].shape and k not in skipped)
    if strict and (missing or extra or bad):
        details = [f"missing {missing[:5]}" if missing else "", f"unexpected {extra[:5]}" if extra else "",
                   "shape mismatch " + ", ".join(f"{k}: {tuple(src[k].shape)} vs {tuple(dst[k].shape)}"
                                                 for k in bad[:5]) if bad else ""]
        raise ValueError(f"{path}: weights do not fit the configured model ({'; '.join(d for d in details if d)}); "
                         "check model.* settings (e.g. the number of classes), or set train.init_strict=false")
    kept = sorted(set(skipped) | set(missing) | set(bad))
    if skip and not skipped:
        raise ValueError(f"train.init_skip={list(skip)} matches no key of the model (e.g. {sorted(dst)[:3]})")
    model.load_state_dict({k: (dst[k] if k in kept else src[k]) for k in dst})
    if kept or extra:
        return {"kept_fresh": kept, "ignored": extra}
    try:
        raw = weights.load_checkpoint(path)
        names = raw.get("param_names")
    except weights.CheckpointError:
        raw = weights.load_official_checkpoint(path)
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        names = [weights.official_key_to_paperlib(k) for k in raw["model"] if not k.endswith(buffers)]
    out: dict[str, Any] = {}
    if isinstance(raw.get("optimizer"), Mapping):
        out["optimizer"] = _reindex_optimizer_state(raw["optimizer"], names, model, path)
    sched = raw.get("scheduler") or raw.get("lr_scheduler")
    if isinstance(sched, Mapping):
        out["scheduler"] = sched
    if isinstance(raw.get("scaler"), Mapping) and raw["scaler"]:
        out["scaler"] = raw["scaler"]
    return out


def trainable_names(model: nn.Module) -> list[str]:
    return [n for n, p in unwrap(model).named_parameters() if p.requires_grad]


def _reindex_optimizer_state(opt: Mapping[str, Any], names: Sequence[str] | None, model: nn.Module,
                             path: str) -> dict[str, Any]:
    """A single-group optimiser state for ``model``'s trainable parameters, taken from ``opt`` (whose parameter ``i``
    is ``names[i]``; without names, positions must line up). Shapes are checked; a mismatch names the parameter."""
    groups = opt.get("param_groups") or []
    old_ids = [i for g in groups for i in g["params"]]
    ours = trainable_names(model)
    shapes = {n: tuple(p.shape) for n, p in unwrap(model).named_parameters()}
    if names is None:
        if len(old_ids) != len(ours):
            raise ValueError(f"{path}: optimiser state covers {len(old_ids)} parameters, the model trains {len(ours)}; "
                             "set train.init_carry_optimizer=false to start the optimiser fresh")
        names = ours
    if len(names) != len(old_ids):
        raise ValueError(f"{path}: optimiser state covers {len(old_ids)} parameters but the file names {len(names)}")
    by_name = {n: old_ids[i] for i, n in enumerate(names)}
    state: dict[int, Any] = {}
    for j, n in enumerate(ours):
        if n not in by_name:
            raise ValueError(f"{path}: no optimiser state for parameter {n!r}; set train.init_carry_optimizer=false")
        st = opt.get("state", {}).get(by_name[n])
        if st is None:
            continue
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and v.ndim > 0 and tuple(v.shape) != shapes[n]:
                raise ValueError(f"{path}: optimiser state {k!r} of {n!r} has shape {tuple(v.shape)}, the parameter "
                                 f"{shapes[n]}; set train.init_carry_optimizer=false")
        state[j] = st
    group = {k: v for k, v in groups[0].items() if k != "params"} if groups else {}
    return {"state": state, "param_groups": [{**group, "params": list(range(len(ours)))}]}


def _has_selectors(model: nn.Module) -> bool:
    """Is ``model``'s head a SparseSync head (the recipe's selector parts apply)?"""
    return hasattr(getattr(model, "head", None), "v_selector")


def apply_recipe_init(model: nn.Module, cfg: Any) -> dict[str, Any] | None:
    """The issue-11 initialisation (``paperlib.engine.recipes.time_anchored_init``) of a fresh model when
    ``train.recipe_init``; returns what was applied (None: nothing; variants without selectors get nothing)."""
    tc = cfg.train
    if not tc.recipe_init:
        return None
    if not _has_selectors(model):
        return {"time_anchored_init": False, "reason": f"variant {cfg.model.variant!r} has no selectors"}
    from paperlib.engine import recipes

    recipes.time_anchored_init(model.head, cfg.model.clip_sec, sync_passthrough=True,
                               modality_flag=tc.recipe_modality_flag, sync_identity_qk=tc.recipe_sync_identity_qk,
                               sync_code_gain=tc.recipe_sync_code_gain)
    return {"time_anchored_init": True, "modality_flag": tc.recipe_modality_flag,
            "sync_identity_qk": tc.recipe_sync_identity_qk, "sync_code_gain": tc.recipe_sync_code_gain}


def aux_loss_model(model: nn.Module, cfg: Any) -> nn.Module:
    """``model`` wrapped with the auxiliary training losses of ``paperlib.engine.recipes`` when their weights are set
    (the matching loss only for a SparseSync head with ``recipe_init``); ``model`` itself otherwise."""
    tc = cfg.train
    match = tc.aux_match_weight if (tc.recipe_init and _has_selectors(model)) else 0.0
    if tc.aux_xcorr_weight <= 0 and match <= 0:
        return model
    from paperlib.engine import recipes
    from paperlib.data.datasets import class_grid

    grid = torch.as_tensor(class_grid(cfg.model.num_classes, cfg.data.max_off_sec), dtype=torch.float32)
    return recipes.AuxLossModel(model, cfg.model.clip_sec, grid, xcorr_weight=tc.aux_xcorr_weight,
                                match_weight=match, hold_steps=tc.aux_hold_steps, decay_steps=tc.aux_decay_steps)


def _rank_rng(ckpt: Mapping[str, Any], rank: int) -> Mapping[str, Any] | None:
    states = ckpt.get("rng")
    if isinstance(states, list) and rank < len(states):
        return states[rank]
    return None


def fit(cfg: Any, *, model: nn.Module | None = None, datasets: Mapping[str, Dataset] | None = None,
        run_dir: str | os.PathLike | None = None) -> Path:
    """Train ``cfg`` (a :class:`paperlib.core.config.RunConfig`) and return its run directory.

    ``model`` / ``datasets`` ({"train", "valid", "test"}) replace ``build_model(cfg.model)`` / ``build_dataset`` (tests,
    custom data). ``cfg.train.resume`` continues a run in its own directory; otherwise a new directory is created under
    ``cfg.train.run_root`` (or ``run_dir``, which must not exist yet).
    """
    from paperlib.core.config import config_hash, to_dict
    from paperlib.engine.config import check_run_config

    check_run_config(cfg)
    tc: TrainConfig = cfg.train
    dinfo = init_distributed(tc.ddp_timeout_s, tc.device)
    device = resolve_device(tc.device, dinfo.local_rank)
    precision = resolve_precision(tc.precision, device)
    seed_everything(tc.seed + dinfo.rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # official; fixed input shapes
    num_classes = _num_classes(cfg)
    t_start = time.monotonic()

    # --- model and data first: a bad data root fails before a run directory exists -------------------------------
    if model is None or datasets is None:
        built_model, build_dataset = _build_parts(cfg)
        model = model if model is not None else built_model
        if datasets is None:
            datasets = {s: build_dataset(cfg.data, s, seed=tc.seed) for s in ("train", "valid", "test")}

    # --- resume / run directory ------------------------------------------------------------------------------------
    ckpt = load_training_checkpoint(tc.resume) if tc.resume else None
    if ckpt is not None:
        out_dir = Path(ckpt["_path"]).parent.parent
        if to_dict(cfg.model) != ckpt["run_config"]["model"]:
            raise ValueError(f"{ckpt['_path']}: the checkpoint's model config differs from the one given; resume with "
                             "the run's own config (python -m paperlib train --resume RUN_DIR)")
    elif dinfo.is_main:
        if run_dir is not None:
            out_dir = Path(run_dir)
            out_dir.mkdir(parents=True, exist_ok=False)
        else:
            out_dir = runs.new_run_dir(tc.run_root, tc.name)
    else:
        out_dir = None
    out_dir = Path(_broadcast_object(str(out_dir) if out_dir is not None else None, dinfo))
    main = dinfo.is_main
    if main and ckpt is None:
        write_json_atomic(out_dir / runs.CONFIG_FILE, to_dict(cfg))
        write_json_atomic(out_dir / runs.ENV_FILE, env_info(str(device)) | {
            "world_size": dinfo.world_size, "precision": precision})
    logger = runs.MetricsLogger(out_dir if main else None, tensorboard=tc.tensorboard)

    # --- model, data, optimiser ------------------------------------------------------------------------------------
    carried: dict[str, Any] = {}
    if ckpt is None:
        applied = apply_recipe_init(model, cfg)
        if applied:
            logger.log({"phase": "event", "event": "recipe_init", "step": 0, "applied": applied})
    if tc.init_from and ckpt is None:
        carried = _load_init_weights(model, tc.init_from, strict=tc.init_strict, skip=tc.init_skip)
        if "kept_fresh" in carried:
            if tc.init_carry_optimizer:
                raise ValueError(f"{tc.init_from}: only part of the weights were loaded ({len(carried['kept_fresh'])} "
                                 "keys kept fresh); set train.init_carry_optimizer=false")
            logger.log({"phase": "event", "event": "init_partial", "step": 0, "path": tc.init_from,
                        "kept_fresh": carried["kept_fresh"], "ignored": carried["ignored"]})
        if main:
            shutil.copy2(tc.init_from, out_dir / f"init-{Path(tc.init_from).name}")
    model.to(device)
    if dinfo.enabled and tc.sync_batchnorm and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    base = model  # the paper's model: what is evaluated and saved
    params = [p for p in model.parameters() if p.requires_grad]
    world_lr = tc.base_lr * (dinfo.world_size if tc.scale_lr_by_world_size else 1)
    optimizer = torch.optim.Adam(params, lr=world_lr, betas=tuple(tc.betas), eps=adam_eps(tc, precision),
                                 weight_decay=tc.weight_decay)
    warm, start = tc.warmup_steps, tc.warmup_start_factor
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warm, start))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    state = TrainState()
    plateau = PlateauDetector(num_classes, tc.plateau_rel_tol, tc.plateau_warn_steps, tc.plateau_warn_minutes * 60)

    if ckpt is not None:
        unwrap(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        state = TrainState(**ckpt["state"])
        state.resumes += 1
        state.stop_reason = None
        plateau.load_state_dict(ckpt.get("plateau", {}))
        rng = _rank_rng(ckpt, dinfo.rank)
        if rng is not None:
            set_rng_state(rng)
        logger.log({"event": "resume", "step": state.step, "epoch": state.epoch, "from": ckpt["_path"],
                    "phase": "event", "config": to_dict(cfg)})
    elif tc.init_from and tc.init_carry_optimizer:
        # Official fine-tuning: Adam moments and the scheduler position come from the pre-training run (so there is no
        # new warm-up); lr, betas, eps and weight decay follow this run's config.
        if "optimizer" not in carried:
            raise ValueError(f"{tc.init_from}: holds no optimiser state to carry; set train.init_carry_optimizer=false")
        opt_state = carried["optimizer"]
        hyper = {k: optimizer.param_groups[0][k] for k in ("lr", "betas", "eps", "weight_decay")}
        optimizer.load_state_dict(opt_state)
        last = int(carried.get("scheduler", {}).get("last_epoch", 0))
        scheduler.last_epoch, scheduler._step_count = last, last + 1
        for g in optimizer.param_groups:
            g.update(hyper, initial_lr=world_lr, lr=world_lr * lr_factor(last, warm, start))
        scheduler.base_lrs = [world_lr for _ in optimizer.param_groups]
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
        if "scaler" in carried and scaler.is_enabled():
            scaler.load_state_dict(carried["scaler"])
        logger.log({"phase": "event", "event": "init_from", "step": 0, "path": tc.init_from, "carried_step": last})
    step_model = aux_loss_model(base, cfg)  # the training step's view (the model itself without aux losses)
    if step_model is not base:
        step_model.to(device)
        logger.log({"phase": "event", "event": "aux_losses", "step": state.step, "xcorr": tc.aux_xcorr_weight,
                    "match": step_model.match_weight, "hold_steps": tc.aux_hold_steps,
                    "decay_steps": tc.aux_decay_steps})
    if dinfo.enabled:
        ddp_ids = [device.index] if device.type == "cuda" else None
        step_model = nn.parallel.DistributedDataParallel(step_model, device_ids=ddp_ids)
    model = base

    # --- loaders ---------------------------------------------------------------------------------------------------
    pin = device.type == "cuda"
    eval_bs = tc.eval_batch_size or tc.batch_size
    train_ds = datasets["train"]
    overfit = None
    if tc.overfit_batches > 0:
        first = epoch_batches(len(train_ds), tc.batch_size, 0, tc.seed, dinfo)[:tc.overfit_batches]
        with preserved_rng():
            overfit = list(_loader(train_ds, first, 0, tc.seed, pin))
    steps_per_epoch = len(overfit) if overfit is not None else len(
        epoch_batches(len(train_ds), tc.batch_size, 0, tc.seed, dinfo))
    if steps_per_epoch == 0:
        raise ValueError(f"the train split is empty ({len(train_ds)} items)")

    def valid_batches() -> Iterable[Mapping[str, Any]]:
        return overfit if overfit is not None else eval_loader(datasets["valid"], eval_bs, tc.num_workers, dinfo, pin)

    def save(name: str, metrics: Mapping[str, Any] | None = None) -> None:
        """last.pt / best.pt: model + everything a resume needs (collective: every rank calls it, rank 0 writes)."""
        nonlocal t_start
        from paperlib.model.checkpoints import save_checkpoint

        state.elapsed_s, t_start = elapsed(), time.monotonic()  # fold the time spent into the saved state
        sync_buffers()
        rngs = _all_gather_object(rng_state(), dinfo)  # every rank's RNG streams
        if not main:
            return
        save_checkpoint(ckpt_dir / f"{name}.pt", unwrap(model), cfg.model, run_config=to_dict(cfg),
                        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        scaler=scaler.state_dict(), state=dataclasses.asdict(state), plateau=plateau.state_dict(),
                        rng=rngs, param_names=trainable_names(model), world_size=dinfo.world_size,
                        precision=precision, best_metric=state.best_metric, step=state.step, epoch=state.epoch,
                        metrics={k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))},
                        meta={"kind": "train", "run_dir": str(out_dir)})

    ckpt_dir = out_dir / runs.CHECKPOINT_DIR

    def elapsed() -> float:
        return state.elapsed_s + (time.monotonic() - t_start)

    def sync_buffers() -> None:
        # On CPU (no SyncBatchNorm) each rank's BatchNorm statistics drift apart after DDP's pre-forward broadcast;
        # make every rank hold rank 0's buffers before evaluating or saving.
        if dinfo.enabled:
            for b in unwrap(model).buffers():
                dist.broadcast(b, src=0)

    def run_valid() -> dict[str, Any]:
        sync_buffers()
        res = evaluate(unwrap(model), valid_batches(), device, num_classes, precision, progress=tc.progress and main,
                       desc="valid")
        logger.log({"phase": "valid", "step": state.step, "epoch": state.epoch, "elapsed_s": elapsed(), **res})
        return res

    def on_log(rec: dict[str, Any]) -> None:
        rec = {"phase": "train", "step": state.step, "epoch": state.epoch, "elapsed_s": elapsed(), **rec}
        msg = plateau.update(state.step, rec["loss"], rec["elapsed_s"])
        rec["at_chance"] = plateau.at_chance(rec["loss"])
        logger.log(rec)
        if msg and main:
            warnings.warn(msg, PlateauWarning, stacklevel=2)
            logger.log({"phase": "event", "event": "plateau", "step": state.step, "message": msg})
        if pbar is not None:
            pbar.set_postfix(loss=f"{rec['loss']:.3f}", lr=f"{rec['lr']:.2e}", refresh=False)

    t_start = time.monotonic()  # the budget counts training and evaluation, not start-up
    deadline_at = None if tc.time_budget_min is None else t_start + tc.time_budget_min * 60 - state.elapsed_s

    def deadline_passed() -> bool:
        """Has the time budget run out? Under DDP the ranks agree (any rank's clock past it stops all of them)."""
        if deadline_at is None:
            return False
        flag = time.monotonic() >= deadline_at
        if dinfo.enabled:
            t = torch.tensor([float(flag)], device=device if device.type == "cuda" else "cpu")
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
        return flag

    total_steps = tc.max_steps if tc.max_steps is not None else (
        tc.epochs * steps_per_epoch if tc.epochs * steps_per_epoch < 10**7 else None)
    pbar = None
    if main and tc.progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=total_steps, initial=state.step, desc=f"train {out_dir.name}", dynamic_ncols=True)
    if main and ckpt is None:
        logger.log({"phase": "event", "event": "start", "step": 0, "world_size": dinfo.world_size,
                    "device": str(device),
                    "precision": precision, "lr": world_lr, "steps_per_epoch": steps_per_epoch,
                    "trainable_params": sum(p.numel() for p in params)})

    def stop_reason() -> str | None:
        if tc.max_steps is not None and state.step >= tc.max_steps:
            return "max_steps"
        if deadline_passed():
            return "time_budget"
        if state.evals_since_best >= tc.patience:
            return "early_stopping"
        if state.epoch >= tc.epochs:
            return "epochs"
        return None

    last_valid: dict[str, Any] | None = None
    evaluated_at = -1
    try:
        while (reason := stop_reason()) is None:
            if overfit is not None:
                batches_it: Iterable = overfit[state.step_in_epoch:]
            else:
                if hasattr(train_ds, "set_epoch"):  # per-item augmentation seeded by (seed, epoch, index)
                    train_ds.set_epoch(state.epoch)
                batches = epoch_batches(len(train_ds), tc.batch_size, state.epoch, tc.seed, dinfo)[state.step_in_epoch:]
                loader_seed = (tc.seed * 1_000_003 + state.epoch) * 1024 + dinfo.rank
                batches_it = iter(_loader(train_ds, batches, tc.num_workers, loader_seed, pin))
            while True:
                targets = [s for s in (tc.max_steps,) if s is not None]
                if tc.eval_every_steps > 0:
                    targets.append((state.step // tc.eval_every_steps + 1) * tc.eval_every_steps)
                if tc.checkpoint_every_steps > 0:
                    targets.append((state.step // tc.checkpoint_every_steps + 1) * tc.checkpoint_every_steps)
                out = train_one_epoch(step_model, batches_it, optimizer, scheduler, scaler, state=state, device=device,
                                      precision=precision, clip_grad_norm=tc.clip_grad_norm, log_every=tc.log_every,
                                      stop_at_step=min(targets) if targets else None,
                                      deadline=deadline_passed if deadline_at is not None else None,
                                      on_log=on_log, pbar=pbar)
                if out["exhausted"]:
                    state.epoch += 1
                    state.step_in_epoch = 0
                eval_now = out["exhausted"] if tc.eval_every_steps <= 0 else state.step % tc.eval_every_steps == 0
                if eval_now and state.step > 0 and evaluated_at != state.step:
                    last_valid = run_valid()
                    evaluated_at = state.step
                    metric = last_valid[tc.early_stop_metric]
                    if metric > state.best_metric:
                        state.best_metric, state.best_step, state.evals_since_best = metric, state.step, 0
                        save("best", last_valid)
                    else:
                        state.evals_since_best += 1
                    save("last", last_valid)
                elif tc.checkpoint_every_steps > 0 and state.step % tc.checkpoint_every_steps == 0 and out["steps"]:
                    save("last", last_valid)
                if out["exhausted"] or stop_reason() is not None:
                    break
        state.stop_reason = reason
        # --- end of training: final valid (if not just done), last checkpoint, test with the best weights ----------
        if evaluated_at != state.step and state.step > 0:
            save("last", last_valid)  # RNG captured before the final evaluation: a resume continues from here
            last_valid = run_valid()
            if last_valid[tc.early_stop_metric] > state.best_metric:
                state.best_metric, state.best_step = last_valid[tc.early_stop_metric], state.step
                save("best", last_valid)
        if pbar is not None:
            pbar.close()
            pbar = None
        results: dict[str, Any] = {"stop_reason": reason, "steps": state.step, "epochs": state.epoch,
                                   "elapsed_s": elapsed(), "best_step": state.best_step,
                                   f"best_valid_{tc.early_stop_metric}": state.best_metric, "valid_last": last_valid,
                                   # resume is where a run continued from, not what it is: a resumed run keeps its hash
                                   "config_hash": config_hash(dataclasses.replace(
                                       cfg, train=dataclasses.replace(tc, resume=None))),
                                   "world_size": dinfo.world_size,
                                   "plateau_left_at_step": plateau.left_at_step,
                                   "plateau_left_after_s": plateau.left_after_s}
        if dinfo.enabled:
            sync_buffers()
            digests = _all_gather_object(parameter_digest(model), dinfo)
            results["rank_param_digests"] = digests
            results["ranks_in_sync"] = len(set(digests)) == 1
            if not results["ranks_in_sync"]:
                raise RuntimeError(f"DDP ranks hold different parameters after training: {digests}")
        if tc.test and overfit is None and state.step > 0:
            if dinfo.enabled:
                dist.barrier()
            best = ckpt_dir / "best.pt"
            if best.is_file():
                from paperlib.model.weights import load_checkpoint

                unwrap(model).load_state_dict(load_checkpoint(best)["model"])
            test_res = evaluate_split(unwrap(model), cfg, "test", dinfo, device, precision, datasets, num_classes)
            logger.log({"phase": "test", "step": state.step, "epoch": state.epoch, **test_res})
            results["test"] = test_res
        bad = {s: ds.bad_files_summary() for s, ds in datasets.items() if hasattr(ds, "bad_files_summary")}
        if bad:  # files skipped in this process (DataLoader workers keep their own counts and log them)
            results["bad_files"] = bad
        if main:
            write_json_atomic(out_dir / runs.RESULTS_FILE, results)
    finally:
        if pbar is not None:
            pbar.close()
        logger.close()
    return out_dir


def evaluate_split(model: nn.Module, cfg: Any, split: str, dinfo: DistInfo, device: torch.device, precision: str,
                   datasets: Mapping[str, Dataset] | None = None, num_classes: int | None = None) -> dict[str, Any]:
    """Evaluate on ``split`` with the data config's protocol: fixed offsets (one pass), or ``iter_times`` passes of
    random offsets (the dataset holds them as consecutive blocks) reported as mean and std."""
    tc = cfg.train
    ds = datasets[split] if datasets is not None and split in datasets else None
    if ds is None:
        from paperlib.data.datasets import build_dataset

        ds = build_dataset(cfg.data, split, seed=tc.seed)
    passes = int(getattr(cfg.data, "iter_times", 1) or 1)
    if getattr(cfg.data, "fixed_offsets", False) or len(ds) % passes:
        passes = 1
    return evaluate_dataset(model, ds, passes, tc.eval_batch_size or tc.batch_size, tc.num_workers, device,
                            num_classes, precision, progress=tc.progress and dinfo.is_main, desc=split)


# ---------------------------------------------------------------------------------------------------------------------
# command line


def cli(argv: list[str]) -> int:
    """``python -m paperlib train --preset NAME [key=value ...]`` (torchrun-compatible)."""
    from paperlib.core import config as C
    from paperlib.engine import config as RC

    p = argparse.ArgumentParser(prog="python -m paperlib train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Presets: " + ", ".join(sorted(RC.PRESETS)))
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.max_steps=100 model.num_classes=3")
    p.add_argument("--preset", default=None, help="named preset (see paperlib.core.config.PRESETS)")
    p.add_argument("--resume", default=None, help="run directory or checkpoint to resume (its config is used)")
    p.add_argument("--init-from", default=None, help="fine-tune from a paperlib or official checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    args = p.parse_args(argv)
    try:
        if args.resume:
            ck = load_training_checkpoint(args.resume)
            cfg = C.from_dict(RC.RunConfig, ck["run_config"])
            if args.preset:
                raise ValueError("--resume uses the run's own config; give overrides only (e.g. train.max_steps=...)")
            cfg = C.apply_overrides(cfg, [f"train.resume={ck['_path']}", *args.overrides])
        else:
            cfg = RC.resolve(args.preset, args.overrides)
            if args.init_from:
                cfg = C.apply_overrides(cfg, [f"train.init_from={args.init_from}"])
    except (KeyError, ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        print(f"paperlib train: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(C.to_dict(cfg), indent=2))
        return 0
    if not cfg.train.resume and not getattr(cfg.data, "root", "x"):
        print("paperlib train: data.root is not set (e.g. data.root=/data/lrs3; `python -m paperlib synth` makes a "
              "synthetic set)", file=sys.stderr)
        return 2
    try:
        run_dir = fit(cfg)
    except FileNotFoundError as e:  # a data root without the expected layout
        print(f"paperlib train: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # torch.distributed.DistError is a RuntimeError
        text = str(e)
        markers = ("gloo", "nccl", "NCCL", "Connection closed", "Connection reset", "Broken pipe", "Timed out",
                   "timed out")
        collective = isinstance(e, dist.DistError) or any(m in text for m in markers)
        if not (dist.is_available() and dist.is_initialized() and collective):
            raise
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        print(f"paperlib train: rank {dist.get_rank()}: a distributed collective failed ({first}); another rank died "
              f"or did not answer within train.ddp_timeout_s={cfg.train.ddp_timeout_s:g} s. Resume with "
              "python -m paperlib train --resume RUN_DIR", file=sys.stderr)
        return 1
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(f"run directory: {run_dir}")
        res = run_dir / runs.RESULTS_FILE
        if res.is_file():
            r = json.loads(res.read_text())
            test = r.get("test") or {}
            print(f"stopped: {r['stop_reason']} after {r['steps']} steps; best valid {cfg.train.early_stop_metric} "
                  f"{r.get('best_valid_' + cfg.train.early_stop_metric)}; test accuracy_1 {test.get('accuracy_1')} "
                  f"accuracy_1_tol1 {test.get('accuracy_1_tol1')}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
