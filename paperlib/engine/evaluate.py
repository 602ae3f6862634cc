"""Metrics (pure functions) and evaluation of a model on a split.

Paper: Sec. 4-5 report top-1 accuracy on the 21-class offset grid with and without a +-1 class temporal tolerance
(Acc_21 and Acc_21^tol) and plain top-1 for the 3-class grid. The official code (its ``calc_metrics``)
computes ``accuracy_1``, ``accuracy_5``, ``accuracy_1_tol1`` and ``accuracy_5_tol1`` over all logits of an epoch: a
(top-k) prediction counts when it is one of {t-1, t, t+1}, with the neighbours clamped to [0, C-1], and each sample
counts at most once. The paper's Acc_21^tol is ``accuracy_1_tol1``; early stopping uses ``accuracy_1``, as in the
official code.

Evaluation protocol: fixed offsets from the fixed-offset CSVs (one pass), or ``iter_times`` passes with random offsets
and starts (VGGSound-Sparse in the official README), reported as mean and std over passes.

One evaluation loop, :func:`predict` (per-item logits, predictions, targets and metadata), feeds both the metrics
(:func:`evaluate`, :func:`evaluate_passes`) and the test pass of a trained model, :func:`evaluate_model`: the metrics
with per-item detail and, on synthetic data, the accuracy on the items whose window holds a sync cue
(:func:`cue_metrics`, via :func:`paperlib.data.synthetic.has_cue`), as the campaign writes them to ``test_detail.json``.

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
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.core.config import apply_overrides, from_dict
from paperlib.core.geometry import Geometry
from paperlib.data.datasets import DataConfig, read_vggsound_csv, sparse_classes
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

    What both the metrics (:func:`evaluate`) and the per-item test pass (:func:`evaluate_model`, the campaign's
    ``test_detail.json``) start from: per-item ``logits``, ``pred``, ``target`` and metadata (see
    :func:`predict_logits`).
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


# ---------------------------------------------------------------------------------------------------------------------
# the test pass of a trained model: the metrics with per-item detail and, on synthetic data, the sync-cue oracle


def cue_metrics(preds: Sequence[int], targets: Sequence[int], cues: Sequence[bool]) -> dict[str, Any]:
    """Accuracy on the items whose window holds a sync cue (the synthetic oracle), and its null.

    Returns ``cue_fraction`` (share of items with a cue), ``cue_n``, ``cue_accuracy_1`` (top-1 on them),
    ``cue_accuracy_1_tol1`` (within +-1 class) and ``cue_null_accuracy_1`` / ``cue_null_accuracy_1_tol1``: the
    accuracy expected if the same predictions were paired with the same targets at random (the product of the two
    marginals over the cue items). Compare the cue accuracy with this null, not with 1/C: a window pair overlaps more
    when the offset is small, so cue items favour small offsets and a model that always predicts one small offset
    scores above 1/C on them without using the content. Accuracies are None without cue items.
    """
    if not (len(preds) == len(targets) == len(cues)):
        raise ValueError(f"{len(preds)} predictions, {len(targets)} targets and {len(cues)} cue flags")
    idx = [i for i, c in enumerate(cues) if c]
    n = len(preds)
    out: dict[str, Any] = {"cue_fraction": (len(idx) / n) if n else None, "cue_n": len(idx)}
    if idx:
        p = [int(preds[i]) for i in idx]
        t = [int(targets[i]) for i in idx]
        out["cue_accuracy_1"] = sum(a == b for a, b in zip(p, t)) / len(idx)
        out["cue_accuracy_1_tol1"] = sum(abs(a - b) <= 1 for a, b in zip(p, t)) / len(idx)
        pc, tc = Counter(p), Counter(t)
        m = len(idx) ** 2
        out["cue_null_accuracy_1"] = sum(k * tc[c] for c, k in pc.items()) / m
        out["cue_null_accuracy_1_tol1"] = sum(k * (tc[c - 1] + tc[c] + tc[c + 1]) for c, k in pc.items()) / m
    else:
        for k in ("cue_accuracy_1", "cue_accuracy_1_tol1", "cue_null_accuracy_1", "cue_null_accuracy_1_tol1"):
            out[k] = None
    return out


def count_params(model: nn.Module) -> dict[str, int]:
    """Parameters of ``model``: all of them, and those that train (``requires_grad``)."""
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def _class_names(data_cfg: DataConfig) -> list[str] | None:
    """The content class names of a VGGSound(-Sparse) data set (index = the items' ``label``); None for LRS3."""
    if data_cfg.dataset not in ("vggsound", "vggsound_sparse"):
        return None
    root = Path(data_cfg.root)
    if data_cfg.dataset == "vggsound_sparse":
        names = sparse_classes(root)
        if names is not None:
            return names
    csv_path = root / ("vggsound_sparse.csv" if data_cfg.dataset == "vggsound_sparse" else "vggsound.csv")
    return sorted({lab for _, lab, _ in read_vggsound_csv(csv_path)})


def evaluate_model(model: nn.Module, data_cfg: DataConfig, geometry: Geometry, *, seed: int, batch_size: int = 8,
                   device: str = "cpu", progress: bool = False, num_workers: int = 0,
                   gpus: int = 1) -> dict[str, Any]:
    """Test metrics of ``model`` on ``data_cfg``'s test split at the model's ``geometry``: the official metrics with
    detail (:func:`summarise` of the evaluation loop :func:`predict`), per-item predictions and, when the data root
    holds synthetic sidecars, the oracle metrics (:func:`cue_metrics`). ``seed``: the split's random windows (a
    run's ``train.seed``).

    The pass is sharded: ``num_workers`` loader processes decode the clips, and on CUDA with ``gpus`` > 1 each batch
    of ``batch_size`` windows per GPU is split over that many GPUs (``torch.nn.DataParallel``; the items keep their
    order, so the result is the one of a single device). ``n`` counts the scored windows, ``n_clips`` the distinct
    clips, ``clips_listed`` the clips the split lists name (after the filter lists; more than ``n_clips`` when
    missing clips were allowed and dropped); ``test_data.official_windows`` is False when a fixed-offset CSV was
    generated here; ``eval_s`` / ``windows_per_s`` time the pass."""
    from torch.utils.data import DataLoader

    from paperlib.data.datasets import build_dataset, generated_fixed_offsets
    from paperlib.data.protocol import check_data_inputs
    from paperlib.data.synthetic import has_cue, load_sidecar

    num_classes = geometry.num_classes
    ds = build_dataset(data_cfg, geometry, "test", seed=seed)
    passes = 1 if data_cfg.fixed_offsets else int(data_cfg.iter_times)
    dev = torch.device(device)
    model = model.to(dev).eval()
    n_gpus = min(int(gpus), torch.cuda.device_count()) if dev.type == "cuda" else 1
    if n_gpus > 1:
        model = torch.nn.DataParallel(model, device_ids=list(range(n_gpus)))
    loader = DataLoader(ds, batch_size=batch_size * n_gpus, shuffle=False, num_workers=int(num_workers),
                        pin_memory=dev.type == "cuda", persistent_workers=False)
    t0 = time.time()
    out = predict(model, loader, dev, progress=progress, desc="test")  # per item, in order; RNG untouched
    eval_s = time.time() - t0
    lg, tg = out["logits"], out["target"]
    ids, offs, vstarts = out["id"], out["offset_sec"], out["v_start_sec"]
    names = _class_names(data_cfg)
    groups = [names[i] if names is not None and 0 <= i < len(names) else str(i) for i in map(int, out["label"])]
    res = summarise({"logits": lg, "target": tg, "label": groups if names is not None else None}, num_classes,
                    detail=True)
    res.setdefault("per_content_class_accuracy", {})
    pred = out["pred"]  # the argmax class of each item
    preds = pred.tolist()
    res["passes"] = passes
    if passes > 1:  # the dataset holds the passes as consecutive blocks of equal size
        per = len(preds) // passes
        res["accuracy_1_per_pass"] = [float((pred[p * per:(p + 1) * per] == tg[p * per:(p + 1) * per]).double().mean())
                                      for p in range(passes)]
    items = [{"id": i, "offset_sec": o, "v_start_sec": v, "target": int(t), "pred": int(p), "label": g}
             for i, o, v, t, p, g in zip(ids, offs, vstarts, tg.tolist(), preds, groups)]
    sidecars = Path(data_cfg.root) / "sidecar"
    if sidecars.is_dir():
        cache: dict[str, dict] = {}
        for it in items:
            sc = cache.get(it["id"]) or cache.setdefault(it["id"], load_sidecar(data_cfg.root, it["id"]))
            it["cue"] = bool(has_cue(sc, it["v_start_sec"], it["offset_sec"], clip_sec=geometry.clip_sec))
        res.update(cue_metrics(preds, tg.tolist(), [it["cue"] for it in items]))
    else:
        res.update({"cue_fraction": None, "cue_n": None, "cue_accuracy_1": None, "cue_accuracy_1_tol1": None,
                    "cue_null_accuracy_1": None, "cue_null_accuracy_1_tol1": None})
    res["items"] = items
    clips_row = [r for r in check_data_inputs(data_cfg, geometry, ("test",), eval_splits=(), official=False)
                 if r.what == "clips"]
    res["n_windows"] = len(items)
    res["n_clips"] = len(set(ids or ()))
    res["clips_listed"] = clips_row[0].listed if clips_row else None
    generated = [str(p) for p in generated_fixed_offsets(data_cfg, geometry)] if data_cfg.fixed_offsets else []
    res["test_data"] = {"dataset": data_cfg.dataset, "root": str(data_cfg.root), "clip_sec": geometry.clip_sec,
                        "fixed_offsets": data_cfg.fixed_offsets, "iter_times": data_cfg.iter_times,
                        "official_windows": bool(data_cfg.fixed_offsets) and not generated,
                        "generated_offsets": generated}
    res["eval_s"] = round(eval_s, 2)
    res["windows_per_s"] = round(len(items) / eval_s, 2) if eval_s > 0 else None
    res["test_pass"] = {"num_workers": int(num_workers), "gpus": n_gpus, "batch_size": batch_size * n_gpus,
                        "device": str(dev)}
    return res


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
