"""Where the selectors look: attention maps (paper Sec. 5.2 Fig. 5, supp. Sec. 7.2 Fig. 8) and a localisation score.

Figures 5 and 8 show, for one head of one layer, the cross-attention of a selector to the visual feature tokens
(t x h x w = 16 x 7 x 7) and to the audio feature tokens (f x t = 9 x 20), min-max scaled and overlaid on the input
frames and on the spectrogram. This module records those maps through the model's opt-in path (``model(video, audio,
return_attention=True)``; official: a forward hook on ``attn_drop`` of every ``CrossAttention``), reshapes them to the
token grids, scales, upsamples and overlays them, and writes the figure. Scaling, upsampling and overlay code was never
released (v-iashin/SparseSync), so those choices are ours and documented in each function.

Quantitative addition (not in the paper, whose heads were picked by eye): on the synthetic sets the sound source's box
per frame and its event times are known, so ``localisation_score`` measures, per layer and head, the attention mass on
the source region at the event times divided by the region's share of the frame (1.0: no preference for the source;
> 1: the head looks at it). ``choose_head`` picks the figure's head by this score; ``score_clips`` computes the table
for a model on synthetic clips (trained vs untrained: run it for both).

Definitions:
- visual maps are (..., t, h, w) post-softmax weights over the flattened (t, h, w) context; frame i of a T-frame input
  falls into temporal cell floor(i * t / T) (S3D: 125 frames -> 16 cells), pixel (x, y) of the crop into spatial cell
  (floor(y * h / H), floor(x * w / W)) (32 x 32 px cells for 224 / 7);
- the source region at frame i is the box (x0, y0, x1, y1) in pixels of the cropped input; its coverage of each token
  cell is fractional (overlap area / cell area), so a box need not align with the 32-px grid;
- at an event of time e (s from the window start) the spatial slice of the cell holding frame int(e * fps) is
  renormalised to sum 1 over (h, w); the score is the covered mass sum(a * m) over the covered share sum(m) / (h * w).
  Events whose box is empty or covers the whole crop are skipped; a clip's score is the mean over its events; a head's
  score averages its selectors' maps first (where the head as a whole looks), ``best_selector`` is the best single one;
- ``event_time_score`` is the temporal analogue (mass in the time cells that contain events over their share of the
  time axis), for the audio selectors (summed over frequency) and the visual ones (summed over space).
Deviations from the paper: none in what is drawn; the score is an addition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from paperlib.core.geometry import Geometry
from paperlib.core.media import MediaError, probe, read_audio, read_video
from paperlib.data.transforms import eval_transforms
from paperlib.studies.predict import load_predictor, window_starts

VISUAL_KEY = re.compile(r"^v_selector\.(\d+)\.xattn$")
AUDIO_KEY = re.compile(r"^a_selector\.(\d+)\.xattn$")


# ----------------------------------------------------------------------------------------------------------------------
# Recording and reshaping
# ----------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def record_attention(model: torch.nn.Module, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Eval-mode forward through the model's opt-in attention path.

    Returns:
        (logits (B, C), attn): attn maps module names to post-softmax weights (B, heads, n_queries, n_context).
    """
    was_training = model.training
    model.eval()
    try:
        logits, attn = model(video, audio, return_attention=True)
    finally:
        model.train(was_training)
    return logits, attn


def _stack_layers(attn: Mapping[str, torch.Tensor], pattern: re.Pattern) -> np.ndarray | None:
    layers = sorted((int(m.group(1)), k) for k in attn if (m := pattern.match(k)))
    if not layers:
        return None
    if [i for i, _ in layers] != list(range(len(layers))):
        raise ValueError(f"attention layers are not 0..L-1: {[k for _, k in layers]}")
    return np.stack([attn[k].detach().float().cpu().numpy() for _, k in layers], axis=1)  # (B, L, heads, S, N)


def selector_maps(attn: Mapping[str, torch.Tensor], visual_grid: Sequence[int], audio_grid: Sequence[int]) -> dict:
    """Selector cross-attention per layer and head, reshaped to the token grids.

    Args:
        attn: the dict returned by ``model(..., return_attention=True)`` (keys ``v_selector.{i}.xattn`` /
            ``a_selector.{i}.xattn``, values (B, heads, n_selectors, N) with context flattened as (t, h, w) / (f, ta)).
        visual_grid: (t, h, w); audio_grid: (f, ta) (``paperlib.model.sparsesync.token_grid``).

    Returns:
        {"visual": (B, L, heads, S, t, h, w), "audio": (B, L, heads, S, f, ta)} float32 arrays (a key is absent when the
        model has no such selector).
    """
    out = {}
    for name, pattern, grid in (("visual", VISUAL_KEY, tuple(visual_grid)), ("audio", AUDIO_KEY, tuple(audio_grid))):
        a = _stack_layers(attn, pattern)
        if a is None:
            continue
        if a.shape[-1] != int(np.prod(grid)):
            raise ValueError(f"{name} attention has {a.shape[-1]} context tokens, grid {grid} has {int(np.prod(grid))}")
        out[name] = a.reshape(*a.shape[:-1], *grid)  # (B, L, heads, S, *grid)
    if not out:
        raise ValueError(f"no selector cross-attention in {sorted(attn)[:8]}...; is this a selector model?")
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Scaling, upsampling, overlays
# ----------------------------------------------------------------------------------------------------------------------
def minmax(x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
    """Scale to [0, 1] over ``axis`` (all axes when None): (x - min) / (max - min); a constant slice becomes 0."""
    x = np.asarray(x, dtype=np.float32)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    lo = x.min(axis=axis, keepdims=True)
    rng = x.max(axis=axis, keepdims=True) - lo
    return np.where(rng > 0, (x - lo) / np.where(rng > 0, rng, 1), 0).astype(np.float32)


def frame_to_cell(n_frames: int, n_cells: int) -> np.ndarray:
    """Temporal cell of each frame: floor(i * n_cells / n_frames), shape (n_frames,)."""
    return (np.arange(n_frames) * n_cells) // n_frames


def upsample_visual(vmap: np.ndarray, n_frames: int, size: tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """(t, h, w) token map -> (T, H, W) per-frame map over the crop.

    Time is nearest (each frame takes its cell); space is "nearest" (blocky token cells, as the figures) or "bilinear".
    """
    vmap = np.asarray(vmap, dtype=np.float32)
    if vmap.ndim != 3:
        raise ValueError(f"expected a (t, h, w) map, got shape {vmap.shape}")
    per_frame = torch.from_numpy(vmap[frame_to_cell(n_frames, vmap.shape[0])])[:, None]  # (T, 1, h, w)
    kw = {"align_corners": False} if mode == "bilinear" else {}
    up = torch.nn.functional.interpolate(per_frame, size=tuple(size), mode=mode, **kw)  # (T, 1, H, W)
    return up[:, 0].numpy()


def upsample_audio(amap: np.ndarray, shape: tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """(f, ta) token map -> (F, Ta) map over the spectrogram (frequency bins x STFT frames)."""
    amap = torch.as_tensor(np.asarray(amap, dtype=np.float32))
    if amap.ndim != 2:
        raise ValueError(f"expected a (f, ta) map, got shape {tuple(amap.shape)}")
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return torch.nn.functional.interpolate(amap[None, None], size=tuple(shape), mode=mode, **kw)[0, 0].numpy()


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """[0, 1] map (..., H, W) -> RGB float (..., H, W, 3) through a matplotlib colormap."""
    import matplotlib

    return matplotlib.colormaps[cmap](np.clip(heat, 0, 1))[..., :3].astype(np.float32)


def overlay(frames: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a [0, 1] heat map over uint8 frames.

    Args:
        frames: (T, H, W, 3) uint8 (or (H, W, 3)); heat: (T, H, W) (or (H, W)) in [0, 1].

    Returns:
        uint8 array of the frames' shape: (1 - alpha) * frame + alpha * colormap(heat).
    """
    frames = np.asarray(frames)
    if frames.shape[-1] != 3 or frames.shape[:-1] != np.shape(heat):
        raise ValueError(f"frames {frames.shape} and heat {np.shape(heat)} must be (..., H, W, 3) and (..., H, W)")
    mixed = (1 - alpha) * frames.astype(np.float32) / 255 + alpha * colorize(heat, cmap)
    return np.clip(np.rint(mixed * 255), 0, 255).astype(np.uint8)


def denormalize_frames(video: torch.Tensor, mean: Sequence[float] = (0.485, 0.456, 0.406),
                       std: Sequence[float] = (0.229, 0.224, 0.225)) -> np.ndarray:
    """Model input (T, 3, H, W) normalised with ImageNet statistics -> (T, H, W, 3) uint8 for display."""
    v = video.detach().float().cpu()
    v = v * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    return (v.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ----------------------------------------------------------------------------------------------------------------------
# Localisation score
# ----------------------------------------------------------------------------------------------------------------------
def box_coverage(box: Sequence[float], crop: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """Fraction of each (h, w) token cell covered by a pixel box (x0, y0, x1, y1) on an (H, W) crop; shape (h, w)."""
    H, W = crop
    h, w = grid
    x0, y0, x1, y1 = (float(v) for v in box)
    ys = np.linspace(0, H, h + 1)
    xs = np.linspace(0, W, w + 1)
    oy = np.clip(np.minimum(ys[1:], y1) - np.maximum(ys[:-1], y0), 0, None) / np.diff(ys)  # (h,)
    ox = np.clip(np.minimum(xs[1:], x1) - np.maximum(xs[:-1], x0), 0, None) / np.diff(xs)  # (w,)
    return np.outer(oy, ox)


def _as_xyxy(boxes: np.ndarray, box_format: str) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (T, 4), got shape {boxes.shape}")
    if box_format == "xyxy":
        return boxes
    if box_format == "xywh":
        return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    raise ValueError(f"box_format must be 'xyxy' or 'xywh', got {box_format!r}")


def localisation_score(vmap: np.ndarray, boxes: np.ndarray, event_times: Sequence[float], fps: float,
                       crop: tuple[int, int], box_format: str = "xyxy") -> np.ndarray:
    """Attention mass on the source box at event times / the box's share of the frame (1.0 = no preference).

    Args:
        vmap: (..., t, h, w) attention of any leading shape (e.g. (L, heads, S, t, h, w)); nonnegative.
        boxes: (T, 4) source box per input frame, pixels of the cropped input (T = number of input frames).
        event_times: seconds from the first input frame.
        fps: input frame rate; crop: (H, W) of the cropped input.

    Returns:
        (...) array: the mean over usable events of the per-event ratio; NaN if no event is usable.
    """
    vmap = np.asarray(vmap, dtype=np.float64)
    t, h, w = vmap.shape[-3:]
    boxes = _as_xyxy(boxes, box_format)
    n_frames = len(boxes)
    cells = frame_to_cell(n_frames, t)
    ratios = []
    for e in event_times:
        i = int(float(e) * fps)
        if not 0 <= i < n_frames or not np.all(np.isfinite(boxes[i])):
            continue
        m = box_coverage(boxes[i], crop, (h, w))
        share = m.sum() / (h * w)
        if share <= 0 or share >= 1:  # empty or whole-frame box: no localisation to measure
            continue
        a = vmap[..., cells[i], :, :]  # (..., h, w)
        total = a.sum(axis=(-2, -1))
        mass = (a * m).sum(axis=(-2, -1)) / np.where(total > 0, total, np.nan)
        ratios.append(mass / share)
    if not ratios:
        return np.full(vmap.shape[:-3], np.nan)
    return np.mean(ratios, axis=0)


def event_time_score(tmap: np.ndarray, event_times: Sequence[float], clip_sec: float) -> np.ndarray:
    """Attention mass in the time cells that contain events / their share of the time axis (1.0 = no preference).

    Args:
        tmap: (..., n_time) attention over time cells (sum the other context axes first, e.g. visual over (h, w), audio
            over f); the n_time cells split [0, clip_sec) evenly.
    """
    tmap = np.asarray(tmap, dtype=np.float64)
    n = tmap.shape[-1]
    cells = sorted({int(float(e) / clip_sec * n) for e in event_times if 0 <= float(e) < clip_sec})
    if not cells or len(cells) == n:
        return np.full(tmap.shape[:-1], np.nan)
    total = tmap.sum(axis=-1)
    mass = tmap[..., cells].sum(axis=-1) / np.where(total > 0, total, np.nan)
    return mass / (len(cells) / n)


def localisation_table(vmaps: np.ndarray, boxes: Sequence[np.ndarray], events: Sequence[Sequence[float]], fps: float,
                       crop: tuple[int, int], amaps: np.ndarray | None = None, clip_sec: float | None = None,
                       box_format: str = "xyxy", label: str = "") -> pd.DataFrame:
    """Per clip, layer and head: the spatial localisation score (and temporal event scores when ``clip_sec`` is given).

    Args:
        vmaps: (B, L, heads, S, t, h, w); boxes: B arrays (T, 4); events: B lists of event times (s).
        amaps: optional (B, L, heads, S, f, ta) audio-selector maps.

    Returns:
        Rows (clip_index, layer, head, score, best_selector, [visual_time_score, audio_time_score], model).
    """
    vmaps = np.asarray(vmaps)
    if vmaps.ndim != 7:
        raise ValueError(f"vmaps must be (B, L, heads, S, t, h, w), got shape {vmaps.shape}")
    if not len(boxes) == len(events) == len(vmaps):
        raise ValueError(f"{len(vmaps)} maps, {len(boxes)} box tracks and {len(events)} event lists differ")
    rows = []
    for b in range(len(vmaps)):
        head_score = localisation_score(vmaps[b].mean(axis=2), boxes[b], events[b], fps, crop, box_format)  # (L, H)
        sel_score = localisation_score(vmaps[b], boxes[b], events[b], fps, crop, box_format)  # (L, H, S)
        if clip_sec is not None:
            vts = event_time_score(vmaps[b].mean(axis=2).sum(axis=(-2, -1)), events[b], clip_sec)  # (L, H)
            ats = (event_time_score(np.asarray(amaps[b]).mean(axis=2).sum(axis=-2), events[b], clip_sec)
                   if amaps is not None else None)
        for layer in range(vmaps.shape[1]):
            for head in range(vmaps.shape[2]):
                row = dict(clip_index=b, layer=layer, head=head, score=float(head_score[layer, head]),
                           best_selector=float(np.nanmax(sel_score[layer, head]))
                           if np.isfinite(sel_score[layer, head]).any() else np.nan)
                if clip_sec is not None:
                    row["visual_time_score"] = float(vts[layer, head])
                    if ats is not None:
                        row["audio_time_score"] = float(ats[layer, head])
                row["model"] = label
                rows.append(row)
    return pd.DataFrame(rows)


def summarise_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Mean (and count) over clips per model, layer and head, best first."""
    cols = [c for c in ("score", "best_selector", "visual_time_score", "audio_time_score") if c in table]
    g = table.groupby(["model", "layer", "head"])
    out = g[cols].mean().join(g["score"].count().rename("n_clips")).reset_index()
    return out.sort_values(["model", "score"], ascending=[True, False]).reset_index(drop=True)


def choose_head(table: pd.DataFrame, model: str | None = None) -> tuple[int, int]:
    """(layer, head) with the highest mean localisation score (of ``model`` when the table holds several)."""
    summary = summarise_scores(table)
    if model is not None:
        summary = summary[summary.model == model]
    summary = summary.dropna(subset=["score"])
    if summary.empty:
        raise ValueError("no finite localisation score to choose a head from")
    best = summary.sort_values("score", ascending=False).iloc[0]
    return int(best["layer"]), int(best["head"])


# ----------------------------------------------------------------------------------------------------------------------
# Ground truth of a window, and scoring a model on synthetic clips
# ----------------------------------------------------------------------------------------------------------------------
def window_ground_truth(sidecar: Mapping[str, Any], v_start_sec: float, clip_sec: float, crop: int,
                        short_side: int | None = None) -> tuple[np.ndarray, list[float]]:
    """Source boxes and event times of a window, in the model input's coordinates.

    Args:
        sidecar: a synthetic clip's ground truth (``paperlib.data.synthetic.load_sidecar``): ``source_boxes``
            (frames of the whole clip, x0,y0,x1,y1 px of the ``size`` x ``size`` frame), ``event_onsets_sec``, ``fps``,
            ``size``.
        v_start_sec: window start (s); the window's first frame is ``int(v_start_sec * fps)``.
        crop: the centre crop's side (px); short_side: frames rescaled to this short side before the crop (None: as is).

    Returns:
        (boxes (T, 4) float, px of the crop, clipped to it; events: onsets in [0, clip_sec) s from the window start).
    """
    from paperlib.data.transforms import center_crop_box

    fps = float(sidecar["fps"])
    size = int(sidecar["size"])
    all_boxes = np.asarray(sidecar["source_boxes"], dtype=np.float64)
    k0 = int(v_start_sec * fps + 1e-6)
    n = int(round(clip_sec * fps))
    if k0 < 0 or k0 + n > len(all_boxes):
        raise ValueError(f"window [{v_start_sec}, {v_start_sec + clip_sec}) s is outside the clip's "
                         f"{len(all_boxes) / fps:.2f} s of boxes")
    scale = 1.0 if short_side is None else short_side / size
    side = int(round(size * scale))
    top, left = center_crop_box(side, side, crop)
    boxes = all_boxes[k0:k0 + n] * scale - np.array([left, top, left, top], dtype=np.float64)
    boxes = np.clip(boxes, 0, crop)
    t0 = k0 / fps
    events = [float(e) - t0 for e in sidecar["event_onsets_sec"] if 0.0 <= float(e) - t0 < clip_sec]
    return boxes, events


def model_grids(model: torch.nn.Module) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """Token grids ((t, h, w), (f, ta)) of a ``paperlib.model.sparsesync.SyncModel`` (read from its positional
    tables)."""
    head = getattr(model, "head", model)
    try:
        return tuple(head.vis_pos.grid), tuple(head.aud_pos.grid)
    except AttributeError:
        raise ValueError(f"{type(model).__name__} has no head.vis_pos/aud_pos grids; pass grids explicitly") from None


def event_window_start(events: Sequence[float], duration_sec: float, clip_sec: float, fps: float) -> float:
    """A window start that centres the first event (so it lies inside with both neighbours), snapped to a frame."""
    first = float(events[0]) if len(events) else duration_sec / 2
    start = min(max(first - clip_sec / 2, 0.0), duration_sec - clip_sec)
    return int(start * fps) / fps


def _input_sample(frames: np.ndarray, audio: np.ndarray, v_start_sec: float, clip_sec: float, fps: float,
                  sample_rate: int, geo: Geometry, short_side: int | None) -> dict:
    """In-sync model input of the window (eval transforms) from whole-clip arrays (T, H, W, 3) uint8 and (N,)."""
    k0 = int(v_start_sec * fps + 1e-6)
    n = int(round(clip_sec * fps))
    a0 = int(round(k0 / fps * sample_rate))
    na = int(round(clip_sec * sample_rate))
    if k0 + n > len(frames) or a0 + na > len(audio):
        raise ValueError(f"window at {v_start_sec} s does not fit the clip ({len(frames)} frames, "
                         f"{len(audio)} samples)")
    video = torch.from_numpy(np.ascontiguousarray(frames[k0:k0 + n])).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    if short_side is not None and short_side != video.shape[-1]:
        import torchvision.transforms.functional as TF

        video = TF.resize(video, [short_side], antialias=True)
    wave = torch.from_numpy(np.ascontiguousarray(audio[a0:a0 + na], dtype=np.float32))
    return eval_transforms(geo)({"video": video, "audio": wave})


def score_clips(model: torch.nn.Module, clips: Sequence[Mapping[str, Any]], geo: Geometry,
                short_side: int | None = None, label: str = "", device: str | torch.device = "cpu",
                keep_maps: bool = False) -> tuple[pd.DataFrame, list[dict]]:
    """Localisation table of ``model`` over synthetic clips (in sync, one window per clip around its first event).

    Args:
        clips: dicts with "frames" (T, S, S, 3) uint8, "audio" (N,) float and "sidecar" (as ``synthetic.generate_clip``
            returns, or decoded from disk); clips without events are skipped.
        geo: the model's geometry (window, rates, crop, spectrogram).
        short_side: resize the frames' short side before the crop (None: as generated).

    Returns:
        (table of ``localisation_table``, per-clip records {"id", "v_start_sec", "boxes", "events", ["maps", "video",
        "audio"]}).
    """
    vgrid, agrid = model_grids(model)
    model = model.to(device)
    vmaps, amaps, boxes, events, records = [], [], [], [], []
    for clip in clips:
        sc = clip["sidecar"]
        if not sc["event_onsets_sec"]:
            continue
        v0 = event_window_start(sc["event_onsets_sec"], float(sc["duration_sec"]), geo.clip_sec, geo.fps)
        b, ev = window_ground_truth(sc, v0, geo.clip_sec, geo.crop, short_side)
        sample = _input_sample(clip["frames"], clip["audio"], v0, geo.clip_sec, geo.fps,
                               geo.sample_rate, geo, short_side)
        _, attn = record_attention(model, sample["video"][None].to(device), sample["audio"][None].to(device))
        maps = selector_maps(attn, vgrid, agrid)
        vmaps.append(maps["visual"][0])
        amaps.append(maps["audio"][0])
        boxes.append(b)
        events.append(ev)
        rec = {"id": sc.get("id"), "v_start_sec": v0, "boxes": b, "events": ev}
        if keep_maps:
            rec.update(maps={k: v[0] for k, v in maps.items()}, video=sample["video"], audio=sample["audio"])
        records.append(rec)
    if not records:
        raise ValueError("no clip with events to score")
    table = localisation_table(np.stack(vmaps), boxes, events, geo.fps, (geo.crop, geo.crop),
                               amaps=np.stack(amaps), clip_sec=geo.clip_sec, label=label)
    return table, records


def score_models(models: Mapping[str, torch.nn.Module], clips: Sequence[Mapping[str, Any]], geo: Geometry,
                 short_side: int | None = None, device: str | torch.device = "cpu") -> pd.DataFrame:
    """``score_clips`` for several models (e.g. {"trained": m1, "untrained": m0}) on the same clips, one table."""
    return pd.concat([score_clips(m, clips, geo, short_side, label, device)[0] for label, m in models.items()],
                     ignore_index=True)


def read_synthetic_clip(root: str | Path, cid: str) -> dict:
    """A synthetic clip from disk as ``synthetic.generate_clip`` returns it: {"id", "frames", "audio", "sidecar"}.

    Frames are decoded at the sidecar's fps and native size, audio at its sample rate (mono).
    """
    from paperlib.core.media import read_audio, read_video
    from paperlib.data.synthetic import load_sidecar, video_path

    sc = load_sidecar(root, cid)
    path = video_path(root, sc["id"])
    frames = read_video(path, 0.0, None, fps=float(sc["fps"]))  # (T, S, S, 3) uint8
    audio = read_audio(path, 0.0, None, sample_rate=int(sc["sample_rate"]), mono=True)  # (N,)
    return {"id": sc["id"], "frames": frames, "audio": audio, "sidecar": sc}


# ----------------------------------------------------------------------------------------------------------------------
# The figure (style of Figs. 5 and 8)
# ----------------------------------------------------------------------------------------------------------------------
def head_maps(maps: Mapping[str, np.ndarray], layer: int, head: int, selector: int | None = None) -> dict:
    """One layer and head of ``selector_maps`` output for one clip ((L, heads, S, ...) arrays), min-max scaled.

    ``selector`` None averages the selectors (where the head as a whole looks). Returns {"visual": (t, h, w),
    "audio": (f, ta)} in [0, 1], each scaled over its whole map.
    """
    out = {}
    for name, m in maps.items():
        m = np.asarray(m)
        if not (0 <= layer < m.shape[0] and 0 <= head < m.shape[1]):
            raise ValueError(f"layer {layer} / head {head} out of range for {name} maps of shape {m.shape}")
        sel = m[layer, head].mean(axis=0) if selector is None else m[layer, head, selector]
        out[name] = minmax(sel)
    return out


def plot_attention(frames: np.ndarray, spec: np.ndarray, vmap: np.ndarray, amap: np.ndarray | None,
                   out_stem: str | Path, n_show: int = 8, boxes: np.ndarray | None = None,
                   events: Sequence[float] | None = None, clip_sec: float | None = None, title: str = "",
                   alpha: float = 0.5) -> list[Path]:
    """Figs. 5/8 style: ``n_show`` frames with the visual map overlaid, the spectrogram with the audio map; png + pdf.

    Args:
        frames: (T, H, W, 3) uint8 (the cropped input); spec: (F, Ta) model input spectrogram.
        vmap: (t, h, w) in [0, 1]; amap: (f, ta) in [0, 1] or None.
        boxes: optional (T, 4) source boxes drawn on the shown frames; events: optional event times (s) marked on the
            spectrogram (needs ``clip_sec``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    T, H, W, _ = frames.shape
    heat = upsample_visual(vmap, T, (H, W))  # (T, H, W)
    shown = np.linspace(0, T - 1, n_show).round().astype(int)
    over = overlay(frames[shown], heat[shown], alpha)
    fig = plt.figure(figsize=(1.6 * n_show + 0.9, 1.6 + 1.9))
    # the last, narrow column holds the colour bar of the attention (min-max scaled, 0 = least, 1 = most attended)
    gs = fig.add_gridspec(2, n_show + 1, height_ratios=[1.6, 1.9], width_ratios=[1.0] * n_show + [0.12], hspace=0.25,
                          wspace=0.04)
    for j, fi in enumerate(shown):
        ax = fig.add_subplot(gs[0, j])
        ax.imshow(over[j])
        if boxes is not None and np.all(np.isfinite(boxes[fi])):
            x0, y0, x1, y1 = boxes[fi]
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=0.8))
        ax.set_title(f"frame {fi}", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(gs[1, :n_show])
    spec = np.asarray(spec, dtype=np.float32)
    ax.imshow(minmax(spec), origin="lower", aspect="auto", cmap="gray")
    if amap is not None:
        up = upsample_audio(amap, spec.shape)
        ax.imshow(colorize(up), origin="lower", aspect="auto", alpha=alpha)
    if events is not None and clip_sec:
        for e in events:
            ax.axvline(e / clip_sec * spec.shape[1], color="lime", lw=0.8, ls="--")
    ax.set_xlabel("spectrogram frame")
    ax.set_ylabel("frequency bin")
    handles = []
    if boxes is not None:
        handles.append(Line2D([], [], color="lime", lw=1.2, label="sound source (ground-truth box)"))
    if events is not None and clip_sec:
        handles.append(Line2D([], [], color="lime", lw=0.8, ls="--", label="event times"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.8)
    cbar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), cax=fig.add_subplot(gs[:, n_show]))
    cbar.set_label("attention (min-max scaled)", fontsize=7)
    cbar.ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------------------------------------------------
# One window of a real video: python -m paperlib attention VIDEO --checkpoint CKPT --out DIR
# ----------------------------------------------------------------------------------------------------------------------
def video_attention(checkpoint: str | Path, video: str | Path, out_dir: str | Path, *, layer: int | None = None,
                    head: int | None = None, selector: int | None = None, v_start: float = 0.0,
                    inject_offset: float = 0.0, n_frames: int = 8, device: str = "auto") -> list[Path]:
    """Selector attention maps of one window of a real video: the raw maps (``<stem>_attention.npz``) and the overlay
    figure of one layer and head (png/pdf) under ``out_dir``; returns [npz, png, pdf].

    ``layer`` defaults to the last selector layer; ``head`` to the most peaked one (highest max / mean of its
    selector-mean visual map); ``selector`` to the mean over selectors. The window starts at ``v_start`` s in the
    video, the audio ``inject_offset`` s later. Raises :class:`paperlib.core.media.MediaError` when the file has no
    picture or sound, or no such window.
    """
    path = Path(video)
    pred = load_predictor(checkpoint, device=device)
    d = pred.geometry
    info = probe(path)
    if info.video is None or info.audio is None:
        raise MediaError(f"{path}: a video with both picture and sound is needed")
    starts = window_starts(info.n_frames_at(d.fps) / d.fps, info.n_samples_at(d.sample_rate) / d.sample_rate,
                           d.clip_sec, d.clip_sec, d.fps, d.sample_rate, inject_offset, v_start)
    if not starts:
        raise MediaError(f"{path}: no {d.clip_sec:g} s window at {v_start} s (offset {inject_offset})")
    v0, a0 = starts[0]
    frames = read_video(path, v0, d.clip_sec, fps=d.fps, size=pred.short_side)  # (T, H, W, 3) uint8
    wave = read_audio(path, a0, d.clip_sec, sample_rate=d.sample_rate, mono=True)  # (N,)
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
    sample = eval_transforms(d)({"video": clip, "audio": torch.from_numpy(wave)})
    logits, attn = record_attention(pred.model, sample["video"][None].to(pred.device),
                                    sample["audio"][None].to(pred.device))
    vgrid, agrid = model_grids(pred.model)
    maps = {k: v[0] for k, v in selector_maps(attn, vgrid, agrid).items()}  # (L, heads, S, ...)
    layer = maps["visual"].shape[0] - 1 if layer is None else layer
    if head is None:  # the head whose (selector-mean) visual map is most peaked: highest max / mean
        vm = maps["visual"][layer].mean(axis=1)  # (heads, t, h, w)
        head = int(np.argmax(vm.reshape(len(vm), -1).max(1) / vm.reshape(len(vm), -1).mean(1)))
    chosen = head_maps(maps, layer, head, selector)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    probs = logits.float().softmax(-1)[0].cpu().numpy()
    npz = out / f"{path.stem}_attention.npz"
    np.savez_compressed(npz, visual=maps["visual"], audio=maps.get("audio"),
                        visual_grid=np.array(vgrid), audio_grid=np.array(agrid), v_start_sec=v0, a_start_sec=a0,
                        probs=probs, grid_sec=pred.grid, layer=layer, head=head)
    video_u8 = denormalize_frames(sample["video"])
    title = (f"{path.name} [{v0:.2f}, {v0 + d.clip_sec:.2f}) s, layer {layer} head {head}"
             f"{'' if selector is None else f' selector {selector}'}; predicted offset "
             f"{pred.grid[int(probs.argmax())]:+.1f} s (p={probs.max():.2f})")
    figures = plot_attention(video_u8, sample["audio"][0].numpy(), chosen["visual"], chosen.get("audio"),
                             out / f"{path.stem}_attention_L{layer}H{head}", n_show=n_frames, title=title)
    return [npz, *figures]
