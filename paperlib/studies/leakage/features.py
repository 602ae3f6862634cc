"""Features of the start-time classifier: one array per clip (a log power spectrogram, or frames), trims are slices of
it; the video sampling grid of a folder (:class:`VideoGrid`) and ``load_clips``, which decodes a folder's files."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import av
import numpy as np
import torch
import torch.nn.functional as F

from paperlib.core import media
from paperlib.core.media import MediaError
from paperlib.studies.leakage.config import ProbeConfig
from paperlib.studies.leakage.encoding import decode_audio, decode_video, media_duration
from paperlib.studies.leakage.metrics import n_classes_for


def audio_hop(sample_rate: int, cfg: ProbeConfig) -> tuple[int, float]:
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
    hop, per_step = audio_hop(sample_rate, cfg)
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
                wave, sr = decode_audio(p, cfg.clip_seconds)
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
                    v = decode_video(p, cfg.clip_seconds, cfg.fps, size=cfg.video_size, grey=cfg.video_grey)
                else:  # whole native frames: every stride-th from the first, as many as the last trim needs
                    need = (n_classes - 1 + window - 1) * stride + 1
                    v = decode_video(p, need / file_fps[p], file_fps[p], size=cfg.video_size,
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
        hop, per_step = audio_hop(sr, cfg)
        window = int(round(cfg.audio_window_seconds * sr / hop))
    desc = grid.describe(strides) if grid is not None else None
    return ClipSet(feats, names, cfg.modality, n_classes, per_step, window, sr, desc), skipped
