"""Table 1: per row, generate the media with a real codec, train the start-time classifier and evaluate it; rows are
cached by configuration hash under the output folder, so an interrupted run resumes."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from paperlib.core import paper_numbers
from paperlib.core.config import config_hash, to_dict
from paperlib.core.media import MediaError, write_audio, write_video
from paperlib.studies.leakage.classifier import train_probe
from paperlib.studies.leakage.config import ROWS, VERDICT_LEAK, Table1Config, table1_config
from paperlib.studies.leakage.encoding import mpeg4_bit_rate, render_clip, transcode_audio, transcode_video, white_noise
from paperlib.studies.leakage.features import load_clips
from paperlib.studies.leakage.records import env_info, write_json


def _measured_bit_rate(paths: Sequence[Path], seconds: float) -> float:
    sizes = [p.stat().st_size for p in paths if p.exists()]
    return 8.0 * float(np.mean(sizes)) / seconds if sizes else math.nan


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
                "paper_acc1": paper_numbers.TABLE1[row][1], "paper_acc5": paper_numbers.TABLE1[row][2],
                "config_hash": key,
                "probe_config": to_dict(pcfg), "codec_settings": codec_settings, "n_clips": len(paths),
                "generate_seconds": gen_seconds, "decode_seconds": decode_seconds,
                "wall_seconds": time.time() - t0, "env": env_info(res["device"])})
    write_json(result_path, res)
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
    write_json(out_dir / "config.json", to_dict(cfg))
    if not (out_dir / "env.json").exists():  # the first call's environment; each row also records its own
        write_json(out_dir / "env.json", env_info())
    t0 = time.time()
    results = [run_row(row, out_dir, cfg, progress) for row in cfg.rows]
    df = table1_frame(results)
    df.to_csv(out_dir / "table1.csv", index=False)
    write_json(out_dir / "table1_summary.json", {"profile": profile, "wall_seconds_this_call": time.time() - t0,
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
        "AAC 16k >> lossless": gt("aac16000", "pcm22050"),
        "AAC 16k leaks": leak("aac16000"),
        "AAC 16k ~ chance": None if leak("aac16000") is None else not leak("aac16000"),
        "lossless 22.05k ~ chance": None if leak("pcm22050") is None else not leak("pcm22050"),
    }
