"""The inner training loop: batches of an epoch, one optimisation step, an epoch of steps, and what people watch
(the chance-plateau detector, the progress bar).

The step asks a training objective (:mod:`paperlib.engine.objectives`) for ``loss, logs = objective(batch, step)`` and
never looks inside it: zero_grad, autocast forward, (scaled) backward, unscale, clip, optimiser step, scheduler step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from paperlib.engine.checkpointing import TrainState
from paperlib.engine.distributed import DistInfo
from paperlib.engine.evaluate import autocast_context, shard_indices, unwrap

# ---------------------------------------------------------------------------------------------------------------------
# batches


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


def train_loader(ds: Dataset, batches: list[list[int]], num_workers: int, seed: int, pin: bool) -> DataLoader:
    """A loader over fixed index batches whose workers are seeded by ``seed``.

    A private generator: creating the iterator (worker base seed) never draws from the global torch RNG, so a resumed
    run that creates its iterator mid-epoch keeps the same global RNG stream as an uninterrupted one.
    """
    gen = torch.Generator()
    gen.manual_seed(seed)
    return DataLoader(ds, batch_sampler=_FixedBatches(batches), num_workers=num_workers, generator=gen,
                      pin_memory=pin, persistent_workers=False)


def eval_loader(ds: Dataset, batch_size: int, num_workers: int, dinfo: DistInfo, pin: bool = False) -> DataLoader:
    """A rank's disjoint shard of ``ds`` in order (no padding duplicates; gathered by evaluate)."""
    sub = Subset(ds, shard_indices(len(ds), dinfo.rank, dinfo.world_size)) if dinfo.enabled else ds
    return DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=pin)


# ---------------------------------------------------------------------------------------------------------------------
# one step, one epoch


def set_train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, then every submodule whose parameters are all frozen goes back to eval mode."""
    model.train()
    for module in unwrap(model).modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
    return model


@dataclass
class StepSetup:
    """What one optimisation step needs besides the objective and the batch."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: str = "fp32"
    clip_grad_norm: float = 1.0

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]


def training_step(objective: nn.Module, batch: Mapping[str, Any], opt: StepSetup, params: list[torch.nn.Parameter],
                  state: TrainState) -> dict[str, torch.Tensor]:
    """One optimiser step on ``batch``; returns the objective's logs (detached, on the device).

    On CPU the paper's loss is read every step, so a non-finite loss raises at the step that produced it, before the
    weights change.
    """
    device = opt.device
    inputs = {"video": batch["video"].to(device, non_blocking=True),  # (B, T, 3, H, W)
              "audio": batch["audio"].to(device, non_blocking=True),  # (B, 1, F, Ta)
              "target": torch.as_tensor(batch["target"]).to(device, non_blocking=True).long()}  # (B,)
    opt.optimizer.zero_grad(set_to_none=True)
    with autocast_context(device, opt.precision):
        loss, logs = objective(inputs, state.step)
    if device.type == "cpu" and not math.isfinite(logs["loss"].item()):
        raise FloatingPointError(f"non-finite training loss {logs['loss'].item()} at step {state.step + 1} "
                                 f"(epoch {state.epoch}, lr {opt.lr:.3g})")
    # fp16: the scaler multiplies the loss so small gradients survive, then unscales before clipping
    opt.scaler.scale(loss).backward()
    opt.scaler.unscale_(opt.optimizer)
    if opt.clip_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, opt.clip_grad_norm)
    opt.scaler.step(opt.optimizer)  # skipped by the scaler when fp16 gradients overflowed
    opt.scaler.update()
    opt.scheduler.step()  # per iteration, as the official warm-up
    state.step += 1
    state.step_in_epoch += 1
    return logs


class _LogWindow:
    """Sums of the step logs since the last log line, kept on the device (read with ``.item()`` only when logging)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.n = 0

    def add(self, logs: Mapping[str, torch.Tensor]) -> None:
        for k, v in logs.items():
            if k not in self.sums:
                self.sums[k] = torch.zeros((), device=self.device, dtype=torch.float64)
            self.sums[k] += v
        self.n += 1

    def means(self, lr: float) -> dict[str, float]:
        """``{"loss", "lr", other logs}``: window means (the loss first, as in every log line); then reset."""
        rec = {"loss": self.sums["loss"].item() / self.n, "lr": lr}
        rec.update({k: v.item() / self.n for k, v in self.sums.items() if k != "loss"})
        for v in self.sums.values():
            v.zero_()
        self.n = 0
        return rec


def train_one_epoch(objective: nn.Module, batches: Iterable[Mapping[str, Any]], optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, *,
                    state: TrainState, device: torch.device, precision: str = "fp32", clip_grad_norm: float = 1.0,
                    log_every: int = 50, stop_at_step: int | None = None,
                    deadline: float | Callable[[], bool] | None = None,
                    on_log: Callable[[dict[str, Any]], None] | None = None,
                    on_step: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train ``objective`` (:mod:`paperlib.engine.objectives`) on ``batches`` until they run out, ``state.step``
    reaches ``stop_at_step`` or ``deadline`` passes (``time.monotonic()`` seconds, or a callable saying whether it has
    passed: under DDP every rank must agree).

    Every ``log_every`` steps ``on_log`` gets the window means of the objective's logs (``loss`` first, then ``lr``,
    then the others); a non-finite mean raises. ``on_step`` runs after every step (progress). Returns
    ``{"loss": mean paper loss, "steps": steps done, "exhausted": batches ran out}``.
    """
    set_train_mode(objective)
    opt = StepSetup(optimizer, scheduler, scaler, device, precision, clip_grad_norm)
    params = [p for p in objective.parameters() if p.requires_grad]
    total = torch.zeros((), device=device, dtype=torch.float64)
    window = _LogWindow(device)
    n = 0
    exhausted = True
    past = deadline if callable(deadline) else (lambda: deadline is not None and time.monotonic() >= deadline)
    for batch in batches:
        logs = training_step(objective, batch, opt, params, state)
        total += logs["loss"]
        window.add(logs)
        n += 1
        if state.step % log_every == 0:
            n_window = window.n
            rec = window.means(opt.lr)
            if not math.isfinite(rec["loss"]):
                raise FloatingPointError(f"non-finite training loss (mean {rec['loss']} over steps "
                                         f"{state.step - n_window + 1}..{state.step}, epoch {state.epoch})")
            if on_log is not None:
                on_log(rec)
        if on_step is not None:
            on_step()
        if (stop_at_step is not None and state.step >= stop_at_step) or past():
            exhausted = False
            break
    mean_loss = total.item() / n if n else math.nan
    if n and not math.isfinite(mean_loss):
        raise FloatingPointError(f"non-finite training loss (mean {mean_loss} over the last {n} steps)")
    return {"loss": mean_loss, "steps": n, "exhausted": exhausted}


# ---------------------------------------------------------------------------------------------------------------------
# what people watch: the chance plateau, the progress bar


class PlateauWarning(UserWarning):
    """The loss has stayed at the chance level ln(C) for long (see the README on leaving the plateau)."""


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
        self.off_since: int | None = None  # first logged step, when the run was never at chance (a fine-tune)

    def at_chance(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss >= (1.0 - self.rel_tol) * self.level

    @property
    def off_chance_since(self) -> int | None:
        """The step from which the run counts as learning: where it left the plateau, or its first logged step when
        it never sat on it; None while the loss is at chance."""
        if self.start_step is not None:
            return None
        return self.left_at_step if self.left_at_step is not None else self.off_since

    def update(self, step: int, loss: float, elapsed_s: float) -> str | None:
        if not self.at_chance(loss):
            if self.start_step is not None and self.left_at_step is None:
                self.left_at_step, self.left_after_s = step, elapsed_s
            elif self.start_step is None and self.left_at_step is None and self.off_since is None:
                self.off_since = step
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
                                               "left_after_s", "off_since")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def patience_ran_out(step: int, best_step: int, learning_since: int | None, patience_steps: int) -> bool:
    """The early-stopping rule in steps: stop when the run is learning (``learning_since``, the step its training loss
    left chance; None while at chance) and neither a new best evaluation (``best_step``) nor leaving chance happened
    in the last ``patience_steps`` steps. A run at chance never runs out of patience: only its cap ends it."""
    if learning_since is None:
        return False
    return step - max(best_step, learning_since) >= patience_steps


def last_progress_step(best_step: int, best_loss_step: int, counts_valid_loss: bool) -> int:
    """The step of the last evaluation that patience counts as progress: a new best early-stopping metric, or, with
    ``counts_valid_loss``, a new lowest valid loss, whichever came later."""
    return max(best_step, best_loss_step) if counts_valid_loss else best_step


def still_improving(step: int, best_step: int, patience_steps: int) -> bool:
    """Was a run that stopped at ``step`` (its cap) still improving: did its best evaluation come within the last
    ``patience_steps`` steps, so that patience had not run out?"""
    return best_step >= 0 and step - best_step < patience_steps


@dataclass(frozen=True)
class ProgressPlan:
    """What the progress bar counts: ``unit`` "min" (the time budget; ``total`` minutes) or "step" (optimiser steps;
    ``total`` None when unknown)."""

    total: float | None
    unit: str


def progress_plan(max_steps: int | None, time_budget_min: float | None, epochs: int,
                  steps_per_epoch: int) -> ProgressPlan:
    """The bar of a run: minutes of the time budget when one is set (the run ends by then, whatever its step limits),
    else steps up to ``max_steps``, else up to ``epochs`` x ``steps_per_epoch`` (unknown when that is huge)."""
    if time_budget_min is not None:
        return ProgressPlan(float(time_budget_min), "min")
    if max_steps is not None:
        return ProgressPlan(max_steps, "step")
    total = epochs * steps_per_epoch
    return ProgressPlan(total if total < 10**7 else None, "step")


class Progress:
    """A tqdm bar following :func:`progress_plan`: over minutes of the budget (the step count in the postfix), or over
    steps. ``advance(step, elapsed_s)`` after every step; ``note(**fields)`` adds postfix fields (loss, lr)."""

    def __init__(self, plan: ProgressPlan, desc: str, step: int, elapsed_s: float, max_steps: int | None = None):
        from tqdm.auto import tqdm

        self.plan, self.max_steps = plan, max_steps
        self.fields: dict[str, str] = {}
        if plan.unit == "min":
            fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} min [{elapsed}<{remaining}{postfix}]"
            self.bar = tqdm(total=plan.total, initial=self._position(step, elapsed_s), desc=desc, bar_format=fmt,
                            dynamic_ncols=True)
            self._set_step(step)
        else:
            self.bar = tqdm(total=plan.total, initial=step, desc=desc, dynamic_ncols=True)

    def _position(self, step: int, elapsed_s: float) -> float:
        return min(elapsed_s / 60.0, self.plan.total or math.inf) if self.plan.unit == "min" else step

    def _set_step(self, step: int) -> None:
        self.fields["step"] = f"{step}/{self.max_steps}" if self.max_steps is not None else str(step)
        self.bar.set_postfix(self.fields, refresh=False)

    def advance(self, step: int, elapsed_s: float) -> None:
        self.bar.update(self._position(step, elapsed_s) - self.bar.n)
        if self.plan.unit == "min":
            self._set_step(step)

    def note(self, **fields: str) -> None:
        self.fields.update(fields)
        self.bar.set_postfix(self.fields, refresh=False)

    def close(self) -> None:
        self.bar.close()
