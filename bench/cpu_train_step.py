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

The campaign's questions (``--studies compile,procs,batch``; preset ``cpu-recipe`` unless ``--preset`` names another):
its step is the engine's, as a campaign worker runs it (the preset's objective, the recipe's with its initialisation and
auxiliary losses; Adam and the warm-up schedule of ``paperlib.engine.train``; ``paperlib.engine.loop.training_step``
with its per-step loss check; convolution weights channels-last, as ``train.memory_format auto`` does on CPU), on one
fixed batch. Each study runs in spawned processes whose OMP/MKL thread count is set as the campaign's workers set it:
- ``compile``: ``torch.compile`` of the objective (``train.compile``: inductor) against eager, one thread, timed round
  by round; its one-time compile cost reported apart (first steps minus steady steps), in a fresh inductor cache (or
  ``--compile-cache``); "keeps the numbers": the losses of every step and the final weights of the compiled and the
  eager run, same init, same batch, same steps, compared (max abs differences), with contiguous weights against
  channels-last as the yardstick of float rounding already accepted;
- ``procs``: the machine's throughput (steps/s of all processes: total steps / wall time of the concurrent timed
  windows, started together at a barrier) of 2 processes x 1 thread (the campaign today) against 1 process x 2 threads,
  and, with ``compile``, 2 processes x 1 thread compiled (their compile then finds the study's cache warm);
- ``batch``: the preset's batch against half and double it, one thread (time per step and per clip; a batch size changes
  what is learned, so this is reported only).
From these and the campaign's plan (``budget("full")``), the full campaign's wall-time estimate under each setting.

Deviations: none. Run: ``python -m bench.cpu_train_step [--smoke] [--settings a,b] [--preset cpu-dense-crop]
[--studies compile,procs,batch]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib
import math
import multiprocessing as mp
import os
import queue as queue_mod
import shutil
import statistics
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from bench.common import (add_common_args, fmt, paired_ratio, ratio, summarize_times, time_interleaved, time_steps,
                          write_result)
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


# ---------------------------------------------------------------------------------------------------------------------
# the campaign's questions: torch.compile, processes x threads, batch size (the engine's step, channels-last)

CAMPAIGN_PRESET = "cpu-recipe"  # what every run of the campaign trains (paperlib.paper.campaign)
STUDIES = ("compile", "procs", "batch")
# A compiled run keeps the numbers when, after the same steps from the same init on the same batch, every step's loss
# and every final weight differ from the eager run's by at most these: float rounding carried through a few steps of
# Adam (whose update of a near-zero gradient is sign-like, so a weight can move by up to ~2 lr per step on rounding
# alone), far below what a change of the maths (another loss, another init, another batch) moves.
LOSS_ATOL = 1e-3
PARAM_ATOL_LR = 2.0  # max weight difference, in units of the preset's peak learning rate, per step taken
CHILD_TIMEOUT_S = 1800.0  # one spawned measurement (a cold inductor compile of the recipe takes minutes on 2 cores)


def study_config(preset: str, smoke: bool) -> tuple[Any, int]:
    """The run configuration whose step the studies time and its batch size: the preset's, or at ``--smoke`` the
    preset's with the tiny smoke model's sizes (geometry, backbone, width, depth, heads, selectors) at batch 2."""
    from paperlib.engine.config import resolve

    run_cfg = resolve(preset)
    if smoke:
        tiny = smoke_model_config()
        sizes = {f: getattr(tiny, f) for f in ("geometry", "backbone", "depth", "d_model", "n_head", "n_selectors")}
        return dataclasses.replace(run_cfg, model=dataclasses.replace(run_cfg.model, **sizes)), 2
    return run_cfg, int(run_cfg.train.batch_size)


class EngineStep:
    """One run's training step as a campaign worker takes it, on one fixed batch; each call is one optimiser step.

    The preset's objective (``paperlib.engine.train.training_objective``: the recipe's, with its initialisation),
    convolution weights channels-last (``train.memory_format auto`` on CPU) or contiguous, Adam and the warm-up schedule
    as ``paperlib.engine.train`` builds them, ``paperlib.engine.loop.training_step`` (zero_grad, forward, the per-step
    non-finite loss check, backward, clip, Adam, scheduler), the objective through ``torch.compile(backend=...)`` when
    ``backend`` is given (what ``train.compile`` does). ``losses`` holds the paper loss of every step taken."""

    def __init__(self, run_cfg: Any, batch: int, *, channels_last: bool = True, backend: str | None = None,
                 seed: int = 0):
        from paperlib.engine.checkpointing import TrainState
        from paperlib.engine.loop import StepSetup, set_train_mode
        from paperlib.engine.train import adam_eps, lr_schedule, training_objective
        from paperlib.model.sparsesync import build_model, input_shapes, to_channels_last

        tc, cpu = run_cfg.train, torch.device("cpu")
        torch.manual_seed(seed)
        self.objective = training_objective(build_model(run_cfg.model), run_cfg)
        self.objective.initialise()
        if channels_last:
            to_channels_last(self.objective.model)
        set_train_mode(self.objective)
        optimizer = torch.optim.Adam([p for p in self.objective.model.parameters() if p.requires_grad],
                                     lr=tc.base_lr, betas=tuple(tc.betas), eps=adam_eps(tc, "fp32"),
                                     weight_decay=tc.weight_decay)
        self.setup = StepSetup(optimizer, lr_schedule(optimizer, tc, 0), torch.amp.GradScaler("cpu", enabled=False),
                               cpu, "fp32", tc.clip_grad_norm)
        self.params = [p for p in self.objective.parameters() if p.requires_grad]
        self.runner = torch.compile(self.objective, backend=backend) if backend else self.objective
        video, audio, target = make_inputs(input_shapes(run_cfg.model), batch, run_cfg.geometry.num_classes, cpu)
        self.batch = {"video": video, "audio": audio, "target": target}
        self.state = TrainState()
        self.losses: list[float] = []

    def __call__(self) -> None:
        from paperlib.engine.loop import training_step

        logs = training_step(self.runner, self.batch, self.setup, self.params, self.state)
        self.losses.append(logs["loss"].item())  # already read by the step's non-finite check on CPU: no extra sync


def numbers_diff(a: EngineStep, b: EngineStep) -> dict[str, Any]:
    """How far run ``a`` is from run ``b`` after the same steps: max abs difference of the per-step losses, of the
    last loss, and of the weights (the objective's parameters, in the same order in both)."""
    if len(a.losses) != len(b.losses):
        raise ValueError(f"runs took different step counts: {len(a.losses)} vs {len(b.losses)}")
    with torch.no_grad():
        pa, pb = list(a.objective.parameters()), list(b.objective.parameters())
        params = max(float((x - y).abs().max()) for x, y in zip(pa, pb, strict=True))
        scale = max(float(y.abs().max()) for y in pb)
    return {"steps": len(a.losses), "max_abs_loss_diff": max(abs(x - y) for x, y in zip(a.losses, b.losses)),
            "last_loss_diff": abs(a.losses[-1] - b.losses[-1]), "max_abs_param_diff": params,
            "max_abs_param": scale, "losses": [round(v, 6) for v in a.losses]}


def _timed_first_steps(runs: dict[str, EngineStep], n: int) -> dict[str, list[float]]:
    """``n`` warm-up steps of every run, in turn (a compile happens here): the seconds of each, kept out of the
    steady-step timing."""
    first: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(n):
        for name, step in runs.items():
            t0 = time.perf_counter()
            step()
            first[name].append(time.perf_counter() - t0)
    return first


def _compile_job(spec: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """Eager, compiled and contiguous-eager runs from the same init, stepped in turn: the compile's one-time cost, the
    steady step times round by round, and how far the compiled (and the contiguous) run's numbers are from eager's."""
    from torch._dynamo.utils import counters

    run_cfg, batch = study_config(spec["preset"], spec["smoke"])
    runs = {"eager": EngineStep(run_cfg, batch), "compile": EngineStep(run_cfg, batch, backend=spec["backend"]),
            "contiguous": EngineStep(run_cfg, batch, channels_last=False)}
    first = _timed_first_steps(runs, spec["warmup"])
    timed = time_interleaved(runs, rounds=spec["iters"], warmup=0)
    steady = timed["summary"]["compile"]["median_s"]
    lr = float(run_cfg.train.base_lr)
    return {"first_steps_s": first, "timed": timed,
            "compile_s": sum(first["compile"]) - len(first["compile"]) * steady,
            "numbers": {"compile_vs_eager": numbers_diff(runs["compile"], runs["eager"]),
                        "contiguous_vs_eager": numbers_diff(runs["contiguous"], runs["eager"]),
                        "eager_losses": [round(v, 6) for v in runs["eager"].losses], "peak_lr": lr},
            "dynamo_stats": dict(counters["stats"])}


def _procs_job(spec: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """One of the processes at once: its warm-up (and compile), then, once every process is ready, its timed window."""
    run_cfg, batch = study_config(spec["preset"], spec["smoke"])
    step = EngineStep(run_cfg, batch, backend=spec.get("backend"))
    first = _timed_first_steps({"run": step}, spec["warmup"])["run"]
    if barrier is not None:
        barrier.wait(timeout=CHILD_TIMEOUT_S)
    times = []
    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    end = time.monotonic()
    return {"first_steps_s": first, "start": start, "end": end, "steps": spec["steps"],
            "timing": summarize_times(times), "threads": torch.get_num_threads()}


def _batch_job(spec: dict[str, Any], barrier: Any) -> dict[str, Any]:
    """One run per batch size, stepped in turn (same init, each on its own fixed batch)."""
    run_cfg, _ = study_config(spec["preset"], spec["smoke"])
    runs = {f"batch-{b}": EngineStep(run_cfg, b) for b in spec["batches"]}
    first = _timed_first_steps(runs, spec["warmup"])
    return {"first_steps_s": first, "timed": time_interleaved(runs, rounds=spec["iters"], warmup=0)}


_JOBS = {"compile": _compile_job, "procs": _procs_job, "batch": _batch_job}


def _child_main(job: str, spec: dict[str, Any], barrier: Any, results: Any) -> None:
    """Entry of a spawned measurement process: run ``job`` on ``spec`` and put its result (or its error) on
    ``results``; a failure aborts the barrier so that the other processes of the measurement do not wait forever."""
    try:
        torch.set_num_threads(spec["threads"])
        out = _JOBS[job](spec, barrier)
        results.put({"index": spec["index"], "ok": True, "loadavg_end": os.getloadavg(), **out})
    except BaseException as e:  # noqa: BLE001  (the parent reports it; the other measurements go on)
        if barrier is not None:
            barrier.abort()
        results.put({"index": spec["index"], "ok": False, "error": f"{type(e).__name__}: {e}",
                     "traceback": traceback.format_exc(limit=8)})


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """``os.environ`` with ``values`` set (what a spawned child inherits), restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def spawn_measure(job: str, specs: list[dict[str, Any]], threads: int, cache_dir: str) -> list[dict[str, Any]]:
    """Run ``job`` in ``len(specs)`` spawned processes at once, each with OMP/MKL ``threads`` threads (set in the
    environment, as the campaign's workers get theirs, and by ``torch.set_num_threads``) and the inductor cache
    ``cache_dir``; several processes share a barrier before their timed windows. One result per spec, in order."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    barrier = ctx.Barrier(len(specs)) if len(specs) > 1 else None
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TORCHINDUCTOR_CACHE_DIR": cache_dir}
    with _environ(env):
        procs = [ctx.Process(target=_child_main, args=(job, spec | {"index": i, "threads": threads}, barrier, results))
                 for i, spec in enumerate(specs)]
        for proc in procs:
            proc.start()
    got: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while len(got) < len(procs) and time.monotonic() < deadline:
        try:
            r = results.get(timeout=5)
        except queue_mod.Empty:
            if not any(proc.is_alive() for proc in procs):
                with contextlib.suppress(queue_mod.Empty):  # a result put just before its process ended
                    while len(got) < len(procs):
                        r = results.get(timeout=2)
                        got[r["index"]] = r
                break
            continue
        got[r["index"]] = r
    for proc in procs:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return [got.get(i, {"index": i, "ok": False, "error": f"no result (exit code {proc.exitcode})"})
            for i, proc in enumerate(procs)]


def _failed(rows: list[dict[str, Any]]) -> str | None:
    errors = [r["error"] for r in rows if not r.get("ok")]
    for r in rows:
        if not r.get("ok"):
            print(f"[bench {NAME}] measurement failed: {r['error']}\n{r.get('traceback', '')}", flush=True)
    return "; ".join(errors) if errors else None


def compile_study(preset: str, smoke: bool, warmup: int, iters: int, backend: str, cache_dir: str) -> dict[str, Any]:
    """``torch.compile`` against eager on one thread (see :func:`_compile_job`); the verdict on the numbers."""
    (row,) = spawn_measure("compile", [{"preset": preset, "smoke": smoke, "warmup": max(3, warmup), "iters": iters,
                                        "backend": backend}], 1, cache_dir)
    if (error := _failed([row])) is not None:
        return {"ok": False, "error": error, "backend": backend}
    med = {k: v["median_s"] for k, v in row["timed"]["summary"].items()}
    num = row["numbers"]
    n_steps = num["compile_vs_eager"]["steps"]
    param_tol = PARAM_ATOL_LR * num["peak_lr"] * n_steps
    cmp_ = num["compile_vs_eager"]
    agree = bool(cmp_["max_abs_loss_diff"] <= LOSS_ATOL and cmp_["max_abs_param_diff"] <= param_tol)
    return {"ok": True, "backend": backend, "step_s": med, "compile_s": row["compile_s"],
            "first_steps_s": row["first_steps_s"],
            "compile_over_eager": paired_ratio(row["timed"], "eager", "compile"),  # > 1: the compiled step is faster
            "channels_last_over_contiguous": paired_ratio(row["timed"], "contiguous", "eager"),
            "numbers": num | {"loss_atol": LOSS_ATOL, "param_atol": param_tol, "agree": agree,
                              # the compiled run's distance from eager in units of the contiguous run's: the float
                              # rounding already accepted when channels-last was taken (about 1: the same size)
                              "over_accepted_rounding": {
                                  k: ratio(cmp_[k], num["contiguous_vs_eager"][k])
                                  for k in ("max_abs_loss_diff", "max_abs_param_diff")}},
            "timed": row["timed"], "dynamo_stats": row["dynamo_stats"], "loadavg_end": row["loadavg_end"]}


PROCS_LAYOUTS = {"2x1": (2, 1, False), "1x2": (1, 2, False), "2x1-compile": (2, 1, True)}  # processes, threads, compile


def procs_study(preset: str, smoke: bool, warmup: int, steps: int, repeats: int, backend: str | None,
                cache_dir: str) -> dict[str, Any]:
    """The machine's throughput (steps/s of all processes) of each layout in :data:`PROCS_LAYOUTS` (the compiled one
    only with ``backend``), every layout doing the same total steps (``steps`` per process of 2, twice that for 1).
    ``repeats`` blocks of one run per layout, every other block in reverse order (A B C | C B A | ...); each ratio is
    the median over blocks of the ratio within a block, so a load that drifts between blocks cancels."""
    layouts = ["2x1", "1x2"] + (["2x1-compile"] if backend else [])
    blocks = [layouts if b % 2 == 0 else layouts[::-1] for b in range(repeats)]
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in layouts}
    for block in blocks:
        for layout in block:
            rows[layout].append(_procs_run(layout, preset, smoke, warmup, steps, backend, cache_dir))

    def per_block(num: str, den: str) -> list[float]:
        return [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(rows[num], rows[den])
                if a.get("ok") and b.get("ok")]

    tput = {k: _median([r["steps_per_s"] for r in v if r.get("ok")]) for k, v in rows.items()}
    out = {"order": [layout for block in blocks for layout in block], "runs": rows, "steps_per_s": tput,
           "2x1_over_1x2_blocks": per_block("2x1", "1x2")}
    out["2x1_over_1x2"] = _median(out["2x1_over_1x2_blocks"])
    if backend:
        out["2x1-compile_over_2x1_blocks"] = per_block("2x1-compile", "2x1")
        out["2x1-compile_over_2x1"] = _median(out["2x1-compile_over_2x1_blocks"])
        out["compile_s_warm_cache"] = _median([s for r in rows["2x1-compile"] if r.get("ok") for s in r["compile_s"]])
    return out


def _procs_run(layout: str, preset: str, smoke: bool, warmup: int, steps: int, backend: str | None,
               cache_dir: str) -> dict[str, Any]:
    """One run of ``layout``: its processes at once, timed between the barrier and the last one's end."""
    n_procs, threads, compiled = PROCS_LAYOUTS[layout]
    spec = {"preset": preset, "smoke": smoke, "warmup": max(3, warmup) if compiled else warmup,
            "steps": 2 * steps // n_procs, "backend": backend if compiled else None}
    load0 = os.getloadavg()
    procs = spawn_measure("procs", [dict(spec) for _ in range(n_procs)], threads, cache_dir)
    if (error := _failed(procs)) is not None:
        return {"ok": False, "error": error}
    wall = max(p["end"] for p in procs) - min(p["start"] for p in procs)
    done = sum(p["steps"] for p in procs)
    overlap = min(p["end"] for p in procs) - max(p["start"] for p in procs)
    row = {"ok": True, "processes": n_procs, "threads": threads, "compiled": compiled, "steps": done,
           "wall_s": wall, "steps_per_s": done / wall, "overlap_fraction": overlap / wall,
           "process_threads": [p["threads"] for p in procs],
           "step_s_median": [p["timing"]["median_s"] for p in procs],
           "first_steps_s": [p["first_steps_s"] for p in procs], "loadavg_start": load0,
           "loadavg_end": [p["loadavg_end"] for p in procs]}
    if compiled:
        row["compile_s"] = [sum(f) - len(f) * m for f, m in zip(row["first_steps_s"], row["step_s_median"])]
    print(f"[bench {NAME}] procs {layout:<12} {row['steps_per_s']:6.2f} steps/s  wall {wall:6.1f} s  "
          f"load {load0[0]:.2f}", flush=True)
    return row


def batch_study(preset: str, smoke: bool, warmup: int, iters: int, cache_dir: str) -> dict[str, Any]:
    """Time per step and per clip at the preset's batch, half and double it (one thread, runs stepped in turn)."""
    _, today = study_config(preset, smoke)
    batches = (max(1, today // 2), today, 2 * today)
    (row,) = spawn_measure("batch", [{"preset": preset, "smoke": smoke, "warmup": warmup, "iters": iters,
                                      "batches": list(batches)}], 1, cache_dir)
    if (error := _failed([row])) is not None:
        return {"ok": False, "error": error}
    timed, ref = row["timed"], f"batch-{today}"
    per = {}
    for b in batches:
        key = f"batch-{b}"
        step = timed["summary"][key]["median_s"]
        per[key] = {"batch": b, "step_s": step, "clips_per_s": b / step,
                    "step_over_today": paired_ratio(timed, key, ref),
                    # clips/s relative to today's batch: (b / t_b) / (today / t_today), from the paired step ratio
                    "clips_per_s_over_today": ratio(b / today, paired_ratio(timed, key, ref))}
    return {"ok": True, "today": today, "batches": per, "timed": timed, "loadavg_end": row["loadavg_end"]}


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else None


def campaign_budget(profile: str = "full", *, step_scale: float = 1.0, extra_s_per_run: float = 0.0,
                    parallel: int = 2) -> dict[str, Any]:
    """The campaign's own wall-time estimate, ``budget(profile)`` of its plan module (``paperlib.paper.budget`` or
    ``paperlib.paper.campaign_plan``), with every run's step time scaled by ``step_scale`` (its ``SEC_PER_STEP``) and
    ``extra_s_per_run`` added to every run's fixed cost (its ``OVERHEAD_S``), ``parallel`` runs at once. The module's
    constants are put back before returning; ``{"error": ...}`` when it cannot be read."""
    try:
        for name in ("paperlib.paper.budget", "paperlib.paper.campaign_plan"):
            try:
                mod = importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            if hasattr(mod, "budget"):
                break
        else:
            return {"error": "no campaign plan module with budget()"}
        consts = mod.budget.__globals__["run_minutes"].__globals__  # where run_minutes reads its constants
        saved = consts["SEC_PER_STEP"], consts["OVERHEAD_S"]
        try:
            consts["SEC_PER_STEP"] = saved[0] * step_scale
            consts["OVERHEAD_S"] = {k: v + extra_s_per_run for k, v in saved[1].items()}
            b = mod.budget(profile, parallel=parallel)
        finally:
            consts["SEC_PER_STEP"], consts["OVERHEAD_S"] = saved
    except Exception as e:  # noqa: BLE001  (an estimate, not a measurement: report why it is missing)
        return {"error": f"{type(e).__name__}: {e}"}
    keep = ("n_runs", "parallel", "process_minutes", "training_wall_minutes", "wall_minutes", "target_wall_minutes",
            "fits")
    return {"module": name, "step_scale": step_scale, "extra_s_per_run": extra_s_per_run} | {k: b[k] for k in keep}


def budget_estimates(studies: dict[str, Any]) -> dict[str, Any]:
    """``budget("full")`` today and under each measured alternative: compiled steps (the one-thread step ratio,
    paired round by round, so steadier than the compiled layout's single throughput run; every run paying the
    warm-cache compile, or the cold one as the upper bound), and one process on two threads (per-run step time
    ``2x1 / (2 x 1x2)`` of today's, one run at a time)."""
    out = {"today": campaign_budget()}
    comp, procs = studies.get("compile", {}), studies.get("procs", {})
    speed = comp.get("compile_over_eager")
    if comp.get("ok") and speed:
        warm = procs.get("compile_s_warm_cache")
        if warm is not None:
            out["compile_warm_cache"] = campaign_budget(step_scale=1 / speed, extra_s_per_run=max(0.0, warm))
        out["compile_cold_cache"] = campaign_budget(step_scale=1 / speed, extra_s_per_run=max(0.0, comp["compile_s"]))
    tput = procs.get("steps_per_s", {})
    if tput.get("2x1") and tput.get("1x2"):
        out["1x2"] = campaign_budget(step_scale=tput["2x1"] / (2 * tput["1x2"]), parallel=1)
    return out


def run_studies(studies: list[str], smoke: bool, preset: str, warmup: int, iters: int, proc_steps: int,
                repeats: int, backend: str, cache_dir: str | None) -> dict[str, Any]:
    """The studies asked for, in the order compile, procs, batch (procs' compiled layout reuses compile's cache)."""
    bad = [s for s in studies if s not in STUDIES]
    if bad:
        raise ValueError(f"unknown studies {bad}; choose from {STUDIES}")
    own_cache = cache_dir is None
    cache = cache_dir or tempfile.mkdtemp(prefix="bench-inductor-")  # a cold cache: what a first compile pays
    out: dict[str, Any] = {"preset": preset, "loadavg_start": os.getloadavg(), "inductor_cache": cache,
                           "inductor_cache_fresh": own_cache}
    try:
        if "compile" in studies:
            t0 = time.perf_counter()
            out["compile"] = compile_study(preset, smoke, warmup, iters, backend, cache)
            out["compile"]["study_s"] = time.perf_counter() - t0
            c = out["compile"]
            if c.get("ok"):
                print(f"[bench {NAME}] compile ({backend}) {fmt(c['compile_over_eager'], '.2f')}x eager, compile "
                      f"{c['compile_s']:.1f} s, numbers agree {c['numbers']['agree']}", flush=True)
        if "procs" in studies:
            compiled = backend if out.get("compile", {}).get("ok") else None
            out["procs"] = procs_study(preset, smoke, warmup, proc_steps, repeats, compiled, cache)
        if "batch" in studies:
            out["batch"] = batch_study(preset, smoke, warmup, iters, cache)
    finally:
        if own_cache:
            shutil.rmtree(cache, ignore_errors=True)
    out["loadavg_end"] = os.getloadavg()
    out["budget_full"] = budget_estimates(out)
    return out


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
    ev = eval_modes(cfg, batch, max(2, iters // 2)) if settings else None
    return {"config": {"model": dataclasses.asdict(cfg), "preset": None if smoke else preset, "batch": batch,
                       "warmup": warmup, "iters": iters, "default_threads": default_threads,
                       "cpu_count": os.cpu_count()},
            "results": results, "eval": ev,
            "derived": {"best": best, "best_over_baseline": speedups.get(best) if best else None,
                        "speedup_over_baseline": speedups,
                        "inference_mode_over_no_grad": ev["inference_mode_speedup"] if ev else None}}


def studies_summary(st: dict[str, Any]) -> str:
    """One line of the studies' ratios and the load averages around them."""
    parts = []
    c = st.get("compile")
    if c and c.get("ok"):
        parts.append(f"compile {fmt(c['compile_over_eager'], '.2f')}x eager step (compile {c['compile_s']:.0f} s, "
                     f"numbers agree {c['numbers']['agree']})")
    elif c:
        parts.append(f"compile failed: {c.get('error')}")
    pr = st.get("procs")
    if pr:
        parts.append(f"2x1 {fmt(pr['2x1_over_1x2'], '.2f')}x the steps/s of 1x2")
        if "2x1-compile_over_2x1" in pr:
            parts.append(f"2x1 compiled {fmt(pr['2x1-compile_over_2x1'], '.2f')}x 2x1 eager (warm-cache compile "
                         f"{fmt(pr.get('compile_s_warm_cache'), '.0f')} s)")
    b = st.get("batch")
    if b and b.get("ok"):
        parts.append("clips/s vs batch " + str(b["today"]) + ": " + ", ".join(
            f"{v['batch']} {fmt(v['clips_per_s_over_today'], '.2f')}x" for v in b["batches"].values()))
    load = (st["loadavg_start"][0], st["loadavg_end"][0])
    return "; ".join(parts) + f"; load {load[0]:.2f} -> {load[1]:.2f}"


def cli(argv: list[str] | None = None) -> int:
    parser = add_common_args(argparse.ArgumentParser(prog="python -m bench.cpu_train_step",
                                                     description=__doc__.split("\n")[0]))
    parser.add_argument("--settings", default=None, help=f"comma-separated subset of {', '.join(SETTINGS)} "
                        f"(default: all but compile; none when --studies is given)")
    parser.add_argument("--preset", default=None, help="training preset whose model/batch are timed (default: "
                        f"cpu-dense-crop; {CAMPAIGN_PRESET} with --studies)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None, help="timed steps per setting; rounds of a study")
    parser.add_argument("--studies", default=None, help=f"comma-separated subset of {', '.join(STUDIES)}: the "
                        "campaign's questions, each measured in spawned processes (see the module's docstring)")
    parser.add_argument("--proc-steps", type=int, default=None, help="procs study: timed steps per process of 2")
    parser.add_argument("--repeats", type=int, default=None, help="procs study: runs of each eager layout")
    parser.add_argument("--compile-backend", default="inductor", help="compile study's torch.compile backend "
                        "(inductor: what train.compile uses; aot_eager traces without code generation)")
    parser.add_argument("--compile-cache", default=None, help="inductor cache folder for the studies (default: a "
                              "fresh one, removed afterwards: the compile a first run pays)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    studies = [s.strip() for s in args.studies.split(",") if s.strip()] if args.studies else []
    preset = args.preset or (CAMPAIGN_PRESET if studies else "cpu-dense-crop")
    if args.settings is not None:
        settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    else:
        settings = [] if studies else list(DEFAULT)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    iters = args.iters or (2 if args.smoke else 6)
    t0 = time.perf_counter()
    result = run(settings, args.smoke, preset, warmup, iters, args.batch)
    parts = []
    if settings:
        d = result["derived"]
        parts.append(f"best {d['best']} {fmt(d['best_over_baseline'], '.2f')}x over fp32 eager baseline; "
                     + ", ".join(f"{k} {fmt(v, '.2f')}x" for k, v in d["speedup_over_baseline"].items()
                                 if k != "baseline")
                     + f"; eval inference_mode {fmt(d['inference_mode_over_no_grad'], '.2f')}x no_grad")
    if studies:
        proc_steps = args.proc_steps or (2 if args.smoke else 40)
        repeats = args.repeats or (1 if args.smoke else 2)
        result["studies"] = run_studies(studies, args.smoke, preset, warmup, iters, proc_steps, repeats,
                                        args.compile_backend, args.compile_cache)
        parts.append(studies_summary(result["studies"]))
    result["wall_s"] = time.perf_counter() - t0
    write_result(NAME, result, Path(args.out), args.smoke, "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
