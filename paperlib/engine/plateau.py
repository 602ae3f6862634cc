"""Plateau study: one run per lever, the paper's architecture at the small CPU size, minutes each.

Paper: none directly (the paper reports a long warm-up plateau, Sec. 7.3); this study measures what gets the SparseSync
head off the chance loss ln(C) quickly on CPU. The components under test live in :mod:`paperlib.engine.recipes`.

Two kinds of data (``PlateauConfig.data``):
- ``tokens``: the head alone on "ideal tokens" (a smooth 1-D envelope in the centre visual cell and, shifted by the
  offset, in every audio cell, plus Gaussian noise; a fixed cross-correlation of the clean signals scores 100 %).
  Isolates the head's learning dynamics from the backbones.
- ``dense-crop | dense-wide | sparse``: the full model (small backbones) on clips of :mod:`paperlib.data.synthetic`,
  held in memory (generated once, cached as .npz under ``cache``), windows cut as the official sampler does (offset
  uniform on the grid, v_start ~ U[max(0, -o), min(5, 5 - o)] snapped to a frame, +-50 ms audio jitter at train time),
  then the paper's transforms (:mod:`paperlib.data.transforms`: random crop + flip + ImageNet normalisation;
  log-spectrogram + per-frequency standardisation; centre crop and no jitter at test). Test items: held-out clips
  (another dataset seed, so other talkers), fixed (offset, v_start) pairs drawn as the official fixed-offset files, with
  the synthetic oracle ``has_cue`` per item (accuracy on cue-bearing items is reported next to the overall accuracy).

Its own minimal training loop (Adam, linear warm-up, grad-norm clip 1.0, cross-entropy), not
:func:`paperlib.engine.train.fit`: the data are in-memory tensors, so a run's minutes are spent on the model. Each run
appends one row to ``<out>/table.jsonl`` (lever, setting, classes, minutes, steps, top-1, +-1, with-cue top-1,
shuffled-audio and shuffled-video probes, load average) and writes its curve to ``<out>/<name>.jsonl``.

Command line (:mod:`paperlib.commands.plateau`; from the repository root, 1 torch thread)::

    nice -n 5 python -m paperlib plateau --name official --data dense-crop --minutes 3 --batch 16
    # the recommended recipe (paperlib.engine.recipes; README "What to expect and how to get off the plateau")
    nice -n 5 python -m paperlib plateau --name recipe --data dense-crop --minutes 10 --batch 8 --dropout 0 \\
        --init anchor --modality-flag 8 --sync-identity-qk 1 --sync-code-gain 0.5 --sync-aux 3 --aux 1 \\
        --aux-hold 100000 --test-per-clip 8
    # the other variants with the parts their architectures have (time codes, comparing first attention):
    # --variant transformer | avst_dec --init anchor --aux 1 --dropout 0 (this loop's --sync-aux reads SparseSync
    # heads only; the engine's recipe objective gives every variant its matching loss)

Rows also carry ``xcorr_ref_top1/pm1``: the accuracy of the cross-correlation aid itself on the same test items (a
reference, not the paper's model), and the oracle share ``cue_fraction`` (sparse).

Deviations: the window sampler and the evaluation follow the official protocol on in-memory clips (no mp4 round trip,
so no codec effects); the curriculum samples the 21-class grid's subset first (same 21-way classifier).
"""

from __future__ import annotations

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
from tqdm.auto import tqdm

from paperlib.core.config import config_hash
from paperlib.core.geometry import Geometry
from paperlib.core.io import atomic_output
from paperlib.data.synthetic import SynthConfig, generate_clip, has_cue
from paperlib.data.transforms import (AudioLogSpectrogram, AudioStandardize, Compose, RandomHorizontalFlip,
                                      RGBNormalize, RGBSpatialCrop)
from paperlib.engine import recipes
from paperlib.model.sparsesync import ModelConfig, build_head, build_model, token_grid

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "runs" / "plateau"
FPS, SR, CLIP_LEN_SEC = 25, 16000, 10.0
DATA = ("tokens", "dense-crop", "dense-wide", "sparse")
VARIANTS = ("sparsesync", "transformer", "avst_dec")
INITS = ("official", "anchor", "anchor-sel")


@dataclass
class PlateauConfig:
    """One plateau run: the model, the data, the levers under test and the budget."""

    name: str  # row name; the curve goes to <out>/<name>.jsonl
    lever: str | None = None  # label of the table row (default: name)
    data: str = "dense-crop"  # one of DATA
    variant: str = "sparsesync"  # one of VARIANTS
    minutes: float = 3.0  # wall-clock budget of the training loop
    max_steps: int | None = None  # stop earlier after this many steps
    classes: int = 21  # offset classes on linspace(-max_off, max_off)
    max_off: float = 2.0  # largest offset (s)
    clip_sec: float = 5.0  # window length (s)
    size: int = 64  # synthetic frame side (px)
    crop: int = 48  # crop side (px)
    d_model: int = 64
    heads: int = 4
    depth: int = 2
    selectors: int = 16
    dropout: float = 0.1
    init: str = "official"  # one of INITS
    aux: float = 0.0  # weight of the auxiliary cross-correlation loss (0: off)
    sync_aux: float = 0.0  # weight of the sync-attention lag loss (0: off)
    modality_flag: float = 0.0  # anchor init: cross-modal logit bonus (0: off)
    sync_identity_qk: float = 0.0  # anchor init: identity q/k in sync block 0
    sync_code_gain: float = 0.2  # anchor init: sync input gain on code channels
    aux_hold: int = 300  # steps at full auxiliary weight
    aux_decay: int = 300  # steps of the auxiliary weight's decay to 0
    main_after: int = 0  # main loss off for the first N steps (auxiliary pre-training)
    curriculum_classes: int = 0  # train on this many grid offsets first (0: off)
    curriculum_steps: int = 200
    lr: float = 1e-3
    warmup: int = 100
    batch: int = 16
    aligned: int = 1  # tokens: same content direction in both modalities
    all_cells: int = 1  # tokens: the visual signal in every spatial cell
    train_clips: int = 160
    test_clips: int = 32
    test_per_clip: int = 4
    test_items: int = 512  # tokens: test items
    seed: int = 0
    log_every: int = 20
    eval_every: int = 0  # evaluate every N steps in the curve (0: only at the end)
    cache: str = str(DEFAULT_OUT / "cache")  # clip cache ("" for none)
    out: str = str(DEFAULT_OUT)
    save: bool = False  # also save the model's state dict as <out>/<name>.pt
    verbose: bool = False  # print every curve record


# ----------------------------------------------------------------------------------------------------------------------
# data: in-memory clips and windows


def load_clips(setting: str, n: int, seed: int, size: int, cache: Path | None) -> list[dict[str, Any]]:
    """Clips 0..n-1 of the synthetic set (setting, seed, size): frames uint8 (T, S, S, 3), audio float32, sidecar."""
    return load_synth_clips(SynthConfig(setting=setting, size=size, seed=seed), n, cache)


def load_synth_clips(cfg: SynthConfig, n: int, cache: Path | None, progress: bool = False) -> list[dict[str, Any]]:
    """Clips 0..n-1 of the synthetic set ``cfg``, generated in memory (no mp4 round trip) and cached as .npz under
    ``cache`` (named by setting, seed and size for the default generator, else by the config's hash)."""
    default = SynthConfig(setting=cfg.setting, size=cfg.size, seed=cfg.seed)
    stem = f"{cfg.setting}-s{cfg.seed}-{cfg.size}px" if cfg == default else f"{cfg.setting}-{config_hash(cfg)}"
    out = []
    for i in tqdm(range(n), desc=f"clips {stem}", disable=not progress, leave=False):
        path = cache / f"{stem}-{i:05d}.npz" if cache is not None else None
        if path is not None and path.is_file():
            z = np.load(path, allow_pickle=False)
            out.append({"frames": z["frames"], "audio": z["audio"], "sidecar": json.loads(str(z["sidecar"]))})
            continue
        c = generate_clip(cfg, i)
        if path is not None:
            with atomic_output(path) as tmp:
                np.savez(tmp, frames=c["frames"], audio=c["audio"], sidecar=json.dumps(c["sidecar"]))
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


def fixed_test_items(n_clips: int, per_clip: int, grid: np.ndarray, clip_sec: float, seed: int = 1338) -> list[Item]:
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


def build(cfg: PlateauConfig, num_classes: int) -> tuple[torch.nn.Module, ModelConfig]:
    geometry = Geometry.for_classes(num_classes, crop=cfg.crop, clip_sec=cfg.clip_sec)
    mcfg = ModelConfig(geometry=geometry, variant=cfg.variant, backbone="small", d_model=cfg.d_model, n_head=cfg.heads,
                       depth=cfg.depth, n_selectors=cfg.selectors, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                       resid_pdrop=cfg.dropout)
    torch.manual_seed(cfg.seed)
    model = build_head(mcfg) if cfg.data == "tokens" else build_model(mcfg)
    head = model if cfg.data == "tokens" else model.head
    if cfg.init in ("anchor", "anchor-sel"):
        recipes.time_anchored_init(head, cfg.clip_sec, sync_passthrough=cfg.init == "anchor",
                                   modality_flag=cfg.modality_flag, sync_identity_qk=cfg.sync_identity_qk,
                                   sync_code_gain=cfg.sync_code_gain)
    elif cfg.init != "official":
        raise ValueError(f"unknown init {cfg.init!r}")
    return model, mcfg


def forward(model, cfg: PlateauConfig, video, audio, aux_on: bool, sync_aux_on: bool):
    """Tokens mode: the head's logits, its inputs (for the xcorr aux loss) and ``sparsesync_parts`` (or None)."""
    head = model if cfg.data == "tokens" else model.head
    vis, aud = (video, audio) if cfg.data == "tokens" else model.features(video, audio)
    parts = None
    if sync_aux_on:
        parts = recipes.sparsesync_parts(head, vis, aud)
        logits = parts["logits"]  # the caller computes the matching loss (it needs the targets)
    else:
        logits = head(vis, aud)
    return logits, ((vis, aud) if aux_on else None), parts


def lr_at(step: int, cfg: PlateauConfig) -> float:
    f = 1.0 if step >= cfg.warmup else 0.01 + 0.99 * step / max(1, cfg.warmup)
    return cfg.lr * f


def run(cfg: PlateauConfig) -> dict[str, Any]:
    torch.set_num_threads(1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    C = cfg.classes
    grid_np = np.linspace(-cfg.max_off, cfg.max_off, C)
    grid = torch.tensor(grid_np, dtype=torch.float32)
    all_cls = np.arange(C)
    cur_cls = np.array(sorted({int(round(x)) for x in np.linspace(0, C - 1, cfg.curriculum_classes)})) \
        if cfg.curriculum_classes else all_cls
    load0 = os.getloadavg()
    t_setup = time.monotonic()
    model, mcfg = build(cfg, C)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.data == "tokens":
        vis_grid, aud_grid = token_grid(mcfg)
        gd = torch.Generator().manual_seed(123)
        u = torch.randn(cfg.d_model, generator=gd) / math.sqrt(cfg.d_model)
        dirs = (u, u) if cfg.aligned else (u, torch.randn(cfg.d_model, generator=gd) / math.sqrt(cfg.d_model))
        ge = torch.Generator().manual_seed(999)
        ev = token_batch(cfg.test_items, ge, vis_grid, aud_grid, cfg.d_model, dirs, grid, torch.arange(C),
                         cfg.clip_sec, jitter=False, all_cells=cfg.all_cells)
        test = {"video": ev[0], "audio": ev[1], "target": ev[2]}
        cues = None
    else:
        cache = Path(cfg.cache) if cfg.cache else None
        train_clips = load_clips(cfg.data, cfg.train_clips, 0, cfg.size, cache)
        test_clips = load_clips(cfg.data, cfg.test_clips, 1, cfg.size, cache)
        titems = fixed_test_items(len(test_clips), cfg.test_per_clip, grid_np, cfg.clip_sec)
        test = make_batch(test_clips, titems, make_transforms(cfg.crop, False), cfg.clip_sec, gen)
        cues = torch.tensor([has_cue(test_clips[it.clip]["sidecar"], it.v_start_i / FPS, it.offset_sec,
                                     clip_sec=cfg.clip_sec) for it in titems])
        train_tf = make_transforms(cfg.crop, True)
    setup_s = time.monotonic() - t_setup
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    aux_model = None
    if cfg.data != "tokens" and (cfg.aux > 0 or cfg.sync_aux > 0):
        aux_model = recipes.AuxLossModel(model, cfg.clip_sec, grid, xcorr_weight=cfg.aux, match_weight=cfg.sync_aux,
                                         hold_steps=cfg.aux_hold, decay_steps=cfg.aux_decay)
    log_path = out / f"{cfg.name}.jsonl"
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

    budget = cfg.minutes * 60
    curriculum_end = cfg.curriculum_steps if cfg.curriculum_classes else 0
    while time.monotonic() - t0 < budget and (cfg.max_steps is None or step < cfg.max_steps):
        classes = cur_cls if step < curriculum_end else all_cls
        if cfg.data == "tokens":
            video, audio, target = token_batch(cfg.batch, gen, vis_grid, aud_grid, cfg.d_model, dirs, grid,
                                               torch.as_tensor(classes), cfg.clip_sec, all_cells=cfg.all_cells)
        else:
            items = [sample_window(rng, len(train_clips), grid_np, classes, cfg.clip_sec, 0.05)
                     for _ in range(cfg.batch)]
            b = make_batch(train_clips, items, train_tf, cfg.clip_sec, gen)
            video, audio, target = b["video"], b["audio"], b["target"]
        w_aux = recipes.aux_weight(step, cfg.aux, cfg.aux_hold, cfg.aux_decay) if cfg.aux > 0 else 0.0
        w_sync = recipes.aux_weight(step, cfg.sync_aux, cfg.aux_hold, cfg.aux_decay) if cfg.sync_aux > 0 else 0.0
        w_main = 0.0 if step < cfg.main_after else 1.0
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss_aux = loss_sync = None
        if aux_model is not None:  # the full model: the same wrapper the engine uses
            logits, aux_total, terms = aux_model(video, audio, target, step)
            loss_main = F.cross_entropy(logits, target)
            loss = w_main * loss_main + aux_total
            loss_aux, loss_sync = terms.get("xcorr"), terms.get("match")
        else:
            logits, feats, parts = forward(model, cfg, video, audio, w_aux > 0, w_sync > 0)
            loss_main = F.cross_entropy(logits, target)
            loss = w_main * loss_main
            if feats is not None:
                loss_aux = F.cross_entropy(recipes.xcorr_logits(*feats, cfg.clip_sec, grid), target)
                loss = loss + w_aux * loss_aux
            if parts is not None:
                loss_sync = recipes.sync_match_loss(parts["q"], parts["k"], parts["v_sel"].shape[1],
                                                    parts["a_sel"].shape[1], cfg.clip_sec, grid[target])
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
        if step % cfg.log_every == 0:
            loads.append(os.getloadavg()[0])
            rec = {"step": step, "s": round(time.monotonic() - t0, 1), "loss": round(run_loss, 4),
                   "aux": None if loss_aux is None else round(float(loss_aux), 4), "w_aux": w_aux,
                   "sync_aux": None if loss_sync is None else round(float(loss_sync), 4), "w_sync": w_sync,
                   "load1": os.getloadavg()[0]}
            if cfg.eval_every and step % cfg.eval_every == 0:
                rec["eval"] = evaluate()
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if cfg.verbose:
                print(json.dumps(rec), flush=True)
    minutes = (time.monotonic() - t0) / 60
    final = evaluate()
    if cfg.data != "tokens" and cfg.aux > 0:  # reference only: the correlation aid's own accuracy (not the model)
        model.eval()
        with torch.no_grad():
            xl = torch.cat([recipes.xcorr_logits(*model.features(test["video"][i:i + 32], test["audio"][i:i + 32]),
                                                 cfg.clip_sec, grid) for i in range(0, len(test["target"]), 32)])
        model.train()
        xp, y = xl.argmax(1), test["target"]
        final["xcorr_ref_top1"] = float((xp == y).float().mean())
        final["xcorr_ref_pm1"] = float(((xp - y).abs() <= 1).float().mean())
    probes = {"shuffled_audio_top1": evaluate("audio")["top1"], "shuffled_video_top1": evaluate("video")["top1"]}
    load1 = os.getloadavg()
    row = {"name": cfg.name, "lever": cfg.lever or cfg.name, "data": cfg.data, "variant": cfg.variant,
           "classes": C, "minutes": round(minutes, 2), "steps": step, "batch": cfg.batch, "lr": cfg.lr,
           "warmup": cfg.warmup, "init": cfg.init, "aux": cfg.aux, "aux_hold": cfg.aux_hold,
           "aux_decay": cfg.aux_decay, "sync_aux": cfg.sync_aux, "modality_flag": cfg.modality_flag,
           "sync_identity_qk": cfg.sync_identity_qk, "dropout": cfg.dropout, "selectors": cfg.selectors,
           "d_model": cfg.d_model,
           "depth": cfg.depth, "curriculum": cfg.curriculum_classes, "curriculum_steps": curriculum_end,
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
    if cfg.save:
        torch.save(model.state_dict(), out / f"{cfg.name}.pt")
    print(json.dumps(row), flush=True)
    return row
