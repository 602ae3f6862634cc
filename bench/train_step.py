"""Benchmark 1: the paper-size training step (S3D + ResNet18 + selectors, depth 3, batch 10) under kernel settings.

Paper: Sec. 4 "Implementation details" trains with 125x224x224 frames, a 257x626 spectrogram, batch 10 per GPU, mixed
precision; the official training loop is autocast fp16 + GradScaler, unscale, clip-norm 1,
Adam.

What is timed: one optimiser step on device-resident random inputs (data loading excluded): zero_grad, autocast forward,
cross-entropy, (scaled) backward, unscale, clip_grad_norm_(1.0), Adam step. Per setting a fresh model, same seed.
Settings vary: precision (fp32; fp16 + GradScaler, the paper's; bf16), SDPA backend (default/flash/efficient/math),
channels_last(_3d) convolutions, fused Adam, ``torch.compile``. Reported per setting: clips/s, peak CUDA memory, MFU.

MFU = (training-step FLOPs per clip, forward + backward as counted by ``paperlib.model.sparsesync.model_summary``)
x clips/s / device peak (the bf16 dense datasheet peak for every setting, named in the JSON; paper model: 301 GFLOPs
forward, 873 GFLOPs per training clip).

Deviations: none from the official step's arithmetic; fused Adam and channels_last change kernels, not maths.
Run: ``python -m bench.train_step [--smoke] [--settings a,b] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import (
    add_common_args,
    device_peak_tflops,
    fmt,
    ratio,
    resolve_device,
    synchronize,
    time_steps,
    write_result,
)
from paperlib.core.geometry import Geometry

NAME = "train_step"
BASELINE = "fp16-eager"  # the paper's setting: autocast fp16 + GradScaler, eager, default kernels


@dataclasses.dataclass(frozen=True)
class Setting:
    """One way of running the same training step."""

    name: str
    precision: str = "bf16"  # fp32 | fp16 (autocast + GradScaler, as the paper) | bf16 (autocast, no scaler)
    sdpa: str = "default"  # default | flash | efficient | math | cudnn: SDPA backend allowed during the step
    channels_last: bool = False  # Conv3d weights in channels_last_3d (S3D), Conv2d in channels_last (ResNet18)
    fused_adam: bool = False  # Adam(fused=True): one kernel per step, no per-parameter launches
    compile: bool = False  # torch.compile(model) (default mode); the optimiser step stays eager


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("fp32", precision="fp32"),
        Setting("fp16-eager", precision="fp16"),
        Setting("bf16-eager", precision="bf16"),
        Setting("bf16-sdpa-math", precision="bf16", sdpa="math"),
        Setting("bf16-sdpa-flash", precision="bf16", sdpa="flash"),
        Setting("bf16-sdpa-efficient", precision="bf16", sdpa="efficient"),
        Setting("fp16-cl", precision="fp16", channels_last=True),
        Setting("bf16-cl", precision="bf16", channels_last=True),
        Setting("bf16-cl-fused", precision="bf16", channels_last=True, fused_adam=True),
        Setting("bf16-fused-compile", precision="bf16", fused_adam=True, compile=True),
        Setting("bf16-cl-fused-compile", precision="bf16", channels_last=True, fused_adam=True, compile=True),
    ]
}
GPU_EAGER = ["fp32", "fp16-eager", "bf16-eager", "bf16-sdpa-math", "bf16-sdpa-flash", "bf16-sdpa-efficient",
             "fp16-cl", "bf16-cl", "bf16-cl-fused"]
CPU_DEFAULT = ["fp32", "fp16-eager", "bf16-eager", "bf16-cl"]


def sdpa_context(backend: str):
    """Context manager restricting scaled_dot_product_attention to one backend (``default``: no restriction)."""
    import contextlib

    if backend == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    table = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
    }
    if backend not in table:
        raise ValueError(f"unknown SDPA backend {backend!r}; choose from default, {', '.join(table)}")
    return sdpa_kernel([table[backend]])


def autocast_dtype(precision: str) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    raise ValueError(f"unknown precision {precision!r}; choose fp32, fp16 or bf16")


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
              precision: str, device: torch.device, sdpa: str, clip_norm: float = 1.0) -> Callable[..., torch.Tensor]:
    """The official step: zero_grad, autocast forward + CE, (scaled) backward, unscale, clip, step. Returns the loss
    as a device tensor (no ``.item()``: no host sync inside the loop)."""
    dtype = autocast_dtype(precision)
    params = [p for p in model.parameters() if p.requires_grad]

    def step(video: torch.Tensor, audio: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with sdpa_context(sdpa):
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = model(video, audio)
            loss = F.cross_entropy(logits.float(), target)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip_norm, foreach=True)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return loss.detach()

    return step


def make_inputs(shapes: dict[str, tuple[int, ...]], batch: int, num_classes: int, device: torch.device,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random normalised inputs (never zeros: they can run faster than real data) and random targets, on ``device``."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randn((batch, *shapes["video"]), generator=g).to(device)  # (B, T, 3, H, W)
    audio = torch.randn((batch, *shapes["audio"]), generator=g).to(device)  # (B, 1, F, Ta)
    target = torch.randint(0, num_classes, (batch,), generator=g).to(device)
    return video, audio, target


def run_setting(setting: Setting, cfg: Any, batch: int, warmup: int, iters: int, device: torch.device,
                train_flops_per_clip: float | None, peak_tflops: float | None) -> dict[str, Any]:
    """Build a fresh model, time ``iters`` steps of ``setting``; returns the measurement (or the error)."""
    from paperlib.model.sparsesync import build_model, input_shapes, to_channels_last

    out: dict[str, Any] = {"setting": dataclasses.asdict(setting)}
    model = optimizer = step = None
    try:
        torch.manual_seed(0)
        model = build_model(cfg).to(device).train()
        if setting.channels_last:
            to_channels_last(model)
        fused = setting.fused_adam and device.type == "cuda"
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-6, betas=(0.9, 0.999),
                                     eps=1e-7 if setting.precision != "fp32" else 1e-8,
                                     **({"fused": True} if fused else {}))
        scaler = torch.amp.GradScaler(device.type) if setting.precision == "fp16" else None
        runner: nn.Module = torch.compile(model) if setting.compile else model
        step = make_step(runner, optimizer, scaler, setting.precision, device, setting.sdpa)
        video, audio, target = make_inputs(input_shapes(cfg), batch, cfg.geometry.num_classes, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        losses: list[torch.Tensor] = []
        timing = time_steps(lambda: losses.append(step(video, audio, target)), warmup=warmup, iters=iters,
                            device=device)
        last_loss = float(losses[-1])  # one host sync, after timing
        if not torch.isfinite(torch.tensor(last_loss)):
            raise FloatingPointError(f"non-finite loss {last_loss} in setting {setting.name}")
        clips_per_s = batch / timing["median_s"]
        achieved = train_flops_per_clip * clips_per_s / 1e12 if train_flops_per_clip else None
        out |= {
            "ok": True,
            "timing": timing,
            "step_s": timing["median_s"],
            "clips_per_s": clips_per_s,
            "first_step_s": timing["first_s"],
            "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
            "achieved_tflops": achieved,
            "mfu": ratio(achieved, peak_tflops),
            "last_loss": last_loss,
        }
    except Exception as e:  # noqa: BLE001  (one failing setting must not hide the others)
        out |= {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=6)}
        print(f"[bench {NAME}] setting {setting.name} failed: {type(e).__name__}: {e}", flush=True)
    finally:
        model = optimizer = step = None  # drop the references before collecting
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if setting.compile:
            torch._dynamo.reset()
    return out


def model_config(smoke: bool, depth: int | None = None) -> Any:
    """Paper geometry (S3D + ResNet18, 5 s at 25 fps, 224 crop, 257x626 spectrogram, depth 3, 21 classes), or the tiny
    smoke configuration of the model module."""
    from paperlib.model.sparsesync import ModelConfig

    cfg = ModelConfig() if not smoke else smoke_model_config()
    if depth is not None:
        cfg = dataclasses.replace(cfg, depth=depth)
    return cfg


def smoke_model_config() -> Any:
    """A tiny model: small CPU backbones, 1 s at 32 fps, 32-px crop, 33x63 spectrogram, D=32; ~0.4M parameters.

    32 frames (not 16) keep the last temporal conv's input at t=4: torch 2.9.1's CPU bf16 Conv3d weight gradient comes
    out NaN (uninitialised memory, nondeterministic) for a (3,1,1) kernel over a 2x2x2 input.
    """
    from paperlib.model.sparsesync import ModelConfig

    geometry = Geometry(num_classes=21, clip_sec=1.0, fps=32, crop=32, sample_rate=8000, n_fft=64, hop=128)
    return ModelConfig(geometry=geometry, backbone="small", depth=1, d_model=32, n_head=2, n_selectors=4)


def flops_per_clip(cfg: Any) -> tuple[float | None, float | None]:
    """(forward, training-step) FLOPs of one clip as counted by ``paperlib.model.sparsesync.model_summary``
    (FlopCounterMode on the meta device; a multiply-add counts 2; the training step is forward + backward, counted, not
    assumed 3x)."""
    from paperlib.model.sparsesync import model_summary

    summary = model_summary(cfg)
    fwd = summary.get("flops_forward", {}).get("total")
    train = summary.get("flops_train_step", {}).get("total")
    return (float(fwd) if fwd else None), (float(train) if train else None)


def derive(results: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Speed-ups over the paper-like fp16 eager setting, the best setting and the goals, from measured results only."""
    ok = {k: v for k, v in results.items() if v.get("ok")}
    base = ok.get(BASELINE)
    best_name = max(ok, key=lambda k: ok[k]["clips_per_s"]) if ok else None
    speedups = {k: ratio(v["clips_per_s"], base["clips_per_s"] if base else None) for k, v in ok.items()}
    bf16_mfus = [v["mfu"] for k, v in ok.items() if SETTINGS[k].precision == "bf16" and v.get("mfu") is not None]
    derived = {
        "baseline": BASELINE if base else None,
        "best": best_name,
        "best_over_fp16_eager": speedups.get(best_name) if best_name else None,
        "speedup_over_fp16_eager": speedups,
        "bf16_eager_mfu": ok.get("bf16-eager", {}).get("mfu"),
        "best_mfu": ok[best_name]["mfu"] if best_name else None,
        "best_bf16_mfu": max(bf16_mfus) if bf16_mfus else None,
    }
    goals = {"bf16_mfu_ge_0.35": None if derived["best_bf16_mfu"] is None else derived["best_bf16_mfu"] >= 0.35,
             "best_ge_2x_fp16_eager": None if derived["best_over_fp16_eager"] is None or base is None else
             derived["best_over_fp16_eager"] >= 2.0}
    return derived, goals


def run(settings: list[str], smoke: bool, batch: int, warmup: int, iters: int, device: torch.device,
        depth: int | None = None, max_seconds: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Time every setting in ``settings`` in this process; speed-ups are relative to the paper-like fp16 eager one.

    ``on_progress`` receives the result so far after each setting (the CLI writes it, so a run cut short by a time
    limit still leaves every finished measurement on disk)."""
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    if len(set(settings)) != len(settings):
        raise ValueError(f"settings listed twice: {sorted({s for s in settings if settings.count(s) > 1})}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the official code
    cfg = model_config(smoke, depth)
    fwd, train_flops = flops_per_clip(cfg)
    peak, peak_label = device_peak_tflops(device, "bf16")
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    out: dict[str, Any] = {
        "config": {"model": dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else str(cfg), "batch": batch,
                   "warmup": warmup, "iters": iters, "device": str(device), "settings": settings},
        "forward_flops_per_clip": fwd,
        "train_flops_per_clip": train_flops,
        "peak_tflops": peak,
        "peak_label": peak_label,
        "flags": {"cudnn_benchmark": torch.backends.cudnn.benchmark,
                  "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                  "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32},
        "results": results,
    }
    for name in settings:
        if max_seconds is not None and time.perf_counter() - t_start > max_seconds:
            results[name] = {"ok": False, "error": f"skipped: time budget of {max_seconds:.0f} s spent"}
            continue
        r = run_setting(SETTINGS[name], cfg, batch, warmup, iters, device, train_flops, peak)
        results[name] = r
        if r.get("ok"):
            print(f"[bench {NAME}] {name:<24} {r['clips_per_s']:8.2f} clips/s  step {r['step_s'] * 1e3:8.1f} ms  "
                  f"peak {fmt(r['peak_mem_gib'], '.1f')} GiB  MFU {fmt(r['mfu'], '.1%')}  "
                  f"first {fmt(r['first_step_s'], '.1f')} s", flush=True)
        out["derived"], out["goals"] = derive(results)
        if on_progress is not None:
            on_progress(out)
    out["derived"], out["goals"] = derive(results)
    return out


def loss_check(cfg: Any, steps: int, batch: int, n_batches: int, precision: str, device: torch.device,
               lr: float = 1e-4, channels_last: bool = False, log_every: int = 10, engine: bool = False
               ) -> dict[str, Any]:
    """A short real training: ``steps`` optimiser steps cycling over ``n_batches`` fixed random batches (the classic
    "can it overfit a few batches" check). ``fell``: the mean of the last 5 losses is below 80% of the first 5.

    ``engine=True`` trains through ``paperlib.engine.train.train_one_epoch`` (the project's loop: autocast, GradScaler
    when fp16, unscale, clip 1.0, Adam, per-step LR scheduler; constant LR here) and reads each step's loss through its
    ``on_log`` hook (``log_every=1``: one host sync per step, acceptable for a check); otherwise this module's step,
    with the losses kept on the device until the end."""
    from paperlib.model.sparsesync import build_model, input_shapes, to_channels_last

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = build_model(cfg).to(device).train()
    if channels_last:
        to_channels_last(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7 if precision != "fp32" else 1e-8,
                                 **({"fused": True} if device.type == "cuda" else {}))
    shapes = input_shapes(cfg)
    batches = [make_inputs(shapes, batch, cfg.geometry.num_classes, device, seed=100 + i) for i in range(n_batches)]
    values: list[float] = []
    t0 = time.perf_counter()
    if engine:
        from paperlib.engine.objectives import CrossEntropyObjective
        from paperlib.engine.train import TrainState, train_one_epoch

        scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        stream = ({"video": v, "audio": a, "target": t} for i in range(steps) for v, a, t in [batches[i % n_batches]])

        def on_log(rec: dict[str, Any]) -> None:
            values.append(float(rec["loss"]))
            i = len(values) - 1
            if log_every and (i % log_every == 0 or i == steps - 1):
                print(f"[bench {NAME}] loss-check (engine) step {i:4d} loss {values[-1]:.4f}", flush=True)

        train_one_epoch(CrossEntropyObjective(model), stream, optimizer, scheduler, scaler, state=TrainState(),
                        device=device, precision=precision, clip_grad_norm=1.0, log_every=1, on_log=on_log)
    else:
        scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        step = make_step(model, optimizer, scaler, precision, device, "default")
        losses: list[torch.Tensor] = []
        for i in range(steps):
            losses.append(step(*batches[i % n_batches]))
            if log_every and (i % log_every == 0 or i == steps - 1):
                print(f"[bench {NAME}] loss-check step {i:4d} loss {losses[-1].item():.4f}", flush=True)
        values = torch.stack(losses).float().cpu().tolist()
    synchronize(device)
    elapsed = time.perf_counter() - t0
    if len(values) != steps:
        raise RuntimeError(f"loss-check: expected {steps} losses, got {len(values)}")
    k = min(5, max(1, len(values) // 2))
    first, last = sum(values[:k]) / k, sum(values[-k:]) / k
    return {
        "steps": steps, "batch": batch, "n_batches": n_batches, "precision": precision, "lr": lr, "engine": engine,
        "channels_last": channels_last, "seconds": elapsed, "losses": [round(v, 5) for v in values],
        "first_loss": values[0], "last_loss": values[-1], "first_mean": first, "last_mean": last,
        "fell": bool(all(v == v for v in values) and last < 0.8 * first),
    }


def cli(argv: list[str] | None = None) -> int:
    parser = add_common_args(argparse.ArgumentParser(prog="python -m bench.train_step",
                                                     description=__doc__.split("\n")[0]))
    parser.add_argument("--settings", default=None,
                        help=f"comma-separated subset of: {', '.join(SETTINGS)} (default: eager set on GPU, a CPU set)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="clips per step (default 10; smoke 2)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--depth", type=int, default=None, help="transformer depth (default: the config's, 3)")
    parser.add_argument("--max-seconds", type=float, default=None, help="skip settings once this much time is spent")
    parser.add_argument("--name", default=NAME, help="JSON file stem (default train_step)")
    parser.add_argument("--loss-check", type=int, default=0, metavar="STEPS",
                        help="instead of timing: train STEPS steps on a few fixed batches and check the loss falls")
    parser.add_argument("--precision", default="bf16", help="precision of --loss-check (fp32, fp16, bf16)")
    parser.add_argument("--engine", action="store_true",
                        help="--loss-check through paperlib.engine.train.train_one_epoch")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of --loss-check (1e-4; smoke 1e-3)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.loss_check:
        cfg = model_config(args.smoke, args.depth)
        batch = args.batch or (2 if args.smoke else 10)
        lr = args.lr if args.lr is not None else (1e-3 if args.smoke else 1e-4)
        res = loss_check(cfg, args.loss_check, batch, 2, args.precision, device, lr=lr,
                         channels_last=device.type == "cuda", engine=args.engine)
        res["model"] = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else str(cfg)
        summary = (f"loss-check {res['steps']} steps batch {batch} {res['precision']}"
                   f"{' (paperlib.engine.train engine)' if args.engine else ''}: first {res['first_loss']:.4f} "
                   f"last {res['last_loss']:.4f} (mean of first/last 5: {res['first_mean']:.4f} -> "
                   f"{res['last_mean']:.4f}) fell={res['fell']} in {res['seconds']:.1f} s")
        name = args.name if args.name != NAME else "train_check"
        write_result(name, res, Path(args.out), args.smoke, summary, device)
        return 0 if res["fell"] else 1
    if args.settings:
        settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    else:
        settings = GPU_EAGER if device.type == "cuda" else CPU_DEFAULT
    batch = args.batch or (2 if args.smoke else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 3)
    iters = args.iters or (2 if args.smoke else 10)

    def summarize(result: dict[str, Any]) -> str:
        d = result["derived"]
        return (f"best {d['best']} {fmt(d['best_over_fp16_eager'], '.2f')}x over fp16 eager; "
                f"bf16 eager MFU {fmt(d['bf16_eager_mfu'], '.1%')}, best bf16 MFU {fmt(d['best_bf16_mfu'], '.1%')} "
                f"({result['peak_label']})")

    def save(result: dict[str, Any], quiet: bool = True) -> None:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            write_result(args.name, result, Path(args.out), args.smoke, summarize(result), device)

    result = run(settings, args.smoke, batch, warmup, iters, device, args.depth, args.max_seconds, on_progress=save)
    save(result, quiet=False)
    return 0 if any(r.get("ok") for r in result["results"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(cli())
