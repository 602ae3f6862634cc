"""Media I/O through PyAV: encoding helpers (first section), probing and seek-based window decoding (second section).

Decoding knows nothing of labels or augmentation; every temporal API takes seconds, converted to frame and sample
indices in one place (:func:`time_to_index`). Paper Sec. 3 ("Training procedure"): 5 s windows of 25 fps video and
16 kHz audio. The authors' code (v-iashin/SparseSync) decodes the whole clip with
``torchvision.io.read_video`` and slices; here windows are decoded by seeking, with the same result.

Encoding: ``write_video`` writes a video (and optionally an audio) stream with a chosen codec, pixel format and GOP;
``write_audio`` writes audio alone (PCM wav, AAC in .m4a/.mp4/.aac). Outputs are written to a temporary name in the
same folder and renamed when complete, so an interrupted write never leaves a partial file under the final name
(:func:`paperlib.core.io.atomic_output`).

Decoding contract (tested in tests/test_media.py against full decodes):
- Time origin: each stream's own first timestamp (``stream.start_time``), i.e. frame 0 and sample 0 are the first
  decoded ones, as in the official "decode everything, then slice" reading.
- Video: output frame k (at time k / fps) is the last source frame whose timestamp is < (k + 0.5) / fps, the rule of
  FFmpeg's ``fps`` filter (round to nearest), so ``read_video(src, fps=25)`` picks the frames ``prepare`` keeps; for
  25 fps sources and fps=25 this is the identity, so a window equals the full decode's slice.
  The decoder seeks to the key frame before the window, skips non-reference frames more than 0.5 s before the
  window (nothing shown depends on them) and converts to RGB only the frames it returns. ``channels_first=True``
  returns (T, 3, H, W) straight from swscale's planar GBR output (same values as rgb24 for 8-bit 4:2:0 sources,
  which the tests check; other sources and rescaling go through rgb24). Rotation (the display matrix) is reported by
  ``probe`` and applied to the decoded frames in multiples of 90 degrees, as FFmpeg's autorotate (the official
  re-encoding with the ffmpeg CLI applies it; deviation from torchvision's reader, which ignores it).
- Audio: decoded samples are placed by their pts (AAC priming is already dropped by the decoder; a frame whose pts is
  within one time-base tick of the previous frame's end is taken as contiguous, for ms time bases) and the stream is
  trimmed to its declared duration (AAC pads the last 1024-sample block). Windows starting in the first
  ``AUDIO_SEEK_MIN_SEC`` (20 s: every clip of the paper's datasets) are decoded from the start of the stream up to the
  window's end, which is exact by construction and costs milliseconds (AAC decodes at ~1000x real time). Later
  windows seek: the first AAC frame decoded after a seek lacks its overlap-add half, so the reader seeks >= 2 frames
  early and drops it; this is sample-exact unless the encoder used perceptual noise substitution (PNS), whose noise
  generator state a seek cannot restore (differences ~1e-5, only in noise-substituted bands).
- Channels are averaged (``mono=True``), as the official ``get_video_and_audio``; other sample rates are resampled with
  ``torchaudio.functional.resample`` (windowed sinc) on a phase-aligned segment with margins, so the window equals
  the slice of a full-signal resample (to float rounding). Deviation: ``prepare`` downmixes and resamples with
  FFmpeg's swresample, as the official ``ffmpeg -ac 1 -ar 16000`` (5.1 downmix weights differ from a plain mean).
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from paperlib.core.io import atomic_output

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


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 // 2, W) uint8 planar yuv420p (BT.601, limited range, 2x2 chroma averaging).

    Done in numpy rather than by FFmpeg's swscale, whose output was seen to differ by +-1 between calls in one
    process (depending on buffer alignment), which made encoded files not bit-reproducible.
    """
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0

    def sub(c: np.ndarray) -> np.ndarray:  # (H, W) -> (H/2, W/2) mean of each 2x2 block
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, sub(cb), sub(cr))]
    return np.concatenate([p.ravel() for p in planes]).reshape(h * 3 // 2, w)


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
                if pix_fmt == "yuv420p":  # convert here: swscale's SIMD path is not bit-reproducible across calls
                    vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frames[i]), format="yuv420p")
                else:
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


# =====================================================================================================================
# Probing and decoding
# =====================================================================================================================

_TIME_EPS = 1e-3  # s: tolerance for timestamps rounded by container time bases (ms in mkv/webm)
_INDEX_EPS = 1e-6  # slack when a time in seconds is turned into an index (k / fps * fps may be k - 1e-13)
_AAC_PREROLL = 2048  # samples decoded and thrown away before a sought audio window (>= 2 AAC frames)
_SKIP_MARGIN = 0.5  # s: non-reference frames earlier than this before a video window are skipped, not decoded
AUDIO_SEEK_MIN_SEC = 20.0  # s: audio windows starting earlier are decoded from the start (exact, ~ms for 10 s of AAC)


def time_to_index(seconds: float, rate: float) -> int:
    """The single seconds -> index conversion of the decoders: ``floor(seconds * rate)``, robust to float error.

    ``time_to_index(i / rate, rate) == i`` for every integer ``i``; any other time is truncated, like the official
    ``int(sec * rate)``.
    """
    return int(math.floor(seconds * rate + _INDEX_EPS))


@dataclass
class VideoStreamInfo:
    fps: float  # frames per second (average rate)
    width: int  # px, as stored (before the rotation; decoded frames are rotated)
    height: int  # px
    n_frames: int  # frames at the native rate (container header, else duration * fps)
    codec: str
    duration: float  # s
    rotation: int = 0  # degrees counter-clockwise, from the ``rotate`` tag or the first frame's display matrix


@dataclass
class AudioStreamInfo:
    sample_rate: int  # Hz
    channels: int
    codec: str
    duration: float  # s
    n_samples: int  # samples at the native rate (duration * sample_rate)


@dataclass
class MediaInfo:
    path: str
    duration: float  # s, the container's (or the longest stream's)
    video: VideoStreamInfo | None
    audio: AudioStreamInfo | None

    def n_frames_at(self, fps: float) -> int:
        """Frames a reader returns for the whole video at ``fps`` (0 without a video stream)."""
        if self.video is None:
            return 0
        if abs(fps - self.video.fps) < 1e-6:
            return self.video.n_frames
        return max(0, int(math.ceil(self.video.n_frames / self.video.fps * fps - _TIME_EPS * fps)))

    def n_samples_at(self, sample_rate: int) -> int:
        """Samples a reader returns for the whole audio at ``sample_rate`` (0 without an audio stream)."""
        if self.audio is None:
            return 0
        if sample_rate == self.audio.sample_rate:
            return self.audio.n_samples
        return int(math.ceil(self.audio.n_samples * sample_rate / self.audio.sample_rate))


def _open(path: str | os.PathLike):
    path = str(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise MediaError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist") from None
        raise MediaError(f"{path}: no such file") from None
    except OSError as e:  # ELOOP (a symbolic link loop), EACCES, ENAMETOOLONG, ...
        what = "a symbolic link loop" if e.errno == errno.ELOOP else e.strerror
        raise MediaError(f"{path}: cannot open it ({what})") from None
    if os.path.getsize(path) == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise MediaError(f"{path}: unreadable by PyAV/FFmpeg ({type(e).__name__}: {e})") from e


def _stream_duration(stream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _stream_fps(stream, duration: float) -> float:
    """Frames per second of a video stream: its average rate; without one, its frame count over its duration (a
    variable-frame-rate stream's guessed rate is that of its shortest frame interval: 78 frames over 2.95 s guessed
    at 50 fps would read as a 1.56-s clip); the guessed or base rate only when neither is known."""
    if stream.average_rate:
        return float(stream.average_rate)
    if stream.frames and duration > 0:
        return stream.frames / duration
    return float(stream.guessed_rate or stream.base_rate or 0)


def _first_frame_rotation(c, s) -> int:
    """Display rotation of the first decodable frame of video stream ``s`` (0 if none decodes)."""
    try:
        for packet in c.demux(s):
            for frame in packet.decode():
                return _frame_rotation(frame)
    except (av.error.FFmpegError, ValueError):
        return 0
    return 0


def probe(path: str | os.PathLike) -> MediaInfo:
    """Streams, rates, sizes, durations and codecs of a media file, from its headers (nothing is decoded).

    Raises MediaError naming the file when it is missing, empty or unreadable.
    """
    with _open(path) as c:
        video = audio = None
        if c.streams.video:
            s = c.streams.video[0]
            dur = _stream_duration(s, c)
            fps = _stream_fps(s, dur)
            n = int(s.frames) if s.frames else int(round(dur * fps))
            rot = s.metadata.get("rotate", None)
            try:
                rot = -int(float(rot)) % 360 if rot is not None else _first_frame_rotation(c, s)  # tag: clockwise
            except ValueError:
                rot = 0
            video = VideoStreamInfo(fps=fps, width=s.codec_context.width, height=s.codec_context.height,
                                    n_frames=n, codec=s.codec_context.name, duration=dur, rotation=rot)
        if c.streams.audio:
            s = c.streams.audio[0]
            sr = int(s.codec_context.sample_rate or s.rate or 0)
            dur = _stream_duration(s, c)
            audio = AudioStreamInfo(sample_rate=sr, channels=int(s.codec_context.channels), codec=s.codec_context.name,
                                    duration=dur, n_samples=int(round(dur * sr)))
        total = c.duration / av.time_base if c.duration is not None else 0.0
        total = max([total] + [x.duration for x in (video, audio) if x is not None])
    if video is not None and (video.fps <= 0 or video.width <= 0):
        raise MediaError(f"{path}: video stream without a frame rate or size")
    if audio is not None and audio.sample_rate <= 0:
        raise MediaError(f"{path}: audio stream without a sample rate")
    return MediaInfo(path=str(path), duration=total, video=video, audio=audio)


def _scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


_PLANAR_OK = ("yuv420p", "yuvj420p")  # source formats whose gbrp conversion equals rgb24 (tests/test_media.py)


class _FrameBuffer:
    """Output frames (preallocated when the count is known), RGB (H, W, 3) or planar (3, H, W) uint8."""

    def __init__(self, n: int | None, w: int, h: int, channels_first: bool, scaled: bool):
        self.w, self.h, self.cf, self.scaled = w, h, channels_first, scaled
        shape = (3, h, w) if channels_first else (h, w, 3)
        self.data = np.empty((n,) + shape, dtype=np.uint8) if n is not None else None
        self.frames: list[np.ndarray] = []
        self.count = 0
        self.last_src = None  # the av.VideoFrame written last (repeated frames are copied, not converted again)
        self.rotation = 0  # degrees counter-clockwise, from the frames' display matrix

    def _slot(self) -> np.ndarray:
        if self.data is not None:
            return self.data[self.count]
        self.frames.append(np.empty((3, self.h, self.w) if self.cf else (self.h, self.w, 3), dtype=np.uint8))
        return self.frames[-1]

    def put(self, frame) -> None:
        slot = self._slot()
        if frame is self.last_src:
            slot[...] = self.data[self.count - 1] if self.data is not None else self.frames[-2]
        elif self.cf and (self.scaled or frame.format.name not in _PLANAR_OK):
            # swscale scales (and converts >8-bit sources to) gbrp differently from rgb24: keep the rgb24 values
            slot[...] = frame.to_ndarray(format="rgb24", width=self.w, height=self.h).transpose(2, 0, 1)
        elif self.cf:
            # planar GBR straight from swscale (same values as rgb24): no interleave and no transpose afterwards
            g = frame.reformat(width=self.w, height=self.h, format="gbrp")
            for dst, plane in ((0, 2), (1, 0), (2, 1)):  # gbrp planes are G, B, R
                p = g.planes[plane]
                slot[dst] = np.frombuffer(p, np.uint8, count=p.line_size * self.h).reshape(self.h, p.line_size)[
                    :, :self.w]
        else:
            slot[...] = frame.to_ndarray(format="rgb24", width=self.w, height=self.h)
        if self.count == 0:
            self.rotation = _frame_rotation(frame)
        self.last_src = frame
        self.count += 1

    def array(self) -> np.ndarray:
        if self.data is not None:
            out = self.data[:self.count]
        else:
            shape = (3, self.h, self.w) if self.cf else (self.h, self.w, 3)
            out = np.stack(self.frames) if self.frames else np.zeros((0,) + shape, dtype=np.uint8)
        k = (self.rotation // 90) % 4
        if k:  # show the frames as displayed (FFmpeg's autorotate); np.rot90 turns counter-clockwise
            axes = (2, 3) if self.cf else (1, 2)  # (T, 3, H, W) / (T, H, W, 3)
            out = np.ascontiguousarray(np.rot90(out, k=k, axes=axes))
        return out


def _frame_rotation(frame) -> int:
    """Display rotation of a decoded frame in degrees counter-clockwise, a multiple of 90 (0 when absent)."""
    try:
        r = frame.rotation
    except (AttributeError, ValueError):
        return 0
    r = float(r or 0)
    return 0 if math.isnan(r) else int(round(r / 90.0)) * 90 % 360


def _decode_video(c, path: str, k0: int, n: int | None, fps: float | None, size: int | None,
                  channels_first: bool = False) -> np.ndarray:
    """Frames k0 .. k0+n-1 of the video resampled to ``fps`` (see module docstring), uint8 (n, H, W, 3) or
    (n, 3, H, W). Non-reference frames more than ``_SKIP_MARGIN`` before the window are not decoded at all."""
    if not c.streams.video:
        raise MediaError(f"{path}: no video stream")
    s = c.streams.video[0]
    native = float(s.average_rate or s.guessed_rate or 0)
    if native <= 0:
        raise MediaError(f"{path}: video stream without a frame rate")
    fps = native if fps is None else float(fps)
    tb = float(s.time_base)
    origin = s.start_time or 0
    eps = 1e-7  # s: a timestamp exactly half-way belongs to the later output frame (FFmpeg rounds half up)
    w, h = _scaled_size(s.codec_context.width, s.codec_context.height, size)
    t0 = k0 / fps
    skip_until = t0 - max(_SKIP_MARGIN, 4.0 / native)
    cc = s.codec_context
    backoff = 0.0
    while True:  # seek; if the decoder lands after the window start (rare), seek earlier and retry
        seek_t = t0 - backoff
        if seek_t > 0:
            c.seek(origin + int(seek_t / tb), stream=s, backward=True, any_frame=False)
        elif backoff > 0 or t0 > 0:
            c.seek(origin, stream=s, backward=True, any_frame=False)
        buf = _FrameBuffer(n, w, h, channels_first, scaled=size is not None)
        k = k0
        prev = None  # (time, av.VideoFrame) of the last frame before the current output slot's end
        overshoot = done = False
        skipping = None
        for packet in c.demux(s):
            if packet.pts is not None:
                skip = (packet.pts - origin) * tb < skip_until
                if skip != skipping:  # frames far before the window: only reference frames are needed
                    cc.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                t = (frame.pts - origin) * tb
                if prev is None and t >= (k0 + 0.5) / fps - eps and seek_t > 0:
                    overshoot = True
                    break
                # this frame belongs to a later output slot: the pending slots show the previous frame
                while (n is None or k < k0 + n) and t >= (k + 0.5) / fps - eps:
                    if prev is None:  # the stream starts after the wanted time
                        raise MediaError(f"{path}: video starts at {t:.3f} s, after the window start {k / fps:.3f} s")
                    buf.put(prev[1])
                    k += 1
                if n is not None and k >= k0 + n:
                    done = True
                    break
                prev = (t, frame)
            if overshoot or done:
                break
        cc.skip_frame = "DEFAULT"
        if overshoot:
            backoff = 1.0 if backoff == 0 else backoff * 2
            continue
        break
    # end of stream: the last frame lasts one native frame period
    if prev is not None and not done:
        end_t = prev[0] + 1.0 / native
        while (n is None or k < k0 + n) and k / fps < end_t - _TIME_EPS:
            buf.put(prev[1])
            k += 1
    if n is not None and buf.count < n:
        have = k0 + buf.count
        raise MediaError(f"{path}: video window [{k0 / fps:.3f}, {(k0 + n) / fps:.3f}) s goes beyond the end of the "
                         f"video ({have / fps:.3f} s, {have} frames at {fps:g} fps)")
    return buf.array()


def _audio_array(frame) -> np.ndarray:
    """An AudioFrame as float32 (C, N) in [-1, 1] whatever its sample format."""
    a = frame.to_ndarray()
    fmt = frame.format.name
    c = len(frame.layout.channels)
    if not frame.format.is_planar:
        a = a.reshape(-1, c).T  # packed (1, N*C) -> (C, N)
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    elif a.dtype == np.int32:
        a = a.astype(np.float32) / 2147483648.0
    elif a.dtype == np.uint8:
        a = (a.astype(np.float32) - 128.0) / 128.0
    elif a.dtype != np.float32:
        a = a.astype(np.float32)
    del fmt
    return a


def _decode_audio_native(c, path: str, s0: int, n: int | None, strict: bool = True) -> tuple[np.ndarray, int]:
    """Native-rate samples [s0, s0+n) (n=None: to the end) of the open container ``c`` as float32 (C, n), and the
    stream's total samples. ``strict=False`` returns fewer samples instead of raising when the stream ends first."""
    s = c.streams.audio[0]
    sr = int(s.codec_context.sample_rate)
    channels = int(s.codec_context.channels)
    total = int(round(_stream_duration(s, c) * sr)) or None  # trim by the declared duration (AAC padding)
    preroll = _AAC_PREROLL
    reopened = None
    try:
        for attempt in range(6):
            seek_sample = s0 - preroll if s0 >= AUDIO_SEEK_MIN_SEC * sr else 0
            if attempt > 0 and seek_sample <= 0:  # a fresh decode from the start needs a fresh container
                reopened = _open(path)
                c = reopened
                s = c.streams.audio[0]
            tb = float(s.time_base)
            tol = max(1, int(math.ceil(tb * sr)))  # samples one pts tick can hide
            origin = s.start_time or 0
            if seek_sample > 0:
                c.seek(origin + int(seek_sample / sr / tb), stream=s, backward=True, any_frame=False)
            end = None if n is None else s0 + n
            if total is not None:
                end = total if end is None else end
            chunks: list[tuple[int, np.ndarray]] = []
            first = True
            decoded_end = 0
            for frame in c.decode(s):
                if frame.pts is None:
                    continue
                if first and seek_sample > 0:  # the first frame after a seek lacks its overlap: drop it
                    first = False
                    continue
                first = False
                idx = int(round((frame.pts - origin) * tb * sr))
                if chunks and abs(idx - decoded_end) <= tol:
                    idx = decoded_end  # contiguous: a coarse time base (ms in mkv) only rounded the pts
                a = _audio_array(frame)
                chunks.append((idx, a))
                decoded_end = max(decoded_end, idx + a.shape[1])
                if end is not None and idx >= end:
                    break
            if seek_sample > 0 and (not chunks or chunks[0][0] > s0):
                preroll *= 4  # the seek landed too late: go further back
                continue
            break
        else:
            raise MediaError(f"{path}: could not seek the audio to sample {s0}")
    finally:
        if reopened is not None:
            reopened.close()
    stream_end = decoded_end if total is None else min(total, decoded_end)
    if n is None or (not strict and s0 + n > stream_end):
        n = max(0, stream_end - s0)
    if s0 + n > stream_end:
        raise MediaError(f"{path}: audio window [{s0 / sr:.4f}, {(s0 + n) / sr:.4f}) s goes beyond the end of the "
                         f"audio ({stream_end / sr:.4f} s, {stream_end} samples at {sr} Hz)")
    out = np.zeros((channels, n), dtype=np.float32)
    for idx, a in chunks:
        lo, hi = max(idx, s0), min(idx + a.shape[1], s0 + n)
        if hi > lo:
            out[:, lo - s0:hi - s0] = a[:channels, lo - idx:hi - idx]
    return out, stream_end if (end is None or decoded_end < end) else (total or decoded_end)


def _resample_window(c, path: str, m0: int, n: int | None, sr_in: int, sr_out: int, mono: bool,
                     total_in: int) -> np.ndarray:
    """Output-rate samples [m0, m0+n) of the full signal resampled to ``sr_out``, from a phase-aligned segment."""
    import torch
    import torchaudio.functional as AF

    g = math.gcd(sr_in, sr_out)
    a, b = sr_in // g, sr_out // g  # b output samples per a input samples
    width = int(math.ceil(6 * a / (min(a, b) * 0.99)))  # torchaudio's default kernel half-width (input samples)
    margin_blocks = int(math.ceil((width + a) / a)) + 1
    blk0 = max(0, m0 // b - margin_blocks)
    i0 = blk0 * a
    if n is None:
        seg, total_in = _decode_audio_native(c, path, i0, None)
    else:
        i1 = (int(math.ceil((m0 + n) / b)) + margin_blocks) * a
        # the header's length may be an estimate (mkv): the decoder tells where the stream really ends
        seg, end = _decode_audio_native(c, path, i0, i1 - i0, strict=False)
        total_in = i0 + seg.shape[1] if seg.shape[1] < i1 - i0 else max(end, total_in)
    total_out = int(math.ceil(total_in * b / a))
    if n is None:
        n = max(0, total_out - m0)
    if m0 + n > total_out:
        raise MediaError(f"{path}: audio window [{m0 / sr_out:.4f}, {(m0 + n) / sr_out:.4f}) s goes beyond the end "
                         f"of the audio ({total_out / sr_out:.4f} s)")
    if mono:
        seg = seg.mean(axis=0, keepdims=True)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(seg)), sr_in, sr_out).numpy()
    off = m0 - blk0 * b
    return np.ascontiguousarray(out[:, off:off + n])


def read_video(path: str | os.PathLike, start_sec: float = 0.0, dur_sec: float | None = None,
               fps: float | None = 25.0, size: int | None = None, channels_first: bool = False) -> np.ndarray:
    """Video frames of the window [start_sec, start_sec + dur_sec) at ``fps``, as uint8 (T, H, W, 3) RGB.

    Args:
        start_sec: window start (s from the stream's first frame); frame index ``time_to_index(start_sec, fps)``.
        dur_sec: window length (s): T = round(dur_sec * fps); ``None`` reads to the end.
        fps: output frame rate (frames chosen by timestamp); ``None`` keeps the native rate.
        size: rescale so that the short side has ``size`` px (``None``: native size).
        channels_first: return (T, 3, H, W) instead (converted to planar RGB by swscale: no transpose needed).
    Raises: MediaError (unreadable file, no video stream, window beyond the end).
    """
    path = str(path)
    if start_sec < 0:
        raise MediaError(f"{path}: negative window start {start_sec}")
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError(f"{path}: no video stream")
        rate = float(fps) if fps is not None else float(c.streams.video[0].average_rate or 0)
        k0 = time_to_index(start_sec, rate)
        n = None if dur_sec is None else int(round(dur_sec * rate))
        try:
            return _decode_video(c, path, k0, n, fps, size, channels_first)
        except av.error.FFmpegError as e:
            raise MediaError(f"{path}: video decoding failed ({type(e).__name__}: {e})") from e


def read_audio(path: str | os.PathLike, start_sec: float = 0.0, dur_sec: float | None = None,
               sample_rate: int | None = 16000, mono: bool = True) -> np.ndarray:
    """Audio samples of the window [start_sec, start_sec + dur_sec) as float32 in [-1, 1].

    Args:
        start_sec: window start (s from the stream's first sample); sample ``time_to_index(start_sec, sample_rate)``.
        dur_sec: window length: N = round(dur_sec * sample_rate); ``None`` reads to the end.
        sample_rate: output rate (windowed-sinc resampling); ``None`` keeps the native rate.
        mono: average the channels -> (N,); otherwise (C, N).
    Raises: MediaError (unreadable file, no audio stream, window beyond the end).
    """
    path = str(path)
    if start_sec < 0:
        raise MediaError(f"{path}: negative window start {start_sec}")
    with _open(path) as c:
        if not c.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        st = c.streams.audio[0]
        sr_in = int(st.codec_context.sample_rate or 0)
        if sr_in <= 0:
            raise MediaError(f"{path}: audio stream without a sample rate")
        sr_out = sr_in if sample_rate is None else int(sample_rate)
        m0 = time_to_index(start_sec, sr_out)
        n = None if dur_sec is None else int(round(dur_sec * sr_out))
        try:
            if sr_out == sr_in:
                out, _ = _decode_audio_native(c, path, m0, n)
                if mono:
                    out = out.mean(axis=0, keepdims=True)
            else:
                total_in = int(round(_stream_duration(st, c) * sr_in))
                out = _resample_window(c, path, m0, n, sr_in, sr_out, mono, total_in)
        except av.error.FFmpegError as e:
            raise MediaError(f"{path}: audio decoding failed ({type(e).__name__}: {e})") from e
    return out[0] if mono else out


def read_window(path: str | os.PathLike, v_start_sec: float, a_start_sec: float, dur_sec: float,
                fps: float = 25.0, sample_rate: int = 16000, size: int | None = None,
                channels_first: bool = False) -> dict[str, np.ndarray]:
    """A synchronised-pair read: {"video": uint8 (T, H, W, 3) (or (T, 3, H, W)), "audio": float32 (N,) mono}.

    The two windows start independently (``a_start_sec - v_start_sec`` is the offset of the pair).
    """
    return {"video": read_video(path, v_start_sec, dur_sec, fps=fps, size=size, channels_first=channels_first),
            "audio": read_audio(path, a_start_sec, dur_sec, sample_rate=sample_rate, mono=True)}
