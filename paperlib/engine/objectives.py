"""The training step's contract: what the engine optimises, asked of one object.

A training objective is an ``nn.Module`` that holds the paper's model (``objective.model``: what is evaluated and
saved) and answers, for one batch on the device (``video (B, T, 3, H, W)``, ``audio (B, 1, F, Ta)``, ``target (B,)``)
at optimiser step ``step`` (steps done before this one)::

    loss, logs = objective(batch, step)

``loss`` is the 0-dim tensor to minimise; ``logs`` holds detached 0-dim tensors that the engine averages over its
logging window and writes to ``metrics.jsonl`` under their names; ``logs["loss"]`` is always the paper's loss (the
cross-entropy of the model's logits), which the chance-plateau detector, the non-finite check and the epoch mean read.
The engine runs the call under autocast (and DDP, which wraps the objective so that every gradient it produces is
synchronised) and never looks inside.

Two more hooks, with defaults here: :meth:`TrainingObjective.initialise` changes a fresh model's initial values before
any weights are loaded, and :meth:`TrainingObjective.start_event` is what the run's log records about the objective
when training starts. Both return an event record (``{"event": name, ...}``, logged as is) or None.

:class:`CrossEntropyObjective` is the paper's; the recipe's objective (cross-entropy plus auxiliary losses) is in
:mod:`paperlib.engine.recipes`.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

Batch = Mapping[str, torch.Tensor]


class TrainingObjective(nn.Module):
    """Base of the training objectives: holds ``model``; subclasses define ``forward(batch, step) -> (loss, logs)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def initialise(self) -> dict[str, Any] | None:
        """Change the fresh model's initial values (called before any weights are loaded, never on resume); returns
        the event record of what was applied, or None when the objective changes nothing."""
        return None

    def start_event(self) -> dict[str, Any] | None:
        """The event record the run's log holds about this objective when training starts (None: nothing)."""
        return None


def paper_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's loss: cross-entropy of the offset logits (B, C) in float32, no weights or smoothing."""
    return F.cross_entropy(logits.float(), target)


class CrossEntropyObjective(TrainingObjective):
    """The paper's objective: cross-entropy of the model's offset logits."""

    def forward(self, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = paper_loss(self.model(batch["video"], batch["audio"]), batch["target"])
        return loss, {"loss": loss.detach()}
