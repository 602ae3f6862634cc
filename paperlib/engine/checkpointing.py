"""What a training run saves and restores: counters, RNG streams, resume checkpoints, fine-tuning weights.

Everything here is plain data (tensors, numbers, lists, dicts), so the checkpoints load with
``torch.load(weights_only=True)``; :mod:`paperlib.model.weights` reads them without running code from the file.

Fine-tuning (``train.init_from``) reads a paperlib or an official checkpoint: strict by default (every key and shape
must match), or partial (``init_strict=false``, ``init_skip``), in which case the keys left at their fresh values are
reported. The optimiser state of a fully loaded file can be carried over (:func:`carry_optimizer_state`), re-indexed by
parameter name (official files order their parameters differently).
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from paperlib.engine import runs
from paperlib.engine.evaluate import unwrap
from paperlib.model import checkpoints, weights


@dataclass
class TrainState:
    """Counters that a resume restores (all plain numbers)."""

    step: int = 0  # optimiser steps done
    epoch: int = 0  # current epoch
    step_in_epoch: int = 0  # batches of the current epoch already trained on
    best_metric: float = -math.inf
    best_step: int = -1
    evals_since_best: int = 0
    best_valid_loss: float = math.inf  # the lowest valid loss so far, and its step (patience_counts_valid_loss)
    best_loss_step: int = -1
    elapsed_s: float = 0.0  # wall time spent in earlier attempts (resume adds to it)
    resumes: int = 0
    stop_reason: str | None = None


# ---------------------------------------------------------------------------------------------------------------------
# RNG streams


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The python/numpy/torch (and CUDA) RNG states as tensors and plain data."""
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


def rank_rng(ckpt: Mapping[str, Any], rank: int) -> Mapping[str, Any] | None:
    """This rank's RNG states in a training checkpoint (None when the checkpoint was saved by fewer ranks)."""
    states = ckpt.get("rng")
    if isinstance(states, list) and rank < len(states):
        return states[rank]
    return None


# ---------------------------------------------------------------------------------------------------------------------
# resume


def resume_checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint a resume reads: a run directory means its ``checkpoints/last.pt``; a file must be a checkpoint
    inside a run directory's ``checkpoints/`` (a resume writes ``metrics.jsonl``, ``results.json`` and checkpoints
    into that run directory, so any other place is refused, with a ValueError naming what is missing)."""
    path = Path(path)
    if path.is_dir():
        run_dir, ckpt = path, path / runs.CHECKPOINT_DIR / "last.pt"
        if not ckpt.is_file():
            raise FileNotFoundError(f"{path}: no {runs.CHECKPOINT_DIR}/last.pt to resume from (give a run directory "
                                    "or a checkpoint in its checkpoints/)")
    elif path.is_file():
        run_dir, ckpt = path.parent.parent, path
        if path.parent.name != runs.CHECKPOINT_DIR:
            raise ValueError(f"{path}: not inside a run directory's {runs.CHECKPOINT_DIR}/ folder; --resume takes a "
                             f"run directory or RUN/{runs.CHECKPOINT_DIR}/<name>.pt (a resume writes into the run "
                             "directory); to start a new run from these weights use --init-from")
    else:
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if not (run_dir / runs.CONFIG_FILE).is_file():
        raise ValueError(f"{path}: {run_dir} is not a paperlib run directory (no {runs.CONFIG_FILE}); --resume takes a "
                         f"run directory or RUN/{runs.CHECKPOINT_DIR}/<name>.pt; to start a new run from these weights "
                         "use --init-from")
    return ckpt


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load the checkpoint a resume of ``path`` reads (:func:`resume_checkpoint_path`) with ``weights_only=True``
    through :func:`paperlib.model.weights.load_checkpoint` (no code from the file ever runs; its checksum and finite
    values are checked)."""
    path = resume_checkpoint_path(path)
    ckpt = weights.load_checkpoint(path)
    missing = [k for k in ("run_config", "optimizer", "scheduler", "state", "rng") if k not in ckpt]
    if missing:
        raise RuntimeError(f"{path}: a weights-only checkpoint (no {missing}); it can initialise a run "
                           "(train.init_from) but not resume one")
    ckpt["_path"] = str(path)
    return ckpt


# ---------------------------------------------------------------------------------------------------------------------
# fine-tuning


def trainable_names(model: nn.Module) -> list[str]:
    return [n for n, p in unwrap(model).named_parameters() if p.requires_grad]


def load_init_weights(model: nn.Module, path: str, strict: bool = True, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Copy weights from a paperlib or official checkpoint into ``model``.

    ``strict``: keys and shapes must match exactly (else a ValueError names them). Not strict: keys missing from the
    file, extra in it or of another shape are left at ``model``'s current values (e.g. a 3-class classifier fine-tuned
    from a 21-class run, positional tables of another window length). ``skip``: key prefixes never copied (e.g.
    ``visual_backbone.``: "feature extractors not pre-trained"). Returns ``{"optimizer", "scheduler", "scaler"}``
    states found in the file (only when everything was copied), the optimiser state re-indexed to ``model``'s
    trainable parameters (official files: by parameter name through the key map), and ``"kept_fresh"``: the keys
    left at their fresh values.
    """
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
        out["optimizer"] = reindex_optimizer_state(raw["optimizer"], names, model, path)
    sched = raw.get("scheduler") or raw.get("lr_scheduler")
    if isinstance(sched, Mapping):
        out["scheduler"] = sched
    if isinstance(raw.get("scaler"), Mapping) and raw["scaler"]:
        out["scaler"] = raw["scaler"]
    return out


def reindex_optimizer_state(opt: Mapping[str, Any], names: Sequence[str] | None, model: nn.Module,
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


def carry_optimizer_state(optimizer: torch.optim.Optimizer, carried: Mapping[str, Any], base_lr: float,
                          source: str) -> int:
    """Load the Adam moments of a fine-tuning source into ``optimizer``, as the official fine-tuning does; return the
    source's scheduler position (optimiser steps it took), where this run's lr schedule continues (no new warm-up).

    lr, betas, eps and weight decay follow this run's configuration (``optimizer``'s current values); ``initial_lr``
    becomes ``base_lr``, the lr the schedule scales.
    """
    if "optimizer" not in carried:
        raise ValueError(f"{source}: holds no optimiser state to carry; set train.init_carry_optimizer=false")
    hyper = {k: optimizer.param_groups[0][k] for k in ("lr", "betas", "eps", "weight_decay")}
    optimizer.load_state_dict(carried["optimizer"])
    for g in optimizer.param_groups:
        g.update(hyper, initial_lr=base_lr)
    return int(carried.get("scheduler", {}).get("last_epoch", 0))
