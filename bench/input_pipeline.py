"""Benchmark 2: can the input pipeline feed the paper-size training step? DataLoader throughput vs step consumption.

Paper Sec. 4 and the official training code: the authors fed one V100 per process with 8 DataLoader workers
(10 CPUs per task) from 256-px H.264 (CRF 10) + AAC 16 kHz clips, decoding 5-s windows on the fly.

What is measured, on prepared clips (the built-in synthetic "dense-crop" set at 256 px, 10 s, 25 fps, CRF 10, written
through ``paperlib.data.synthetic``; the same container/codec settings as the official re-encoding):
- ``full``: ``paperlib.data.datasets.AVSyncDataset`` train items (seek + decode the 125-frame / 80,000-sample window,
  random 224 crop, flip, ImageNet normalisation, log-spectrogram, per-bin standardisation), i.e. today's CPU pipeline;
- ``decode``: the same windows decoded only (uint8 frames cropped to 224, raw waveform): what remains on the CPU when
  normalisation and the spectrogram move to the GPU (GPU-side augmentation);
- ``shards``: the same windows sliced from pre-decoded uint8/float32 ``.npy`` files (memory-mapped): the ceiling of
  "decode once, store raw" shards (24.6 MB per 5-s window at 256 px instead of ~1.5 MB of H.264).
For each, clips/s through a ``torch.utils.data.DataLoader`` (batch 10, N workers), steady state (after the first batch)
and including worker start-up. Consumption = clips/s of the training step (``bench/train_step.py`` JSON: the paper-like
fp16 eager setting and the fastest one). Workers needed = consumption / (clips/s per worker at the largest N).

Deviations: synthetic content instead of LRS3 (decode cost depends on bitrate: CRF 10 as the official re-encoding).
Run: ``python -m bench.input_pipeline [--smoke] [--step-json runs/bench/train_step.json] [--workers 1,2,4,8,16]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench.common import DEFAULT_OUT, add_common_args, fmt, ratio, write_result
from paperlib.core.geometry import Geometry

NAME = "input_pipeline"
MODES = ("full", "decode", "shards")


def prepare_clips(root: Path, clips: int, size: int, workers: int) -> Path:
    """Generate (resumably) ``clips`` synthetic dense clips of ``size`` px under ``root``; returns ``root``."""
    from paperlib.data.synthetic import SynthConfig, generate

    return generate(SynthConfig(setting="dense-crop", size=size, seed=0), root, clips, workers=workers, progress=False)


def all_records(data_cfg: Any) -> list[Any]:
    from paperlib.data.datasets import records_for

    recs = []
    for split in ("train", "valid", "test"):
        recs += records_for(data_cfg, split)
    if not recs:
        raise FileNotFoundError(f"{data_cfg.root}: no clips found (lrs3_*.txt lists)")
    return recs


class DecodeOnly(Dataset):
    """The windows of ``base`` (an AVSyncDataset) decoded only: uint8 (T, 3, crop, crop) centre-cropped + waveform."""

    def __init__(self, base: Any):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from paperlib.core.media import read_audio, read_video

        geo, rec = self.base.geo, self.base.records[index % len(self.base.records)]
        w = self.base.window(index)
        video = read_video(rec.path, w.v_start_i / geo.fps, geo.clip_sec, fps=geo.fps)  # (T, H, W, 3) uint8
        audio = read_audio(rec.path, w.a_start_i / geo.sample_rate, geo.clip_sec, sample_rate=geo.sample_rate)
        return {"video": _crop_uint8(video, geo.crop), "audio": torch.from_numpy(audio), "target": w.target}


class Shards(Dataset):
    """The windows of ``base`` sliced from pre-decoded ``.npy`` files (frames uint8 (N, H, W, 3), audio float32
    (M,))."""

    def __init__(self, base: Any, shard_dir: Path):
        self.base, self.shard_dir = base, Path(shard_dir)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        geo = self.base.geo
        k = index % len(self.base.records)
        w = self.base.window(index)
        t, n = geo.frames, geo.samples
        frames = np.load(self.shard_dir / f"{k}.video.npy", mmap_mode="r")[w.v_start_i:w.v_start_i + t]
        audio = np.load(self.shard_dir / f"{k}.audio.npy", mmap_mode="r")[w.a_start_i:w.a_start_i + n]
        return {"video": _crop_uint8(frames, geo.crop), "audio": torch.from_numpy(np.array(audio)),
                "target": w.target}


def _crop_uint8(frames: np.ndarray, crop: int) -> torch.Tensor:
    """Centre crop of uint8 (T, H, W, 3) frames to (T, 3, crop, crop), contiguous."""
    _, h, w, _ = frames.shape
    top, left = (h - crop) // 2, (w - crop) // 2
    out = np.ascontiguousarray(frames[:, top:top + crop, left:left + crop])  # (T, crop, crop, 3)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # (T, 3, crop, crop)


def write_shards(base: Any, shard_dir: Path) -> float:
    """Decode every clip of ``base`` once into ``<k>.video.npy`` / ``<k>.audio.npy``; returns seconds spent."""
    from paperlib.core.media import read_audio, read_video

    shard_dir.mkdir(parents=True, exist_ok=True)
    geo = base.geo
    t0 = time.perf_counter()
    for k, rec in enumerate(base.records):
        vpath, apath = shard_dir / f"{k}.video.npy", shard_dir / f"{k}.audio.npy"
        if not vpath.exists():
            np.save(vpath, read_video(rec.path, 0.0, None, fps=geo.fps))
        if not apath.exists():
            np.save(apath, read_audio(rec.path, 0.0, None, sample_rate=geo.sample_rate))
    return time.perf_counter() - t0


def _collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {"video": torch.stack([it["video"] for it in items]), "audio": torch.stack([it["audio"] for it in items]),
            "target": torch.tensor([int(it["target"]) for it in items])}


def loader_throughput(ds: Dataset, workers: int, batch: int, n_batches: int, pin: bool) -> dict[str, Any]:
    """clips/s of a DataLoader over ``n_batches`` batches: steady (first batch excluded) and total (with start-up)."""
    loader = DataLoader(ds, batch_size=batch, sampler=list(range(n_batches * batch)), num_workers=workers,
                        collate_fn=_collate, pin_memory=pin, drop_last=True)
    t0 = time.perf_counter()
    stamps = []
    for b in loader:
        assert b["video"].shape[0] == batch
        stamps.append(time.perf_counter())
    total = stamps[-1] - t0
    steady = (stamps[-1] - stamps[0]) if len(stamps) > 1 else None
    return {"workers": workers, "batches": len(stamps), "batch": batch,
            "clips_per_s": (len(stamps) - 1) * batch / steady if steady else len(stamps) * batch / total,
            "clips_per_s_total": len(stamps) * batch / total, "first_batch_s": stamps[0] - t0, "total_s": total}


def consumption_from(step_json: Path | None) -> dict[str, Any]:
    """Clips/s the training step consumes, from a ``bench/train_step.py`` JSON (fp16 eager and the best setting)."""
    if step_json is None or not Path(step_json).is_file():
        return {"source": None}
    data = json.loads(Path(step_json).read_text())
    res = {k: v for k, v in data.get("results", {}).items() if v.get("ok")}
    best = data.get("derived", {}).get("best")
    return {"source": str(step_json), "device": (data.get("env", {}).get("cuda") or {}).get("name", "cpu"),
            "smoke": data.get("smoke"), "fp16_eager": res.get("fp16-eager", {}).get("clips_per_s"),
            "best": res.get(best, {}).get("clips_per_s") if best else None, "best_setting": best}


def run(root: Path, smoke: bool, workers: list[int], modes: list[str], batch: int, clips: int, size: int,
        crop: int, step_json: Path | None) -> dict[str, Any]:
    from paperlib.data.datasets import AVSyncDataset, DataConfig

    t0 = time.perf_counter()
    prepare_clips(root, clips, size, workers=min(max(workers), os.cpu_count() or 1, clips))
    gen_s = time.perf_counter() - t0
    data_cfg = DataConfig(dataset="lrs3", root=str(root))
    base = AVSyncDataset(data_cfg, Geometry(crop=crop), "train", all_records(data_cfg), seed=0)
    pin = torch.cuda.is_available()
    datasets: dict[str, Dataset] = {}
    shard_s = None
    if "full" in modes:
        datasets["full"] = base
    if "decode" in modes:
        datasets["decode"] = DecodeOnly(base)
    if "shards" in modes:
        shard_s = write_shards(base, root / "shards")
        datasets["shards"] = Shards(base, root / "shards")
    results: dict[str, list[dict[str, Any]]] = {}
    for mode, ds in datasets.items():
        results[mode] = []
        for n in (workers if mode == "full" else [max(workers)]):
            n_batches = max(3, n + 2) if not smoke else 2
            r = loader_throughput(ds, n, batch, n_batches, pin)
            results[mode].append(r)
            print(f"[bench {NAME}] {mode:<7} workers {n:>3}: {r['clips_per_s']:7.2f} clips/s steady, "
                  f"{r['clips_per_s_total']:7.2f} with start-up ({r['batches']} batches)", flush=True)
    cons = consumption_from(step_json)
    derived: dict[str, Any] = {}
    for mode, rows in results.items():
        top = max(rows, key=lambda r: r["workers"])
        per_worker = top["clips_per_s"] / max(top["workers"], 1)
        derived[mode] = {"max_workers": top["workers"], "clips_per_s": top["clips_per_s"],
                         "clips_per_s_per_worker": per_worker}
        for key in ("fp16_eager", "best"):
            need = cons.get(key)
            if need:
                derived[mode][f"workers_needed_{key}"] = math.ceil(need / per_worker) if per_worker > 0 else None
                derived[mode][f"supply_over_demand_{key}"] = ratio(top["clips_per_s"], need)
    full_rows = results.get("full", [])
    if len(full_rows) >= 2:
        one = min(full_rows, key=lambda r: r["workers"])
        top = max(full_rows, key=lambda r: r["workers"])
        derived["full_scaling"] = {"from_workers": one["workers"], "to_workers": top["workers"],
                                   "speedup": ratio(top["clips_per_s"], one["clips_per_s"]),
                                   "ideal": top["workers"] / max(one["workers"], 1)}
    if "full" in derived and "decode" in derived:
        derived["decode_over_full"] = ratio(derived["decode"]["clips_per_s"], derived["full"]["clips_per_s"])
    if "full" in derived and "shards" in derived:
        derived["shards_over_full"] = ratio(derived["shards"]["clips_per_s"], derived["full"]["clips_per_s"])
    return {"config": {"root": str(root), "clips": clips, "size": size, "crop": crop, "batch": batch,
                       "workers": workers, "modes": modes, "cpu_count": os.cpu_count(), "pin_memory": pin},
            "prepare_s": gen_s, "shard_write_s": shard_s, "consumption": cons, "results": results,
            "derived": derived}


def cli(argv: list[str] | None = None) -> int:
    parser = add_common_args(argparse.ArgumentParser(prog="python -m bench.input_pipeline",
                                                     description=__doc__.split("\n")[0]))
    parser.add_argument("--clips-dir", type=Path, default=None, help="where the prepared clips live/are generated "
                        "(default runs/bench/clips-<size>px)")
    parser.add_argument("--clips", type=int, default=None, help="number of prepared clips (default 16; smoke 2)")
    parser.add_argument("--workers", default=None, help="comma-separated worker counts (default 1,2,4,...,cpu count)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"subset of {','.join(MODES)}")
    parser.add_argument("--batch", type=int, default=None, help="clips per batch (default 10; smoke 2)")
    parser.add_argument("--step-json", type=Path, default=None, help="a bench/train_step.py JSON (consumption rate)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size, crop = (64, 48) if args.smoke else (256, 224)
    clips = args.clips or (2 if args.smoke else 16)
    batch = args.batch or (2 if args.smoke else 10)
    if args.workers:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
    elif args.smoke:
        workers = [0, 1]
    else:
        ncpu = os.cpu_count() or 1
        workers = sorted({min(n, ncpu) for n in (1, 2, 4, 8, 16, 32) if n <= ncpu} | {ncpu})
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown modes {bad}; choose from {MODES}")
    root = args.clips_dir or (DEFAULT_OUT / f"clips-{size}px")
    step_json = args.step_json
    if step_json is None:
        default = Path(args.out) / f"train_step{'-smoke' if args.smoke else ''}.json"
        step_json = default if default.is_file() else None
    result = run(Path(root), args.smoke, workers, modes, batch, clips, size, crop, step_json)
    d, c = result["derived"], result["consumption"]
    full = d.get("full", {})
    summary = (f"full pipeline {fmt(full.get('clips_per_s'), '.1f')} clips/s with {full.get('max_workers')} workers "
               f"({fmt(full.get('clips_per_s_per_worker'), '.2f')}/worker); step consumes "
               f"{fmt(c.get('fp16_eager'), '.1f')} (fp16 eager) / {fmt(c.get('best'), '.1f')} (best) clips/s -> "
               f"workers needed {full.get('workers_needed_fp16_eager', 'n/a')} / "
               f"{full.get('workers_needed_best', 'n/a')}; decode-only x{fmt(d.get('decode_over_full'), '.2f')}, "
               f"shards x{fmt(d.get('shards_over_full'), '.2f')}")
    write_result(NAME, result, Path(args.out), args.smoke, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
