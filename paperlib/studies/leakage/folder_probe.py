"""The start-time probe on a user's folder: one clip per file from its start, the classifier trained and tested on
held-out files, a verdict (do the files' artefacts leak the start time?) and its report."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Sequence

import av
import numpy as np

from paperlib.core.config import to_dict
from paperlib.core.media import MediaError
from paperlib.studies.leakage.classifier import train_probe
from paperlib.studies.leakage.config import AUDIO_EXTS, VIDEO_EXTS, probe_config
from paperlib.studies.leakage.encoding import media_duration
from paperlib.studies.leakage.features import load_clips
from paperlib.studies.leakage.records import env_info, write_json


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
        write_json(Path(json_out), report)
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
