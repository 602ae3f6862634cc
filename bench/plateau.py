"""Plateau experiments (issue 11): one run per lever, the paper's architecture at the small CPU size, minutes each.

Paper: none directly (the paper reports a long warm-up plateau, Sec. 7.3); this driver measures what gets the
SparseSync head off the chance loss ln(C) quickly on CPU. Components under test live in ``paperlib.engine.recipes``.

Two modes:
- ``--data tokens``: the head alone on "ideal tokens" (a smooth 1-D envelope in the centre visual cell and, shifted by
  the offset, in every audio cell, plus Gaussian noise; a fixed cross-correlation of the clean signals scores 100 %).
  Isolates the head's learning dynamics from the backbones (plateau_prototype.md "ideal tokens").
- ``--data dense-crop | dense-wide | sparse``: the full model (small backbones) on clips of ``paperlib.data.synthetic``,
  held in memory (generated once, cached as .npy under ``--cache``), windows cut as the official sampler does (offset
  uniform on the grid, v_start ~ U[max(0, -o), min(5, 5 - o)] snapped to a frame, +-50 ms audio jitter at train time),
  then the paper's transforms (``paperlib.data.transforms``: random crop + flip + ImageNet normalisation; log-spectrogram +
  per-frequency standardisation; centre crop and no jitter at test). Test items: held-out clips (another dataset seed,
  so other talkers), fixed (offset, v_start) pairs drawn as the official fixed-offset files, with the synthetic oracle
  ``has_cue`` per item (accuracy on cue-bearing items is reported next to the overall accuracy).

Its own minimal training loop (Adam, linear warm-up, grad-norm clip 1.0, cross-entropy), not ``paperlib.engine.train.fit``:
the data are in-memory tensors, so a run's minutes are spent on the model. Each run appends one row to
``<out>/table.jsonl`` (lever, setting, classes, minutes, steps, top-1, +-1, with-cue top-1, shuffled-audio and
shuffled-video probes, load average) and writes its curve to ``<out>/<name>.jsonl``.

Usage (from the repository root; 1 torch thread)::

    nice -n 5 python -m bench.plateau --name official --data dense-crop --minutes 3 --batch 16
    # the recommended recipe (paperlib.engine.recipes; README "What to expect and how to get off the plateau")
    nice -n 5 python -m bench.plateau --name recipe --data dense-crop --minutes 10 --batch 8 --dropout 0 \
        --init anchor --modality-flag 8 --sync-identity-qk 1 --sync-code-gain 0.5 --sync-aux 3 --aux 1 \
        --aux-hold 100000 --test-per-clip 8
    # the same aids where they apply (no selectors to anchor): --variant transformer | avst_dec --aux 1 --dropout 0

Rows also carry ``xcorr_ref_top1/pm1``: the accuracy of the cross-correlation aid itself on the same test items (a
reference, not the paper's model), and the oracle share ``cue_fraction`` (sparse).

Deviations: the window sampler and the evaluation follow the official protocol on in-memory clips (no mp4 round trip,
so no codec effects); the curriculum samples the 21-class grid's subset first (same 21-way classifier).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from paperlib.engine import recipes
from paperlib.model.sparsesync import ModelConfig, build_head, build_model, token_grid
from paperlib.data.synthetic import SynthConfig, generate_clip, has_cue
from paperlib.data.transforms import (AudioLogSpectrogram, AudioStandardize, Compose, RandomHorizontalFlip, RGBNormalize,
                                 RGBSpatialCrop)

REPO_ROOT = Path(__file__).resolve().parents[1]
FPS, SR, CLIP_LEN_SEC = 25, 16000, 10.0


# ----------------------------------------------------------------------------------------------------------------------
# data: in-memory clips and windows


def load_clips(setting: str, n: int, seed: int, size: int, cache: Path | None) -> list[dict[str, Any]]:
    """Clips 0..n-1 of the synthetic set (setting, seed, size): frames uint8 (T, S, S, 3), audio float32, sidecar."""
    cfg = SynthConfig(setting=setting, size=size, seed=seed)
    out = []
    for i in range(n):
        path = cache / f"{setting}-s{seed}-{size}px-{i:05d}.npz" if cache is not None else None
        if path is not None and path.is_file():
            z = np.load(path, allow_pickle=False)
            out.append({"frames": z["frames"], "audio": z["audio"], "sidecar": json.loads(str(z["sidecar"]))})
            continue
        c = generate_clip(cfg, i)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, frames=c["frames"], audio=c["audio"], sidecar=json.dumps(c["sidecar"]))
            os.replace(tmp, path)
        out.append({"frames": c["frames"], "audio": c["audio"], "sidecar": c["sidecar"]})
    return out


@dataclass
class Item:
    clip: int
    target: int
    offset_sec: float
    v_start_i: int
    a_start_i: int


def sample_window(rng: np.random.Generator, n_clips: int, grid: np.ndarray, classes: np.ndarray, clip_sec: float,
                  jitter_sec: float) -> Item:
    """The official train sampler on a 10 s clip: offset from ``classes`` (grid indices), start, audio jitter."""
    c = int(rng.integers(n_clips))
    target = int(rng.choice(classes))
    off = float(np.round(grid[target], 2))
    vmax = CLIP_LEN_SEC - clip_sec
    v = rng.uniform(max(0.0, -off), min(vmax, vmax - off))
    vi = int(v * FPS)
    ai = max(0, int((vi / FPS + off) * SR))
    n = int(round(clip_sec * SR))
    max_a = int(CLIP_LEN_SEC * SR) - n
    if jitter_sec > 0:
        j = int(jitter_sec * SR)
        ai += int(rng.integers(-min(ai, j), min(max_a - ai, j) + 1))
    return Item(c, target, off, vi, ai)


def test_items(n_clips: int, per_clip: int, grid: np.ndarray, clip_sec: float, seed: int = 1338) -> list[Item]:
    """Fixed test items as the official fixed-offset files: offset uniform on the grid, start snapped to a frame."""
    rng = np.random.default_rng(seed)
    items = []
    vmax = CLIP_LEN_SEC - clip_sec
    for c in range(n_clips):
        for _ in range(per_clip):
            t = int(rng.integers(len(grid)))
            off = float(np.round(grid[t], 2))
            v = int(rng.uniform(max(0.0, -off), min(vmax, vmax - off)) * FPS) / FPS
            items.append(Item(c, t, off, int(v * FPS), max(0, int((v + off) * SR))))
    return items


def make_transforms(crop: int, train: bool) -> Compose:
    """The paper's sequences for the synthetic clips (no colour/audio augmentation, as the LRS3 pre-training)."""
    video = [RGBSpatialCrop(crop, random=True), RandomHorizontalFlip(0.5)] if train else [RGBSpatialCrop(crop, False)]
    return Compose([*video, RGBNormalize(), AudioLogSpectrogram(512, 128), AudioStandardize()])


def make_batch(clips: list[dict], items: list[Item], tf: Compose, clip_sec: float, gen: torch.Generator
               ) -> dict[str, torch.Tensor]:
    t, n = int(round(clip_sec * FPS)), int(round(clip_sec * SR))
    vids, auds = [], []
    for it in items:
        c = clips[it.clip]
        frames = torch.from_numpy(c["frames"][it.v_start_i:it.v_start_i + t]).permute(0, 3, 1, 2)  # (T, 3, S, S)
        audio = torch.from_numpy(c["audio"][it.a_start_i:it.a_start_i + n])
        if frames.shape[0] != t or audio.shape[0] != n:
            raise ValueError(f"window {it} exceeds clip {it.clip}")
        s = tf({"video": frames, "audio": audio}, gen)
        vids.append(s["video"])
        auds.append(s["audio"])
    return {"video": torch.stack(vids), "audio": torch.stack(auds),
            "target": torch.tensor([it.target for it in items])}


# ----------------------------------------------------------------------------------------------------------------------
# ideal tokens (head only)


def envelope(n: int, gen: torch.Generator, dur: float = CLIP_LEN_SEC, hz: int = 100) -> torch.Tensor:
    """(n, dur * hz) syllable-like envelopes: Gaussian bumps at a 3-6 Hz renewal rate, 10 % skipped."""
    t = torch.arange(int(dur * hz)) / hz
    out = torch.zeros(n, len(t))
    for b in range(n):
        rate = 3 + 3 * float(torch.rand((), generator=gen))
        k = int(rate * dur * 1.2) + 2
        on = torch.rand(k, generator=gen) * (dur + 1) - 0.5
        w = 0.08 + 0.1 * torch.rand(k, generator=gen)
        amp = (0.5 + 0.5 * torch.rand(k, generator=gen)) * (torch.rand(k, generator=gen) > 0.1)
        out[b] = (amp[:, None] * torch.exp(-0.5 * ((t[None] - on[:, None]) / w[:, None]) ** 2)).sum(0)
    return out


def token_batch(n: int, gen: torch.Generator, vis_grid, aud_grid, d: int, dirs, grid: torch.Tensor,
                classes: torch.Tensor, clip_sec: float, noise: float = 0.5, jitter: bool = True,
                all_cells: bool = False):
    """Ideal bridge outputs: vis (B, t, h, w, D), aud (B, f, ta, D), targets (B,)."""
    hz = 100
    s = envelope(n, gen)
    tgt = classes[torch.randint(len(classes), (n,), generator=gen)]
    o = grid[tgt]
    vmax = CLIP_LEN_SEC - clip_sec
    lo, hi = torch.clamp(-o, min=0), torch.clamp(vmax - o, max=vmax)
    v = ((lo + (hi - lo) * torch.rand(n, generator=gen)) * FPS).floor() / FPS
    a = (v + o + ((0.1 * torch.rand(n, generator=gen) - 0.05) if jitter else 0)).clamp(0, vmax)
    t, h, w = vis_grid
    f, ta = aud_grid
    length = int(clip_sec * hz)

    def pool(start: torch.Tensor, cells: int) -> torch.Tensor:
        idx = (start[:, None] * hz + torch.arange(length)[None]).long().clamp(0, s.shape[1] - 1)
        x = F.adaptive_avg_pool1d(torch.gather(s, 1, idx)[:, None], cells)[:, 0]  # (B, cells)
        return (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-3)

    sv, sa = pool(v, t), pool(a, ta)
    vis = noise * torch.randn(n, t, h, w, d, generator=gen)
    if all_cells:  # as if the backbone had already spread the mouth signal over space
        vis += sv[:, :, None, None, None] * dirs[0]
    else:
        vis[:, :, h // 2, w // 2, :] += sv[:, :, None] * dirs[0]
    aud = noise * torch.randn(n, f, ta, d, generator=gen) + sa[:, None, :, None] * dirs[1]
    return vis, aud, tgt


# ----------------------------------------------------------------------------------------------------------------------
# run


def build(args: argparse.Namespace, num_classes: int) -> tuple[torch.nn.Module, ModelConfig]:
    cfg = ModelConfig(variant=args.variant, backbone="small", d_model=args.d_model, n_head=args.heads,
                      depth=args.depth, n_selectors=args.selectors, crop=args.crop, clip_sec=args.clip_sec,
                      num_classes=num_classes, embd_pdrop=args.dropout, attn_pdrop=args.dropout,
                      resid_pdrop=args.dropout)
    torch.manual_seed(args.seed)
    model = build_head(cfg) if args.data == "tokens" else build_model(cfg)
    head = model if args.data == "tokens" else model.head
    if args.init in ("anchor", "anchor-sel"):
        recipes.time_anchored_init(head, args.clip_sec, sync_passthrough=args.init == "anchor",
                                   modality_flag=args.modality_flag, sync_identity_qk=args.sync_identity_qk,
                                   sync_code_gain=args.sync_code_gain)
    elif args.init != "official":
        raise ValueError(f"unknown --init {args.init!r}")
    return model, cfg


def forward(model, args, video, audio, aux_on: bool, sync_aux_on: bool):
    """Tokens mode: the head's logits, its inputs (for the xcorr aux loss) and ``sparsesync_parts`` (or None)."""
    head = model if args.data == "tokens" else model.head
    vis, aud = (video, audio) if args.data == "tokens" else model.features(video, audio)
    parts = None
    if sync_aux_on:
        parts = recipes.sparsesync_parts(head, vis, aud)
        logits = parts["logits"]  # the caller computes the matching loss (it needs the targets)
    else:
        logits = head(vis, aud)
    return logits, ((vis, aud) if aux_on else None), parts


def lr_at(step: int, args) -> float:
    f = 1.0 if step >= args.warmup else 0.01 + 0.99 * step / max(1, args.warmup)
    return args.lr * f


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    C = args.classes
    grid_np = np.linspace(-args.max_off, args.max_off, C)
    grid = torch.tensor(grid_np, dtype=torch.float32)
    all_cls = np.arange(C)
    cur_cls = np.array(sorted({int(round(x)) for x in np.linspace(0, C - 1, args.curriculum_classes)})) \
        if args.curriculum_classes else all_cls
    load0 = os.getloadavg()
    t_setup = time.monotonic()
    model, cfg = build(args, C)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.data == "tokens":
        vis_grid, aud_grid = token_grid(cfg)
        gd = torch.Generator().manual_seed(123)
        u = torch.randn(args.d_model, generator=gd) / math.sqrt(args.d_model)
        dirs = (u, u) if args.aligned else (u, torch.randn(args.d_model, generator=gd) / math.sqrt(args.d_model))
        ge = torch.Generator().manual_seed(999)
        ev = token_batch(args.test_items, ge, vis_grid, aud_grid, args.d_model, dirs, grid, torch.arange(C),
                         args.clip_sec, jitter=False, all_cells=args.all_cells)
        test = {"video": ev[0], "audio": ev[1], "target": ev[2]}
        cues = None
    else:
        cache = Path(args.cache) if args.cache else None
        train_clips = load_clips(args.data, args.train_clips, 0, args.size, cache)
        test_clips = load_clips(args.data, args.test_clips, 1, args.size, cache)
        titems = test_items(len(test_clips), args.test_per_clip, grid_np, args.clip_sec)
        test = make_batch(test_clips, titems, make_transforms(args.crop, False), args.clip_sec, gen)
        cues = torch.tensor([has_cue(test_clips[it.clip]["sidecar"], it.v_start_i / FPS, it.offset_sec,
                                     clip_sec=args.clip_sec) for it in titems])
        train_tf = make_transforms(args.crop, True)
    setup_s = time.monotonic() - t_setup
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.999))
    aux_model = None
    if args.data != "tokens" and (args.aux > 0 or args.sync_aux > 0):
        aux_model = recipes.AuxLossModel(model, args.clip_sec, grid, xcorr_weight=args.aux, match_weight=args.sync_aux,
                                         hold_steps=args.aux_hold, decay_steps=args.aux_decay)
    log_path = out / f"{args.name}.jsonl"
    log = open(log_path, "w")
    t0 = time.monotonic()
    step, run_loss, left_at = 0, None, None
    loads: list[float] = []
    level = math.log(C)

    def evaluate(shuffle: str | None = None) -> dict[str, float]:
        model.eval()
        v, a, y = test["video"], test["audio"], test["target"]
        if shuffle == "audio":
            a = a[torch.randperm(len(a), generator=torch.Generator().manual_seed(7))]
        elif shuffle == "video":
            v = v[torch.randperm(len(v), generator=torch.Generator().manual_seed(7))]
        with torch.no_grad():
            logits = torch.cat([model(v[i:i + 32], a[i:i + 32]) for i in range(0, len(y), 32)])
        model.train()
        pred = logits.argmax(1)
        ok, near = (pred == y), ((pred - y).abs() <= 1)
        res = {"loss": float(F.cross_entropy(logits, y)), "top1": float(ok.float().mean()),
               "pm1": float(near.float().mean())}
        if cues is not None and cues.any():
            res["top1_cue"] = float(ok[cues].float().mean())
            res["pm1_cue"] = float(near[cues].float().mean())
        return res

    budget = args.minutes * 60
    curriculum_end = args.curriculum_steps if args.curriculum_classes else 0
    while time.monotonic() - t0 < budget and (args.max_steps is None or step < args.max_steps):
        classes = cur_cls if step < curriculum_end else all_cls
        if args.data == "tokens":
            video, audio, target = token_batch(args.batch, gen, vis_grid, aud_grid, args.d_model, dirs, grid,
                                               torch.as_tensor(classes), args.clip_sec, all_cells=args.all_cells)
        else:
            items = [sample_window(rng, len(train_clips), grid_np, classes, args.clip_sec, 0.05)
                     for _ in range(args.batch)]
            b = make_batch(train_clips, items, train_tf, args.clip_sec, gen)
            video, audio, target = b["video"], b["audio"], b["target"]
        w_aux = recipes.aux_weight(step, args.aux, args.aux_hold, args.aux_decay) if args.aux > 0 else 0.0
        w_sync = recipes.aux_weight(step, args.sync_aux, args.aux_hold, args.aux_decay) if args.sync_aux > 0 else 0.0
        w_main = 0.0 if step < args.main_after else 1.0
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        loss_aux = loss_sync = None
        if aux_model is not None:  # the full model: the same wrapper the engine uses
            logits, aux_total, terms = aux_model(video, audio, target, step)
            loss_main = F.cross_entropy(logits, target)
            loss = w_main * loss_main + aux_total
            loss_aux, loss_sync = terms.get("xcorr"), terms.get("match")
        else:
            logits, feats, parts = forward(model, args, video, audio, w_aux > 0, w_sync > 0)
            loss_main = F.cross_entropy(logits, target)
            loss = w_main * loss_main
            if feats is not None:
                loss_aux = F.cross_entropy(recipes.xcorr_logits(*feats, args.clip_sec, grid), target)
                loss = loss + w_aux * loss_aux
            if parts is not None:
                loss_sync = recipes.sync_match_loss(parts["q"], parts["k"], parts["v_sel"].shape[1],
                                                    parts["a_sel"].shape[1], args.clip_sec, grid[target])
                loss = loss + w_sync * loss_sync
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        lm = loss_main.item()
        run_loss = lm if run_loss is None else 0.95 * run_loss + 0.05 * lm
        if left_at is None and step > curriculum_end + 20 and run_loss < 0.8 * level:  # not while on the subset
            left_at = {"step": step, "s": time.monotonic() - t0}
        if step % args.log_every == 0:
            loads.append(os.getloadavg()[0])
            rec = {"step": step, "s": round(time.monotonic() - t0, 1), "loss": round(run_loss, 4),
                   "aux": None if loss_aux is None else round(float(loss_aux), 4), "w_aux": w_aux,
                   "sync_aux": None if loss_sync is None else round(float(loss_sync), 4), "w_sync": w_sync,
                   "load1": os.getloadavg()[0]}
            if args.eval_every and step % args.eval_every == 0:
                rec["eval"] = evaluate()
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if args.verbose:
                print(json.dumps(rec), flush=True)
    minutes = (time.monotonic() - t0) / 60
    final = evaluate()
    if args.data != "tokens" and args.aux > 0:  # reference only: the correlation aid's own accuracy (not the model)
        model.eval()
        with torch.no_grad():
            xl = torch.cat([recipes.xcorr_logits(*model.features(test["video"][i:i + 32], test["audio"][i:i + 32]),
                                                 args.clip_sec, grid) for i in range(0, len(test["target"]), 32)])
        model.train()
        xp, y = xl.argmax(1), test["target"]
        final["xcorr_ref_top1"] = float((xp == y).float().mean())
        final["xcorr_ref_pm1"] = float(((xp - y).abs() <= 1).float().mean())
    probes = {"shuffled_audio_top1": evaluate("audio")["top1"], "shuffled_video_top1": evaluate("video")["top1"]}
    load1 = os.getloadavg()
    row = {"name": args.name, "lever": args.lever or args.name, "data": args.data, "variant": args.variant,
           "classes": C, "minutes": round(minutes, 2), "steps": step, "batch": args.batch, "lr": args.lr,
           "warmup": args.warmup, "init": args.init, "aux": args.aux, "aux_hold": args.aux_hold,
           "aux_decay": args.aux_decay, "sync_aux": args.sync_aux, "modality_flag": args.modality_flag,
           "sync_identity_qk": args.sync_identity_qk, "dropout": args.dropout, "selectors": args.selectors,
           "d_model": args.d_model,
           "depth": args.depth, "curriculum": args.curriculum_classes, "curriculum_steps": curriculum_end,
           "train_loss": round(run_loss or math.nan, 4), "left_plateau": left_at, **{k: round(v, 4) for k, v in
                                                                                     final.items()},
           **probes, "cue_fraction": None if cues is None else float(cues.float().mean()),
           "load_start": [round(x, 2) for x in load0], "load_end": [round(x, 2) for x in load1],
           "load1_mean": round(float(np.mean(loads)), 2) if loads else None,
           "setup_s": round(setup_s, 1), "chance_top1": 1 / C, "cmd": " ".join(sys.argv)}
    log.write(json.dumps({"final": row}) + "\n")
    log.close()
    with open(out / "table.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    if args.save:
        torch.save(model.state_dict(), out / f"{args.name}.pt")
    print(json.dumps(row), flush=True)
    return row


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.plateau", description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--lever", default=None, help="label of the table row (default: --name)")
    p.add_argument("--data", default="dense-crop", choices=("tokens", "dense-crop", "dense-wide", "sparse"))
    p.add_argument("--variant", default="sparsesync", choices=("sparsesync", "transformer", "avst_dec"))
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--classes", type=int, default=21)
    p.add_argument("--max-off", type=float, default=2.0)
    p.add_argument("--clip-sec", type=float, default=5.0)
    p.add_argument("--size", type=int, default=64, help="synthetic frame side (px)")
    p.add_argument("--crop", type=int, default=48)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--selectors", type=int, default=16)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--init", default="official", choices=("official", "anchor", "anchor-sel"))
    p.add_argument("--aux", type=float, default=0.0, help="weight of the auxiliary cross-correlation loss (0: off)")
    p.add_argument("--sync-aux", type=float, default=0.0, help="weight of the sync-attention lag loss (0: off)")
    p.add_argument("--modality-flag", type=float, default=0.0, help="anchor init: cross-modal logit bonus (0: off)")
    p.add_argument("--sync-identity-qk", type=float, default=0.0, help="anchor init: identity q/k in sync block 0")
    p.add_argument("--sync-code-gain", type=float, default=0.2, help="anchor init: sync input gain on code channels")
    p.add_argument("--aux-hold", type=int, default=300)
    p.add_argument("--aux-decay", type=int, default=300)
    p.add_argument("--main-after", type=int, default=0, help="main loss off for the first N steps (aux pre-training)")
    p.add_argument("--curriculum-classes", type=int, default=0, help="train on this many grid offsets first (0: off)")
    p.add_argument("--curriculum-steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--aligned", type=int, default=1, help="tokens: same content direction in both modalities")
    p.add_argument("--all-cells", type=int, default=1, help="tokens: the visual signal in every spatial cell")
    p.add_argument("--train-clips", type=int, default=160)
    p.add_argument("--test-clips", type=int, default=32)
    p.add_argument("--test-per-clip", type=int, default=4)
    p.add_argument("--test-items", type=int, default=512, help="tokens: test items")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--cache", default=str(REPO_ROOT / "runs" / "plateau" / "cache"))
    p.add_argument("--out", default=str(REPO_ROOT / "runs" / "plateau"))
    p.add_argument("--save", action="store_true")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run(parse())
