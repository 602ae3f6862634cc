"""Media of the codec-leakage study: synthetic sources (rendered footage, white noise), encoding with real codecs
(PyAV/FFmpeg), and decoding through :mod:`paperlib.core.media` (seconds in, frames and samples placed by timestamp)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from paperlib.core import media
from paperlib.core.media import MediaError, write_audio, write_video
from paperlib.studies.leakage.config import MPEG4_REFERENCE_BITS_PER_PIXEL


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
    frames = decode_video(src, seconds=None, fps=None)
    opts = {"b": str(int(bit_rate))} if bit_rate else None
    gop = 12 if codec == "mpeg4" else None
    return write_video(dst, frames, fps=fps, vcodec=codec, gop=gop, video_options=opts)


def transcode_audio(src: Path, dst: Path, codec: str = "aac") -> Path:
    """Decode ``src`` and re-encode it (FFmpeg's default bit rate for the codec)."""
    audio, sr = decode_audio(src, seconds=None)
    return write_audio(dst, audio, sr, codec=codec)


# ---------------------------------------------------------------------------------------------------------------------
# Decoding (through paperlib.core.media: seconds in, frames/samples placed by timestamp)


def decode_audio(path: Path, seconds: float | None) -> tuple[np.ndarray, int]:
    """Mono float32 audio of the first ``seconds`` at the native rate (placed by pts: lag 0), and the rate."""
    info = media.probe(path)
    if info.audio is None:
        raise MediaError(f"{path}: no audio stream")
    return media.read_audio(path, 0.0, seconds, sample_rate=None, mono=True), info.audio.sample_rate


def decode_video(path: Path, seconds: float | None, fps: float | None, size: int | None = None,
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
