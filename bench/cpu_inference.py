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
- ``forward``: the predictor's forward on the same batch, as ``predict_video`` runs it by default
  (``Predictor.forward``: channels-last convolution weights, ``torch.inference_mode``, fp32);
- ``forward_plain_fp32``: the same weights loaded plainly (contiguous), forward under ``torch.no_grad``;
- ``reference``: that plain model with explicit softmax attention (the official model's arithmetic;
  ``return_attention=True``), under ``torch.no_grad``;
- ``forward_bf16``: the predictor with ``precision="bf16"`` (CPU bf16 autocast; changes the numerics).
Each forward's max |logit difference| to the plain fp32 forward is reported (and bf16's top-1 agreement with it).
Goals: end_to_end <= 1.15 x forward; forward >= 2 x faster than the reference with logits within 1e-4.

Deviations: synthetic clip (``paperlib.data.synthetic`` dense-crop, 256 px, 10 s) instead of a real video.
Run: ``python -m bench.cpu_inference [--smoke] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import add_common_args, fmt, paired_ratio, time_interleaved, write_result
from bench.train_step import smoke_model_config

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
    from paperlib.model.checkpoints import load_model, save_checkpoint
    from paperlib.model.sparsesync import ModelConfig, build_model
    from paperlib.studies.predict import load_predictor, predict_video

    device = torch.device("cpu")
    cfg = smoke_model_config() if smoke else ModelConfig()
    t0 = time.perf_counter()
    clip = make_clip(work / "clip", 64 if smoke else 256)
    clip_s = time.perf_counter() - t0
    torch.manual_seed(0)
    ckpt = save_checkpoint(work / "model.pt", build_model(cfg).eval(), cfg)
    pred = load_predictor(ckpt, device="cpu")  # the shipped default: channels-last convolutions, fp32
    pred_bf16 = load_predictor(ckpt, device="cpu", precision="bf16")
    plain = load_model(ckpt)[0].eval()  # the same weights, contiguous: today's plain eager forward
    video, audio, n_windows = window_batch(pred, clip)
    if pred.device != device:
        raise RuntimeError(f"predictor loaded on {pred.device}, expected cpu")

    last: dict[str, Any] = {}

    def e2e():
        last["res"] = predict_video(pred, clip)

    def fwd():
        return pred.forward(video, audio)

    def fwd_plain():
        with torch.no_grad():
            return plain(video, audio)

    def ref():
        with torch.no_grad():
            return plain(video, audio, return_attention=True)[0]

    def fwd_bf16():
        return pred_bf16.forward(video, audio)

    fns = {"end_to_end": e2e, "preprocess": lambda: window_batch(pred, clip), "forward": fwd,
           "forward_plain_fp32": fwd_plain, "reference": ref, "forward_bf16": fwd_bf16}
    timed = time_interleaved(fns, rounds=iters, warmup=1, device=device)
    results = timed["summary"]
    logits = fwd()
    logits_plain = fwd_plain()
    logits_ref = ref()
    logits_bf16 = fwd_bf16()

    def pr(a: str, b: str) -> float | None:
        return paired_ratio(timed, a, b)

    derived = {
        "end_to_end_over_forward": pr("end_to_end", "forward"),
        "preprocess_over_forward": pr("preprocess", "forward"),
        "reference_over_forward": pr("reference", "forward"),  # the default's speed-up over the plain reference
        "plain_fp32_over_forward": pr("forward_plain_fp32", "forward"),
        "forward_over_bf16": pr("forward", "forward_bf16"),  # bf16's speed-up over the default
        "max_abs_logit_diff_default_vs_plain_fp32": float((logits - logits_plain).abs().max()),
        "max_abs_logit_diff_reference_vs_plain_fp32": float((logits_ref - logits_plain).abs().max()),
        "max_abs_logit_diff_bf16_vs_plain_fp32": float((logits_bf16 - logits_plain).abs().max()),
        "top1_agreement_bf16": float((logits_bf16.argmax(-1) == logits_plain.argmax(-1)).float().mean()),
        "ratios_are": "median over rounds of per-round time ratios (round-robin timing, see bench.common)",
    }
    derived["goal_end_to_end_le_1.15x_forward"] = derived["end_to_end_over_forward"] <= 1.15
    derived["goal_forward_ge_2x_reference"] = derived["reference_over_forward"] >= 2.0
    derived["goal_default_logits_within_1e-4"] = derived["max_abs_logit_diff_default_vs_plain_fp32"] <= 1e-4
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
    summary = (f"end-to-end {fmt(d['end_to_end_over_forward'], '.3f')}x forward (goal <= 1.15); default forward "
               f"{fmt(d['reference_over_forward'], '.2f')}x faster than the plain fp32 reference (goal >= 2), "
               f"{fmt(d['plain_fp32_over_forward'], '.2f')}x faster than the plain fp32 forward, max |dlogit| "
               f"{fmt(d['max_abs_logit_diff_default_vs_plain_fp32'], '.2g')} (goal <= 1e-4); bf16 a further "
               f"{fmt(d['forward_over_bf16'], '.2f')}x, max |dlogit| "
               f"{fmt(d['max_abs_logit_diff_bf16_vs_plain_fp32'], '.2g')}, top-1 agreement "
               f"{fmt(d['top1_agreement_bf16'], '.2f')}")
    write_result(NAME, result, Path(args.out), args.smoke, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
