"""Media I/O through PyAV: encoding helpers (this section), decoding and probing (below).

Decoding knows nothing of labels or augmentation; every temporal API takes seconds.

Encoding: ``write_video`` writes a video (and optionally an audio) stream with a chosen codec, pixel format and GOP;
``write_audio`` writes audio alone (PCM wav, AAC in .m4a/.mp4/.aac). Outputs are written to a temporary name in the
same folder and renamed when complete, so an interrupted write never leaves a partial file under the final name.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

# codec -> (pixel format, container options): the combinations the project uses.
VIDEO_CODECS: dict[str, str] = {
    "libx264": "yuv420p",  # H.264, what `prepare` writes (as the official re-encoding scripts)
    "h264": "yuv420p",
    "mpeg4": "yuv420p",  # MPEG-4 Part 2: FFmpeg's default GOP of 12 is the leak of Sec. 4
    "prores_ks": "yuv422p10le",  # intra-only ProRes (the codec-leakage study's lossless-ish source)
    "mjpeg": "yuvj420p",  # intra-only
}


class MediaError(RuntimeError):
    """A media file could not be read or written; the message names the file and the problem."""


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path with the same suffix; rename it to ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _as_planar_audio(audio: np.ndarray) -> np.ndarray:
    """(N,) or (C, N) float -> (C, N) float32 C-contiguous, clipped to [-1, 1]."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"audio must be (N,) or (C, N), got shape {a.shape}")
    return np.ascontiguousarray(np.clip(a, -1.0, 1.0))


_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def _add_audio_stream(container: av.container.OutputContainer, codec: str, sample_rate: int, channels: int,
                      bit_rate: int | None):
    stream = container.add_stream(codec, rate=sample_rate)
    stream.layout = _LAYOUTS.get(channels, f"{channels}c")
    if bit_rate:
        stream.bit_rate = int(bit_rate)
    return stream


def _audio_format_for(stream) -> str:
    formats = [f.name for f in (stream.codec_context.codec.audio_formats or [])]
    for pref in ("fltp", "flt", "s16", "s16p", "s32"):
        if not formats or pref in formats:
            return pref
    return formats[0]


def _audio_frames(audio: np.ndarray, sample_rate: int, fmt: str, chunk: int) -> Iterator[av.AudioFrame]:
    """Cut (C, N) float32 audio into AudioFrames of ``chunk`` samples with correct pts."""
    c, n = audio.shape
    layout = _LAYOUTS.get(c, f"{c}c")
    for start in range(0, n, chunk):
        block = audio[:, start:start + chunk]
        if fmt in ("s16", "s16p"):
            data = np.round(block * 32767.0).astype(np.int16)
        elif fmt in ("s32", "s32p"):
            data = np.round(block * 2147483647.0).astype(np.int32)
        else:
            data = block
        planar = fmt.endswith("p")
        arr = data if planar else np.ascontiguousarray(data.T).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        yield frame


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 25.0, audio: np.ndarray | None = None,
                sample_rate: int = 16000, vcodec: str = "libx264", acodec: str = "aac", pix_fmt: str | None = None,
                gop: int | None = None, crf: int | None = None, audio_bit_rate: int | None = None,
                video_options: dict[str, str] | None = None) -> Path:
    """Write ``frames`` (T, H, W, 3) uint8 RGB at ``fps`` and optional ``audio`` (N,) or (C, N) float in [-1, 1].

    Args:
        vcodec: an FFmpeg encoder name (libx264, mpeg4, prores_ks, mjpeg). ``pix_fmt`` defaults per codec.
        gop: key-frame interval (``None`` keeps the encoder's default, e.g. 12 for mpeg4).
        crf: constant rate factor for libx264 (the official re-encoding uses 10).
        acodec: aac or a PCM codec (pcm_s16le, in .mov/.mkv/.wav containers).
    Returns: the final path.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if t == 0:
        raise ValueError("frames is empty")
    pix_fmt = pix_fmt or VIDEO_CODECS.get(vcodec, "yuv420p")
    if pix_fmt.startswith("yuv420") or pix_fmt.startswith("yuvj420"):
        if h % 2 or w % 2:
            raise ValueError(f"{pix_fmt} needs even frame sizes, got {w}x{h}")
    options = dict(video_options or {})
    if crf is not None:
        options["crf"] = str(crf)
    rate = Fraction(fps).limit_denominator(1001)
    audio_arr = _as_planar_audio(audio) if audio is not None else None
    final = Path(path)
    with atomic_output(final) as tmp:
        with av.open(str(tmp), mode="w") as container:
            vs = container.add_stream(vcodec, rate=rate, options=options)
            vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
            if gop is not None:
                vs.codec_context.gop_size = int(gop)
            as_ = None
            a_iter = None
            if audio_arr is not None:
                as_ = _add_audio_stream(container, acodec, sample_rate, audio_arr.shape[0], audio_bit_rate)
                fmt = _audio_format_for(as_)
                a_iter = _audio_frames(audio_arr, sample_rate, fmt, chunk=1024)
            a_done = 0  # audio samples handed to the encoder so far
            for i in range(t):
                vf = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                vf.pts = i
                vf.time_base = 1 / rate
                for packet in vs.encode(vf):
                    container.mux(packet)
                # interleave: feed audio up to the end of this video frame
                if a_iter is not None:
                    until = int(round((i + 1) / float(rate) * sample_rate))
                    while a_done < until:
                        af = next(a_iter, None)
                        if af is None:
                            a_iter = None
                            break
                        a_done += af.samples
                        for packet in as_.encode(af):
                            container.mux(packet)
            if a_iter is not None:
                for af in a_iter:
                    for packet in as_.encode(af):
                        container.mux(packet)
            for packet in vs.encode(None):
                container.mux(packet)
            if as_ is not None:
                for packet in as_.encode(None):
                    container.mux(packet)
    return final


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, codec: str | None = None,
                bit_rate: int | None = None) -> Path:
    """Write audio alone. ``codec`` defaults from the suffix: .wav -> pcm_s16le, .m4a/.mp4/.aac -> aac."""
    final = Path(path)
    if codec is None:
        codec = "pcm_s16le" if final.suffix.lower() == ".wav" else "aac"
    arr = _as_planar_audio(audio)
    with atomic_output(final) as tmp:
        with av.open(str(tmp), mode="w") as container:
            stream = _add_audio_stream(container, codec, sample_rate, arr.shape[0], bit_rate)
            fmt = _audio_format_for(stream)
            for af in _audio_frames(arr, sample_rate, fmt, chunk=1024):
                for packet in stream.encode(af):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return final
