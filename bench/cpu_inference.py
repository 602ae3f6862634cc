"""Benchmark 3: CPU inference, end-to-end ``predict`` on a 10-s clip vs the model's forward alone (paper-size model).

Paper: Sec. 3 (5-s windows classified on the offset grid); the official demo runs one fp32 forward.
``paperlib.studies.predict.predict_video`` decodes the clip, cuts it into 5-s windows (two for 10 s), applies the test
transforms (256-px short side, centre 224 crop, normalisation, log-spectrogram, per-bin standardisation) and classifies
the windows in one batch.

Measured in one process, round-robin (every measurement once per round, ratios = median of per-round ratios, which
cancels the load drift of a shared machine), same clip, same weights (a freshly initialised paper-size model saved as
a paperlib checkpoint; timing does not depend on the weights):
- ``end_to_end``: ``predict_video`` (decode + preprocessing + forward + aggregation);
- ``preprocess``: the decode + transforms of the same windows alone;
- ``forward``: the loaded model's forward on the same batch, as ``predict_video`` runs it (``torch.no_grad``, fp32);
- ``reference``: a plain eager fp32 forward of the same architecture and weights with explicit softmax attention (the
  official model's arithmetic; ``return_attention=True``), under ``torch.no_grad``;
- candidate speed-ups of the forward: ``torch.inference_mode``, channels_last(_3d) convolution weights, bf16 autocast
  (CPU bf16 dot products; changes the numerics: the max |logit difference| to fp32 is reported).
Goals: end_to_end <= 1.15 x forward; forward <= reference.

Deviations: synthetic clip (``paperlib.data.synthetic`` dense-crop, 256 px, 10 s) instead of a real video.
Run: ``python -m bench.cpu_inference [--smoke] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import add_common_args, fmt, paired_ratio, time_interleaved, write_result
from bench.train_step import apply_channels_last, smoke_model_config

NAME = "cpu_inference"


def make_clip(root: Path, size: int) -> Path:
    """One synthetic 10-s dense clip of ``size`` px (generated once under ``root``)."""
    from paperlib.data.synthetic import SynthConfig, clip_id, generate, video_path

    cfg = SynthConfig(setting="dense-crop", size=size, seed=0)
    generate(cfg, root, 1, workers=1, progress=False)
    return video_path(root, clip_id(cfg, 0))


def window_batch(pred: Any, path: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The batch ``predict_video`` builds for ``path`` (same windows, same transforms): video, audio, windows."""
    from paperlib.core.media import probe, read_audio, read_video
    from paperlib.studies.predict import window_starts
    from paperlib.data.transforms import eval_transforms

    d = pred.geometry
    info = probe(path)
    starts = window_starts(info.n_frames_at(d.fps) / d.fps, info.n_samples_at(d.sample_rate) / d.sample_rate,
                           d.clip_sec, d.clip_sec, d.fps, d.sample_rate)
    tf = eval_transforms(d)
    vids, auds = [], []
    for v, a in starts:
        frames = read_video(path, v, d.clip_sec, fps=d.fps, size=pred.short_side)  # (T, H, W, 3)
        wave = read_audio(path, a, d.clip_sec, sample_rate=d.sample_rate, mono=True)  # (N,)
        s = tf({"video": torch.from_numpy(frames).permute(0, 3, 1, 2), "audio": torch.from_numpy(wave)})
        vids.append(s["video"])
        auds.append(s["audio"])
    return torch.stack(vids), torch.stack(auds), len(starts)  # (W, T, 3, H, W), (W, 1, F, Ta)


def run(smoke: bool, iters: int, work: Path) -> dict[str, Any]:
    from paperlib.model.checkpoints import save_checkpoint
    from paperlib.model.sparsesync import ModelConfig, build_model
    from paperlib.studies.predict import load_predictor, predict_video

    device = torch.device("cpu")
    cfg = smoke_model_config() if smoke else ModelConfig()
    t0 = time.perf_counter()
    clip = make_clip(work / "clip", 64 if smoke else 256)
    clip_s = time.perf_counter() - t0
    torch.manual_seed(0)
    ckpt = save_checkpoint(work / "model.pt", build_model(cfg).eval(), cfg)
    pred = load_predictor(ckpt, device="cpu")
    model = pred.model
    video, audio, n_windows = window_batch(pred, clip)
    if pred.device != device:
        raise RuntimeError(f"predictor loaded on {pred.device}, expected cpu")

    last: dict[str, Any] = {}
    model_cl = apply_channels_last(copy.deepcopy(model))

    def e2e():
        last["res"] = predict_video(pred, clip)

    def fwd():
        with torch.no_grad():
            return model(video, audio)

    def ref():
        with torch.no_grad():
            return model(video, audio, return_attention=True)[0]

    def fwd_inference():
        with torch.inference_mode():
            return model(video, audio)

    def fwd_bf16():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return model(video, audio)

    def fwd_cl():
        with torch.inference_mode():
            return model_cl(video, audio)

    fns = {"end_to_end": e2e, "preprocess": lambda: window_batch(pred, clip), "forward": fwd, "reference": ref,
           "forward_inference_mode": fwd_inference, "forward_channels_last": fwd_cl, "forward_bf16": fwd_bf16}
    timed = time_interleaved(fns, rounds=iters, warmup=1, device=device)
    results = timed["summary"]
    with torch.no_grad():
        logits_fp32 = fwd()
        logits_ref = ref()
        logits_cl = fwd_cl()
        logits_bf16 = fwd_bf16().float()

    def pr(a: str, b: str) -> float | None:
        return paired_ratio(timed, a, b)

    derived = {
        "end_to_end_over_forward": pr("end_to_end", "forward"),
        "preprocess_over_forward": pr("preprocess", "forward"),
        "forward_over_reference": pr("forward", "reference"),
        "inference_mode_speedup": pr("forward", "forward_inference_mode"),
        "channels_last_speedup": pr("forward", "forward_channels_last"),
        "bf16_speedup": pr("forward", "forward_bf16"),
        "max_abs_logit_diff_reference": float((logits_fp32 - logits_ref).abs().max()),
        "max_abs_logit_diff_channels_last": float((logits_fp32 - logits_cl).abs().max()),
        "max_abs_logit_diff_bf16": float((logits_fp32 - logits_bf16).abs().max()),
        "ratios_are": "median over rounds of per-round time ratios (round-robin timing, see bench.common)",
    }
    derived["goal_end_to_end_le_1.15x_forward"] = derived["end_to_end_over_forward"] <= 1.15
    derived["goal_forward_le_reference"] = derived["forward_over_reference"] <= 1.0
    return {"config": {"model": dataclasses.asdict(cfg), "windows": n_windows, "batch": list(video.shape),
                       "audio": list(audio.shape), "iters": iters, "threads": torch.get_num_threads(),
                       "short_side": pred.short_side, "clip": str(clip)},
            "clip_generation_s": clip_s, "results": results, "rounds": timed["rounds"], "derived": derived,
            "prediction": {k: last["res"].get(k) for k in ("n_windows", "offset_sec", "prob")}}


def cli(argv: list[str] | None = None) -> int:
    parser = add_common_args(argparse.ArgumentParser(prog="python -m bench.cpu_inference",
                                                     description=__doc__.split("\n")[0]))
    parser.add_argument("--iters", type=int, default=None, help="timed rounds (each runs every measurement once; "
                        "3; smoke 2)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the clip and checkpoint (default: temp)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    iters = args.iters or (2 if args.smoke else 3)
    with tempfile.TemporaryDirectory(prefix="bench-cpu-inference-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = run(args.smoke, iters, work)
    d = result["derived"]
    summary = (f"end-to-end {fmt(d['end_to_end_over_forward'], '.3f')}x forward (goal <= 1.15), forward "
               f"{fmt(d['forward_over_reference'], '.3f')}x plain fp32 reference (goal <= 1); inference_mode "
               f"{fmt(d['inference_mode_speedup'], '.2f')}x, channels_last {fmt(d['channels_last_speedup'], '.2f')}x, "
               f"bf16 {fmt(d['bf16_speedup'], '.2f')}x (max |dlogit| {fmt(d['max_abs_logit_diff_bf16'], '.2g')})")
    write_result(NAME, result, Path(args.out), args.smoke, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
