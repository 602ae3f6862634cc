"""Drawing of the synthetic scenes: a scene is a list of parts (soft-edged ellipses or rectangles with per-frame
geometry) drawn over a background with static clutter, then rendered to uint8 frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


# ----------------------------------------------------------------------------------------------------------------------
# drawing: a scene is a list of parts (soft-edged ellipses or rectangles with per-frame geometry)

@dataclass
class Part:
    shape: str  # "ellipse" | "rect"
    cx: np.ndarray  # (T,) centre x (px)
    cy: np.ndarray  # (T,) centre y (px)
    rx: np.ndarray  # (T,) half-width (px)
    ry: np.ndarray  # (T,) half-height (px)
    color: np.ndarray  # (3,) or (T, 3) RGB in [0, 1]
    alpha: np.ndarray  # (T,) opacity in [0, 1]


def part(shape: str, T: int, cx, cy, rx, ry, color, alpha=1.0) -> Part:
    b = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float32), (T,)).astype(np.float32)  # noqa: E731
    return Part(shape, b(cx), b(cy), np.maximum(b(rx), 0.3), np.maximum(b(ry), 0.3),
                 np.clip(np.asarray(color, dtype=np.float32), 0, 1), np.clip(b(alpha), 0, 1))


def composite(canvas: np.ndarray, parts: Sequence[Part], sl: slice) -> None:
    """Draw ``parts`` for frames ``sl`` onto ``canvas`` (n, H, W, 3) in place, with 1-px soft edges (sub-pixel motion
    stays visible at small sizes). Each part is evaluated only inside its bounding box over the chunk."""
    n, H, W, _ = canvas.shape
    for p in parts:
        cx, cy, rx, ry, al = p.cx[sl], p.cy[sl], p.rx[sl], p.ry[sl], p.alpha[sl]
        if not (al > 0).any():
            continue
        x0 = max(0, int(np.floor((cx - rx).min())) - 1)
        x1 = min(W, int(np.ceil((cx + rx).max())) + 2)
        y0 = max(0, int(np.floor((cy - ry).min())) - 1)
        y1 = min(H, int(np.ceil((cy + ry).max())) + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, None, :] - cx[:, None, None]  # (n, 1, w)
        dy = (np.arange(y0, y1, dtype=np.float32) + 0.5)[None, :, None] - cy[:, None, None]  # (n, h, 1)
        if p.shape == "ellipse":
            r = np.sqrt((dx / rx[:, None, None]) ** 2 + (dy / ry[:, None, None]) ** 2)
            d = (r - 1.0) * np.minimum(rx, ry)[:, None, None]
        else:
            d = np.maximum(np.abs(dx) - rx[:, None, None], np.abs(dy) - ry[:, None, None])
        a = np.clip(0.5 - d, 0.0, 1.0) * al[:, None, None]  # (n, h, w)
        col = p.color[sl][:, None, None, :] if p.color.ndim == 2 else p.color[None, None, None, :]
        region = canvas[:, y0:y1, x0:x1]
        region += a[..., None] * (col - region)


def parts_box(parts: Sequence[Part], size: int) -> np.ndarray:
    """Per-frame union box (T, 4) int [x0, y0, x1, y1) of the visible parts, clipped to the frame."""
    cx = np.stack([p.cx for p in parts])
    vis = np.stack([p.alpha > 0.05 for p in parts])
    lo_x = np.where(vis, cx - np.stack([p.rx for p in parts]), np.inf).min(0)
    hi_x = np.where(vis, cx + np.stack([p.rx for p in parts]), -np.inf).max(0)
    cy = np.stack([p.cy for p in parts])
    lo_y = np.where(vis, cy - np.stack([p.ry for p in parts]), np.inf).min(0)
    hi_y = np.where(vis, cy + np.stack([p.ry for p in parts]), -np.inf).max(0)
    box = np.stack([np.floor(lo_x), np.floor(lo_y), np.ceil(hi_x), np.ceil(hi_y)], 1)
    return np.clip(np.nan_to_num(box, posinf=0, neginf=0), 0, size).astype(int)


def _clutter(rng: np.random.Generator, size: int, n: int, muted: float = 0.6) -> list[Part]:
    """Static background clutter: ``n`` random rectangles and ellipses in muted colours."""
    parts = []
    for _ in range(n):
        col = muted * rng.uniform(0.1, 0.9, 3) + (1 - muted) * 0.5
        parts.append(part(rng.choice(["rect", "ellipse"]), 1, rng.uniform(0, size), rng.uniform(0, size),
                           rng.uniform(0.03, 0.2) * size, rng.uniform(0.03, 0.2) * size, col))
    return parts


def background(rng: np.random.Generator, size: int, top, bottom, clutter: int) -> np.ndarray:
    """(H, W, 3) float32: a vertical gradient, plus static clutter."""
    g = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    top, bottom = np.asarray(top, np.float32), np.asarray(bottom, np.float32)
    bg = (top * (1 - g) + bottom * g) * np.ones((1, size, 1), np.float32)  # (H, W, 3)
    bg = bg[None].copy()
    composite(bg, _clutter(rng, size, clutter), slice(0, 1))
    return bg[0]


def render(bg: np.ndarray, parts: Sequence[Part], T: int, gain: np.ndarray, noise_sigma: float,
            rng: np.random.Generator, chunk: int = 25) -> np.ndarray:
    """Render (T, H, W, 3) uint8: background, parts in order, a global illumination gain, per-frame luma noise drawn
    from a small bank of noise frames picked at random per frame (cheap, and not periodic)."""
    H, W, _ = bg.shape
    bank = (rng.standard_normal((8, H, W, 1)) * noise_sigma).astype(np.float32)
    pick = rng.integers(0, len(bank), T)
    out = np.empty((T, H, W, 3), np.uint8)
    for c0 in range(0, T, chunk):
        sl = slice(c0, min(T, c0 + chunk))
        canvas = np.repeat(bg[None], sl.stop - sl.start, 0)
        composite(canvas, parts, sl)
        canvas *= gain[sl, None, None, None]
        canvas += bank[pick[sl]]
        out[sl] = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
