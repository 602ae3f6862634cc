"""Figure 4 check: the CPU estimator of peak training memory (``paperlib.studies.memory``) beside a measurement.

Paper Sec. 5.2, Fig. 4 (memory of the selector + sync-transformer stack vs the no-selector transformer over 2..30-s
inputs, feature extractors excluded). ``paperlib.studies.memory`` estimates it without a GPU (meta tensors + a storage
tracker); this benchmark validates that estimate:
- on CUDA: ``paperlib.studies.memory.compare_with_cuda`` (estimate vs ``torch.cuda.max_memory_allocated`` of the same
  step, batch 10, paper width/depth) for both models, SDPA memory-efficient and explicit attention, amp (the paper's) at
  2..30 s and fp32 at a few durations; then growth exponents and GPU break points from the CUDA curve;
- without CUDA (and in ``--smoke``): the estimate vs the exact CPU-allocator count (``exact_cpu_peak``, fp32, explicit
  attention) on a small configuration.
Agreement = max and median of |estimate - measured| / measured over the configurations that fit.

Deviations: none (no paper counterpart; the authors released no memory code).
Run: ``python -m bench.memory_check [--smoke] [--device auto|cpu|cuda] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import add_common_args, fmt, resolve_device, write_result
from paperlib.core.geometry import Geometry

NAME = "fig4_memory"


def _agreement(rel_errors: list[float]) -> dict[str, Any]:
    vals = sorted(abs(e) for e in rel_errors if e is not None and math.isfinite(e))
    if not vals:
        return {"n": 0, "max_abs_rel_error": None, "median_abs_rel_error": None}
    mid = len(vals) // 2
    median = vals[mid] if len(vals) % 2 else 0.5 * (vals[mid - 1] + vals[mid])
    return {"n": len(vals), "max_abs_rel_error": vals[-1], "median_abs_rel_error": median}


def smoke_config() -> Any:
    """The benchmarks' tiny model (``bench.train_step.smoke_model_config``)."""
    from bench.train_step import smoke_model_config

    return smoke_model_config()


def cpu_validation(cfg: Any, batch: int) -> dict[str, Any]:
    """Estimate (meta, fp32, explicit) vs the exact CPU-allocator peak of the same step, for both models."""
    from paperlib.studies.memory import estimate_peak, exact_cpu_peak

    rows = []
    for variant in ("sparsesync", "transformer"):
        c = dataclasses.replace(cfg, variant=variant)
        t0 = time.perf_counter()
        est = estimate_peak(c, batch, precision="fp32", attention="explicit", block=1, emulate_cuda=False)
        t1 = time.perf_counter()
        exact = exact_cpu_peak(c, batch)
        t2 = time.perf_counter()
        rows.append({"variant": variant, "seconds": c.geometry.clip_sec, "batch": batch, "estimate_bytes": est,
                     "exact_cpu_bytes": exact, "rel_error": (est - exact) / exact, "estimate_s": t1 - t0,
                     "exact_s": t2 - t1})
    return {"method": "estimate (meta) vs exact CPU allocator peak, fp32, explicit attention", "rows": rows,
            "agreement": _agreement([r["rel_error"] for r in rows])}


def cuda_validation(cfg: Any, batch: int, seconds_amp: list[float], seconds_fp32: list[float]) -> dict[str, Any]:
    """``compare_with_cuda`` for amp and fp32, then exponents and break points from the CUDA-measured curve."""
    import pandas as pd

    from paperlib.studies.memory import GIB, break_points, compare_with_cuda, fit_exponents

    parts = [compare_with_cuda(cfg, seconds_amp, precisions=("amp",), batch=batch)]
    if seconds_fp32:
        parts.append(compare_with_cuda(cfg, seconds_fp32, precisions=("fp32",), batch=batch))
    df = pd.concat(parts, ignore_index=True)
    out: dict[str, Any] = {"method": "paperlib.studies.memory.compare_with_cuda "
                                     "(estimate vs torch.cuda.max_memory_allocated)",
                           "rows": df.to_dict(orient="records"),
                           "agreement": _agreement(df["rel_error"].tolist())}
    per = {}
    for (variant, attention, precision), sub in df.groupby(["variant", "attention", "precision"], sort=False):
        per[f"{variant}/{attention}/{precision}"] = _agreement(sub["rel_error"].tolist())
    out["agreement_per_curve"] = per
    amp = df[df.precision == "amp"].copy()
    labels = {"sparsesync": "selectors", "transformer": "no selectors"}
    for method, col in (("cuda", "cuda_GiB"), ("estimate", "estimate_GiB")):
        curve = pd.DataFrame({"model": amp.variant.map(labels), "attention": amp.attention, "seconds": amp.seconds,
                              "bytes": amp[col] * GIB, "GiB": amp[col]})
        out[f"exponents_{method}"] = fit_exponents(curve).to_dict(orient="records")
        out[f"break_points_{method}"] = break_points(curve).to_dict(orient="records")
    return out


def cli(argv: list[str] | None = None) -> int:
    parser = add_common_args(argparse.ArgumentParser(prog="python -m bench.memory_check",
                                                     description=__doc__.split("\n")[0]))
    parser.add_argument("--device", default="auto",
                        help="cuda: compare with CUDA; cpu: compare with the exact CPU count")
    parser.add_argument("--batch", type=int, default=None, help="clips per step (default 10 on CUDA, 2 on CPU)")
    parser.add_argument("--seconds", default="2,5,10,20,30", help="durations compared on CUDA in amp (s)")
    parser.add_argument("--seconds-fp32", default="2,10", help="durations compared on CUDA in fp32 (s; '' for none)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    from paperlib.model.sparsesync import ModelConfig

    if device.type == "cuda" and not args.smoke:
        batch = args.batch or 10
        secs = [float(s) for s in args.seconds.split(",") if s.strip()]
        secs32 = [float(s) for s in args.seconds_fp32.split(",") if s.strip()]
        res = cuda_validation(ModelConfig(), batch, secs, secs32)
        exps = {f"{r['model']}/{r['attention']}": round(r["k_upper"], 2) for r in res["exponents_cuda"]}
        summary = (f"CUDA vs estimate over {res['agreement']['n']} configs: max |rel err| "
                   f"{fmt(res['agreement']['max_abs_rel_error'], '.2%')}, median "
                   f"{fmt(res['agreement']['median_abs_rel_error'], '.2%')}; CUDA growth exponents {exps}")
    else:
        batch = args.batch or 2
        cfg = smoke_config() if args.smoke else ModelConfig(geometry=Geometry(clip_sec=2.0))
        res = cpu_validation(cfg, batch)
        summary = (f"CPU exact vs estimate ({cfg.backbone}, {cfg.geometry.clip_sec} s, batch {batch}): max |rel err| "
                   f"{fmt(res['agreement']['max_abs_rel_error'], '.2%')}")
    res["device"] = str(device)
    write_result(NAME, res, Path(args.out), args.smoke, summary, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
