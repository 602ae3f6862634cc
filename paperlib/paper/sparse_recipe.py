"""The sparse step of the plateau recipe, measured through the training engine: data, then evaluation.

Paper: Sec. 5 / Table 2 (VGGSound-Sparse, 21 offset classes). The paper's sparse models are fine-tuned from LRS3
pre-training; here the small CPU model (preset ``cpu-recipe``) is trained on synthetic ``dense-crop`` clips, then
fine-tuned on synthetic ``sparse`` clips (preset ``cpu-recipe-sparse``) and tested on the *standard* sparse generator.

Steps (from the repository root, one torch thread per run; README "What to expect and how to get off the plateau";
command line: :mod:`paperlib.commands.sparse_recipe`)::

    python -m paperlib sparse-recipe data --out runs/sparse_recipe          # three synthetic sets, a few minutes
    python -m paperlib train --preset cpu-recipe data.root=runs/sparse_recipe/data/dense-crop \\
        train.time_budget_min=10 train.run_root=runs/sparse_recipe/runs
    python -m paperlib train --preset cpu-recipe-sparse data.root=runs/sparse_recipe/data/sparse-train \\
        train.init_from=<dense run>/checkpoints/best.pt train.run_root=runs/sparse_recipe/runs
    python -m paperlib sparse-recipe eval <sparse run>/checkpoints/last.pt --name recipe --probes \\
        --root runs/sparse_recipe/data/sparse-test --out runs/sparse_recipe

The three sets: ``dense-crop`` (400 clips, split 0.6/0.1/0.3, as the dense goal), ``sparse-train`` (600 clips with
3-5 events each, ``synthetic.DENSE_EVENT_PROBS``, seed 11, split 0.9/0.05/0.05: the training clips of the sparse step)
and ``sparse-test`` (320 clips of the default sparse generator, seed 7, all but one in the test split).

``eval`` scores a checkpoint on a sparse root's test split (random offsets, ``passes`` passes, seeded) and appends
one row to ``<out>/table.jsonl``: overall top-1 / +-1, the share of items whose windows hold a sync cue (the synthetic
oracle), top-1 / +-1 on the cue items and on the others, each beside its *null* (the same predictions paired with the
same targets at random: cue items favour small offsets, so 1/C is the wrong reference for them) and its z-score against
that null; with ``probes`` the same model with the audio (or video) of another clip of the batch: a model that uses
synchronisation falls to its null there. Per-item predictions go to ``<out>/<name>.items.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from paperlib.core.io import finite_or_none
from paperlib.core.provenance import env_info
from paperlib.data.datasets import DataConfig
from paperlib.data.synthetic import DENSE_EVENT_PROBS, SynthConfig, generate
from paperlib.engine.evaluate import cue_metrics, evaluate_model
from paperlib.paper.run_config import TRAIN_SEED_BASE

SETS = {  # name: (setting, clips, seed, split fractions, event_count_probs or None for the default)
    "dense-crop": ("dense-crop", 400, 0, (0.6, 0.1, 0.3), None),
    "sparse-train": ("sparse", 600, 11, (0.9, 0.05, 0.05), "dense"),
    "sparse-test": ("sparse", 320, 7, (0.0, 0.0, 1.0), None),
}
SMOKE_CLIPS = {"dense-crop": 8, "sparse-train": 8, "sparse-test": 8}


def make_data(out: Path, smoke: bool = False, workers: int = 1, progress: bool = True) -> dict[str, Path]:
    """Generate the three sets under ``out/data`` (resumable: ``synthetic.generate`` skips finished clips)."""
    roots = {}
    for name, (setting, clips, seed, split, events) in SETS.items():
        cfg = SynthConfig(setting=setting, size=32 if smoke else 64, seed=seed, split_fractions=split)
        if events == "dense":
            cfg = dataclasses.replace(cfg, event_count_probs=DENSE_EVENT_PROBS)
        roots[name] = generate(cfg.validate(), Path(out) / "data" / name, SMOKE_CLIPS[name] if smoke else clips,
                               workers=workers, progress=progress)
    return roots


class SwapModality(nn.Module):
    """The wrapped model with one modality taken from the next clip of the batch (a probe of synchronisation)."""

    def __init__(self, model: nn.Module, modality: str) -> None:
        super().__init__()
        if modality not in ("audio", "video"):
            raise ValueError(f"modality must be 'audio' or 'video', got {modality!r}")
        self.model, self.modality = model, modality

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if self.modality == "audio":
            return self.model(video, audio.roll(1, 0))
        return self.model(video.roll(1, 0), audio)


def _z(acc: float | None, null: float | None, n: int) -> float | None:
    if acc is None or null is None or n == 0 or not 0.0 < null < 1.0:
        return None
    return (acc - null) / math.sqrt(null * (1.0 - null) / n)


def item_summary(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracies, nulls and z-scores over all items, the cue items and the others (``items``: target, pred, cue)."""
    out: dict[str, Any] = {"n": len(items)}
    groups = {"all": [True] * len(items), "cue": [bool(it["cue"]) for it in items],
              "no_cue": [not it["cue"] for it in items]}
    preds, targets = [it["pred"] for it in items], [it["target"] for it in items]
    for name, sel in groups.items():
        m = cue_metrics(preds, targets, sel)
        n = m["cue_n"]
        out[name] = {"n": n, "top1": m["cue_accuracy_1"], "tol1": m["cue_accuracy_1_tol1"],
                     "null_top1": m["cue_null_accuracy_1"], "null_tol1": m["cue_null_accuracy_1_tol1"],
                     "z_top1": _z(m["cue_accuracy_1"], m["cue_null_accuracy_1"], n),
                     "z_tol1": _z(m["cue_accuracy_1_tol1"], m["cue_null_accuracy_1_tol1"], n)}
    out["cue_fraction"] = out["cue"]["n"] / len(items) if items else None
    return out


def evaluate(model: nn.Module, mcfg: Any, root: str | Path, *, passes: int = 2, decoded_cache_dir: str = "",
             probes: bool = False, batch_size: int = 8) -> dict[str, Any]:
    """Score ``model`` (geometry from its ModelConfig ``mcfg``) on the test split of the sparse root ``root`` (see the
    module docstring)."""
    dcfg = DataConfig(root=str(root), dataset="vggsound_sparse", fixed_offsets=False, iter_times=passes,
                      decoded_cache_dir=decoded_cache_dir)
    res: dict[str, Any] = {}
    for probe in ("none", "audio", "video") if probes else ("none",):
        m = model if probe == "none" else SwapModality(model, probe)
        t0 = time.perf_counter()
        r = evaluate_model(m, dcfg, mcfg.geometry, batch_size=batch_size, seed=TRAIN_SEED_BASE)
        if r["cue_n"] is None:
            raise ValueError(f"{root}: no synthetic sidecars (sidecar/*.json): the cue oracle needs a synthetic root")
        key = "model" if probe == "none" else f"swapped_{probe}"
        res[key] = item_summary(r["items"]) | {"eval_s": round(time.perf_counter() - t0, 1)}
        if probe == "none":
            res["items"] = r["items"]
    return res


def record(res: dict[str, Any], out: Path, name: str, checkpoint: str, root: str | Path, passes: int
           ) -> dict[str, Any]:
    """Write the per-item predictions of an :func:`evaluate` result to ``<out>/<name>.items.json`` and append its row
    (without the items) to ``<out>/table.jsonl``; returns the row."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in res.items() if k != "items"}
    (out / f"{name}.items.json").write_text(json.dumps(res["items"]) + "\n")
    row = {"name": name, "checkpoint": str(checkpoint), "root": str(root), "passes": passes,
           "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **summary, "env": env_info()}
    with open(out / "table.jsonl", "a") as fh:
        fh.write(json.dumps(finite_or_none(row)) + "\n")
    return row


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def row_text(name: str, s: dict[str, Any]) -> str:
    """One line of an :func:`item_summary`: overall top-1, then the cue items' accuracies beside their nulls."""
    c, a = s["cue"], s["all"]
    return (f"{name}: all top-1 {_fmt(a['top1'], '.3f')} (null {_fmt(a['null_top1'], '.3f')}); cue items "
            f"{c['n']}/{s['n']} top-1 {_fmt(c['top1'], '.3f')} (null {_fmt(c['null_top1'], '.3f')}, "
            f"z {_fmt(c['z_top1'], '.1f')}), +-1 {_fmt(c['tol1'], '.3f')} (null {_fmt(c['null_tol1'], '.3f')}, "
            f"z {_fmt(c['z_tol1'], '.1f')})")
