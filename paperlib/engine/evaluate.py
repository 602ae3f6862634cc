"""Metrics (pure functions) and evaluation of a model on a split.

Paper: Sec. 4-5 report top-1 accuracy on the 21-class offset grid with and without a +-1 class temporal tolerance
(Acc_21 and Acc_21^tol) and plain top-1 for the 3-class grid. The official code (its ``calc_metrics``)
computes ``accuracy_1``, ``accuracy_5``, ``accuracy_1_tol1`` and ``accuracy_5_tol1`` over all logits of an epoch: a
(top-k) prediction counts when it is one of {t-1, t, t+1}, with the neighbours clamped to [0, C-1], and each sample
counts at most once. The paper's Acc_21^tol is ``accuracy_1_tol1``; early stopping uses ``accuracy_1``, as in the
official code.

Evaluation protocol: fixed offsets from the fixed-offset CSVs (one pass), or ``iter_times`` passes with random offsets
and starts (VGGSound-Sparse in the official README), reported as mean and std over passes.

One evaluation loop, :func:`predict` (per-item logits, predictions, targets and metadata), feeds both the metrics here
and per-item reports such as the campaign's ``test_detail.json`` (:func:`paperlib.paper.campaign.evaluate_model`).

Deviations from the official code:
- ``mAP``/``mROCAUC``/``dprime`` (scikit-learn) are not computed; per-offset-class and per-content-class accuracy and
  the confusion matrix are added.
- Under DDP each rank evaluates a disjoint shard (no padding duplicates) and the logits are gathered, so the numbers
  equal a single-process evaluation exactly; the official DistributedSampler pads the last shard with repeated samples.
- ``accuracy_k`` with k larger than the number of classes counts every sample (k is clamped to C).
"""

from __future__ import annotations

import contextlib
import math
import random
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.config import apply_overrides, from_dict
from paperlib.data.datasets import DataConfig
from paperlib.engine.config import resolve
from paperlib.model.sparsesync import ModelConfig
from paperlib.model.weights import CheckpointError, load_checkpoint

ArrayLike = torch.Tensor | np.ndarray | Sequence


# ---------------------------------------------------------------------------------------------------------------------
# pure metric functions


def _as_logits(logits: ArrayLike) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits).detach().float().cpu()
    if t.ndim != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(t.shape)}")
    return t


def _as_targets(targets: ArrayLike, n: int | None = None, num_classes: int | None = None) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets).detach().cpu().long()
    if t.ndim != 1:
        raise ValueError(f"targets must be (N,), got shape {tuple(t.shape)}")
    if n is not None and t.numel() != n:
        raise ValueError(f"{t.numel()} targets for {n} predictions")
    if num_classes is not None and t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"targets must lie in [0, {num_classes - 1}], got range [{int(t.min())}, {int(t.max())}]")
    return t


def topk_hits(logits: ArrayLike, targets: ArrayLike, k: int = 1, tol: int = 0) -> torch.Tensor:
    """Boolean (N,): is one of the top-``k`` classes within ``tol`` classes of the target?

    The tolerance window {t-tol, ..., t+tol} is clamped to [0, C-1] (at the grid edges it is one-sided), and a sample
    counts once however many of its top-k fall in the window. Ties in the logits are broken by ``torch.topk``.
    """
    lg = _as_logits(logits)
    n, c = lg.shape
    tg = _as_targets(targets, n, c)
    if k < 1 or tol < 0:
        raise ValueError(f"need k >= 1 and tol >= 0, got k={k}, tol={tol}")
    top = lg.topk(min(k, c), dim=1).indices  # (N, k)
    lo = (tg - tol).clamp(min=0)[:, None]  # (N, 1)
    hi = (tg + tol).clamp(max=c - 1)[:, None]
    return ((top >= lo) & (top <= hi)).any(dim=1)


def accuracy(logits: ArrayLike, targets: ArrayLike, k: int = 1, tol: int = 0) -> float:
    """Fraction of samples whose top-``k`` prediction is within ``tol`` classes of the target (nan when empty)."""
    hits = topk_hits(logits, targets, k, tol)
    return float(hits.double().mean()) if hits.numel() else math.nan


def offset_metrics(logits: ArrayLike, targets: ArrayLike) -> dict[str, float]:
    """The official metrics ``accuracy_1``, ``accuracy_5``, ``accuracy_1_tol1``, ``accuracy_5_tol1``, and the loss."""
    lg = _as_logits(logits)
    tg = _as_targets(targets, lg.shape[0], lg.shape[1])
    out = {
        "accuracy_1": accuracy(lg, tg, 1, 0),
        "accuracy_5": accuracy(lg, tg, 5, 0),
        "accuracy_1_tol1": accuracy(lg, tg, 1, 1),
        "accuracy_5_tol1": accuracy(lg, tg, 5, 1),
        "loss": float(F.cross_entropy(lg, tg)) if tg.numel() else math.nan,
        "n": int(tg.numel()),
    }
    return out


def confusion_matrix(preds: ArrayLike, targets: ArrayLike, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts, rows = true class, columns = predicted class."""
    p = _as_targets(preds, None, num_classes)
    t = _as_targets(targets, p.numel(), num_classes)
    idx = t * num_classes + p
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes).numpy()


def per_class_accuracy(preds: ArrayLike, targets: ArrayLike, num_classes: int) -> np.ndarray:
    """(C,) top-1 accuracy for each true class; nan for classes without samples."""
    cm = confusion_matrix(preds, targets, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def per_group_accuracy(preds: ArrayLike, targets: ArrayLike, groups: Sequence[Any]) -> dict[str, float]:
    """Top-1 accuracy per content group (e.g. VGGSound-Sparse class label), keyed by ``str(group)``, sorted by key."""
    p = _as_targets(preds)
    t = _as_targets(targets, p.numel())
    if len(groups) != p.numel():
        raise ValueError(f"{len(groups)} group labels for {p.numel()} predictions")
    correct = (p == t).numpy()
    sums: dict[str, list[int]] = {}
    for g, ok in zip(groups, correct):
        s = sums.setdefault(str(g), [0, 0])
        s[0] += int(ok)
        s[1] += 1
    return {g: sums[g][0] / sums[g][1] for g in sorted(sums)}


def mean_std(values: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean and (population) std over passes of every numeric key: ``{key: mean, key_std: std}``."""
    if not values:
        return {}
    out: dict[str, float] = {}
    for k in values[0]:
        col = [float(v[k]) for v in values if isinstance(v.get(k), (int, float)) and not isinstance(v.get(k), bool)]
        if len(col) != len(values):
            continue
        out[k] = float(np.mean(col))
        out[f"{k}_std"] = float(np.std(col))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# running a model


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Restore python/numpy/torch (and CUDA) RNG states on exit: evaluation never changes the training trajectory."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``precision`` in {"bf16", "fp16"}; a no-op context for "fp32"."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(device_type=device.type, dtype=dtype)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model under DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Disjoint, exhaustive shard of range(n) for ``rank`` (strided, no padding duplicates)."""
    return list(range(rank, n, world_size))


ITEM_FIELDS = ("label", "id", "offset_sec", "v_start_sec")  # per-item batch entries the evaluation loop keeps


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Iterable[Mapping[str, Any]], device: torch.device,
                   precision: str = "fp32", progress: bool = False, desc: str = "eval") -> dict[str, Any]:
    """Run ``model`` (eval mode, no grad) over dict batches; return its per-item outputs and the items' metadata.

    Returns ``{"logits": (N, C) float32, "pred": (N,) argmax class, "target": (N,) long}`` and, as lists of Python
    values, each of :data:`ITEM_FIELDS` (content ``label``, ``id``, ``offset_sec``, ``v_start_sec``) that the batches
    carry (None for what they do not carry, and for ``target``). Every module's train/eval mode is restored afterwards.
    """
    modes = [(m, m.training) for m in model.modules()]  # restored per module (frozen backbones stay in eval)
    model.eval()
    logits, targets = [], []
    items: dict[str, list] = {k: [] for k in ITEM_FIELDS}
    it = batches
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(batches, desc=desc, leave=False, dynamic_ncols=True)
    try:
        for batch in it:
            video = batch["video"].to(device, non_blocking=True)
            audio = batch["audio"].to(device, non_blocking=True)
            with autocast_context(device, precision):
                out = model(video, audio)
            logits.append(out.float().cpu())
            if "target" in batch:
                targets.append(torch.as_tensor(batch["target"]).long().cpu())
            for k in ITEM_FIELDS:
                if k in batch:
                    v = batch[k]
                    items[k].extend(v.tolist() if isinstance(v, torch.Tensor) else list(v))
    finally:
        for m, mode in modes:
            m.training = mode
    all_logits = torch.cat(logits) if logits else torch.empty(0, 0)
    out: dict[str, Any] = {"logits": all_logits,
                           "pred": all_logits.argmax(1) if logits else torch.empty(0, dtype=torch.long),
                           "target": torch.cat(targets) if targets else None}
    out.update({k: v or None for k, v in items.items()})
    return out


def _gather(part: dict[str, Any]) -> dict[str, Any]:
    """Concatenate the per-rank outputs of :func:`predict_logits` on every rank (identity without DDP)."""
    rank, world = _dist_info()
    if world == 1:
        return part
    parts: list[Any] = [None] * world
    torch.distributed.all_gather_object(parts, part)
    out: dict[str, Any] = {}
    for k in part:
        vals = [p[k] for p in parts if p[k] is not None and (not isinstance(p[k], torch.Tensor) or p[k].numel())]
        if not vals:
            out[k] = None if k != "logits" else torch.empty(0, 0)
        elif isinstance(vals[0], torch.Tensor):
            out[k] = torch.cat(vals)
        else:
            out[k] = [x for v in vals for x in v]
    return out


def summarise(outputs: Mapping[str, Any], num_classes: int, detail: bool = False) -> dict[str, Any]:
    """Metrics from gathered outputs; with ``detail`` also per-offset-class / per-content accuracy and the confusion."""
    logits, target = outputs["logits"], outputs["target"]
    if target is None:
        raise ValueError("the batches carry no 'target': cannot compute metrics")
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"model returned logits of shape {tuple(logits.shape)}, expected (N, {num_classes})")
    res: dict[str, Any] = offset_metrics(logits, target)
    if detail:
        preds = logits.argmax(1)
        res["per_offset_class_accuracy"] = [None if math.isnan(x) else float(x)
                                            for x in per_class_accuracy(preds, target, num_classes)]
        res["confusion_matrix"] = confusion_matrix(preds, target, num_classes).tolist()
        if outputs.get("label") is not None:
            res["per_content_class_accuracy"] = per_group_accuracy(preds, target, outputs["label"])
    return res


def predict(model: nn.Module, batches: Iterable[Mapping[str, Any]], device: torch.device | str = "cpu",
            precision: str = "fp32", progress: bool = False, desc: str = "eval") -> dict[str, Any]:
    """The evaluation loop: :func:`predict_logits` with every RNG left as it was (:func:`preserved_rng`), gathered
    across DDP ranks (each rank passes its disjoint shard; every rank gets all items in rank order).

    What both the metrics (:func:`evaluate`) and per-item reports (e.g. the campaign's ``test_detail.json``) start from:
    per-item ``logits``, ``pred``, ``target`` and metadata (see :func:`predict_logits`).
    """
    with preserved_rng():
        part = predict_logits(model, batches, torch.device(device), precision, progress=progress, desc=desc)
    return _gather(part)


def evaluate(model: nn.Module, loader: Iterable[Mapping[str, Any]], device: torch.device | str = "cpu",
             num_classes: int | None = None, precision: str = "fp32", detail: bool = False,
             progress: bool = False, desc: str = "eval") -> dict[str, Any]:
    """Evaluate ``model`` on dict batches: no_grad, eval mode, RNG untouched; returns floats (lists with ``detail``).

    Under DDP, pass each rank a disjoint shard (see :func:`shard_indices`); the logits are gathered on every rank and
    every rank returns the same numbers.

    Args:
        model: maps ``video (B, T, 3, H, W)``, ``audio (B, 1, F, Ta)`` to logits ``(B, C)``.
        loader: yields dicts with ``video``, ``audio``, ``target`` and optionally ``label`` (content class).
        num_classes: C; taken from the logits when None.
    Returns:
        ``accuracy_1``, ``accuracy_5``, ``accuracy_1_tol1``, ``accuracy_5_tol1``, ``loss``, ``n`` (+ detail entries).
    """
    outputs = predict(model, loader, device, precision, progress=progress, desc=desc)
    if num_classes is None:
        num_classes = int(outputs["logits"].shape[1])
    return summarise(outputs, num_classes, detail=detail)


def evaluate_passes(model: nn.Module, make_loader: Callable[[int], Iterable[Mapping[str, Any]]], passes: int,
                    device: torch.device | str = "cpu", num_classes: int | None = None, precision: str = "fp32",
                    progress: bool = False, desc: str = "eval") -> dict[str, Any]:
    """``passes`` evaluations (``make_loader(i)`` builds pass i, e.g. random offsets with seed + i): mean and std.

    With one pass this is :func:`evaluate` with ``detail``; with several, each metric ``m`` comes with ``m_std``, the
    detail entries are computed over all passes pooled, and ``passes`` holds the per-pass metrics.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    device = torch.device(device)
    per_pass, pooled = [], []
    with preserved_rng():
        for i in range(passes):
            part = _gather(predict_logits(model, make_loader(i), device, precision, progress=progress,
                                          desc=f"{desc} {i + 1}/{passes}" if passes > 1 else desc))
            nc = num_classes if num_classes is not None else int(part["logits"].shape[1])
            per_pass.append(summarise(part, nc))
            pooled.append(part)
    nc = num_classes if num_classes is not None else int(pooled[0]["logits"].shape[1])
    merged = {k: (torch.cat([p[k] for p in pooled]) if isinstance(pooled[0][k], torch.Tensor)
                  else (None if pooled[0][k] is None else [x for p in pooled for x in p[k]])) for k in pooled[0]}
    res = summarise(merged, nc, detail=True)
    if passes > 1:
        res.update(mean_std(per_pass))
        res["passes"] = per_pass
    res["iter_times"] = passes
    return res


def evaluate_dataset(model: nn.Module, dataset: Any, passes: int = 1, batch_size: int = 10, num_workers: int = 0,
                     device: torch.device | str = "cpu", num_classes: int | None = None, precision: str = "fp32",
                     progress: bool = False, desc: str = "eval") -> dict[str, Any]:
    """Evaluate on a dataset whose items are ``passes`` consecutive blocks (``paperlib.data.datasets``: with random
    test offsets, ``len(ds) == clips * iter_times`` and block p holds pass p). Under DDP each rank takes a disjoint
    shard of each pass.
    """
    from torch.utils.data import DataLoader, Subset

    n = len(dataset)
    if passes < 1 or n % passes:
        raise ValueError(f"{n} items cannot be split into {passes} equal passes")
    per = n // passes
    rank, world = _dist_info()

    def make(p: int) -> DataLoader:
        idx = list(range(p * per, (p + 1) * per))
        sub = Subset(dataset, [idx[i] for i in shard_indices(per, rank, world)])
        return DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                          pin_memory=torch.device(device).type == "cuda")

    return evaluate_passes(model, make, passes, device, num_classes, precision, progress=progress, desc=desc)


def checkpoint_data_config(path: Path, model_cfg: ModelConfig, preset: str | None = None,
                           overrides: Sequence[str] = ()) -> DataConfig:
    """The DataConfig to evaluate a checkpoint on (the geometry is the model's own, ``model_cfg.geometry``):
    ``preset``'s, else the checkpoint's own run config's, else the defaults; then ``key=value`` overrides (a ``data.``
    prefix is optional). A preset whose offset classes differ from the model's is refused."""
    if preset is not None:
        run = resolve(preset)
        if run.geometry.num_classes != model_cfg.geometry.num_classes:
            raise ValueError(f"{path}: the model has {model_cfg.geometry.num_classes} classes, preset {preset!r} "
                             f"{run.geometry.num_classes}")
        dcfg = run.data
    else:
        dcfg = DataConfig()
        try:
            raw = load_checkpoint(path)
            if isinstance(raw.get("run_config"), dict):
                dcfg = from_dict(DataConfig, raw["run_config"]["data"], strict=False)
        except CheckpointError:
            pass
    overrides = [o[len("data."):] if o.startswith("data.") else o for o in overrides]
    return apply_overrides(dcfg, overrides)
