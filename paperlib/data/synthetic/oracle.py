"""The oracle of the synthetic benchmark and a non-learned baseline: ``has_cue`` (is the offset identifiable from this
visual window and this audio window?), ``oracle_fraction`` over test items (the analogue of the paper's ~70% human
oracle on VGGSound-Sparse), ``sample_items`` (test items drawn as the official fixed-offset files are) and
``xcorr_baseline`` (a cross-correlation offset classifier on decoded windows: the signal is in the data)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from paperlib.data.synthetic.dataset import load_sidecar, video_path


def has_cue(sidecar: dict[str, Any], v_start_sec: float, offset_sec: float, clip_sec: float = 5.0,
            margin_sec: float = 0.1, min_events: int = 1) -> bool:
    """Is there a cue that makes the offset identifiable for this visual window and this audio window?

    The visual window covers source times [v, v + L); the audio window [v + o, v + o + L) (offset > 0: the audio window
    starts later, the official sign convention). An event (a sparse action, or a syllable onset for dense clips) is
    a cue when it lies inside both windows, at least ``margin_sec`` from their edges (its sound needs some room).
    """
    lo = max(v_start_sec, v_start_sec + offset_sec) + margin_sec
    hi = min(v_start_sec, v_start_sec + offset_sec) + clip_sec - margin_sec
    onsets = np.asarray(sidecar["event_onsets_sec"], dtype=float)
    return int(((onsets >= lo) & (onsets < hi)).sum()) >= min_events


def _items_frame(items: Any):
    import pandas as pd

    if isinstance(items, pd.DataFrame):
        df = items
    else:
        df = pd.DataFrame(list(items))
        if df.shape[1] == 3 and list(df.columns) == [0, 1, 2]:
            df.columns = ["path", "offset_sec", "vstart_sec"]
    missing = {"path", "offset_sec", "vstart_sec"} - set(df.columns)
    if missing:
        raise ValueError(f"items need columns path, offset_sec, vstart_sec (the fixed-offset CSV header); "
                         f"missing {missing}")
    return df


def oracle_fraction(root: str | os.PathLike, items: Any, clip_sec: float = 5.0, margin_sec: float = 0.1
                    ) -> dict[str, Any]:
    """Share of test items (rows ``path, offset_sec, vstart_sec``: a fixed-offset CSV's DataFrame, or tuples/dicts)
    that hold a cue, per the sidecars under ``root``: the analogue of the paper's ~70% human oracle.

    Returns: {"setting", "n", "with_cue", "fraction", "ceiling_top1"} where ceiling_top1 = cue -> correct, else chance
    on the number of distinct offsets among the items.
    """
    df = _items_frame(items)
    cache: dict[str, dict] = {}
    cues = []
    for path, off, vs in zip(df["path"], df["offset_sec"], df["vstart_sec"]):
        sc = cache.get(path) or cache.setdefault(path, load_sidecar(root, str(path)))
        cues.append(has_cue(sc, float(vs), float(off), clip_sec=clip_sec, margin_sec=margin_sec))
    n = len(cues)
    frac = float(np.mean(cues)) if n else float("nan")
    n_cls = max(1, df["offset_sec"].round(2).nunique())
    settings = sorted({c["setting"] for c in cache.values()})
    return {"setting": settings[0] if len(settings) == 1 else settings, "n": n, "with_cue": int(np.sum(cues)),
            "fraction": frac, "ceiling_top1": frac + (1 - frac) / n_cls}


def sample_items(ids: Sequence[str], per_clip: int = 4, max_off_sec: float = 2.0, num_classes: int = 21,
                 clip_sec: float = 5.0, clip_len_sec: float = 10.0, fps: int = 25, seed: int = 1338):
    """Random test items as the official fixed-offset files are drawn: offset uniform on the linspace grid,
    v_start ~ U[max(0, -o), min(vmax, vmax - o)] snapped down to a frame (vmax = clip length - window).
    Returns a DataFrame with the fixed-offset CSV columns path, offset_sec, vstart_sec."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    grid = np.linspace(-max_off_sec, max_off_sec, num_classes)
    vmax = clip_len_sec - clip_sec
    rows = []
    for cid in ids:
        for _ in range(per_clip):
            o = float(np.round(rng.choice(grid), 2))
            v = rng.uniform(max(0.0, -o), min(vmax, vmax - o))
            rows.append((cid, o, int(v * fps) / fps))
    return pd.DataFrame(rows, columns=["path", "offset_sec", "vstart_sec"])


# ----------------------------------------------------------------------------------------------------------------------
# a non-learned baseline: is the synchronisation signal in the decoded data?

def _visual_signal(frames: np.ndarray, boxes: np.ndarray | None, sparse: bool) -> np.ndarray:
    """(T,) per frame: dense, darkness (the open mouth is dark); sparse, the share of pixels that changed since the
    previous frame (channel max > 25/255); inside the source box when ``boxes`` is given, else over the whole frame."""
    f = frames.astype(np.int16)
    if sparse:
        ch = np.zeros(f.shape[:3], np.float32)
        ch[1:] = np.abs(f[1:] - f[:-1]).max(-1) > 25
    else:
        ch = -f.mean(-1, dtype=np.float32)
    if boxes is None:
        return ch.reshape(len(ch), -1).mean(1)
    out = np.zeros(len(ch), np.float32)
    for t, (x0, y0, x1, y1) in enumerate(boxes):
        if x1 > x0 and y1 > y0:
            out[t] = ch[t, y0:y1, x0:x1].mean()
    return out


def _audio_signal(audio: np.ndarray, hop: int, sparse: bool) -> np.ndarray:
    """(T,) per video frame (``hop`` samples): dense, RMS; sparse, onset strength (the largest rise of log RMS over
    5-ms sub-blocks within the frame)."""
    T = len(audio) // hop
    blocks = audio[:T * hop].reshape(T, hop)  # (T, hop)
    if not sparse:
        return np.sqrt((blocks ** 2).mean(1))
    sub = hop // 8
    e = np.log(np.sqrt((audio[:T * hop].reshape(T * 8, sub) ** 2).mean(1)) + 1e-4)  # (T*8,)
    rise = np.maximum(np.diff(e, prepend=e[0]), 0.0).reshape(T, 8)
    return rise.max(1)


def _best_shift(vis: np.ndarray, aud: np.ndarray, shifts: Sequence[int]) -> int:
    """Index of the shift k maximising the Pearson correlation of vis[t + k] with aud[t] (the audio window starts k
    frames after the visual one), over the overlap."""
    T = len(vis)
    scores = []
    for k in shifts:
        a = vis[max(0, k):T + min(0, k)]
        b = aud[max(0, -k):T - max(0, k)]
        if len(a) < 3 or a.std() == 0 or b.std() == 0:
            scores.append(-np.inf)
        else:
            scores.append(float(np.corrcoef(a, b)[0, 1]))
    return int(np.argmax(scores))


def xcorr_baseline(root: str | os.PathLike, items: Any, num_classes: int = 21, max_off_sec: float = 2.0,
                   clip_sec: float = 5.0, use_box: bool = True, progress: bool = False) -> dict[str, Any]:
    """A non-learned offset classifier on decoded windows: cross-correlate a visual signal (mouth darkness for dense
    clips, motion for sparse ones; inside the sidecar's source box, or over the whole frame with ``use_box=False``)
    with an audio signal (RMS, or onset strength) at every grid offset and pick the best. It shows that the offset is
    in the data, and that localisation and temporal sparsity make it harder. Windows are cut as the official test
    transform does: frames from ``int(v * fps)``, samples from ``int((v + o) * sr)``, 5 s each, no jitter.

    Returns {"n", "top1", "top1_tol1", "top1_with_cue", "top1_without_cue", "cue_fraction"}.
    """
    from tqdm import tqdm

    from paperlib.core.media import read_audio, read_video  # PyAV: only for the decoded baseline

    df = _items_frame(items)
    grid = np.linspace(-max_off_sec, max_off_sec, num_classes)
    correct, near, cues = [], [], []
    for path, rows in tqdm(df.groupby("path", sort=False), disable=not progress, desc="xcorr", unit="clip"):
        sc = load_sidecar(root, str(path))
        fps, sr = sc["fps"], sc["sample_rate"]
        hop = sr // fps
        sparse = sc["setting"] == "sparse"
        vp = video_path(root, str(path))
        frames, audio = read_video(vp), read_audio(vp)
        boxes = np.asarray(sc["source_boxes"]) if use_box else None
        vis_all = _visual_signal(frames, boxes, sparse)
        n_v, n_a = int(round(clip_sec * fps)), int(round(clip_sec * sr))
        shifts = [int(round(g * fps)) for g in grid]
        for off, vs in zip(rows["offset_sec"], rows["vstart_sec"]):
            f0, a0 = int(vs * fps + 1e-6), int((vs + off) * sr + 1e-6)
            vis = vis_all[f0:f0 + n_v]
            aud = _audio_signal(audio[a0:a0 + n_a], hop, sparse)
            if len(vis) < n_v or len(aud) < n_v:
                raise ValueError(f"{vp}: window v={vs} o={off} exceeds the clip")
            pred = _best_shift(vis, aud, shifts)
            target = int(np.argmin(np.abs(grid - off)))
            correct.append(pred == target)
            near.append(abs(pred - target) <= 1)
            cues.append(has_cue(sc, float(vs), float(off), clip_sec=clip_sec))
    correct, near, cues = map(np.asarray, (correct, near, cues))
    return {"n": int(len(correct)), "top1": float(correct.mean()), "top1_tol1": float(near.mean()),
            "top1_with_cue": float(correct[cues].mean()) if cues.any() else float("nan"),
            "top1_without_cue": float(correct[~cues].mean()) if (~cues).any() else float("nan"),
            "cue_fraction": float(cues.mean())}
