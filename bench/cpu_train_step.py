"""Benchmark 4: the CPU training step of the small CPU configuration (what the ``mini`` profile spends its time in).

Paper: none directly (the paper trains on GPUs); the small configuration is the CPU twin of the paper's architecture
(``paperlib.core.config.PRESETS["cpu-dense-crop"]``: light (2+1)D conv / 2D conv backbones, D=64, depth 2, 8 selectors,
125x48x48 frames, 257x626 spectrogram, 21 classes, batch 16). Its step is ``paperlib.engine.train.train_one_epoch``'s:
zero_grad, forward, cross-entropy, backward, clip-norm 1, Adam (fp32 on CPU, the engine's ``precision=auto``).

Measured in one process, on the same device-resident random batch (data loading excluded), clips/s of:
- ``baseline``: fp32 eager, torch's default thread count (what a run does today);
- ``threads-1`` / ``threads-N``: intra-op threads 1 and all cores;
- ``channels_last``: Conv3d weights in channels_last_3d, Conv2d in channels_last (oneDNN's preferred layout);
- ``bf16``: CPU autocast to bfloat16 (pays only where the CPU has bf16 dot products, e.g. AVX512-BF16/AMX);
- ``compile``: ``torch.compile(model)`` (inductor C++ codegen; compile time reported apart, not in clips/s);
and, for evaluation, batch forward time under ``torch.no_grad`` vs ``torch.inference_mode`` in eval mode.
The speed-up of each over ``baseline`` is computed from these same-run numbers.

Deviations: none. Run: ``python -m bench.cpu_train_step [--smoke] [--settings a,b] [--preset cpu-dense-crop]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from bench.common import add_common_args, fmt, ratio, time_steps, write_result
from bench.train_step import make_inputs, make_step, smoke_model_config

NAME = "cpu_train_step"
SETTINGS = ("baseline", "threads-1", "threads-N", "channels_last", "bf16", "channels_last-bf16", "compile")
DEFAULT = ("baseline", "threads-1", "threads-N", "channels_last", "bf16", "channels_last-bf16")


def small_config(preset: str) -> tuple[Any, int]:
    """The model config and batch size of a training preset (default: the small CPU configuration)."""
    from paperlib.engine.config import resolve

    run_cfg = resolve(preset)
    return run_cfg.model, int(run_cfg.train.batch_size)


def _one(name: str, cfg: Any, batch: int, warmup: int, iters: int, default_threads: int) -> dict[str, Any]:
    from paperlib.model.sparsesync import build_model, input_shapes, to_channels_last

    device = torch.device("cpu")
    threads = {"threads-1": 1, "threads-N": os.cpu_count() or 1}.get(name, default_threads)
    precision = "bf16" if "bf16" in name else "fp32"
    out: dict[str, Any] = {"setting": name, "threads": threads, "precision": precision}
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = build_model(cfg).train()
        if "channels_last" in name:
            to_channels_last(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, eps=1e-8 if precision == "fp32" else 1e-7)
        runner = torch.compile(model) if name == "compile" else model
        step = make_step(runner, optimizer, None, precision, device, "default")
        video, audio, target = make_inputs(input_shapes(cfg), batch, cfg.geometry.num_classes, device)
        timing = time_steps(lambda: step(video, audio, target), warmup=warmup, iters=iters, device=device)
        out |= {"ok": True, "timing": timing, "step_s": timing["median_s"], "clips_per_s": batch / timing["median_s"],
                "first_step_s": timing["first_s"]}
    except Exception as e:  # noqa: BLE001  (one failing setting must not hide the others)
        out |= {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=6)}
        print(f"[bench {NAME}] setting {name} failed: {type(e).__name__}: {e}", flush=True)
    finally:
        torch.set_num_threads(default_threads)
        if name == "compile":
            torch._dynamo.reset()
        gc.collect()
    return out


def eval_modes(cfg: Any, batch: int, iters: int) -> dict[str, Any]:
    """Eval-mode batch forward: ``torch.no_grad`` vs ``torch.inference_mode`` (same model, same batch)."""
    from paperlib.model.sparsesync import build_model, input_shapes

    device = torch.device("cpu")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    video, audio, _ = make_inputs(input_shapes(cfg), batch, cfg.geometry.num_classes, device)

    def fwd_no_grad():
        with torch.no_grad():
            return model(video, audio)

    def fwd_inference():
        with torch.inference_mode():
            return model(video, audio)

    a = time_steps(fwd_no_grad, warmup=1, iters=iters, device=device)
    b = time_steps(fwd_inference, warmup=1, iters=iters, device=device)
    with torch.no_grad():
        ref = model(video, audio)
    with torch.inference_mode():
        same = torch.equal(ref, model(video, audio))
    return {"no_grad": a, "inference_mode": b, "inference_mode_speedup": ratio(a["median_s"], b["median_s"]),
            "outputs_equal": same}


def run(settings: list[str], smoke: bool, preset: str, warmup: int, iters: int, batch: int | None) -> dict[str, Any]:
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown settings {bad}; choose from {SETTINGS}")
    if len(set(settings)) != len(settings):
        raise ValueError(f"settings listed twice: {sorted({s for s in settings if settings.count(s) > 1})}")
    if smoke:
        cfg, default_batch = smoke_model_config(), 2
    else:
        cfg, default_batch = small_config(preset)
    batch = batch or default_batch
    default_threads = torch.get_num_threads()
    results = {}
    for name in settings:
        r = _one(name, cfg, batch, warmup, iters, default_threads)
        results[name] = r
        if r.get("ok"):
            print(f"[bench {NAME}] {name:<20} threads {r['threads']:>2}  {r['clips_per_s']:7.2f} clips/s  "
                  f"step {r['step_s'] * 1e3:8.1f} ms  first {r['first_step_s']:.1f} s", flush=True)
    ok = {k: v for k, v in results.items() if v.get("ok")}
    base = ok.get("baseline")
    speedups = {k: ratio(v["clips_per_s"], base["clips_per_s"] if base else None) for k, v in ok.items()}
    best = max(ok, key=lambda k: ok[k]["clips_per_s"]) if ok else None
    ev = eval_modes(cfg, batch, max(2, iters // 2))
    return {"config": {"model": dataclasses.asdict(cfg), "preset": None if smoke else preset, "batch": batch,
                       "warmup": warmup, "iters": iters, "default_threads": default_threads,
                       "cpu_count": os.cpu_count()},
            "results": results, "eval": ev,
            "derived": {"best": best, "best_over_baseline": speedups.get(best) if best else None,
                        "speedup_over_baseline": speedups,
                        "inference_mode_over_no_grad": ev["inference_mode_speedup"]}}


def cli(argv: list[str] | None = None) -> int:
    parser = add_common_args(argparse.ArgumentParser(prog="python -m bench.cpu_train_step",
                                                     description=__doc__.split("\n")[0]))
    parser.add_argument("--settings", default=None, help=f"comma-separated subset of {', '.join(SETTINGS)} "
                        f"(default: all but compile)")
    parser.add_argument("--preset", default="cpu-dense-crop", help="training preset whose model/batch are timed")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = [s.strip() for s in args.settings.split(",")] if args.settings else list(DEFAULT)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    iters = args.iters or (2 if args.smoke else 6)
    t0 = time.perf_counter()
    result = run(settings, args.smoke, args.preset, warmup, iters, args.batch)
    result["wall_s"] = time.perf_counter() - t0
    d = result["derived"]
    summary = (f"best {d['best']} {fmt(d['best_over_baseline'], '.2f')}x over fp32 eager baseline; "
               + ", ".join(f"{k} {fmt(v, '.2f')}x" for k, v in d["speedup_over_baseline"].items() if k != "baseline")
               + f"; eval inference_mode {fmt(d['inference_mode_over_no_grad'], '.2f')}x no_grad")
    write_result(NAME, result, Path(args.out), args.smoke, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
