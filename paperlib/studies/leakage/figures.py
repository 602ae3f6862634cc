"""Figures 6 and 7: first differences of one clip per codec with their periodogram (Fig. 6), and the test Acc@1 per
epoch of Table 1's rows (Fig. 7)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import av
import numpy as np
import pandas as pd

from paperlib.core.media import write_video
from paperlib.studies.leakage.config import MPEG4_REFERENCE_BITS_PER_PIXEL, ROWS
from paperlib.studies.leakage.encoding import decode_video, mpeg4_bit_rate, render_clip, transcode_video
from paperlib.studies.leakage.metrics import fft_periodogram, first_difference_profile, folded_periodogram
from paperlib.studies.leakage.records import env_info, write_json


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
        v = decode_video(paths[codec], None, None)
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
    write_json(out_dir / "fig6.json", {"profile": prof_rows, "periodogram": per_rows, "dominant_period": dominant,
                                        "peak_score": result["peak_score"], "keyframes": keyframes,
                                        "config": {"size": size, "seconds": seconds, "fps": fps, "seed": seed,
                                                   "mpeg4_bit_rate": mpeg4_bit_rate(size, fps, bits_per_pixel)},
                                        "env": env_info()})
    np.savez_compressed(out_dir / "fig6.npz", **{c: f for c, f in frames.items()})
    return result


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
