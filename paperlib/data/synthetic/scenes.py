"""The scenes of the synthetic clips and ``generate_clip``: a talker whose mouth follows its speech (dense settings) or
an object whose action reaches its contact instant when its sound starts (sparse setting), among distractors."""

from __future__ import annotations

from typing import Any

import numpy as np

from paperlib.data.synthetic.config import GENERATOR_VERSION, SIDECAR_FORMAT, SPARSE_CLASSES, SynthConfig, clip_id
from paperlib.data.synthetic.drawing import Part, background, part, parts_box, render
from paperlib.data.synthetic.signals import (TWO_PI, coloured_noise, event_sound, event_times, smooth, speech_audio,
                                             syllable_envelope, syllables, talker_traits)


# ----------------------------------------------------------------------------------------------------------------------
# dense settings: a talker

def _talker_parts(talker: dict, T: int, cx, cy, R, opening, blink) -> tuple[list[Part], int]:
    """Parts of a talker whose head (half-height ``R`` px) is centred at (cx, cy); returns the parts and the index of
    the lips part (the sound source)."""
    asp, mw = talker["aspect"], talker["mouth_w"]
    skin = talker["skin"]
    my = cy + 0.45 * R
    parts = [
        part("ellipse", T, cx, cy + 1.25 * R, 1.0 * R, 0.45 * R, talker["shirt"]),  # shoulders
        part("rect", T, cx, cy + 0.9 * R, 0.28 * R, 0.3 * R, skin * 0.9),  # neck
        part("ellipse", T, cx, cy - 0.12 * R, asp * R * 1.08, 0.98 * R, talker["hair"]),  # hair
        part("ellipse", T, cx, cy, asp * R, R, skin),  # head
        part("ellipse", T, cx - 0.36 * asp * R, cy - 0.18 * R, 0.12 * R, 0.07 * R * (1 - blink), [0.1, 0.08, 0.08]),
        part("ellipse", T, cx + 0.36 * asp * R, cy - 0.18 * R, 0.12 * R, 0.07 * R * (1 - blink), [0.1, 0.08, 0.08]),
        part("ellipse", T, cx, cy + 0.1 * R, 0.07 * R, 0.13 * R, skin * 0.8),  # nose
        part("ellipse", T, cx, my, mw * R * (1 + 0.08 * opening), (0.07 + 0.2 * opening) * R, talker["lips"]),
        part("ellipse", T, cx, my, 0.82 * mw * R, (0.012 + 0.19 * opening) * R, [0.12, 0.03, 0.03]),  # mouth
    ]
    return parts, 7


def _blinks(rng: np.random.Generator, tf: np.ndarray) -> np.ndarray:
    """Eye closure in [0, 1] per frame: blinks as a Poisson process (0.3/s) started before the clip, 150 ms each."""
    times = np.cumsum(rng.exponential(1 / 0.3, 12)) - rng.uniform(0, 4)
    b = np.zeros_like(tf)
    for tb in times:
        b = np.maximum(b, np.clip(1 - np.abs(tf - tb) / 0.075, 0, 1))
    return b


def _dense_scene(cfg: SynthConfig, rng: np.random.Generator, trng: np.random.Generator) -> dict[str, Any]:
    S, T, sr = cfg.size, int(round(cfg.duration_sec * cfg.fps)), cfg.sample_rate
    n = int(round(cfg.duration_sec * sr))
    tf = np.arange(T) / cfg.fps
    talker = talker_traits(trng)
    syl = syllables(rng, talker["rate"], cfg.duration_sec)
    audio = speech_audio(rng, talker, syl, n, sr)
    # mouth opening: the syllable envelope averaged over +-20 ms around each frame time (no lag), plus a little wobble
    sub = np.linspace(-0.02, 0.02, 5)
    opening = syllable_envelope(syl, (tf[:, None] + sub[None]).ravel()).reshape(T, -1).mean(1)
    opening = np.clip(opening + 0.03 * smooth(rng, tf, 0.2, 1.0), 0, 1.1)
    blink = _blinks(rng, tf)
    if cfg.setting == "dense-crop":
        R = 0.42 * S * (1 + 0.03 * smooth(rng, tf, 0.05, 0.3))
        cx = 0.5 * S + 0.03 * S * smooth(rng, tf, 0.05, 0.4)
        cy = 0.47 * S + 0.02 * S * smooth(rng, tf, 0.05, 0.4)
        bg = background(rng, S, talker["bg"][0], talker["bg"][1], clutter=3)
        parts, src = _talker_parts(talker, T, cx, cy, R, opening, blink)
    else:
        R0 = rng.uniform(0.14, 0.2) * S
        R = R0 * (1 + 0.03 * smooth(rng, tf, 0.05, 0.3))
        lo, hi = 0.12 * S + R0, 0.88 * S - R0  # keep the head inside the centre-crop region
        cx = rng.uniform(lo, hi) + 0.04 * S * smooth(rng, tf, 0.02, 0.15)
        cy = rng.uniform(lo, hi - 0.3 * R0) + 0.03 * S * smooth(rng, tf, 0.02, 0.15)
        bg = background(rng, S, rng.uniform(0.2, 0.8, 3), rng.uniform(0.2, 0.8, 3), clutter=int(rng.integers(12, 25)))
        distractors = _moving_distractors(rng, S, tf, int(rng.integers(3, 6)))
        if rng.random() < 0.3:  # a second, silent talker whose mouth moves with speech nobody hears
            other = talker_traits(rng)
            osyl = syllables(rng, other["rate"], cfg.duration_sec)
            oopen = syllable_envelope(osyl, tf)
            oR = rng.uniform(0.12, 0.18) * S
            ocx = rng.uniform(0.1, 0.9) * S + 0.04 * S * smooth(rng, tf, 0.02, 0.15)
            ocy = rng.uniform(0.1, 0.9) * S + 0.03 * S * smooth(rng, tf, 0.02, 0.15)
            distractors += _talker_parts(other, T, ocx, ocy, oR, oopen, _blinks(rng, tf))[0]
        talker_parts, src = _talker_parts(talker, T, cx, cy, R, opening, blink)
        # the distractors may pass behind the talker but not in front of the mouth: draw the talker last
        parts, src = distractors + talker_parts, len(distractors) + src
    gain = 1.0 + 0.03 * smooth(rng, tf, 0.05, 0.5)
    frames = render(bg, parts, T, gain, 0.012, rng)
    sidecar = {
        "label": "speech",
        "classes": ["speech"],
        "event_onsets_sec": [round(float(v), 5) for v in syl[:, 0] if 0.0 <= v < cfg.duration_sec],
        "event_classes": ["syllable"] * int(((syl[:, 0] >= 0) & (syl[:, 0] < cfg.duration_sec)).sum()),
        "syllables": [[round(float(a), 5), round(float(b), 5), round(float(c), 4)] for a, b, c in syl],
        "mouth_opening": [round(float(v), 4) for v in opening],
        "talker": {"f0_hz": round(talker["f0"], 2), "syllable_rate_hz": round(talker["rate"], 3)},
        "source_boxes": parts_box([parts[src]], S).tolist(),
        "offscreen_onsets_sec": [],
        "offscreen_classes": [],
    }
    return {"frames": frames, "audio": audio, "sidecar": sidecar}


def _moving_distractors(rng: np.random.Generator, S: int, tf: np.ndarray, n: int) -> list[Part]:
    """Silent moving shapes on smooth random paths; about half pulsate at 2-7 Hz (random phase), like a mouth would."""
    T = len(tf)
    parts = []
    for _ in range(n):
        r = rng.uniform(0.04, 0.09) * S
        cx = rng.uniform(0.1, 0.9) * S + rng.uniform(0.05, 0.25) * S * smooth(rng, tf, 0.05, 0.4)
        cy = rng.uniform(0.1, 0.9) * S + rng.uniform(0.05, 0.25) * S * smooth(rng, tf, 0.05, 0.4)
        puls = 1.0 + (rng.random() < 0.5) * 0.3 * np.sin(TWO_PI * rng.uniform(2, 7) * tf + rng.uniform(0, TWO_PI))
        parts.append(part(rng.choice(["rect", "ellipse"]), T, cx, cy, r * puls, r * rng.uniform(0.6, 1.4) * puls,
                           rng.uniform(0, 1, 3)))
    return parts


# ----------------------------------------------------------------------------------------------------------------------
# sparse setting: event objects

def _ease(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _nearest_tau(tf: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Per frame, time since the nearest event (s); +inf when there is none."""
    if len(times) == 0:
        return np.full_like(tf, np.inf)
    d = tf[:, None] - np.asarray(times)[None]
    return d[np.arange(len(tf)), np.abs(d).argmin(1)]


def _object_parts(kind: str, rng: np.random.Generator, tf: np.ndarray, times: np.ndarray, bx: np.ndarray,
                  by: np.ndarray, s: float) -> list[Part]:
    """The parts of an event object of class ``kind`` centred near (bx, by) with half-size ``s`` px. Each action spans
    tau in [-0.6, +0.6] s around its contact instant (tau = 0), where the sound starts; idle outside."""
    T = len(tf)
    tau = _nearest_tau(tf, times)
    act = np.isfinite(tau)
    ta = np.where(act, tau, 10.0)
    col = lambda base: np.clip(np.asarray(base) + rng.uniform(-0.08, 0.08, 3), 0, 1)  # noqa: E731
    P = lambda *a, **k: part(*a, **k)  # noqa: E731
    if kind == "bounce":  # thrown up at -0.5, apex at -0.25, lands at 0 (squash)
        r = 0.42 * s
        h = np.where((ta > -0.5) & (ta < 0), 1.5 * s * (1 - ((ta + 0.25) / 0.25) ** 2), 0.0)
        sq = np.where(ta >= 0, np.exp(-np.maximum(ta, 0) / 0.05), 0.0)
        ry, rx = r * (1 - 0.35 * sq), r * (1 + 0.25 * sq)
        ground = by + 0.9 * s
        return [P("rect", T, bx, ground + 0.06 * s, 1.1 * s, 0.1 * s, col([0.2, 0.2, 0.2])),
                P("ellipse", T, bx, ground - ry - h, rx, ry, col([0.9, 0.3, 0.1]))]
    if kind in ("hammer", "chop"):  # raised slowly from -0.6 to -0.15 (or -0.1), then a fast strike down at 0
        fast = 0.15 if kind == "hammer" else 0.1
        top = 1.1 * s if kind == "hammer" else 1.3 * s
        lift = np.where((ta >= -0.6) & (ta < -fast), top * _ease((ta + 0.6) / 0.15), 0.0)
        lift = np.where((ta >= -fast) & (ta < 0), top * np.clip(-ta / fast, 0, 1) ** 2, lift)
        lift = np.where((ta >= 0) & (ta < 0.08), 0.12 * s * np.sin(np.pi * ta / 0.08), lift)
        if kind == "hammer":
            anvil_y = by + 0.7 * s
            head_y = anvil_y - 0.2 * s - 0.2 * s - lift
            return [P("rect", T, bx, anvil_y, 0.8 * s, 0.2 * s, col([0.35, 0.35, 0.4])),
                    P("rect", T, bx + 0.5 * s, head_y, 0.45 * s, 0.07 * s, col([0.55, 0.35, 0.15])),
                    P("rect", T, bx, head_y, 0.3 * s, 0.2 * s, col([0.8, 0.8, 0.85]))]
        log_y = by + 0.6 * s
        split = np.where(ta >= 0, 0.3 * s * (1 - np.exp(-np.maximum(ta, 0) / 0.04)), 0.0)
        split *= np.where(ta > 0.25, 1 - _ease((ta - 0.25) / 0.35), 1.0)
        blade_y = log_y - 0.3 * s - 0.3 * s - lift
        wood = col([0.55, 0.35, 0.18])
        return [P("ellipse", T, bx - 0.4 * s - split, log_y, 0.42 * s, 0.3 * s, wood),
                P("ellipse", T, bx + 0.4 * s + split, log_y, 0.42 * s, 0.3 * s, wood),
                P("rect", T, bx, blade_y, 0.16 * s, 0.3 * s, col([0.85, 0.85, 0.9]))]
    if kind == "clap":  # hands approach from -0.25, touch at 0, part again by 0.3
        gap = np.full(T, 0.7 * s)
        gap = np.where((ta >= -0.25) & (ta < 0), 0.25 * s + 0.45 * s * np.clip(-ta / 0.25, 0, 1) ** 1.5, gap)
        gap = np.where((ta >= 0) & (ta < 0.3), 0.25 * s + 0.45 * s * _ease(ta / 0.3), gap)
        skin = col([0.9, 0.7, 0.55])
        return [P("rect", T, bx - gap, by, 0.25 * s, 0.5 * s, skin),
                P("rect", T, bx + gap, by, 0.25 * s, 0.5 * s, skin)]
    if kind == "bark":  # head jerks forward around 0; the jaw drops from 0 to 0.1 and closes by 0.25
        jerk = 0.15 * s * np.clip(1 - np.abs(ta) / 0.12, 0, 1)
        op = np.where((ta >= 0) & (ta < 0.25), np.sin(np.pi * np.clip(ta / 0.25, 0, 1)), 0.0)
        fur = col([0.45, 0.3, 0.15])
        return [P("ellipse", T, bx - 0.5 * s + jerk, by - 0.55 * s, 0.15 * s, 0.3 * s, fur * 0.7),  # ear
                P("ellipse", T, bx + 0.35 * s + jerk, by + 0.3 * s + 0.35 * s * op, 0.4 * s, 0.14 * s, fur * 0.8),
                P("ellipse", T, bx + jerk, by, 0.6 * s, 0.42 * s, fur),
                P("ellipse", T, bx + 0.45 * s + jerk, by + 0.28 * s + 0.18 * s * op, 0.3 * s, 0.03 * s + 0.15 * s * op,
                  [0.15, 0.02, 0.02], alpha=np.clip(op * 3, 0, 1))]
    if kind == "door":  # ajar; swings shut over [-0.4, 0] (accelerating); re-opens slowly over [0.3, 0.6]
        closed = np.full(T, 0.25)
        closed = np.where((ta >= -0.4) & (ta < 0), 0.25 + 0.75 * ((ta + 0.4) / 0.4) ** 2, closed)
        closed = np.where((ta >= 0) & (ta < 0.3), 1.0, closed)
        closed = np.where((ta >= 0.3) & (ta < 0.6), 1.0 - 0.75 * _ease((ta - 0.3) / 0.3), closed)
        w = 1.1 * s * closed
        return [P("rect", T, bx, by, 0.65 * s, 0.95 * s, col([0.15, 0.12, 0.1])),
                P("rect", T, bx - 0.55 * s + w / 2, by, w / 2, 0.85 * s, col([0.7, 0.5, 0.3]))]
    if kind == "crack":  # a pane flashes and cracks at 0; the crack fades over [0.3, 0.6]
        flash = np.where(ta >= 0, 0.35 * np.exp(-np.maximum(ta, 0) / 0.06), 0.0)
        pane = np.clip(col([0.7, 0.85, 0.95])[None] + flash[:, None], 0, 1)
        crack = np.where((ta >= 0) & (ta < 0.6), 1.0 - _ease((ta - 0.3) / 0.3), 0.0)
        dark = [0.1, 0.15, 0.2]
        return [P("rect", T, bx, by, 0.8 * s, 0.6 * s, pane),
                P("rect", T, bx - 0.2 * s, by - 0.2 * s, 0.3 * s, 0.04 * s, dark, alpha=crack),
                P("rect", T, bx + 0.05 * s, by, 0.04 * s, 0.35 * s, dark, alpha=crack),
                P("rect", T, bx + 0.25 * s, by + 0.25 * s, 0.25 * s, 0.04 * s, dark, alpha=crack)]
    if kind == "strike":  # a ball rolls in over [-0.6, 0], hits the pins at 0, pins fly and are reset by 0.6
        ball_x = bx + 0.05 * s - 1.0 * s * (-ta / 0.6)
        ball_x = np.where(ta >= 0, bx + 0.05 * s + 0.6 * s * np.clip(ta, 0, 0.3), ball_x)
        ball_a = np.where((ta >= -0.6) & (ta < 0.3), np.clip((ta + 0.6) / 0.08, 0, 1) * np.clip((0.3 - ta) / 0.1, 0, 1),
                          0.0)
        fly = np.where((ta >= 0) & (ta < 0.45), 0.6 * s * (1 - np.exp(-np.maximum(ta, 0) / 0.08)), 0.0)
        pin_a = np.where((ta >= 0.3) & (ta < 0.45), 1 - _ease((ta - 0.3) / 0.15), 1.0)
        pin_a = np.where((ta >= 0.45) & (ta < 0.6), _ease((ta - 0.45) / 0.15), pin_a)  # reset, fading back in
        pins = []
        for k, dy in enumerate((-0.45, 0.0, 0.45)):
            pins.append(P("rect", T, bx + 0.45 * s + 0.2 * s * k + 0.5 * fly, by + dy * s + np.sign(dy) * fly,
                          0.08 * s, 0.22 * s, col([0.95, 0.95, 0.95]), alpha=np.clip(pin_a, 0, 1)))
        return pins + [P("ellipse", T, ball_x, by, 0.24 * s, 0.24 * s, col([0.1, 0.1, 0.3]), alpha=ball_a)]
    raise ValueError(f"unknown event class {kind!r}; classes: {SPARSE_CLASSES}")


def _sparse_scene(cfg: SynthConfig, rng: np.random.Generator, index: int) -> dict[str, Any]:
    S, T, sr = cfg.size, int(round(cfg.duration_sec * cfg.fps)), cfg.sample_rate
    n = int(round(cfg.duration_sec * sr))
    tf = np.arange(T) / cfg.fps
    t = np.arange(n) / sr
    kind = SPARSE_CLASSES[index % len(SPARSE_CLASSES)]  # balanced classes
    n_events = int(rng.choice(len(cfg.event_count_probs), p=np.asarray(cfg.event_count_probs, float)))
    times = event_times(rng, n_events, cfg.duration_sec, cfg.min_event_gap_sec)
    # the object: half-size s so that its box (about 2.2 s x 2.2 s) covers <= ~5% of the frame
    s = rng.uniform(0.075, 0.1) * S
    margin = 0.1 * S + 1.6 * s
    bx = rng.uniform(margin, S - margin) + 0.02 * S * smooth(rng, tf, 0.03, 0.2)
    by = rng.uniform(margin, S - margin) + 0.02 * S * smooth(rng, tf, 0.03, 0.2)
    obj = _object_parts(kind, rng, tf, times, bx, by, s)
    bg = background(rng, S, rng.uniform(0.25, 0.8, 3), rng.uniform(0.25, 0.8, 3), clutter=int(rng.integers(10, 25)))
    distractors = _moving_distractors(rng, S, tf, int(rng.integers(2, 4)))
    # a silently bouncing ball: periodic vertical motion with contacts that make no sound
    r = rng.uniform(0.03, 0.05) * S
    f_b = rng.uniform(0.6, 1.5)
    floor_y = rng.uniform(0.4, 0.9) * S
    hop = floor_y - r - rng.uniform(0.08, 0.2) * S * np.abs(np.sin(np.pi * f_b * tf + rng.uniform(0, np.pi)))
    distractors.append(part("ellipse", T, rng.uniform(0.1, 0.9) * S + 0.1 * S * smooth(rng, tf, 0.02, 0.1), hop,
                             r, r, rng.uniform(0, 1, 3)))
    decoy = None
    if rng.random() < 0.5:  # an object of another class acting silently
        decoy = SPARSE_CLASSES[int(rng.integers(0, len(SPARSE_CLASSES)))]
        ds = rng.uniform(0.06, 0.09) * S
        dm = 0.1 * S + 1.6 * ds
        dtimes = event_times(rng, int(rng.integers(1, 3)), cfg.duration_sec, cfg.min_event_gap_sec)
        distractors += _object_parts(decoy, rng, tf, dtimes, np.full(T, rng.uniform(dm, S - dm)),
                                     np.full(T, rng.uniform(dm, S - dm)), ds)
    parts = distractors + obj  # the sound source is never occluded
    gain = 1.0 + 0.03 * smooth(rng, tf, 0.05, 0.5)
    frames = render(bg, parts, T, gain, 0.012, rng)
    # audio: ambient noise + hum + events + off-screen sounds
    audio = rng.uniform(0.004, 0.015) * coloured_noise(rng, n, sr, rng.uniform(0.5, 1.5))
    if rng.random() < 0.6:
        f_hum = float(rng.choice([50.0, 60.0]))
        for k in (1, 2, 3):
            audio += rng.uniform(0.0, 0.015) / k * np.sin(TWO_PI * k * f_hum * t + rng.uniform(0, TWO_PI))
    for te in times:
        _add_at(audio, event_sound(kind, rng, sr) * rng.uniform(0.3, 0.7), te, sr)
    n_off = int(rng.choice(3, p=[0.4, 0.4, 0.2]))
    off_times = np.sort(rng.uniform(0.0, cfg.duration_sec, n_off))
    off_classes = [SPARSE_CLASSES[int(rng.integers(0, len(SPARSE_CLASSES)))] for _ in range(n_off)]
    for te, k in zip(off_times, off_classes):
        _add_at(audio, event_sound(k, rng, sr) * rng.uniform(0.1, 0.4), te, sr)
    sidecar = {
        "label": kind,
        "classes": [kind],
        "event_onsets_sec": [round(float(v), 5) for v in times],
        "event_classes": [kind] * len(times),
        "object_half_size_px": round(float(s), 3),
        "decoy_class": decoy,
        "source_boxes": parts_box(obj, S).tolist(),
        "offscreen_onsets_sec": [round(float(v), 5) for v in off_times],
        "offscreen_classes": off_classes,
    }
    return {"frames": frames, "audio": audio, "sidecar": sidecar}


def _add_at(audio: np.ndarray, snd: np.ndarray, t_sec: float, sr: int) -> None:
    i = int(round(t_sec * sr))
    j = min(len(audio), i + len(snd))
    if i < j:
        audio[i:j] += snd[: j - i]


# ----------------------------------------------------------------------------------------------------------------------
# one clip

def generate_clip(cfg: SynthConfig, index: int) -> dict[str, Any]:
    """Generate clip ``index`` of the dataset ``cfg`` in memory.

    Returns: {"id", "frames": (T, S, S, 3) uint8, "audio": (N,) float32 in [-1, 1], "sidecar": dict}.
    Deterministic in (cfg, index): the random stream is ``default_rng([seed, index])``; for dense settings the talker's
    traits come from ``default_rng([seed, 1_000_003, video])`` so all clips of one "video" share a talker.
    """
    cfg.validate()
    rng = np.random.default_rng([cfg.seed, index])
    if cfg.setting == "sparse":
        out = _sparse_scene(cfg, rng, index)
    else:
        trng = np.random.default_rng([cfg.seed, 1_000_003, index // cfg.clips_per_video])
        out = _dense_scene(cfg, rng, trng)
    audio = np.clip(out["audio"], -1.0, 1.0).astype(np.float32)
    cid = clip_id(cfg, index)
    sc = {"format": SIDECAR_FORMAT, "generator_version": GENERATOR_VERSION, "id": cid, "setting": cfg.setting,
          "seed": cfg.seed, "index": index, "size": cfg.size, "fps": cfg.fps, "sample_rate": cfg.sample_rate,
          "duration_sec": cfg.duration_sec, "box_format": "x0,y0,x1,y1 px, half-open, one per frame"}
    sc.update(out["sidecar"])
    return {"id": cid, "frames": out["frames"], "audio": audio, "sidecar": sc}
