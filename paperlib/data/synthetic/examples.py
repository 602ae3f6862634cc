"""A figure of the synthetic benchmark: sample frames and a spectrogram of one clip per setting."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from paperlib.data.synthetic.config import SETTINGS, SynthConfig
from paperlib.data.synthetic.scenes import generate_clip


def render_examples(out_png: str | os.PathLike, size: int = 128, seed: int = 0) -> Path:
    """Sample frames (with the source box) and a spectrogram (with event onsets) of one clip per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n_frames = 6  # dense: frames over 0.6 s; sparse: the full frame, then zoomed frames around the first event
    fig, axes = plt.subplots(len(SETTINGS), n_frames + 1, figsize=(2.0 * n_frames + 6, 2.3 * len(SETTINGS)),
                             gridspec_kw={"width_ratios": [1] * n_frames + [3]})
    for row, setting in enumerate(SETTINGS):
        cfg = SynthConfig(setting=setting, size=size, seed=seed, event_count_probs=(0.0, 0.0, 0.0, 1.0))
        clip = generate_clip(cfg, 1 if setting == "sparse" else 0)
        sc, frames, audio = clip["sidecar"], clip["frames"], clip["audio"]
        onsets = np.asarray(sc["event_onsets_sec"])
        sparse = setting == "sparse"
        t_mid = onsets[0] if sparse and len(onsets) else 4.0
        rel = np.array([0.0, -0.48, -0.24, -0.08, 0.0, 0.16]) if sparse else np.linspace(-0.4, 0.2, n_frames)
        f_idx = np.clip(np.round((t_mid + rel) * cfg.fps).astype(int), 0, len(frames) - 1)
        bx0, by0, bx1, by1 = np.asarray(sc["source_boxes"])[f_idx].T
        zc = np.array([(bx0.min() + bx1.max()) / 2, (by0.min() + by1.max()) / 2])  # zoom window around the source
        zr = max(bx1.max() - bx0.min(), by1.max() - by0.min()) * 0.8 + 2
        for k, fi in enumerate(f_idx):
            ax = axes[row, k]
            ax.imshow(frames[fi])
            x0, y0, x1, y1 = sc["source_boxes"][fi]
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1))
            zoom = sparse and k > 0
            if zoom:
                ax.set_xlim(zc[0] - zr, zc[0] + zr)
                ax.set_ylim(zc[1] + zr, zc[1] - zr)
            label = f"event{rel[k]:+.2f}s (zoom)" if zoom else f"t={fi / cfg.fps:.2f}s"
            ax.set_title(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"{setting}\n({sc['label']})", fontsize=9)
        ax = axes[row, -1]
        ax.specgram(audio, NFFT=512, Fs=cfg.sample_rate, noverlap=384, cmap="magma", vmin=-120)
        for o in onsets:
            ax.axvline(o, color="cyan", lw=0.8, ls="--" if sparse else ":", alpha=0.9 if sparse else 0.4)
        for o in sc["offscreen_onsets_sec"]:
            ax.axvline(o, color="white", lw=0.8, ls=":")
        ax.axvspan(f_idx[0] / cfg.fps, f_idx[-1] / cfg.fps, color="lime", alpha=0.15)
        ax.set_ylim(0, 8000)
        ax.set_ylabel("Hz", fontsize=8)
        ax.set_title("spectrogram; cyan: event/syllable onsets, white: off-screen sounds, green: frames shown",
                     fontsize=7)
    axes[-1, -1].set_xlabel("s")
    fig.suptitle(f"paperlib synthetic benchmark: {size}px, seed {seed} (green box: sound source per frame)",
                 fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
