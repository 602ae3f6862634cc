"""Dataset preparation: re-encode every clip to 25 fps H.264 (short side 256, even sides, CRF 10) + AAC 16 kHz mono.

Official_implementation.md section 3.1: ``scripts/reencode_videos.py`` runs
``ffmpeg -vf fps=25,scale=iw*256/'min(iw,ih)':ih*256/'min(iw,ih)',crop='trunc(iw/2)'*2:'trunc(ih/2)'*2 -vcodec h264
-pix_fmt yuv420p -crf 10 -acodec aac -ar 16000 -ac 1``. Here the same FFmpeg filter chain runs through PyAV's filter
graph (no ffmpeg binary needed), audio is downmixed and resampled by swresample (as ``-ac 1 -ar 16000``) and encoded
with FFmpeg's native AAC encoder. Run once; training reads only what this wrote (nanoGPT's ``prepare.py``).

Layouts written (what paperlib.data.datasets reads): lrs3 ``DST/pretrain/<vid>/<clip>.mp4`` (from
``SRC/pretrain/<vid>/<clip>.*``);
vggsound ``DST/video/<ytid>_<startms>_<endms>.mp4`` (from any file with such a stem under SRC); folder: SRC's relative
paths with an .mp4 suffix. Top-level protocol files of SRC (*.txt, *.csv) are copied when DST lacks them.

Resumable: a done file (present under its final name) is skipped; outputs are written to a temporary name and renamed,
so an interrupted run never leaves a partial file (a killed run's hidden temporaries are deleted on restart).
``DST/prepare_report.json`` lists failures with reasons; ``DST/manifest.csv`` lists every output with its streams and
durations.

Reproducibility: with PyAV 18.1 / libx264 here, the n-th encode in a process is reproducible across processes but
differs from the first (coding decisions change; mean |difference| < 1 grey level at CRF 10), so outputs are not
bit-identical across different worker schedules; prepare_report.json records the library versions.

Rotation metadata (the display matrix) is applied before scaling, as the ffmpeg CLI's autorotate.

Deviations: the official LRS3 script cuts clips from the original YouTube videos with OpenCV (optionally with the face
crop); here LRS3 clips that are already cut are re-encoded. The encoder's default GOP (x264 keyint 250) is kept, as the
official command; ``--gop`` sets another. Both streams start at 0 in the output (source start-time differences between
the audio and video streams are not carried over).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.filter

from paperlib.core.io import atomic_output, remove_stale_partials
from paperlib.core.media import MediaError, _open, probe

log = logging.getLogger("paperlib.data.prepare")

VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".flv", ".mpg", ".mpeg")
VGGSOUND_STEM = re.compile(r"^.{11}_\d+_\d+$")  # <ytid (11 chars)>_<startms>_<endms>


@dataclass
class EncodeSettings:
    fps: int = 25  # frames per second
    side: int = 256  # px, short side after scaling (then trimmed to even sides)
    crf: int = 10  # x264 constant rate factor (official)
    sample_rate: int = 16000  # Hz
    gop: int | None = None  # key-frame interval; None = the encoder's default (official)
    audio_bit_rate: int | None = None  # bit/s; None = the encoder's default


def _drain(graph, push, pull, frame):
    out = []
    push(frame)
    while True:
        try:
            out.append(pull())
        except (av.BlockingIOError, av.error.EOFError):
            return out


def reencode(src: str | os.PathLike, dst: str | os.PathLike, settings: EncodeSettings = EncodeSettings()) -> Path:
    """Re-encode one file (see the module docstring). Raises MediaError naming the file and the problem."""
    src, dst = str(src), Path(dst)
    with _open(src) as inp:
        if not inp.streams.video:
            raise MediaError(f"{src}: no video stream")
        if not inp.streams.audio:
            raise MediaError(f"{src}: no audio stream")
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        if not vin.codec_context.width:
            raise MediaError(f"{src}: video stream without a frame size")
        rotation = probe(src).video.rotation  # degrees counter-clockwise (display matrix)
        graph = av.filter.Graph()
        # upright frames first, as the ffmpeg CLI's autorotate does for the official command
        turn = {90: [("transpose", "cclock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "clock")]}
        chain = [graph.add_buffer(template=vin)] + [graph.add(f, a) for f, a in turn.get(rotation, [])]
        chain += [graph.add("fps", str(settings.fps)),
                 graph.add("scale", f"iw*{settings.side}/'min(iw,ih)':ih*{settings.side}/'min(iw,ih)'"),
                 graph.add("crop", "'trunc(iw/2)'*2:'trunc(ih/2)'*2"), graph.add("format", "yuv420p"),
                 graph.add("buffersink")]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=settings.sample_rate)
        n_video = n_audio = 0
        with atomic_output(dst) as tmp:
            with av.open(str(tmp), mode="w") as out:
                rate = Fraction(settings.fps)
                vout = out.add_stream("libx264", rate=rate, options={"crf": str(settings.crf)})
                vout.pix_fmt = "yuv420p"
                if settings.gop is not None:
                    vout.codec_context.gop_size = settings.gop
                aout = out.add_stream("aac", rate=settings.sample_rate)
                aout.layout = "mono"
                if settings.audio_bit_rate:
                    aout.bit_rate = settings.audio_bit_rate
                sized = False

                def put_video(frames):
                    nonlocal n_video, sized
                    for f in frames:
                        if not sized:
                            vout.width, vout.height = f.width, f.height
                            sized = True
                        f.pts, f.time_base = n_video, 1 / rate
                        n_video += 1
                        for pkt in vout.encode(f):
                            out.mux(pkt)

                pending_audio: list = []  # audio resampled before the first video frame fixed the output size

                def put_audio(frames):
                    nonlocal n_audio
                    if not sized:  # muxing now would open the video encoder before its size is known
                        pending_audio.extend(frames)
                        return
                    frames = pending_audio + list(frames)
                    pending_audio.clear()
                    for f in frames:
                        f.pts, f.time_base = n_audio, Fraction(1, settings.sample_rate)
                        n_audio += f.samples
                        for pkt in aout.encode(f):
                            out.mux(pkt)

                try:
                    for packet in inp.demux(vin, ain):
                        for frame in packet.decode():
                            if packet.stream is vin:
                                put_video(_drain(graph, graph.vpush, graph.vpull, frame))
                            else:
                                frame.pts = None  # let the resampler count samples (timestamps may have gaps)
                                put_audio(resampler.resample(frame))
                    put_video(_drain(graph, graph.vpush, graph.vpull, None))
                    put_audio(resampler.resample(None) if sized else [])
                    if n_video == 0:
                        raise MediaError(f"{src}: no decodable video frames")
                    if n_audio == 0:
                        raise MediaError(f"{src}: no decodable audio samples")
                    for pkt in vout.encode(None):
                        out.mux(pkt)
                    for pkt in aout.encode(None):
                        out.mux(pkt)
                except av.error.FFmpegError as e:
                    raise MediaError(f"{src}: decoding/encoding failed ({type(e).__name__}: {e})") from e
    return dst


def plan(src: str | os.PathLike, dst: str | os.PathLike, dataset: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """([(source, output)], {source: reason it cannot be prepared}) for a dataset layout."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"source folder {src} does not exist")
    named = sorted(p for p in src.rglob("*") if p.suffix.lower() in VIDEO_EXTS
                   and not any(part.startswith(".") for part in p.relative_to(src).parts))
    files = [p for p in named if p.is_file()]
    jobs: list[tuple[str, str]] = []
    # named like a video but not a readable file: reported, not silently dropped
    rejected: dict[str, str] = {str(p): "a folder, not a video file" if p.is_dir() else "not a regular file (a "
                                "broken link or a special file)" for p in named if not p.is_file()}
    for p in files:
        rel = p.relative_to(src)
        if dataset == "lrs3":
            if len(rel.parts) != 3 or rel.parts[0] != "pretrain":
                rejected[str(p)] = "not at pretrain/<vid>/<clip>.<ext> (LRS3 layout)"
                continue
            out = dst / rel.with_suffix(".mp4")
        elif dataset == "vggsound":
            if not VGGSOUND_STEM.match(p.stem):
                rejected[str(p)] = "name is not <ytid>_<startms>_<endms> (VGGSound layout)"
                continue
            out = dst / "video" / f"{p.stem}.mp4"
        elif dataset == "folder":
            out = dst / rel.with_suffix(".mp4")
        else:
            raise ValueError(f"dataset must be lrs3|vggsound|folder, got {dataset!r}")
        jobs.append((str(p), str(out)))
    seen: dict[str, str] = {}
    for s, o in jobs:
        if o in seen:
            rejected[s] = f"same output as {seen[o]}"
        seen.setdefault(o, s)
    jobs = [(s, o) for s, o in jobs if s not in rejected]
    return jobs, rejected


def _work(job: tuple[str, str, dict]) -> dict:
    """One file: skip if done, else re-encode; always return a manifest row (status ok/skipped/failed)."""
    s, o, settings = job
    row = {"source": s, "output": o, "status": "", "reason": ""}
    try:
        if os.path.exists(o):
            row["status"] = "skipped"
        else:
            reencode(s, o, EncodeSettings(**settings))
            row["status"] = "ok"
        info = probe(o)
        row.update(width=info.video.width, height=info.video.height, fps=info.video.fps,
                   n_frames=info.video.n_frames, video_sec=round(info.video.duration, 4),
                   sample_rate=info.audio.sample_rate, n_samples=info.audio.n_samples,
                   audio_sec=round(info.audio.duration, 4))
    except (MediaError, OSError, AttributeError) as e:
        row["status"], row["reason"] = "failed", str(e)
    return row


MANIFEST_FIELDS = ["output", "source", "status", "reason", "width", "height", "fps", "n_frames", "video_sec",
                   "sample_rate", "n_samples", "audio_sec"]


def prepare(src: str | os.PathLike, dst: str | os.PathLike, dataset: str, workers: int = 0,
            settings: EncodeSettings = EncodeSettings(), progress: bool = True) -> dict:
    """Re-encode a dataset (see the module docstring). Returns the report dict also written to prepare_report.json."""
    from tqdm import tqdm

    t0 = time.time()
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(dst)  # hidden temporaries of a killed earlier run (never files under final names)
    jobs, rejected = plan(src, dst, dataset)
    for p in sorted(Path(src).glob("*")):  # protocol files (split lists, annotation CSVs) travel along
        if p.is_file() and p.suffix in (".txt", ".csv") and not (dst / p.name).exists():
            shutil.copy2(p, dst / p.name)
    payload = [(s, o, asdict(settings)) for s, o in jobs]
    rows: list[dict] = []
    bar = tqdm(total=len(payload), desc=f"prepare {dataset}", unit="clip", disable=not progress)
    if workers > 0:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for row in pool.imap_unordered(_work, payload):
                rows.append(row)
                bar.update()
    else:
        for job in payload:
            rows.append(_work(job))
            bar.update()
    bar.close()
    rows += [{"source": s, "output": "", "status": "failed", "reason": r} for s, r in rejected.items()]
    rows.sort(key=lambda r: (r["output"], r["source"]))
    with atomic_output(dst / "manifest.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    counts = {k: sum(r["status"] == k for r in rows) for k in ("ok", "skipped", "failed")}
    report = {"source": str(src), "destination": str(dst), "dataset": dataset, "settings": asdict(settings),
              "av_version": av.__version__, "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
              **counts, "seconds": round(time.time() - t0, 2),
              "failed_files": {r["source"]: r["reason"] for r in rows if r["status"] == "failed"}}
    with atomic_output(dst / "prepare_report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    log.info("prepare %s: %d written, %d already done, %d failed (%s)", dataset, counts["ok"], counts["skipped"],
             counts["failed"], dst / "prepare_report.json")
    for s, r in report["failed_files"].items():
        log.warning("failed: %s", r if s in r else f"{s}: {r}")
    return report
