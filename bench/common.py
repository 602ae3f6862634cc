"""Shared helpers for the benchmarks in ``bench/``: timing, environment record, JSON output and device peaks.

Paper link: none directly; the benchmarks size the cost of the paper's set-up (Sec. 4, "Implementation details": S3D +
ResNet18 at 125x224x224 frames and a 257x626 spectrogram, batch 10 per GPU, mixed precision) on current hardware.

Conventions (every benchmark follows them):
- run from the repository root as ``python -m bench.<name> [--smoke] [--out DIR]``;
- every ratio is measured in the same process, side by side, never against a number from another run;
- each benchmark writes one JSON file ``<out>/<name>[-smoke].json`` (default ``runs/bench/``) holding its settings,
  raw times, derived numbers and the environment, and prints one summary line starting with ``[bench <name>]``;
- GPU timings use CUDA events recorded without host synchronisation inside the timed loop (one sync at the end).

Deviations: none (no paper counterpart). MFU uses the dense (no sparsity) datasheet peak of the device for bf16/fp16
tensor-core math, as is usual for model FLOPs utilisation; the peak used is always written into the JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from paperlib.core import provenance

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "runs" / "bench"

# Dense (no 2:4 sparsity) datasheet peaks in TFLOP/s, per device family and math type.
# Sources: NVIDIA H100/H200/A100/V100 datasheets (SXM unless stated).
_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.2},
    "H100": {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9},
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "V100": {"bf16": float("nan"), "fp16": 125.0, "tf32": float("nan"), "fp32": 15.7},
}


def device_peak_tflops(device: torch.device | str, math_type: str = "bf16") -> tuple[float | None, str]:
    """Datasheet dense peak (TFLOP/s) of ``device`` for ``math_type`` and the label of the entry used.

    Returns ``(None, reason)`` on CPU or an unknown GPU: MFU is then not reported rather than guessed.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None, "cpu: no datasheet peak used"
    name = torch.cuda.get_device_name(device)
    for family, peaks in _PEAK_TFLOPS.items():
        tokens = family.split()
        if all(tok.lower() in name.lower() for tok in tokens):
            value = peaks.get(math_type)
            if value is None or math.isnan(value):
                return None, f"{name}: no {math_type} peak in the table"
            return value, f"{family} {math_type} dense datasheet peak {value} TFLOP/s (device reports '{name}')"
    return None, f"{name}: unknown device, no peak used"


def env_info(device: torch.device | str | None = None) -> dict[str, Any]:
    """What produced a number: paperlib's provenance (code, library and codec versions, host) plus what a timing
    depends on: CPU count, torch's thread pools and, when CUDA is used, the GPU's properties."""
    info = provenance.env_info(None if device is None else str(device))
    info.update(machine=platform.machine(), cpu_count=os.cpu_count(),
                torch_interop_threads=torch.get_num_interop_threads())
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        dev = torch.device(device) if device is not None else torch.device("cuda")
        props = torch.cuda.get_device_properties(dev)
        info["cuda_device"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 2),
            "multiprocessors": props.multi_processor_count,
        }
    return info


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; otherwise the named device (an error when CUDA is asked for and
    absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return device


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds on CPU); used by the tests")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    return parser


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(fn: Callable[[], Any], *, warmup: int, iters: int, device: torch.device) -> dict[str, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``iters`` times timed; per-call seconds and their summary.

    On CUDA, one event is recorded before each call and one after the last, with no host synchronisation in between
    (the loop runs as a training loop would); the elapsed times are read after a single final sync. On CPU, wall-clock.
    ``first_s`` is the first warm-up call (it holds one-time costs: cuDNN autotuning, compilation).
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    first_s = None
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        if i == 0:
            synchronize(device)
            first_s = time.perf_counter() - t0
    synchronize(device)
    if device.type == "cuda":
        events = [torch.cuda.Event(enable_timing=True) for _ in range(iters + 1)]
        wall0 = time.perf_counter()
        for i in range(iters):
            events[i].record()
            fn()
        events[iters].record()
        torch.cuda.synchronize(device)
        wall = time.perf_counter() - wall0
        times = [events[i].elapsed_time(events[i + 1]) / 1e3 for i in range(iters)]
    else:
        times = []
        wall0 = time.perf_counter()
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        wall = time.perf_counter() - wall0
    return summarize_times(times) | {"first_s": first_s, "wall_s": wall}


def time_interleaved(fns: dict[str, Callable[[], Any]], *, rounds: int, warmup: int = 1,
                     device: torch.device | None = None) -> dict[str, Any]:
    """Time several functions round-robin: each round runs every function once, in an order rotated by one per round.

    On a shared machine the load drifts over minutes; timing A, B, A, B ... and taking the median of per-round ratios
    (:func:`paired_ratio`) cancels most of that drift, where timing all of A then all of B does not.
    Returns ``{"rounds": [{name: seconds}], "summary": {name: summarize_times(...)}}``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    device = device or torch.device("cpu")
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    per_round: list[dict[str, float]] = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        row = {}
        for name in order:
            t0 = time.perf_counter()
            fns[name]()
            synchronize(device)
            row[name] = time.perf_counter() - t0
        per_round.append(row)
    return {"rounds": per_round, "summary": {n: summarize_times([row[n] for row in per_round]) for n in names}}


def paired_ratio(timed: dict[str, Any], num: str, den: str) -> float | None:
    """Median over rounds of ``time[num] / time[den]`` from :func:`time_interleaved`."""
    vals = [row[num] / row[den] for row in timed["rounds"] if row.get(den, 0) > 0]
    return statistics.median(vals) if vals else None


def summarize_times(times: Sequence[float]) -> dict[str, Any]:
    """Median/mean/min/max and the relative spread (max-min)/median of a list of seconds."""
    if not times:
        raise ValueError("no times to summarise")
    med = statistics.median(times)
    return {
        "median_s": med,
        "mean_s": statistics.fmean(times),
        "min_s": min(times),
        "max_s": max(times),
        "spread": (max(times) - min(times)) / med if med > 0 else float("nan"),
        "n": len(times),
        "times_s": [round(t, 6) for t in times],
    }


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den`` or None when either side is missing or the denominator is not positive."""
    if num is None or den is None or not den > 0:
        return None
    return num / den


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.dtype):
        return str(obj).replace("torch.", "")
    return str(obj)


def write_result(name: str, result: dict[str, Any], out_dir: Path, smoke: bool, summary: str,
                 device: torch.device | str | None = None) -> Path:
    """Write ``result`` (plus environment and time stamp) to ``<out_dir>/<name>[-smoke].json``; print the summary
    line."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "smoke": smoke,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "summary": summary,
        **result,
        "env": env_info(device),
    }
    path = out_dir / f"{name}{'-smoke' if smoke else ''}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    tmp.replace(path)
    print(f"[bench {name}] {summary} -> {path}", flush=True)
    return path


def fmt(x: float | None, spec: str = ".3g") -> str:
    """Format a possibly-missing number for a summary line."""
    return "n/a" if x is None else format(x, spec)
