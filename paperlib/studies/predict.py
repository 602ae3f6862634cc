"""Offset prediction for arbitrary videos: sliding windows, per-window and aggregated offsets, and how to fix the file.

    python -m paperlib predict VIDEO... --checkpoint CKPT [--window 5] [--stride S] [--json OUT | --csv OUT]
                                       [--inject-offset X] [--v-start S] [--top-k 5] [--device auto]

Paper: Sec. 3 (the model classifies the offset of a 5 s audio-visual pair on a grid), Sec. 7.3 (input geometry);
the authors' demo ``scripts/example.py`` and test transforms (v-iashin/SparseSync).

What it does: every input (any container, fps, resolution, sample rate, channel count) is decoded and resampled in
memory to the model's geometry (fps, short side, sample rate, mono), cut into windows of the model's length
(``--stride``, default: non-overlapping; a short video gives one window), put through the test transforms (centre crop,
ImageNet normalisation, log-spectrogram, per-frequency standardisation) and classified. Each window gives the offset
class, its probability and the top-k; the clip's offset is the class with the highest mean probability over windows.
Sign convention (as the official code): a positive offset means the audio is early (leads the picture).

Deviations from the official demo: the demo only *injects* a chosen offset into a clip assumed in sync and classifies
one window; here the clip's own offset is estimated over all windows, ``--inject-offset X`` reproduces the demo's check
(the audio window starts X s later in the file than the video window, so the prediction should be the clip's own offset
+ X), and no re-encoded copy is written (the official demo re-encodes to 25 fps / 256 px / 16 kHz with ffmpeg first).
The prediction's resolution is the grid step (0.2 s for 21 classes, 1 s for 3), so the ITU-R BT.1359 verdict
(acceptable: audio leading by at most 90 ms, lagging by at most 185 ms) is exact only for the grid's 0 class.

How much the model knows, against a model at chance (which gives every class 1/C): the ``margin`` between the two most
probable offsets (0 at chance) and the ``certainty`` 1 - H(p) / ln C of the clip's offset distribution (0 at chance, 1
when one offset takes all the probability). Below ``min_certainty`` (default :data:`MIN_CERTAINTY`) the clip is
reported as "uncertain" instead of a verdict (no sync verdict, no ffmpeg fix). A paperlib checkpoint stores its
validation accuracy; when that is at chance (within two binomial standard errors of 1/C) every clip is "uncertain" and
the checkpoint gets a warning naming it. Non-finite model outputs (a corrupt or diverged checkpoint) are refused.

File names that are not valid UTF-8 (POSIX allows any bytes) are written with the offending bytes escaped
(``clip_\\xff.mp4``) in every output; the ffmpeg fix quotes them for bash (``$'clip_\\xff.mp4'``).
"""

from __future__ import annotations

import csv
import io
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from paperlib.core.geometry import Geometry
from paperlib.core.media import MediaError, probe, read_audio, read_video
from paperlib.data.transforms import eval_transforms
from paperlib.model import weights
from paperlib.engine.evaluate import autocast_context
from paperlib.model.checkpoints import load_model
from paperlib.model.sparsesync import to_channels_last

ITU_AUDIO_LEAD_SEC = 0.090  # ITU-R BT.1359-1 acceptability: audio ahead of the picture by at most 90 ms
ITU_AUDIO_LAG_SEC = 0.185  # ... and behind it by at most 185 ms
# Below this certainty (1 - entropy / ln C of the clip's offset distribution; 0 = a model at chance) a clip is
# "uncertain": e.g. 3 classes at (0.45, 0.35, 0.20) give 0.05, at (0.6, 0.3, 0.1) 0.18; 21 classes with 0.3 on the
# best offset, 0.2 on each neighbour and the rest spread evenly give 0.27.
MIN_CERTAINTY = 0.10


class ModelOutputError(RuntimeError):
    """The model gave non-finite outputs (NaN or inf): its checkpoint is corrupt or its training diverged."""


@dataclass
class Predictor:
    """A loaded model plus what the data pipeline needs to feed it."""

    model: nn.Module
    geometry: Geometry  # the model's window, rates, crop, spectrogram and offset grid (from its checkpoint)
    device: torch.device
    short_side: int  # px: frames are rescaled so that the short side has this size before the centre crop
    checkpoint: str
    precision: str = "fp32"  # fp32 | bf16 (autocast: faster on CPUs with bf16 units, logits differ by ~1e-3)
    validation: dict[str, Any] | None = None  # the checkpoint's stored validation accuracy (None: not stored)
    warning: str | None = None  # why its predictions cannot be trusted (a model at chance), else None

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Float32 logits (B, C) of a batch of model inputs, on the CPU: no autograd state (``inference_mode``), and
        bf16 autocast when ``precision`` asks for it."""
        with torch.inference_mode(), autocast_context(self.device, self.precision):
            return self.model(video.to(self.device), audio.to(self.device)).float().cpu()

    @property
    def grid(self) -> np.ndarray:
        """Offset (s) of each class."""
        return self.geometry.grid()


def _stored_run_info(path: Path) -> tuple[int | None, dict[str, Any] | None]:
    """The on-the-fly short-side resize of the run that wrote a paperlib checkpoint (None: as stored) and the
    validation metrics it stored (None: none stored); (None, None) for an official checkpoint."""
    try:
        raw = weights.load_checkpoint(path)
    except weights.CheckpointError:
        return None, None  # an official checkpoint
    data = (raw.get("run_config") or {}).get("data") or {}
    resize = data.get("resize_short") if isinstance(data, dict) else None
    metrics = raw.get("metrics")
    valid = None
    if isinstance(metrics, dict) and isinstance(metrics.get("accuracy_1"), (int, float)):
        valid = {"accuracy_1": float(metrics["accuracy_1"]), "n": metrics.get("n"), "step": raw.get("step")}
    return resize, valid


def chance_warning(checkpoint: str | Path, validation: dict[str, Any] | None, num_classes: int) -> str | None:
    """A warning naming ``checkpoint`` when its stored validation top-1 accuracy is at chance: within two binomial
    standard errors of 1/C at its validation size ``n`` (without ``n``: below 1.5/C). None otherwise."""
    if not validation:
        return None
    acc, n, chance = validation["accuracy_1"], validation.get("n"), 1.0 / num_classes
    if isinstance(n, int) and n > 0:
        bound = chance + 2 * math.sqrt(chance * (1 - chance) / n)
        rule = f"within 2 s.e. of chance at n = {n}: <= {100 * bound:.1f} %"
    else:
        bound = 1.5 * chance
        rule = f"below 1.5 x chance = {100 * bound:.1f} %, validation size not stored"
    if acc > bound:
        return None
    step = validation.get("step")
    return (f"checkpoint {checkpoint}: its stored validation accuracy {100 * acc:.1f} % is at chance "
            f"(1/{num_classes} = {100 * chance:.1f} %; {rule}){f' after {step} steps' if step is not None else ''}: "
            f"the model has not learned synchronisation, so every clip is reported as uncertain")


def load_predictor(checkpoint: str | Path, device: str = "auto", short_side: int | None = None,
                   precision: str = "fp32", channels_last: bool = True) -> Predictor:
    """Load a paperlib or official checkpoint for prediction (eval mode, on ``device``).

    The default is the fastest setting that keeps the numbers: convolution weights in channels-last order (logits
    within 1e-4 of the plain float32 forward; ``tests/test_predict.py`` checks it on a real clip). ``precision="bf16"``
    is faster still where the CPU has bf16 units, at a logit difference of ~1e-3 (README, "Prediction speed").
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    path = Path(checkpoint)
    model, mcfg = load_model(path)
    geo = mcfg.geometry
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else torch.device(device)
    resize, validation = _stored_run_info(path)
    if short_side is None:
        # as the data the model saw: the run's on-the-fly resize, else the paper's 256 px short side for a 224 crop
        short_side = resize or int(round(geo.crop * 256 / 224))
    if short_side < geo.crop:
        raise ValueError(f"short side {short_side} px is smaller than the model's {geo.crop} px crop")
    model = model.to(dev).eval()
    if channels_last:
        to_channels_last(model)
    name = display_path(path)
    return Predictor(model, geo, dev, short_side, name, precision, validation,
                     chance_warning(name, validation, geo.num_classes))


def display_path(path: str | Path) -> str:
    """``path`` as text that every output can encode: bytes that are not valid UTF-8 (which Python keeps as lone
    surrogates) are written as ``\\xNN`` escapes."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def shell_quote(path: str | Path) -> str:
    """``path`` quoted for bash: :func:`shlex.quote`, or ``$'...'`` with ``\\xNN`` escapes when the name holds bytes
    that are not valid UTF-8 (so that the command names the very file)."""
    text = str(path)
    try:
        text.encode("utf-8")
        return shlex.quote(text)
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        if "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch in "\\'":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def certainty(probs: np.ndarray) -> dict[str, float]:
    """How far an offset distribution is from a model at chance: ``margin`` (top-1 minus top-2 probability; 0 at
    chance), ``entropy`` in nats and ``certainty`` = 1 - entropy / ln C (0 at chance, 1 for a one-hot
    distribution), and ``top_over_chance`` (the top probability in units of 1/C; 1 at chance)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    p = p / p.sum()
    c = len(p)
    top = np.sort(p)[::-1]
    nz = p[p > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    return {"margin": round(float(top[0] - top[1]), 6), "entropy": round(entropy, 6),
            "certainty": round(1.0 - entropy / math.log(c), 6), "top_over_chance": round(float(top[0] * c), 4)}


def window_starts(video_sec: float, audio_sec: float, window_sec: float, stride_sec: float, fps: float,
                  sample_rate: int, inject_offset_sec: float = 0.0, v_start_sec: float | None = None
                  ) -> list[tuple[float, float]]:
    """(video start, audio start) in seconds of every window that fits both streams.

    Video starts snap down to a frame (``int(s * fps)``) and the audio start is ``int((v + inject) * sr)`` samples, as
    the official crop. With ``v_start_sec`` only that window is returned (the official demo's ``--v_start_i_sec``).
    """
    if window_sec <= 0 or stride_sec <= 0:
        raise ValueError(f"window and stride must be positive, got {window_sec}, {stride_sec}")
    first = max(0.0, -inject_offset_sec)
    count = int(math.floor((video_sec - window_sec - first) / stride_sec + 1e-9)) + 1
    starts = [v_start_sec] if v_start_sec is not None else [first + i * stride_sec for i in range(count)]
    out = []
    eps = 1e-6
    for s in starts:
        v = int(s * fps + eps) / fps
        a = int(round((v + inject_offset_sec) * sample_rate, 6)) / sample_rate
        if v >= 0 and a >= 0 and v + window_sec <= video_sec + eps and a + window_sec <= audio_sec + eps:
            out.append((v, a))
    return out


def itsoffset_command(path: str | Path, offset_sec: float) -> str | None:
    """The ffmpeg command that removes an offset (positive: audio leads, so the audio is delayed), without
    re-encoding; None when the offset is 0."""
    if abs(offset_sec) < 1e-9:
        return None
    p = Path(path)
    src = shell_quote(p)
    dst = shell_quote(p.with_name(f"{p.stem}_synced{p.suffix or '.mp4'}"))
    d = f"{abs(offset_sec):.3f}"
    if offset_sec > 0:  # audio early: delay the audio (second input) by d
        return f"ffmpeg -i {src} -itsoffset {d} -i {src} -map 0:v -map 1:a -c copy {dst}"
    return f"ffmpeg -itsoffset {d} -i {src} -i {src} -map 0:v -map 1:a -c copy {dst}"  # audio late: delay the video


def itu_acceptable(offset_sec: float) -> bool:
    """ITU-R BT.1359 acceptability: -185 ms <= offset <= +90 ms (positive = audio leads)."""
    return -ITU_AUDIO_LAG_SEC - 1e-9 <= offset_sec <= ITU_AUDIO_LEAD_SEC + 1e-9


def _topk(probs: np.ndarray, logits: np.ndarray | None, grid: np.ndarray, k: int) -> list[dict[str, Any]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"class": int(i), "offset_sec": round(float(grid[i]), 3), "prob": float(probs[i]),
             **({"logit": float(logits[i])} if logits is not None else {})} for i in order]


def window_inputs(pred: Predictor, path: str | Path, v_start_sec: float, a_start_sec: float, window_sec: float,
                  transforms: Any = None) -> dict[str, torch.Tensor]:
    """The model inputs of one window: decode (resampled in memory), then the test transforms.

    Returns ``{"video": (T, 3, crop, crop) float32, "audio": (1, F, Ta) float32}`` -- the same tensors the test split of
    :mod:`paperlib.data.datasets` builds for a clip with a fixed offset ``a_start - v_start`` (tested).
    """
    d = pred.geometry
    tf = transforms if transforms is not None else eval_transforms(d)
    frames = read_video(path, v_start_sec, window_sec, fps=d.fps, size=pred.short_side)  # (T, H, W, 3) uint8
    wave = read_audio(path, a_start_sec, window_sec, sample_rate=d.sample_rate, mono=True)  # (N,)
    return tf({"video": torch.from_numpy(frames).permute(0, 3, 1, 2), "audio": torch.from_numpy(wave)})


def predict_video(pred: Predictor, path: str | Path, window_sec: float | None = None, stride_sec: float | None = None,
                  inject_offset_sec: float = 0.0, v_start_sec: float | None = None, top_k: int = 5,
                  batch_size: int = 8, min_certainty: float = MIN_CERTAINTY) -> dict[str, Any]:
    """Predict the offset of one video. Returns a dict with ``windows`` (per window) and the aggregate, how much the
    model knows (``margin``, ``certainty``; ``uncertain`` below ``min_certainty`` or for a checkpoint at chance, in
    which case there is no sync verdict and no ffmpeg fix).

    Raises ``paperlib.core.media.MediaError`` naming the file for unreadable input, a missing stream or a clip too short
    for one window, and :class:`ModelOutputError` for non-finite model outputs.
    """
    d = pred.geometry
    path = Path(path)
    window = float(window_sec if window_sec is not None else d.clip_sec)
    if abs(window - d.clip_sec) > 1e-9:
        raise ValueError(f"the model takes {d.clip_sec} s windows (its positional tables are sized for them), "
                         f"got --window {window}")
    stride = float(stride_sec if stride_sec is not None else window)
    info = probe(path)
    if info.video is None:
        raise MediaError(f"{path}: no video stream (a video with sound is needed)")
    if info.audio is None:
        raise MediaError(f"{path}: no audio stream (a video with sound is needed)")
    video_sec = info.n_frames_at(d.fps) / d.fps
    audio_sec = info.n_samples_at(d.sample_rate) / d.sample_rate
    starts = window_starts(video_sec, audio_sec, window, stride, d.fps, d.sample_rate, inject_offset_sec, v_start_sec)
    if not starts:
        extra = f" with --inject-offset {inject_offset_sec:+.2f} s" if inject_offset_sec else ""
        where = f" at --v-start {v_start_sec} s" if v_start_sec is not None else ""
        raise MediaError(f"{path}: too short for one {window:g} s window{extra}{where} "
                         f"(video {video_sec:.2f} s, audio {audio_sec:.2f} s)")
    tf = eval_transforms(d)
    probs_all, logits_all = [], []
    for b0 in range(0, len(starts), batch_size):
        vids, auds = [], []
        for v, a in starts[b0:b0 + batch_size]:
            sample = window_inputs(pred, path, v, a, window, tf)
            vids.append(sample["video"])
            auds.append(sample["audio"])
        logits = pred.forward(torch.stack(vids), torch.stack(auds))
        if not bool(torch.isfinite(logits).all()):
            raise ModelOutputError(f"checkpoint {pred.checkpoint}: the model's outputs on {display_path(path)} are not "
                                   f"finite (NaN or inf): the checkpoint is corrupt or its training diverged")
        logits_all.append(logits)
        probs_all.append(logits.softmax(-1))
    logits = torch.cat(logits_all).numpy()  # (W, C)
    probs = torch.cat(probs_all).numpy()
    grid = pred.grid
    k = min(top_k, len(grid))
    fps_native = info.video.fps
    windows = []
    for i, (v, a) in enumerate(starts):
        c = int(probs[i].argmax())
        windows.append({"window": i, "v_start_sec": round(v, 4), "a_start_sec": round(a, 4), "class": c,
                        "offset_sec": round(float(grid[c]), 3), "prob": float(probs[i, c]),
                        "topk": _topk(probs[i], logits[i], grid, k)})
    mean = probs.mean(0)
    c = int(mean.argmax())
    offset = round(float(grid[c]), 3)
    own = round(offset - inject_offset_sec, 3)  # the clip's own offset once the injected one is removed
    known = certainty(mean)
    uncertain = known["certainty"] < min_certainty or pred.warning is not None
    res: dict[str, Any] = {
        "path": display_path(path), "checkpoint": pred.checkpoint, "n_windows": len(windows), "window_sec": window,
        "stride_sec": stride, "class": c, "offset_sec": offset, "prob": float(mean[c]),
        "offset_frames": round(offset * d.fps, 2), "offset_frames_native": round(offset * fps_native, 2),
        "native_fps": fps_native, "model_fps": d.fps, "grid_step_sec": round(float(grid[1] - grid[0]), 4),
        "window_agreement": float(np.mean([w["class"] == c for w in windows])),
        "topk": _topk(mean, None, grid, k), "inject_offset_sec": inject_offset_sec,
        "clip_offset_sec": own, **known, "min_certainty": min_certainty, "uncertain": uncertain,
        "model_warning": pred.warning,
        "itu_bt1359_acceptable": None if uncertain else itu_acceptable(own),
        "ffmpeg_fix": None if uncertain else itsoffset_command(path, own), "windows": windows,
    }
    if inject_offset_sec:
        res["injected_class"] = d.offset_to_target(inject_offset_sec)
    res["summary"] = summary_line(res)
    return res


def summary_line(res: dict[str, Any]) -> str:
    """One human-readable line for a prediction ("uncertain" instead of a verdict when the model cannot tell)."""
    off = res["clip_offset_sec"]
    known = (f"certainty {res['certainty']:.2f} (0 = a model at chance), margin {res['margin']:.2f}, "
             f"top p {res['top_over_chance']:.1f}x chance")
    if res["uncertain"]:
        why = ("the checkpoint is at chance" if res.get("model_warning")
               else f"certainty below {res['min_certainty']:.2f}")
        return (f"{res['path']}: uncertain ({why}: {known}); best guess {off:+.2f} s [class {res['class']}, "
                f"p={res['prob']:.2f}, {res['n_windows']} window(s)]")
    if abs(off) < 1e-9:
        what = "in sync"
    else:
        what = f"audio {'leads' if off > 0 else 'lags'} video by {abs(off):.2f} s " \
               f"({abs(off) * res['native_fps']:.1f} frames at {res['native_fps']:g} fps)"
    itu = "within" if res["itu_bt1359_acceptable"] else "outside"
    line = f"{res['path']}: {what}"
    line += (f" [class {res['class']}, p={res['prob']:.2f}, {res['n_windows']} window(s), "
             f"{res['window_agreement']:.0%} agree, +-{res['grid_step_sec'] / 2:.2f} s grid resolution; {known}]; "
             f"{itu} the ITU-R BT.1359 acceptability window (+90/-185 ms)")
    if res["inject_offset_sec"]:
        line += f"; injected {res['inject_offset_sec']:+.2f} s, predicted {res['offset_sec']:+.2f} s in total"
    if res["ffmpeg_fix"]:
        line += f"\n  fix: {res['ffmpeg_fix']}"
    return line


def csv_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per window of each prediction, then one aggregate row (``window`` = ``all``) per video."""
    rows = []
    for r in results:
        for w in r["windows"]:
            rows.append({"path": r["path"], "window": w["window"], "v_start_sec": w["v_start_sec"],
                         "a_start_sec": w["a_start_sec"], "class": w["class"], "offset_sec": w["offset_sec"],
                         "prob": round(w["prob"], 6), "inject_offset_sec": r["inject_offset_sec"],
                         "clip_offset_sec": "", "certainty": "", "margin": "", "uncertain": "",
                         "itu_bt1359_acceptable": ""})
        itu = r["itu_bt1359_acceptable"]
        rows.append({"path": r["path"], "window": "all", "v_start_sec": "", "a_start_sec": "", "class": r["class"],
                     "offset_sec": r["offset_sec"], "prob": round(r["prob"], 6),
                     "inject_offset_sec": r["inject_offset_sec"], "clip_offset_sec": r["clip_offset_sec"],
                     "certainty": r["certainty"], "margin": r["margin"], "uncertain": r["uncertain"],
                     "itu_bt1359_acceptable": "" if itu is None else itu})
    return rows


def results_csv(results: Sequence[dict[str, Any]]) -> str:
    """The predictions as CSV text (header + :func:`csv_rows`; empty without results)."""
    buf = io.StringIO()
    rows = csv_rows(results)
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()
