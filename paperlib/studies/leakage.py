"""Codec leakage: predicting where a trim starts from compression artefacts (paper Sec. 4.1, 7.1; Table 1, Figs 6-7).

A 10-s clip is trimmed to 5 s starting on a 0.1-s grid within its first 5 s: 50 classes (chance 2 % Acc@1, 10 % Acc@5).
Without artefacts the start cannot be read from the trim; with them (MPEG-4 Part 2 key frames every 12 frames, the AAC
frame grid at high sampling rates) a classifier learns it, and a synchronisation model could cheat the same way.

Public API (one function per artefact, each returning data; plots write png/pdf):
- ``table1(profile, out_dir) -> DataFrame``: generates the 7 rows with real codecs (PyAV/FFmpeg), trains the start-time
  classifier per row, returns ``row | paper_acc1 | paper_acc5 | acc1 | acc5 | ...``. Every number is saved under
  ``out_dir`` (``config.json``, ``env.json``, ``rows/<row>/{result.json,metrics.jsonl}``, ``table1.csv``); rows are
  cached by config hash, so an interrupted run resumes.
- ``fig6_first_differences(out_dir, ...) -> dict``: first-difference images (H.264 vs mpeg4 vs ProRes), the per-frame
  mean absolute first difference and its periodogram (mpeg4 peaks at period 12). ``plot_fig6``.
- ``fig7_curves(out_dir) -> DataFrame``: Acc@1 per epoch per row, read back from the files. ``plot_fig7``.
- ``probe(folder, modality, budget) -> dict``: the start-time probe on a user's files, with a verdict (issue 6's tool).
- ``cli(argv)``: ``python -m paperlib leakage probe DIR --modality audio|video [--budget] [--json]`` and
  ``python -m paperlib leakage table1 --profile mini --out DIR`` (and ``fig6``).

Data (Table 1): audio rows are white noise generated at the row's rate, saved as PCM wav (the lossless row) and
transcoded (decoded, re-encoded) to AAC in .m4a with FFmpeg's native encoder at its default bit rate (PyAV leaves it
unset: ~71 kb/s mono measured at 44.1 and 22.05 kHz). The 22.05-kHz lossless row is the PCM source of the 22.05-kHz AAC
row. Video rows are procedurally rendered footage (1/f textures, a panning camera with an AR(1) shake, moving textured
objects, a slow lighting drift, sensor noise and a static caption bar as in Fig. 6) written as ProRes (``prores_ks``,
intra-only: the ProRes row) and transcoded to ``mpeg4`` and H.264 (``libx264`` defaults: CRF 23, scene-cut key frames).

The probe (``probe``) takes one clip per file, from the file's start (the leak is relative to each file's encoding
start, as in the clip datasets a sync model reads): 10 s, or, when files are shorter, the 20th-percentile duration
rounded down to an even number of 0.1-s steps (>= 2 s), with L/2/0.1 classes; shorter or unreadable files are skipped
and listed with the reason. Clips are split 80/20 by file.

Decoding (``paperlib.core.media.read_audio``/``read_video``): audio at its native rate, placed by frame pts (the AAC
priming removed by the mp4 edit list stays aligned: lag 0) and cut to exactly the clip length; video frames chosen by
timestamp on the 10-fps grid, the short side scaled to ``video_size`` and the centre square kept (grey: BT.601 luma).
Every trim must sample its source frames identically, or the sampling itself leaks the start: 10 fps taken from 25-fps
video alternates gaps of 2 and 3 frames with a phase set by the start's parity, which any motion reveals. So the
10-fps timestamp grid is used only when the folder's (most common) frame rate is an integer multiple of 10 fps (Table
1's 10-fps sources: unchanged); otherwise frames are read at the native rate and every ``floor(rate/10 + 1/2)``-th one
is kept, and the start grid is that many frames (25 fps: stride 3, grid and frame period 0.12 s, 8.33 fps; 10-s clips
then have round(5 / 0.12) = 42 classes, 42-frame trims). Files at another rate are used when the grid is a whole
number of their frames, else skipped with the reason (:class:`VideoGrid`); the report's ``video_grid`` and
``step_seconds`` give the grid used.

Deviations (stated in the table's ``classifier`` column):
- Source footage: the paper's MJPEG-AoT ProRes videos (Vimeo) are not available; rendered footage replaces them.
- mpeg4 bit rate: FFmpeg's CLI default is GOP 12 and 200 kb/s. PyAV's encoder context also has ``gop_size`` 12 but
  leaves the bit rate unset; we pass GOP 12 explicitly and scale the 200 kb/s to our pixel rate at the bits per pixel it
  gives at 1280x720, 25 fps (an assumption about the paper's footage), since 200 kb/s at 64x64 would be near lossless.
  At 64x64 this (356 b/s) and PyAV's unset rate both end at the encoder's coarsest quantiser (~5.7 kb/s measured).
- Classifier: the paper's ResNet18 (spatial average pooling + linear head; 1-channel log-spectrogram of the 5-s trim;
  for video the 50 RGB frames at 10 fps stacked along channels in temporal order, 150 input channels, so the order is
  visible) is kept for the ``paper`` size (not run at that size here: no GPU). It did not learn within CPU minutes in
  the project's prototype (reference/leakage_prototype.md), so ``smoke``/``mini`` use
  position-aware classifiers that keep fine time resolution and have no temporal pooling: audio, 1-D convolutions over
  time with frequency bands as channels on the first ``audio_window_seconds`` of the trim and a linear head over time;
  video, a small CNN shared over the consecutive-frame differences of grey frames, with a linear head over the ordered
  transitions.
- Training samples one random start class per training clip per pass (``trims_per_clip`` passes per epoch); the test
  set is held-out clips with fixed, balanced start classes. Reported numbers are from the last epoch (no selection).

Verdict: one-sided exact binomial test of the held-out Acc@1 against chance 1/n_classes (H0: p = 1/n_classes, H1: p >
1/n_classes, level ``alpha``, default 0.01), treating held-out trims as independent. The modulo indicator of Sec. 7.1 is
the fraction of top-5 predictions whose class is congruent to the true class modulo ``period`` (12: GOP 12 at 10 fps),
with its chance level sum_r n_r^2 / N^2 (n_r classes in residue r) for predictions unrelated to the truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import av
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from paperlib.core import media
from paperlib.core.config import config_hash, merge, to_dict
from paperlib.core.io import atomic_output
from paperlib.core.media import MediaError, write_audio, write_video
from paperlib.core.provenance import env_info as _run_env_info

VERDICT_LEAK = "artefacts leak start time"
VERDICT_NONE = "no leakage detected at this budget"

AUDIO_EXTS = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"}
VIDEO_EXTS = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"}

# FFmpeg's CLI default for mpeg4 is 200 kb/s; we keep its bits per pixel at this reference pixel rate (see docstring).
MPEG4_REFERENCE_BITS_PER_PIXEL = 200_000 / (1280 * 720 * 25)


# ---------------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class ProbeConfig:
    """The start-time classifier and its training (one Table 1 row, or one probe run)."""

    modality: str = "audio"  # audio | video
    classifier: str = "position"  # position (CPU-learnable, deviation) | resnet18 (the paper's)
    clip_seconds: float = 10.0  # clip length L (s); trims of L/2 start on the grid within [0, L/2)
    step_seconds: float = 0.1  # start grid (s): L/2/step classes (50 for L = 10 s)
    fps: float = 10.0  # video frame rate the classifier sees (paper: 10 fps)
    video_size: int = 32  # side (px) of the frames fed to the classifier
    video_grey: bool = True  # grey frames (position classifier) or RGB (paper)
    audio_window_seconds: float = 1.0  # seconds of the trim fed to the classifier (paper: the whole 5-s trim)
    audio_hop_seconds: float = 0.0035  # target STFT hop (s); the hop used divides the grid step in samples
    audio_max_bands: int = 64  # frequency bands kept (adjacent STFT bins' power averaged)
    log_eps: float = 1e-10  # log(power + eps): tiny, the AAC leak lives in near-zero energy
    width: int = 16  # classifier channels
    epochs: int = 30
    trims_per_clip: int = 1  # random trims per training clip per epoch
    batch_size: int = 32
    lr: float = 1e-3  # AdamW
    weight_decay: float = 1e-4
    test_fraction: float = 0.2  # held-out clips
    test_trims_per_clip: int = 5  # fixed start classes per held-out clip (balanced over classes)
    alpha: float = 0.01  # level of the one-sided binomial test of Acc@1 against chance
    period: int = 12  # modulo indicator period in classes (GOP 12 at 10 fps)
    seed: int = 0
    num_threads: int = 1  # torch threads (1 is fastest on a shared 2-core machine); 0 leaves torch's default
    device: str = "auto"  # auto (cuda if available) | cpu | cuda


@dataclass
class Table1Config:
    """Data generation for Table 1 plus the classifier per modality."""

    profile: str = "mini"
    render_size: int = 64  # side (px) of the rendered footage
    video_clips: int = 200  # clips per video row (the three rows share the rendered sources)
    audio_clips: int = 300  # clips per audio rate
    audio_amplitude: float = 0.25  # std of the white noise (clipped to [-1, 1])
    reference_bits_per_pixel: float = MPEG4_REFERENCE_BITS_PER_PIXEL  # mpeg4 bit rate = this x pixel rate
    rows: tuple[str, ...] = ("mpeg4", "h264", "prores", "aac44100", "aac22050", "aac16000", "pcm22050")
    seed: int = 0
    audio: ProbeConfig = field(default_factory=lambda: ProbeConfig(modality="audio"))
    video: ProbeConfig = field(default_factory=lambda: ProbeConfig(modality="video"))


# Presets are dicts of differences from the defaults above.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "render_size": 32, "video_clips": 24, "audio_clips": 24, "rows": ("mpeg4", "aac44100"),
        "audio": {"epochs": 2, "clip_seconds": 2.0, "audio_window_seconds": 0.25, "width": 8},
        "video": {"epochs": 2, "clip_seconds": 4.0, "video_size": 16, "width": 8},
    },
    "mini": {  # sized for ~15 min on a shared 2-core CPU (leakage_prototype.md: 22.05k needs ~1000 clips)
        "video_clips": 200, "audio_clips": 1000,
        "audio": {"epochs": 30, "trims_per_clip": 2},
        "video": {"epochs": 20, "trims_per_clip": 2},
    },
    "paper": {
        "render_size": 128, "video_clips": 2000, "audio_clips": 2000,
        "audio": {"classifier": "resnet18", "audio_window_seconds": 5.0, "audio_hop_seconds": 0.01,
                  "audio_max_bands": 128, "epochs": 100, "lr": 3e-4, "batch_size": 64, "num_threads": 0},
        "video": {"classifier": "resnet18", "video_size": 112, "video_grey": False, "epochs": 100, "lr": 3e-4,
                  "batch_size": 32, "num_threads": 0},
    },
}

PROBE_BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 3, "width": 8},
    "mini": {"epochs": 30, "trims_per_clip": 2},
    "paper": PROFILES["paper"]["audio"] | {"video_size": 112, "video_grey": False},
}


@dataclass(frozen=True)
class RowSpec:
    label: str
    modality: str
    codec: str  # encoder (video) / audio codec
    sample_rate: int = 0  # audio rows
    paper: tuple[float, float] = (math.nan, math.nan)  # Acc@1, Acc@5 (%) in the paper's Table 1


ROWS: dict[str, RowSpec] = {
    "mpeg4": RowSpec("MPEG-4 Part 2 (mpeg4)", "video", "mpeg4", paper=(27.2, 77.1)),
    "h264": RowSpec("MPEG-4 Part 10 (H.264)", "video", "libx264", paper=(2.5, 11.9)),
    "prores": RowSpec("ProRes", "video", "prores_ks", paper=(2.7, 13.4)),
    "aac44100": RowSpec("AAC @ 44100Hz", "audio", "aac", 44100, paper=(86.7, 100.0)),
    "aac22050": RowSpec("AAC @ 22050Hz", "audio", "aac", 22050, paper=(23.0, 74.3)),
    "aac16000": RowSpec("AAC @ 16000Hz", "audio", "aac", 16000, paper=(6.3, 19.3)),
    "pcm22050": RowSpec("Lossless @ 22050Hz", "audio", "pcm_s16le", 22050, paper=(2.9, 14.6)),
}


def table1_config(profile: str = "mini", overrides: dict[str, Any] | None = None) -> Table1Config:
    """Resolve a profile (smoke | mini | paper) plus optional differences into a ``Table1Config``."""
    if profile not in PROFILES:
        raise KeyError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    cfg = merge(Table1Config(profile=profile), PROFILES[profile])
    cfg = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, modality="audio"),
                              video=dataclasses.replace(cfg.video, modality="video"))
    return merge(cfg, overrides or {})


# ---------------------------------------------------------------------------------------------------------------------
# Pure metrics


def n_classes_for(cfg: ProbeConfig) -> int:
    """Number of start classes: starts on the grid within the first half of the clip."""
    return int(round(cfg.clip_seconds / 2 / cfg.step_seconds))


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of items whose true class is among the k highest logits. Shapes: (N, C), (N,)."""
    topk = np.argsort(-logits, axis=1)[:, :k]
    return float(np.mean(np.any(topk == labels[:, None], axis=1)))


def modulo_congruence(topk: np.ndarray, labels: np.ndarray, period: int) -> float:
    """Fraction of the top-k predictions (N, k) congruent to the true class (N,) modulo ``period`` (Sec. 7.1)."""
    return float(np.mean((topk % period) == (labels[:, None] % period)))


def modulo_chance(n_classes: int, period: int) -> float:
    """Chance level of :func:`modulo_congruence` for predictions unrelated to uniform true classes.

    sum_r n_r^2 / N^2 with n_r the number of classes in residue r (8.4 % for 50 classes, period 12).
    """
    counts = np.bincount(np.arange(n_classes) % period, minlength=period)
    return float(np.sum(counts.astype(float) ** 2) / n_classes ** 2)


def binomial_verdict(n_correct: int, n_items: int, chance: float, alpha: float = 0.01) -> tuple[float, str]:
    """One-sided exact binomial test of Acc@1 against chance. Returns (p-value, verdict)."""
    from scipy.stats import binomtest

    if n_items <= 0:
        raise ValueError("no held-out items to test")
    p = float(binomtest(int(n_correct), int(n_items), float(chance), alternative="greater").pvalue)
    return p, (VERDICT_LEAK if p < alpha else VERDICT_NONE)


def first_difference_profile(frames: np.ndarray) -> np.ndarray:
    """Mean absolute first difference per transition. frames: (T, H, W[, C]) -> (T-1,)."""
    x = np.asarray(frames, dtype=np.float32)
    return np.abs(np.diff(x, axis=0)).reshape(x.shape[0] - 1, -1).mean(axis=1)


def folded_periodogram(x: np.ndarray, periods: Iterable[int]) -> np.ndarray:
    """Epoch-folding periodogram: the one-way ANOVA F statistic of the series grouped by phase (t mod p) per period.

    ~1 for noise; large at the period of a periodic pattern. Per degree of freedom, so multiples of the true period
    (which fit the same pattern with more phases) score about p/multiple as much, and divisors mix peaks with troughs.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = []
    for p in periods:
        if not 2 <= p < n:
            out.append(np.nan)
            continue
        phase = np.arange(n) % p
        counts = np.bincount(phase, minlength=p)
        means = np.bincount(phase, weights=x, minlength=p) / np.maximum(counts, 1)
        between = np.sum(counts * (means - x.mean()) ** 2) / (p - 1)
        within = np.sum((x - means[phase]) ** 2) / max(n - p, 1)
        out.append(between / (within + 1e-12 * (between + 1.0)))
    return np.asarray(out)


def fft_periodogram(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classical periodogram of the mean-removed series. Returns (periods in samples, power), DC excluded."""
    x = np.asarray(x, dtype=np.float64)
    power = np.abs(np.fft.rfft(x - x.mean())) ** 2 / len(x)
    freqs = np.fft.rfftfreq(len(x))
    return 1.0 / freqs[1:], power[1:]


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic media


def _pink_noise(rng: np.random.Generator, h: int, w: int, slope: float) -> np.ndarray:
    """Zero-mean unit-std 2-D noise with a 1/f^slope amplitude spectrum (natural-image-like texture)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** slope
    spec[0, 0] = 0.0
    img = np.fft.irfft2(spec, s=(h, w))
    return (img - img.mean()) / (img.std() + 1e-8)


def render_clip(rng: np.random.Generator, n_frames: int, size: int) -> np.ndarray:
    """Procedural footage: a textured scene under a panning, shaking camera, moving textured objects, a slow lighting
    drift, sensor noise and a static caption bar (Fig. 6). Returns (T, size, size, 3) uint8 RGB."""
    s, big = size, 3 * size
    bg = rng.uniform(70, 150, size=3)[None, None] + 40 * _pink_noise(rng, big, big, rng.uniform(1.0, 1.6))[..., None] \
        * rng.uniform(0.3, 1.0, size=3)[None, None]
    bg += 15 * _pink_noise(rng, big, big, 1.2)[..., None] * rng.uniform(-1, 1, size=3)
    y0, x0 = rng.uniform(0.5 * s, 1.5 * s, size=2)
    vy, vx = rng.uniform(-0.8, 0.8, size=2) * s / 64  # camera pan (px / frame)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    objects = [dict(c=rng.uniform(0, s, 2), v=rng.uniform(-1.5, 1.5, 2) * s / 64, r=rng.uniform(0.08, 0.2, 2) * s,
                    col=rng.uniform(20, 235, 3), tex=_pink_noise(rng, s, s, 1.5)) for _ in range(rng.integers(1, 4))]
    cap_h, glyph_w = max(4, s // 8), max(2, s // 16)
    caption = np.full((cap_h, s), 20.0)
    for g in range(int(rng.integers(4, 9))):
        gx = 2 + g * (glyph_w + 1)
        if gx + glyph_w >= s:
            break
        caption[1:cap_h - 1, gx:gx + glyph_w][rng.random((cap_h - 2, glyph_w)) > 0.45] = 235.0
    phase, light_freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.08)
    shake = np.zeros((n_frames, 2))  # hand-held shake: an AR(1) random walk (px), aperiodic
    for t in range(1, n_frames):
        shake[t] = 0.85 * shake[t - 1] + rng.normal(0, 0.5, 2)
    frames = np.empty((n_frames, s, s, 3), np.uint8)
    for t in range(n_frames):
        cy = y0 + vy * t + shake[t, 0]  # pan + shake
        cx = x0 + vx * t + shake[t, 1]
        iy, ix = int(np.clip(np.floor(cy), 0, big - s - 1)), int(np.clip(np.floor(cx), 0, big - s - 1))
        fy, fx = float(np.clip(cy - iy, 0, 1)), float(np.clip(cx - ix, 0, 1))
        img = ((1 - fy) * (1 - fx) * bg[iy:iy + s, ix:ix + s] + (1 - fy) * fx * bg[iy:iy + s, ix + 1:ix + s + 1]
               + fy * (1 - fx) * bg[iy + 1:iy + s + 1, ix:ix + s] + fy * fx * bg[iy + 1:iy + s + 1, ix + 1:ix + s + 1])
        img = img * (1 + 0.08 * np.sin(light_freq * t + phase))  # slow lighting drift
        for o in objects:
            c = np.mod(o["c"] + o["v"] * t, s)
            d = ((yy - c[0]) / o["r"][0]) ** 2 + ((xx - c[1]) / o["r"][1]) ** 2
            a = np.clip(1.5 - d, 0, 1)[..., None]
            img = img * (1 - a) + a * (o["col"][None, None] + 25 * o["tex"][..., None])
        img[s - cap_h:] = caption[..., None]
        frames[t] = np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)
    return frames


def white_noise(rng: np.random.Generator, seconds: float, sample_rate: int, amplitude: float = 0.25) -> np.ndarray:
    """Gaussian white noise (N,) float32 in [-1, 1]."""
    n = int(round(seconds * sample_rate))
    return np.clip(rng.standard_normal(n) * amplitude, -1, 1).astype(np.float32)


def mpeg4_bit_rate(size: int, fps: float, bits_per_pixel: float = MPEG4_REFERENCE_BITS_PER_PIXEL) -> int:
    """mpeg4 bit rate (b/s) with FFmpeg's default bits per pixel (see module docstring)."""
    return max(1, int(round(bits_per_pixel * size * size * fps)))


def transcode_video(src: Path, dst: Path, codec: str, fps: float, bit_rate: int | None = None) -> Path:
    """Decode ``src`` and re-encode it with ``codec``; mpeg4 gets FFmpeg's default GOP 12 explicitly."""
    frames = _decode_video(src, seconds=None, fps=None)
    opts = {"b": str(int(bit_rate))} if bit_rate else None
    gop = 12 if codec == "mpeg4" else None
    return write_video(dst, frames, fps=fps, vcodec=codec, gop=gop, video_options=opts)


def transcode_audio(src: Path, dst: Path, codec: str = "aac") -> Path:
    """Decode ``src`` and re-encode it (FFmpeg's default bit rate for the codec)."""
    audio, sr = _decode_audio(src, seconds=None)
    return write_audio(dst, audio, sr, codec=codec)


# ---------------------------------------------------------------------------------------------------------------------
# Decoding (through paperlib.core.media: seconds in, frames/samples placed by timestamp)


def _decode_audio(path: Path, seconds: float | None) -> tuple[np.ndarray, int]:
    """Mono float32 audio of the first ``seconds`` at the native rate (placed by pts: lag 0), and the rate."""
    info = media.probe(path)
    if info.audio is None:
        raise MediaError(f"{path}: no audio stream")
    return media.read_audio(path, 0.0, seconds, sample_rate=None, mono=True), info.audio.sample_rate


def _decode_video(path: Path, seconds: float | None, fps: float | None, size: int | None = None,
                  grey: bool = False) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 RGB, or (T, size, size, 1) grey with ``grey``. With ``fps``, frames are chosen by
    timestamp on that grid; with ``size``, the short side is scaled to ``size`` and the centre square kept."""
    v = media.read_video(path, 0.0, seconds, fps=fps, size=size)
    if size is not None:
        h, w = v.shape[1:3]
        y0, x0 = (h - size) // 2, (w - size) // 2
        v = v[:, y0:y0 + size, x0:x0 + size]
    if grey:  # ITU-R BT.601 luma
        v = np.round(v.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        v = np.clip(v, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(v)


def media_duration(path: Path, modality: str) -> float:
    """Duration (s) of the first audio or video stream (from the headers)."""
    info = media.probe(path)
    stream = info.audio if modality == "audio" else info.video
    if stream is None:
        raise MediaError(f"{path}: no {modality} stream")
    return float(stream.duration or info.duration)


# ---------------------------------------------------------------------------------------------------------------------
# Features: one array per clip, trims are slices of it


def _audio_hop(sample_rate: int, cfg: ProbeConfig) -> tuple[int, float]:
    """STFT hop (samples) near ``audio_hop_seconds`` that divides the grid step when the step is whole samples;
    returns (hop, frames per grid step)."""
    step = cfg.step_seconds * sample_rate
    target = max(1, int(round(cfg.audio_hop_seconds * sample_rate)))
    if abs(step - round(step)) < 1e-9:
        step_i = int(round(step))
        divisors = [d for d in range(1, target + 1) if step_i % d == 0]
        hop = divisors[-1]
        return hop, step_i / hop
    return target, step / target


def audio_features(wave: np.ndarray, sample_rate: int, cfg: ProbeConfig) -> np.ndarray:
    """Log power spectrogram (bands, frames) float16 of the part of the clip any trim window can reach.

    n_fft = 2 x hop (short windows keep the frame-grid pattern), no centring, so the frames of a trim starting on the
    grid are exactly a slice of the clip's frames.
    """
    hop, per_step = _audio_hop(sample_rate, cfg)
    n_fft = 2 * hop
    n_classes = n_classes_for(cfg)
    window = int(round(cfg.audio_window_seconds * sample_rate / hop))
    n_frames = int(math.ceil((n_classes - 1) * per_step)) + window
    need = (n_frames - 1) * hop + n_fft
    x = torch.from_numpy(np.ascontiguousarray(wave[:need], dtype=np.float32))
    if len(x) < need:
        x = F.pad(x, (0, need - len(x)))
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=False,
                      return_complex=True)
    power = spec.abs() ** 2  # (F, T)
    bins = power.shape[0]
    bands = min(cfg.audio_max_bands, bins)
    edges = np.linspace(0, bins, bands + 1).astype(int)
    banded = torch.stack([power[a:b].mean(dim=0) for a, b in zip(edges[:-1], edges[1:])])  # (bands, T)
    return torch.log(banded + cfg.log_eps).numpy().astype(np.float16)


def video_features(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, C) uint8 -> (T, C, H, W) uint8."""
    return np.ascontiguousarray(np.transpose(frames, (0, 3, 1, 2)))


@dataclass
class ClipSet:
    """Per-clip feature arrays and how trims slice them."""

    features: list[np.ndarray]
    names: list[str]
    modality: str
    n_classes: int
    per_step: float  # feature frames per grid step
    window: int  # feature frames per trim
    sample_rate: int = 0
    grid: dict[str, Any] | None = None  # video: how frames were sampled (:meth:`VideoGrid.describe`)

    def start(self, cls: int) -> int:
        return int(round(cls * self.per_step))


def _whole_frames(rate: float, period: float, n_periods: float, tolerance: float) -> int:
    """``m`` when ``period`` seconds are ``m >= 1`` whole frames at ``rate`` up to a drift of ``tolerance`` frames
    over ``n_periods`` periods, else 0."""
    m = int(round(rate * period))
    return m if m >= 1 and abs(rate * period - m) * n_periods <= tolerance else 0


# Drift (source frames over a clip) below which the 10-fps timestamp selection equals a whole-frame stride: output
# slot boundaries fall half-way between frames for even strides, so only float error is tolerated.
_EXACT_DRIFT = 1e-3
# Drift allowed for a source sampled by whole frames at a grid set by another rate (e.g. 29.97 fps in a 30-fps folder):
# the start times of class k differ by less than half a source frame over the clip.
_LOOSE_DRIFT = 0.5


@dataclass(frozen=True)
class VideoGrid:
    """How the video probe samples a folder: every trim must sample its source frames identically.

    The sampling period ``period`` (s) is also the start-grid step (one class per sampled frame). ``timestamp``:
    sources at an integer multiple of ``fps`` (10 fps: Table 1) are read at ``fps`` by timestamp, as before.
    ``frames``: when the folder's most common rate is not such a multiple (25 fps: the 10-fps timestamp grid would
    take gaps of 2 and 3 frames whose phase follows the start's parity), frames are read at the native rate and every
    ``stride``-th one is kept from the file's first frame, ``stride = floor(rate / fps + 1/2)`` (25 fps: 3 frames,
    0.12 s, 8.33 fps). Files at another rate are used when the period is a whole number of their frames (stride
    ``rate x period``), else skipped with the reason.
    """

    scheme: str  # timestamp | frames
    period: float  # s between sampled frames = start grid step
    reference_fps: float  # the source rate that set the grid (the folder's most common)
    fps: float  # the probe's nominal rate (ProbeConfig.fps)
    clip_seconds: float

    @property
    def n_periods(self) -> float:
        return self.clip_seconds / self.period

    def stride_for(self, rate: float) -> int:
        """Source frames per period for a file at ``rate``; 0 for the timestamp path. Raises ValueError when the
        period is not a whole number of the file's frames."""
        if self.scheme == "timestamp" and _whole_frames(rate, self.period, self.n_periods, _EXACT_DRIFT):
            return 0
        m = _whole_frames(rate, self.period, self.n_periods, _LOOSE_DRIFT)
        if not m:
            raise ValueError(f"frame rate {rate:g} fps: the probe's {self.period:.4g}-s grid (set by the folder's "
                             f"{self.reference_fps:g}-fps files) is not a whole number of its frames; probe files at "
                             f"this rate separately")
        return m

    def describe(self, strides: dict[float, int] | None = None) -> dict[str, Any]:
        return {"scheme": self.scheme, "step_seconds": self.period, "sample_fps": 1.0 / self.period,
                "reference_fps": self.reference_fps,
                "stride_frames": int(round(self.reference_fps * self.period)),
                "strides": {f"{r:g}": m for r, m in sorted((strides or {}).items())}}


def video_grid(rates: Sequence[float], cfg: ProbeConfig) -> VideoGrid:
    """The sampling grid for a folder whose video streams have frame ``rates`` (see :class:`VideoGrid`)."""
    if abs(cfg.step_seconds * cfg.fps - 1.0) > 1e-6:
        raise ValueError(f"video start grid step {cfg.step_seconds} s must be the frame period 1/fps = "
                         f"{1 / cfg.fps:.4g} s (one class per sampled frame)")
    good = [float(r) for r in rates if r and r > 0]
    if not good:
        return VideoGrid("timestamp", 1.0 / cfg.fps, cfg.fps, cfg.fps, cfg.clip_seconds)
    rounded = [round(r, 3) for r in good]
    ref = max(dict.fromkeys(rounded), key=rounded.count)  # the most common rate; ties: the first file's
    ref = good[rounded.index(ref)]
    if _whole_frames(ref, 1.0 / cfg.fps, cfg.clip_seconds * cfg.fps, _EXACT_DRIFT):
        return VideoGrid("timestamp", 1.0 / cfg.fps, ref, cfg.fps, cfg.clip_seconds)
    stride = max(1, int(math.floor(ref / cfg.fps + 0.5)))
    return VideoGrid("frames", stride / ref, ref, cfg.fps, cfg.clip_seconds)


def load_clips(paths: Sequence[Path], cfg: ProbeConfig, progress: bool = True) -> tuple[ClipSet, list[dict[str, str]]]:
    """Decode each file's first ``clip_seconds`` and compute its features. Bad files are skipped and reported.

    Video is sampled on :func:`video_grid`'s grid: for 10-fps multiples (Table 1) by timestamp at ``cfg.fps``,
    otherwise by whole native frames; the grid is returned in ``ClipSet.grid``.
    """
    from tqdm.auto import tqdm

    paths = [Path(p) for p in paths]
    feats, names, skipped = [], [], []
    rates: set[int] = set()
    n_classes = n_classes_for(cfg)
    per_step, window = 1.0, int(round(cfg.clip_seconds / 2 * cfg.fps))
    grid, strides, file_fps = None, {}, {}
    if cfg.modality == "video":
        for p in paths:
            try:
                info = media.probe(p)
                file_fps[p] = info.video.fps if info.video is not None else 0.0
            except (MediaError, av.FFmpegError, OSError, ValueError):
                file_fps[p] = 0.0  # reported by the loop below
        grid = video_grid(list(file_fps.values()), cfg)
        if grid.scheme == "frames":  # one class per sampled frame; trims last L/2 (rounded to whole frames)
            n_classes = window = int(round(cfg.clip_seconds / 2 / grid.period))
    for p in tqdm(paths, desc=f"decode {cfg.modality}", disable=not progress, leave=False):
        try:
            dur = media_duration(p, cfg.modality)
            if dur < cfg.clip_seconds - 1e-3 - (1.0 / cfg.fps if cfg.modality == "video" else 0.0):
                raise MediaError(f"{p}: {cfg.modality} lasts {dur:.2f} s, shorter than the clip length "
                                 f"{cfg.clip_seconds:.2f} s")
            if cfg.modality == "audio":
                wave, sr = _decode_audio(p, cfg.clip_seconds)
                if rates and sr not in rates:
                    raise MediaError(f"{p}: sample rate {sr} differs from the first file's {sorted(rates)[0]}")
                rates.add(sr)
                feats.append(audio_features(wave, sr, cfg))
            else:
                try:
                    stride = grid.stride_for(file_fps[p])
                except ValueError as e:
                    raise MediaError(f"{p}: {e}") from e
                if stride == 0:  # the timestamp path (unchanged for 10-fps multiples)
                    v = _decode_video(p, cfg.clip_seconds, cfg.fps, size=cfg.video_size, grey=cfg.video_grey)
                else:  # whole native frames: every stride-th from the first, as many as the last trim needs
                    need = (n_classes - 1 + window - 1) * stride + 1
                    v = _decode_video(p, need / file_fps[p], file_fps[p], size=cfg.video_size,
                                      grey=cfg.video_grey)
                    v = v[::stride]
                    if len(v) < n_classes - 1 + window:
                        raise MediaError(f"{p}: {len(v)} frames at stride {stride}, the last trim needs "
                                         f"{n_classes - 1 + window}")
                    strides[round(file_fps[p], 3)] = stride
                feats.append(video_features(v))
            names.append(str(p))
        except (MediaError, av.FFmpegError, OSError, ValueError, RuntimeError) as e:
            skipped.append({"file": str(p), "reason": str(e)})
    sr = next(iter(rates)) if rates else 0
    if cfg.modality == "audio" and sr:
        hop, per_step = _audio_hop(sr, cfg)
        window = int(round(cfg.audio_window_seconds * sr / hop))
    desc = grid.describe(strides) if grid is not None else None
    return ClipSet(feats, names, cfg.modality, n_classes, per_step, window, sr, desc), skipped


# ---------------------------------------------------------------------------------------------------------------------
# Classifiers


class AudioPositionNet(nn.Module):
    """1-D convolutions over time (frequency bands as channels), a linear head over every time step (no pooling).

    Shapes: (B, bands, T) -> (B, n_classes).
    """

    def __init__(self, bands: int, frames: int, n_classes: int, width: int = 16):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(bands, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
        )
        self.head = nn.Linear(width * frames, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))  # (B, width * T) -> (B, n_classes)


class VideoPositionNet(nn.Module):
    """A small CNN shared over consecutive-frame differences, a linear head over the ordered transitions.

    Shapes: (B, T, C, H, W) float in [0, 1] -> (B, n_classes).
    """

    def __init__(self, channels: int, frames: int, n_classes: int, width: int = 16):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(width * (frames - 1), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        d = (x[:, 1:] - x[:, :-1]).flatten(0, 1)  # (B * (T-1), C, H, W)
        z = self.cnn(d).reshape(b, -1)  # (B * (T-1), width, 1, 1) -> (B, (T-1) * width), transitions in order
        return self.head(z)


class ResNet18StartTime(nn.Module):
    """The paper's classifier: ResNet18, spatial average pooling, a linear head.

    Audio: (B, F, T) log-spectrogram as a 1-channel image. Video: (B, T, 3, H, W) frames stacked along channels in
    temporal order, (B, 3T, H, W), so the first convolution sees the frame order.
    """

    def __init__(self, in_channels: int, n_classes: int):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None, num_classes=n_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.net = net  # avgpool (spatial average pooling) + fc (linear head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)  # (B, 1, F, T)
        elif x.ndim == 5:
            x = x.flatten(1, 2)  # (B, T * C, H, W)
        return self.net(x)


def build_classifier(cfg: ProbeConfig, clips: ClipSet) -> nn.Module:
    f0 = clips.features[0]
    if cfg.classifier == "resnet18":
        in_ch = 1 if cfg.modality == "audio" else clips.window * f0.shape[1]
        return ResNet18StartTime(in_ch, clips.n_classes)
    if cfg.classifier != "position":
        raise ValueError(f"unknown classifier {cfg.classifier!r} (position | resnet18)")
    if cfg.modality == "audio":
        return AudioPositionNet(f0.shape[0], clips.window, clips.n_classes, cfg.width)
    return VideoPositionNet(f0.shape[1], clips.window, clips.n_classes, cfg.width)


# ---------------------------------------------------------------------------------------------------------------------
# Training and evaluation


class _Batcher:
    """Slices trims out of the clip features and normalises them (audio: per-band statistics of the training clips)."""

    def __init__(self, clips: ClipSet, train_idx: np.ndarray):
        self.clips = clips
        if clips.modality == "audio":
            total, total_sq, count = 0.0, 0.0, 0  # per-band moments, one clip at a time (memory)
            for i in train_idx:
                f = clips.features[i].astype(np.float64)
                total, total_sq, count = total + f.sum(1), total_sq + (f ** 2).sum(1), count + f.shape[1]
            mean = total / count
            self.mean = mean[:, None].astype(np.float32)
            self.std = (np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0)) + 1e-5)[:, None].astype(np.float32)

    def __call__(self, clip_idx: np.ndarray, classes: np.ndarray) -> torch.Tensor:
        c = self.clips
        items = []
        for i, k in zip(clip_idx, classes):
            s = c.start(int(k))
            if c.modality == "audio":
                items.append((c.features[i][:, s:s + c.window].astype(np.float32) - self.mean) / self.std)
            else:
                items.append(c.features[i][s:s + c.window].astype(np.float32) / 255.0)
        return torch.from_numpy(np.stack(items))  # audio (B, bands, T); video (B, T, C, H, W)


def split_clips(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of clip indices into (train, test); both non-empty for n >= 2."""
    if n < 2:
        raise ValueError(f"need at least 2 usable clips, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(n - 1, max(1, int(round(n * test_fraction))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def balanced_test_items(test_idx: np.ndarray, n_classes: int, per_clip: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (clip, class) pairs: ``per_clip`` distinct classes per clip, classes used equally often overall."""
    rng = np.random.default_rng(seed + 1)
    per_clip = min(per_clip, n_classes)
    n = len(test_idx) * per_clip
    labels = np.concatenate([rng.permutation(n_classes) for _ in range(math.ceil(n / n_classes))])[:n]
    return np.repeat(test_idx, per_clip), labels


@torch.no_grad()
def _predict(model: nn.Module, batcher: _Batcher, clip_idx: np.ndarray, labels: np.ndarray, batch: int) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = [model(batcher(clip_idx[i:i + batch], labels[i:i + batch]).to(device)).cpu()
           for i in range(0, len(labels), batch)]
    return torch.cat(out).float().numpy()


def train_probe(clips: ClipSet, cfg: ProbeConfig, metrics_path: Path | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Train the start-time classifier on ``clips`` and evaluate it on held-out clips every epoch.

    Returns a dict with the final Acc@1/Acc@5 (%), chance, the modulo indicator, the binomial p-value and verdict,
    the per-epoch history and the held-out top-5 predictions. Appends one JSON line per epoch to ``metrics_path``.
    """
    from tqdm.auto import tqdm

    if len(clips.features) < 2:
        raise ValueError(f"need at least 2 usable clips, got {len(clips.features)}")
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_idx, test_idx = split_clips(len(clips.features), cfg.test_fraction, cfg.seed)
    test_clip, test_y = balanced_test_items(test_idx, clips.n_classes, cfg.test_trims_per_clip, cfg.seed)
    batcher = _Batcher(clips, train_idx)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    model = build_classifier(cfg, clips).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * math.ceil(len(train_idx) * cfg.trims_per_clip / cfg.batch_size))
    history: list[dict[str, float]] = []
    t0 = time.time()
    bar = tqdm(range(cfg.epochs), desc=f"train {cfg.modality}", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        clip_order = np.tile(train_idx, cfg.trims_per_clip)
        rng.shuffle(clip_order)
        classes = rng.integers(0, clips.n_classes, size=len(clip_order))  # a fresh random start per pass
        n_correct, loss_sum = 0, 0.0
        for i in range(0, len(clip_order), cfg.batch_size):
            y = torch.from_numpy(classes[i:i + cfg.batch_size]).to(device)
            logits = model(batcher(clip_order[i:i + cfg.batch_size], classes[i:i + cfg.batch_size]).to(device))
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            n_correct += int((logits.argmax(1) == y).sum())
        logits = _predict(model, batcher, test_clip, test_y, max(cfg.batch_size, 64))
        rec = {"epoch": epoch + 1, "train_loss": loss_sum / len(clip_order),
               "train_acc1": 100.0 * n_correct / len(clip_order),
               "test_acc1": 100.0 * topk_accuracy(logits, test_y, 1),
               "test_acc5": 100.0 * topk_accuracy(logits, test_y, min(5, clips.n_classes)),
               "seconds": time.time() - t0}
        history.append(rec)
        bar.set_postfix(acc1=f"{rec['test_acc1']:.1f}", train=f"{rec['train_acc1']:.1f}")
        if metrics_path is not None:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
    k = min(5, clips.n_classes)
    top5 = np.argsort(-logits, axis=1)[:, :k]
    n_correct1 = int(np.sum(top5[:, 0] == test_y))
    chance1 = 1.0 / clips.n_classes
    pval, verdict = binomial_verdict(n_correct1, len(test_y), chance1, cfg.alpha)
    return {
        "acc1": 100.0 * n_correct1 / len(test_y), "acc5": 100.0 * topk_accuracy(logits, test_y, k),
        "chance_acc1": 100.0 * chance1, "chance_acc5": 100.0 * k / clips.n_classes,
        "modulo_period": cfg.period, "modulo_top5": 100.0 * modulo_congruence(top5, test_y, cfg.period),
        "modulo_chance": 100.0 * modulo_chance(clips.n_classes, cfg.period),
        "p_value": pval, "alpha": cfg.alpha, "verdict": verdict, "test": "one-sided exact binomial, Acc@1 vs 1/C",
        "n_classes": clips.n_classes, "n_train_clips": int(len(train_idx)), "n_test_clips": int(len(test_idx)),
        "n_test_items": int(len(test_y)), "final_train_acc1": history[-1]["train_acc1"],
        "train_seconds": time.time() - t0, "device": str(device), "history": history,
        "test_items": {"clip": [clips.names[i] for i in test_clip], "label": test_y.tolist(), "top5": top5.tolist()},
    }


# ---------------------------------------------------------------------------------------------------------------------
# Provenance


def env_info(device: str | None = None) -> dict[str, Any]:
    """``paperlib.core.provenance.env_info`` (git sha/dirty, torch/PyAV/FFmpeg versions, host) plus the encoders used here."""
    info = _run_env_info(device)
    codecs = {}
    for name in ("mpeg4", "libx264", "prores_ks", "aac", "pcm_s16le"):
        try:
            codecs[name] = av.codec.Codec(name, "w").long_name
        except Exception as e:  # noqa: BLE001 - record what is missing, do not fail
            codecs[name] = f"unavailable: {e}"
    info["encoders"] = codecs
    return info


def _write_json(path: Path, data: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=str))


def _measured_bit_rate(paths: Sequence[Path], seconds: float) -> float:
    sizes = [p.stat().st_size for p in paths if p.exists()]
    return 8.0 * float(np.mean(sizes)) / seconds if sizes else math.nan


# ---------------------------------------------------------------------------------------------------------------------
# Table 1


def generate_video_rows(media_dir: Path, cfg: Table1Config, progress: bool = True) -> dict[str, list[Path]]:
    """Render ``video_clips`` clips, write ProRes sources, transcode them to mpeg4 and H.264 (skips existing files)."""
    from tqdm.auto import tqdm

    vc = cfg.video
    n_frames = int(round(vc.clip_seconds * vc.fps))
    rate = mpeg4_bit_rate(cfg.render_size, vc.fps, cfg.reference_bits_per_pixel)
    out: dict[str, list[Path]] = {"prores": [], "mpeg4": [], "h264": []}
    for i in tqdm(range(cfg.video_clips), desc="render+encode video", disable=not progress, leave=False):
        src = media_dir / "prores" / f"clip{i:05d}.mov"
        if not src.exists():
            rng = np.random.default_rng([cfg.seed, 1, i])
            write_video(src, render_clip(rng, n_frames, cfg.render_size), fps=vc.fps, vcodec="prores_ks")
        out["prores"].append(src)
        for row, codec, ext, br in (("mpeg4", "mpeg4", ".mp4", rate), ("h264", "libx264", ".mp4", None)):
            dst = media_dir / row / f"clip{i:05d}{ext}"
            if not dst.exists():
                transcode_video(src, dst, codec, vc.fps, br)
            out[row].append(dst)
    return out


def generate_audio_rate(media_dir: Path, sample_rate: int, cfg: Table1Config,
                        progress: bool = True) -> dict[str, list[Path]]:
    """White noise at ``sample_rate`` saved as PCM wav, transcoded to AAC (.m4a). Skips existing files."""
    from tqdm.auto import tqdm

    ac = cfg.audio
    out: dict[str, list[Path]] = {"pcm": [], "aac": []}
    for i in tqdm(range(cfg.audio_clips), desc=f"noise {sample_rate} Hz", disable=not progress, leave=False):
        wav = media_dir / f"pcm{sample_rate}" / f"clip{i:05d}.wav"
        if not wav.exists():
            rng = np.random.default_rng([cfg.seed, 2, sample_rate, i])
            write_audio(wav, white_noise(rng, ac.clip_seconds, sample_rate, cfg.audio_amplitude), sample_rate,
                        codec="pcm_s16le")
        m4a = media_dir / f"aac{sample_rate}" / f"clip{i:05d}.m4a"
        if not m4a.exists():
            transcode_audio(wav, m4a, "aac")
        out["pcm"].append(wav)
        out["aac"].append(m4a)
    return out


def row_config_hash(row: str, cfg: Table1Config) -> str:
    """Fingerprint of what produces a row: its classifier config and the data-generation settings."""
    pcfg = cfg.audio if ROWS[row].modality == "audio" else cfg.video
    gen = {k: v for k, v in to_dict(cfg).items() if k not in ("rows", "profile", "audio", "video")}
    return config_hash({"row": row, "probe": to_dict(pcfg), "generation": gen})


def run_row(row: str, out_dir: str | Path, cfg: Table1Config, progress: bool = True) -> dict[str, Any]:
    """Generate (or reuse) one row's media, train and evaluate; cached in ``out_dir/rows/<row>/result.json``."""
    spec = ROWS[row]
    out_dir = Path(out_dir)
    pcfg = cfg.audio if spec.modality == "audio" else cfg.video
    key = row_config_hash(row, cfg)
    row_dir = out_dir / "rows" / row
    result_path = row_dir / "result.json"
    if result_path.exists():
        cached = json.loads(result_path.read_text())
        if cached.get("config_hash") == key:
            return cached
    row_dir.mkdir(parents=True, exist_ok=True)
    metrics = row_dir / "metrics.jsonl"
    if metrics.exists():
        metrics.unlink()  # a row is retrained from scratch: its curve must be one run
    t0 = time.time()
    media = out_dir / "media"
    if spec.modality == "video":
        paths = generate_video_rows(media, cfg, progress)[row]
        codec_settings = {"encoder": spec.codec, "fps": pcfg.fps, "size": cfg.render_size,
                          "gop": 12 if spec.codec == "mpeg4" else "encoder default",
                          "bit_rate": mpeg4_bit_rate(cfg.render_size, pcfg.fps, cfg.reference_bits_per_pixel)
                          if spec.codec == "mpeg4" else "encoder default",
                          "source": "prores_ks (rendered)" if row != "prores" else "rendered"}
    else:
        files = generate_audio_rate(media, spec.sample_rate, cfg, progress)
        paths = files["pcm" if spec.codec.startswith("pcm") else "aac"]
        codec_settings = {"encoder": spec.codec, "sample_rate": spec.sample_rate, "channels": 1,
                          "bit_rate": "encoder default", "source": "pcm_s16le white noise"}
    codec_settings["measured_bit_rate"] = _measured_bit_rate(paths, pcfg.clip_seconds)
    gen_seconds = time.time() - t0
    clips, skipped = load_clips(paths, pcfg, progress)
    if skipped:
        raise MediaError(f"row {row}: generated files failed to decode: {skipped[:3]}")
    decode_seconds = time.time() - t0 - gen_seconds
    res = train_probe(clips, pcfg, metrics, progress)
    res.update({"row": row, "label": spec.label, "modality": spec.modality, "classifier": pcfg.classifier,
                "paper_acc1": spec.paper[0], "paper_acc5": spec.paper[1], "config_hash": key,
                "probe_config": to_dict(pcfg), "codec_settings": codec_settings, "n_clips": len(paths),
                "generate_seconds": gen_seconds, "decode_seconds": decode_seconds,
                "wall_seconds": time.time() - t0, "env": env_info(res["device"])})
    _write_json(result_path, res)
    return res


_CLASSIFIER_NOTE = {
    "position": "position-aware CPU classifier (deviation)",
    "resnet18": "ResNet18 + spatial avg pool + linear (paper)",
}


def table1(profile: str = "mini", out_dir: str | Path = "runs/leakage_table1", progress: bool = True,
           overrides: dict[str, Any] | None = None) -> pd.DataFrame:
    """Table 1 at a size (smoke | mini | paper): one row per codec, the paper's numbers beside ours.

    Writes ``config.json``, ``env.json``, ``rows/<row>/*`` (each ``result.json`` with its own environment) and
    ``table1.csv`` under ``out_dir``; rows already computed with the same configuration are read back, not retrained.
    """
    cfg = table1_config(profile, overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "config.json", to_dict(cfg))
    if not (out_dir / "env.json").exists():  # the first call's environment; each row also records its own
        _write_json(out_dir / "env.json", env_info())
    t0 = time.time()
    results = [run_row(row, out_dir, cfg, progress) for row in cfg.rows]
    df = table1_frame(results)
    df.to_csv(out_dir / "table1.csv", index=False)
    _write_json(out_dir / "table1_summary.json", {"profile": profile, "wall_seconds_this_call": time.time() - t0,
                                                   "orderings": table1_orderings(df), "rows": df.to_dict("records")})
    return df


def table1_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows of :func:`run_row` results -> the table (paper | ours)."""
    cols = []
    for r in results:
        cols.append({
            "row": r["row"], "codec": r["label"], "paper_acc1": r["paper_acc1"], "paper_acc5": r["paper_acc5"],
            "acc1": round(r["acc1"], 1), "acc5": round(r["acc5"], 1), "chance_acc1": r["chance_acc1"],
            "p_value": r["p_value"], "verdict": r["verdict"],
            "modulo_top5": round(r["modulo_top5"], 1) if r["modality"] == "video" else math.nan,
            "modulo_chance": round(r["modulo_chance"], 1) if r["modality"] == "video" else math.nan,
            "train_acc1": round(r["final_train_acc1"], 1), "n_clips": r["n_clips"],
            "n_test_items": r["n_test_items"], "classifier": _CLASSIFIER_NOTE.get(r["classifier"], r["classifier"]),
            "wall_s": round(r["wall_seconds"], 1),
        })
    return pd.DataFrame(cols)


def load_table1(out_dir: str | Path) -> pd.DataFrame:
    """Rebuild the table from the row result files under ``out_dir``."""
    out_dir = Path(out_dir)
    cfg = json.loads((out_dir / "config.json").read_text())
    results = [json.loads((out_dir / "rows" / r / "result.json").read_text()) for r in cfg["rows"]
               if (out_dir / "rows" / r / "result.json").exists()]
    return table1_frame(results)


def table1_orderings(df: pd.DataFrame) -> dict[str, bool | None]:
    """Which of the paper's orderings hold: '>>' = both leak verdicts differ in the stated direction and Acc@1 is
    higher; '~ chance' = no leak detected by the binomial test."""
    r = {row: rec for row, rec in zip(df["row"], df.to_dict("records"))}

    def leak(x: str) -> bool | None:
        return None if x not in r else r[x]["verdict"] == VERDICT_LEAK

    def gt(a: str, b: str) -> bool | None:
        if a not in r or b not in r:
            return None
        return bool(r[a]["acc1"] > r[b]["acc1"] and leak(a) and not (leak(b) and r[b]["acc1"] > r[a]["acc1"] / 2))

    return {
        "mpeg4 >> H.264": gt("mpeg4", "h264"), "H.264 ~ chance": None if leak("h264") is None else not leak("h264"),
        "ProRes ~ chance": None if leak("prores") is None else not leak("prores"),
        "AAC 44.1k >> 22.05k": gt("aac44100", "aac22050"), "AAC 22.05k >> 16k": gt("aac22050", "aac16000"),
        "AAC 16k ~ chance": None if leak("aac16000") is None else not leak("aac16000"),
        "lossless 22.05k ~ chance": None if leak("pcm22050") is None else not leak("pcm22050"),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Figures 6 and 7


def fig6_first_differences(out_dir: str | Path, size: int = 64, seconds: float = 10.0, fps: float = 10.0,
                           seed: int = 0, codecs: Sequence[str] = ("h264", "mpeg4", "prores"),
                           bits_per_pixel: float = MPEG4_REFERENCE_BITS_PER_PIXEL) -> dict[str, Any]:
    """Fig. 6 and its quantitative view: render one clip, write ProRes, transcode to H.264 and mpeg4, decode.

    Returns ``{"profile": DataFrame(codec, transition, mad), "periodogram": DataFrame(codec, period, folded, fft),
    "dominant_period": {codec: int}, "frames": {codec: (T,H,W,3)}, "keyframes": {codec: [...]}}`` and saves the
    numbers (``fig6.json``, ``fig6.npz``) under ``out_dir``. The paper's mpeg4 was transcoded from H.264; here both
    come from the same ProRes source.
    """
    out_dir = Path(out_dir)
    n = int(round(seconds * fps))
    src = out_dir / "fig6_media" / "prores.mov"
    write_video(src, render_clip(np.random.default_rng([seed, 6]), n, size), fps=fps, vcodec="prores_ks")
    paths = {"prores": src}
    if "h264" in codecs:
        paths["h264"] = transcode_video(src, out_dir / "fig6_media" / "h264.mp4", "libx264", fps)
    if "mpeg4" in codecs:
        paths["mpeg4"] = transcode_video(src, out_dir / "fig6_media" / "mpeg4.mp4", "mpeg4", fps,
                                         mpeg4_bit_rate(size, fps, bits_per_pixel))
    frames, prof_rows, per_rows, dominant, keyframes = {}, [], [], {}, {}
    periods = list(range(2, max(3, n // 4) + 1))
    for codec in codecs:
        v = _decode_video(paths[codec], None, None)
        frames[codec] = v
        with av.open(str(paths[codec])) as c:
            keyframes[codec] = [i for i, pk in enumerate(c.demux(c.streams.video[0])) if pk.is_keyframe and pk.size]
        prof = first_difference_profile(v)
        prof_rows += [{"codec": codec, "transition": t + 1, "mad": float(m)} for t, m in enumerate(prof)]
        folded = folded_periodogram(prof, periods)
        fper, fpow = fft_periodogram(prof)
        fft_at = {p: float(fpow[np.argmin(np.abs(fper - p))]) for p in periods}
        per_rows += [{"codec": codec, "period": p, "folded": float(f), "fft": fft_at[p]}
                     for p, f in zip(periods, folded)]
        dominant[codec] = int(periods[int(np.argmax(folded))])
    result = {"profile": pd.DataFrame(prof_rows), "periodogram": pd.DataFrame(per_rows), "dominant_period": dominant,
              "peak_score": {c: float(pd.DataFrame(per_rows).query("codec == @c")["folded"].max()) for c in codecs},
              "frames": frames, "keyframes": keyframes}
    _write_json(out_dir / "fig6.json", {"profile": prof_rows, "periodogram": per_rows, "dominant_period": dominant,
                                        "peak_score": result["peak_score"], "keyframes": keyframes,
                                        "config": {"size": size, "seconds": seconds, "fps": fps, "seed": seed,
                                                   "mpeg4_bit_rate": mpeg4_bit_rate(size, fps, bits_per_pixel)},
                                        "env": env_info()})
    np.savez_compressed(out_dir / "fig6.npz", **{c: f for c, f in frames.items()})
    return result


def load_fig6(out_dir: str | Path) -> dict[str, Any]:
    """Read back what :func:`fig6_first_differences` saved (same keys, frames from ``fig6.npz``)."""
    out_dir = Path(out_dir)
    d = json.loads((out_dir / "fig6.json").read_text())
    with np.load(out_dir / "fig6.npz") as z:
        frames = {c: z[c] for c in z.files}
    return {"profile": pd.DataFrame(d["profile"]), "periodogram": pd.DataFrame(d["periodogram"]),
            "dominant_period": d["dominant_period"], "peak_score": d["peak_score"], "frames": frames,
            "keyframes": d["keyframes"]}


def _save_figure(fig, path: str | Path) -> Path:
    """Lay out, write (format from the suffix) and close a matplotlib figure; return its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fig6(result: dict[str, Any], path: str | Path, transitions: Sequence[int] = (10, 11, 12, 23, 24)) -> Path:
    """First-difference images (any change in white, as in Fig. 6), the MAD profile and the folded periodogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codecs = list(result["frames"])
    fig, axes = plt.subplots(len(codecs) + 1, len(transitions) + 1, figsize=(2.2 * (len(transitions) + 1),
                                                                               2.2 * (len(codecs) + 1)))
    for r, codec in enumerate(codecs):
        v = result["frames"][codec].astype(np.int16)
        axes[r, 0].imshow(v[transitions[0]].astype(np.uint8))
        axes[r, 0].set_title(f"{codec}: frame {transitions[0]}", fontsize=8)
        for c, t in enumerate(transitions, start=1):
            d = np.abs(v[t] - v[t - 1]).max(axis=-1) > 0  # sensitive to any change
            axes[r, c].imshow(d, cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(f"|f{t} - f{t - 1}| > 0", fontsize=8)
        for a in axes[r]:  # keep the frame: an all-white difference (a key frame) must stay visible
            a.set_xticks([])
            a.set_yticks([])
    gs = axes[-1, 0].get_gridspec()
    for a in axes[-1]:
        a.remove()
    half = (len(transitions) + 1) // 2
    ax1, ax2 = fig.add_subplot(gs[-1, :half]), fig.add_subplot(gs[-1, half:])
    for codec, g in result["profile"].groupby("codec", sort=False):
        ax1.plot(g["transition"], g["mad"], label=codec, lw=1)
    ax1.set_xlabel("transition t (frames t-1 -> t)")
    ax1.set_ylabel("mean |first difference|")
    ax1.legend(fontsize=7)
    for codec, g in result["periodogram"].groupby("codec", sort=False):
        ax2.plot(g["period"], g["folded"], marker=".", label=codec, lw=1)
    ax2.set_xlabel("period (frames)")
    ax2.set_ylabel("folded periodogram")
    return _save_figure(fig, path)


def fig7_curves(out_dir: str | Path) -> pd.DataFrame:
    """Acc@1 per epoch per row, read back from ``rows/<row>/metrics.jsonl`` (columns: row, label, modality, epoch,
    train_loss, train_acc1, test_acc1, test_acc5, seconds, chance_acc1)."""
    out_dir = Path(out_dir)
    frames = []
    for row in ROWS:  # the table's order
        m = out_dir / "rows" / row / "metrics.jsonl"
        if not m.exists():
            continue
        df = pd.read_json(m, lines=True)
        df.insert(0, "row", row)
        df.insert(1, "label", ROWS[row].label)
        df.insert(2, "modality", ROWS[row].modality)
        res = out_dir / "rows" / row / "result.json"
        df["chance_acc1"] = json.loads(res.read_text())["chance_acc1"] if res.exists() else math.nan
        frames.append(df)
    if not frames:
        raise FileNotFoundError(f"{out_dir}: no rows/*/metrics.jsonl (run table1 first)")
    return pd.concat(frames, ignore_index=True)


def plot_fig7(curves: pd.DataFrame, path: str | Path) -> Path:
    """Fig. 7: test Acc@1 per epoch; left audio rows, right video rows, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=False)
    for ax, modality in zip(axes, ("audio", "video")):
        sub = curves[curves["modality"] == modality]
        for (_, label), g in sub.groupby(["row", "label"], sort=False):
            ax.plot(g["epoch"], g["test_acc1"], label=label)
        if len(sub) and np.isfinite(sub["chance_acc1"]).any():
            ax.axhline(float(np.nanmean(sub["chance_acc1"])), ls="--", c="grey", lw=0.8, label="chance")
        ax.set_xlabel("epoch")
        ax.set_ylabel("Acc@1 (%)")
        ax.set_title(modality)
        ax.legend(fontsize=7)
    return _save_figure(fig, path)


# ---------------------------------------------------------------------------------------------------------------------
# The probe on a user's folder


def probe_config(modality: str, budget: str = "mini", overrides: dict[str, Any] | None = None) -> ProbeConfig:
    if modality not in ("audio", "video"):
        raise ValueError(f"modality must be audio or video, got {modality!r}")
    if budget not in PROBE_BUDGETS:
        raise KeyError(f"unknown budget {budget!r}; choose from {sorted(PROBE_BUDGETS)}")
    base = dict(PROBE_BUDGETS[budget])
    if modality == "audio":
        base = {k: v for k, v in base.items() if not k.startswith("video_")}
    return merge(ProbeConfig(modality=modality), base | (overrides or {}))


def list_media(folder: Path, modality: str) -> list[Path]:
    exts = VIDEO_EXTS if modality == "video" else AUDIO_EXTS | VIDEO_EXTS
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))  # no writers' temporaries


def choose_clip_seconds(durations: Sequence[float], max_seconds: float = 10.0, step: float = 0.1,
                        quantile: float = 0.2, min_seconds: float = 2.0) -> float:
    """Clip length for a folder: 10 s, or shorter when files are shorter (the 20th-percentile duration, on a 2-step grid
    so that the trim, half the clip, starts on the grid), never below ``min_seconds`` (10 classes)."""
    if not durations:
        raise ValueError("no durations")
    q = float(np.quantile(np.asarray(durations), quantile))
    grid = 2 * step
    length = min(max_seconds, math.floor(q / grid + 1e-6) * grid)
    if length < min_seconds - 1e-9:
        raise ValueError(f"files are too short: 20th-percentile duration {q:.2f} s < {min_seconds:.1f} s")
    return round(length, 6)


def probe(folder: str | Path, modality: str, budget: str = "mini", json_out: str | Path | None = None,
          progress: bool = True, overrides: dict[str, Any] | None = None,
          max_files: int | None = None) -> dict[str, Any]:
    """Train the start-time classifier on the files in ``folder`` and decide whether their artefacts leak.

    One clip per file, from its start (the leak is relative to each file's encoding start, as in the datasets a sync
    model reads); clip length 10 s, or shorter with fewer classes when files are shorter (:func:`choose_clip_seconds`).
    Bad or too-short files are skipped and listed with the reason. Returns (and writes to ``json_out``) the report.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = list_media(folder, modality)[:max_files]
    skipped, durations, good = [], [], []
    for p in files:
        try:
            durations.append(media_duration(p, modality))
            good.append(p)
        except (MediaError, av.FFmpegError, OSError, ValueError) as e:
            skipped.append({"file": str(p), "reason": str(e)})
    if len(good) < 2:
        raise ValueError(f"{folder}: {len(good)} readable {modality} files (need >= 2); skipped: {skipped[:5]}")
    cfg = probe_config(modality, budget, overrides)
    clip_s = choose_clip_seconds(durations, cfg.clip_seconds, cfg.step_seconds)
    cfg = dataclasses.replace(cfg, clip_seconds=clip_s, audio_window_seconds=min(cfg.audio_window_seconds, clip_s / 2))
    t0 = time.time()
    clips, bad = load_clips(good, cfg, progress)
    skipped += bad
    if len(clips.features) < 2:
        raise ValueError(f"{folder}: fewer than 2 usable clips of {clip_s} s; skipped: {skipped[:5]}")
    res = train_probe(clips, cfg, None, progress)
    report = {
        "folder": str(folder), "modality": modality, "budget": budget, "clip_seconds": clip_s,
        "n_files": len(files), "n_used": len(clips.features), "skipped": skipped,
        "sample_rate": clips.sample_rate or None, "video_grid": clips.grid,
        "step_seconds": clips.grid["step_seconds"] if clips.grid else cfg.step_seconds,
        "config": to_dict(cfg), "env": env_info(),
        "wall_seconds": time.time() - t0, **res,
    }
    if json_out is not None:
        _write_json(Path(json_out), report)
    return report


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['modality']} start-time probe on {r['folder']}: {r['n_used']} clips of {r['clip_seconds']} s "
        f"({r['n_classes']} classes), {r['n_test_items']} held-out trims from {r['n_test_clips']} clips",
        f"  Acc@1 {r['acc1']:.1f}% (chance {r['chance_acc1']:.1f}%)   Acc@5 {r['acc5']:.1f}% "
        f"(chance {r['chance_acc5']:.1f}%)",
        f"  binomial test of Acc@1 > chance: p = {r['p_value']:.3g} (alpha {r['alpha']})",
        f"  verdict: {r['verdict']}",
    ]
    if r["modality"] == "video":  # the Sec. 7.1 indicator: meaningful for a GOP-periodic artefact
        lines.insert(2, f"  top-5 congruent to the truth mod {r['modulo_period']}: {r['modulo_top5']:.1f}% "
                        f"(chance {r['modulo_chance']:.1f}%)")
        g = r.get("video_grid")
        if g and g["scheme"] == "frames":
            lines.insert(1, f"  sampling: whole native frames, every {g['stride_frames']} at {g['reference_fps']:g} "
                            f"fps ({g['sample_fps']:.3g} fps), start grid {g['step_seconds']:.4g} s "
                            f"(strides per rate: {g['strides']})")
    if r.get("skipped"):
        lines.append(f"  skipped {len(r['skipped'])} file(s):")
        lines += [f"    {s['reason'] if s['reason'].startswith(s['file']) else s['file'] + ': ' + s['reason']}"
                  for s in r["skipped"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# CLI


def cli(argv: list[str]) -> int:
    """``python -m paperlib leakage {probe,table1,fig6} ...``"""
    parser = argparse.ArgumentParser(prog="python -m paperlib leakage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe", help="start-time probe on a folder of videos or audios")
    p.add_argument("dir", type=Path, help="folder searched recursively; one clip per file, from its start")
    p.add_argument("--modality", choices=("audio", "video"), required=True)
    p.add_argument("--budget", choices=sorted(PROBE_BUDGETS), default="mini",
                   help="smoke (seconds), mini (CPU minutes, position-aware classifier), paper (ResNet18, GPU)")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("--max-files", type=int, default=None, help="use the first N files (sorted by path)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="ProbeConfig override, repeatable (e.g. --set epochs=10 --set period=25)")
    t = sub.add_parser("table1", help="reproduce Table 1 (and Fig. 7's curves) at a size")
    t.add_argument("--profile", choices=sorted(PROFILES), default="mini")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Table1Config override, repeatable (e.g. --set audio.epochs=10)")
    f = sub.add_parser("fig6", help="first differences and their periodogram (Fig. 6)")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)

    def kv(items: Sequence[str]) -> dict[str, str]:
        bad = [s for s in items if "=" not in s]
        if bad:
            parser.error(f"overrides must be key=value, got {bad}")
        return dict(s.split("=", 1) for s in items)

    try:
        if args.cmd == "probe":
            report = probe(args.dir, args.modality, args.budget, args.json, overrides=kv(args.overrides),
                           max_files=args.max_files)
            print(format_report(report))
            if args.json:
                print(f"report: {args.json}")
        elif args.cmd == "table1":
            df = table1(args.profile, args.out, overrides=kv(args.overrides))
            with pd.option_context("display.width", 200, "display.max_columns", 30):
                print(df.drop(columns=["classifier"]).to_string(index=False))
            print(f"classifier: {df['classifier'].iloc[0]}; files under {args.out}")
        else:
            res = fig6_first_differences(args.out, size=args.size)
            plot_fig6(res, args.out / "fig6.png")
            print(f"dominant period per codec: {res['dominant_period']} (peak score {res['peak_score']})")
    except (FileNotFoundError, ValueError, KeyError, MediaError) as e:
        print(f"leakage: {e}", file=sys.stderr)
        return 2
    return 0
