"""The built-in synthetic audio-visual benchmark with ground truth (issue 4), mirroring the paper's settings (Sec. 5).

Settings (Table 2 of the paper):
    ``dense-crop``  "dense in time and space" (LRS3 face crop): one large talker fills the frame; its mouth opening
                    follows the envelope of a speech-like sound (harmonic source, pitch contour, formant-like
                    filtering, 3-6 Hz syllable amplitude modulation, fricative bursts, mild noise).
    ``dense-wide``  "dense in time, sparse in space" (LRS3 without face crop): the same kind of talker, small, at a
                    random place in a cluttered frame with moving (some pulsating) distractors and, in 30% of the
                    clips, a second talker whose mouth moves with speech nobody hears. With the same seed, dense-crop
                    and dense-wide clips share their audio and talker (as LRS3's two variants share their videos).
    ``sparse``      "sparse in time and space" (VGGSound-Sparse): one of 8 event classes (``SPARSE_CLASSES``); a small
                    object (its box covers at most ~5% of the frame) performs 0-3 actions per clip, each a
                    class-specific motion that reaches its contact instant exactly when a class-specific impulsive
                    sound starts. Distractors: silent moving shapes, a silently bouncing ball, in half of the clips a
                    silent decoy object of a random class doing its action, off-screen sounds with no visual,
                    stationary hum and ambient noise.

Every clip is 10 s, 25 fps, 16 kHz mono, H.264 yuv420p (CRF 10, as the official re-encoding) + AAC in mp4, written
with ``paperlib.core.media.write_video``; square frames of ``size`` px (256 is the paper geometry; 64-128 for CPU runs).

Layouts are the real datasets' (what ``paperlib.data.datasets``'s adapters read):
    dense   ``<root>/pretrain/<vid>/<clip>.mp4`` + ``<root>/lrs3_{train,valid,test}.txt`` (ids
            ``pretrain/<vid>/<clip>``), split 80/10/10 by "video" (one talker per video, ``clips_per_video`` clips),
            as LRS3 is split by YouTube id.
    sparse  ``<root>/video/<ytid>_<startms>_<endms>.mp4`` + ``<root>/vggsound_sparse.csv`` (no header,
            ``ytid,start,label,split``, split train/test) + ``<root>/picked_sparse_classes.csv`` (tab-separated,
            header ``class\tis_sparse``). ``<root>/vggsound_sparse_{train,valid,test}.txt`` give the 80/10/10 split;
            its train and valid rows are ``train`` in the CSV.
Plus ``<root>/sidecar/<clip id>.json`` (ground truth, ``load_sidecar``) and ``<root>/synth.json`` (manifest).

Ground truth: event onsets (s; for dense clips the syllable onsets), classes, the sound source's box per frame (dense:
the lips; ``[0, 0, 0, 0]`` when the source is invisible), off-screen sound onsets. ``has_cue`` is the oracle: is there
an event (or a syllable) inside both the visual and the audio window, with a margin, that makes the offset
identifiable? ``oracle_fraction`` over test items is the analogue of the paper's ~70% human oracle on VGGSound-Sparse.
``xcorr_baseline`` is a non-learned offset classifier on decoded windows (the signal is in the data).

Shortcut hygiene: every random process is stationary (random phases, renewal processes started before the clip,
event times uniform over the whole clip, distractor paths with random phases); no fades, no start transients, no
frame counter. Clip ``i`` draws from ``numpy.random.default_rng([seed, i])``, so content does not depend on workers.
What remains is what real data have too: H.264 puts its only key frame at frame 0 (libx264 defaults, as ``prepare``)
and AAC frames start at sample 0.

Deviations: the data are synthetic by design; square frames (LRS3 "no face crop" is 16:9); the mouth opening follows
the audio envelope with zero lag (real lips lead the voice by tens of ms); geometric primitives instead of faces and
objects. AAC priming is trimmed by the mp4 edit list when decoding with PyAV/FFmpeg, so sidecar times are decoded times
(onsets measured in decoded audio agree within 1 ms; tests/test_synthetic.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from paperlib.core.config import apply_overrides, to_dict

SETTINGS = ("dense-crop", "dense-wide", "sparse")
SPARSE_CLASSES = ("bounce", "hammer", "chop", "clap", "bark", "door", "crack", "strike")
# event_count_probs of the training clips of the plateau recipe's sparse step (README "What to expect ..."): 3-5 events
# per 10-s clip instead of 0-3, so most 5-s windows hold one or two cues; the test set keeps the defaults.
DENSE_EVENT_PROBS = (0.0, 0.0, 0.0, 0.3, 0.4, 0.3)
GENERATOR_VERSION = "1"
SIDECAR_FORMAT = "paperlib-synthetic-sidecar/1"
_TWO_PI = 2.0 * np.pi


@dataclass
class SynthConfig:
    setting: str = "dense-crop"  # one of SETTINGS
    size: int = 64  # frame side (px); square, even; 256 = paper geometry
    seed: int = 0  # dataset seed; clip i uses default_rng([seed, i])
    duration_sec: float = 10.0  # clip length (s)
    fps: int = 25  # video frame rate (frames/s)
    sample_rate: int = 16000  # audio rate (Hz)
    clips_per_video: int = 4  # dense: clips per synthetic talker ("video" id, the unit of the split)
    event_count_probs: tuple[float, ...] = (0.1, 0.3, 0.35, 0.25)  # sparse: P(0, 1, 2, 3 events per clip)
    min_event_gap_sec: float = 1.2  # sparse: minimum time between two events (their motions last [-0.6, +0.6] s)
    crf: int = 10  # libx264 constant rate factor (official re-encoding uses 10)
    x264_params: str = ""  # extra libx264 options, e.g. "keyint=1" (intra-only: no GOP/B-frame structure at all)
    split_fractions: tuple[float, ...] = (0.8, 0.1, 0.1)  # train / valid / test

    def validate(self) -> "SynthConfig":
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be an even number >= 16 (yuv420p), got {self.size}")
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError(f"split_fractions must be 3 numbers summing to 1, got {self.split_fractions}")
        p = np.asarray(self.event_count_probs, float)
        if p.ndim != 1 or len(p) < 1 or (p < 0).any() or abs(p.sum() - 1.0) > 1e-6:
            raise ValueError(f"event_count_probs must be probabilities summing to 1, got {self.event_count_probs}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (numpy SeedSequence entropy), got {self.seed}")
        if self.clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {self.clips_per_video}")
        return self


# ----------------------------------------------------------------------------------------------------------------------
# ids and layout

def clip_id(cfg: SynthConfig, index: int) -> str:
    """The dataset id of clip ``index``: ``pretrain/synVVVVV/CCCCC`` (dense), ``synIIIII_<startms>_<endms>``."""
    if cfg.setting == "sparse":
        start = int(np.random.default_rng([cfg.seed, index, 7]).integers(0, 30))  # a VGGSound-like start second
        return f"syn{index:05d}_{start * 1000}_{(start + int(round(cfg.duration_sec))) * 1000}"
    v, c = divmod(index, cfg.clips_per_video)
    return f"pretrain/syn{v:05d}/{c:05d}"


def video_path(root: str | os.PathLike, cid: str) -> Path:
    """Where the mp4 of clip ``cid`` lives under ``root`` (LRS3-like for dense ids, VGGSound-like for sparse ones)."""
    root = Path(root)
    return root / f"{cid}.mp4" if cid.startswith("pretrain/") else root / "video" / f"{cid}.mp4"


def sidecar_path(root: str | os.PathLike, cid: str) -> Path:
    return Path(root) / "sidecar" / f"{cid}.json"


def load_sidecar(root: str | os.PathLike, cid: str) -> dict[str, Any]:
    """Read the ground-truth sidecar of clip ``cid`` (an id as in the split lists; a trailing ``.mp4`` is ignored)."""
    cid = cid[:-4] if cid.endswith(".mp4") else cid
    path = sidecar_path(root, cid)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no sidecar for clip {cid!r} (is {root} a paperlib synthetic dataset?)")
    with open(path) as f:
        data = json.load(f)
    if data.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path}: not a {SIDECAR_FORMAT} sidecar (format={data.get('format')!r})")
    return data


# ----------------------------------------------------------------------------------------------------------------------
# random building blocks (all stationary: nothing anchored at t = 0)

def _smooth(rng: np.random.Generator, t: np.ndarray, fmin: float = 0.05, fmax: float = 0.5, n: int = 4) -> np.ndarray:
    """A smooth, zero-mean, unit-variance process: ``n`` sines with random frequencies, amplitudes and phases."""
    f = rng.uniform(fmin, fmax, n)
    ph = rng.uniform(0.0, _TWO_PI, n)
    a = rng.uniform(0.5, 1.0, n)
    x = (a[:, None] * np.sin(_TWO_PI * f[:, None] * t[None] + ph[:, None])).sum(0)
    return x / np.sqrt(0.5 * (a ** 2).sum())


def _event_times(rng: np.random.Generator, n: int, duration: float, min_gap: float) -> np.ndarray:
    """``n`` times uniform over [0, duration), pairwise at least ``min_gap`` apart (rejection sampling), sorted."""
    for _ in range(1000):
        t = np.sort(rng.uniform(0.0, duration, n))
        if n < 2 or np.diff(t).min() >= min_gap:
            return t
    raise RuntimeError(f"cannot place {n} events {min_gap} s apart in {duration} s")


def _band_noise(rng: np.random.Generator, n: int, lo: float, hi: float, sr: int) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz in the FFT domain, unit peak."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.abs(x).max() + 1e-12)


def _coloured_noise(rng: np.random.Generator, n: int, sr: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (0 white, 1 pink), unit std."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= 1.0 / np.maximum(f, 20.0) ** (exponent / 2)
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# speech-like audio (dense settings)

_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410],
                    [660, 1720, 2410]], dtype=float)  # formants F1-F3 (Hz), adult-male-like
_BANDWIDTHS = np.array([90.0, 120.0, 170.0])


def _talker(rng: np.random.Generator) -> dict[str, Any]:
    """A talker's fixed traits: voice, vocal tract, colours."""
    skin = rng.choice([[0.96, 0.80, 0.69], [0.88, 0.68, 0.53], [0.70, 0.50, 0.36], [0.45, 0.31, 0.22]])
    return {
        "f0": float(rng.uniform(100.0, 240.0)),  # Hz
        "tract": float(rng.uniform(0.9, 1.2)),  # formant scale (shorter tract -> higher formants)
        "rate": float(rng.uniform(3.0, 6.0)),  # syllables/s
        "skin": np.clip(np.asarray(skin) + rng.uniform(-0.04, 0.04, 3), 0, 1),
        "hair": rng.uniform(0.05, 0.45) * np.array([1.0, 0.8, 0.6]) + rng.uniform(0, 0.1, 3),
        "lips": np.array([0.65, 0.25, 0.25]) + rng.uniform(-0.08, 0.08, 3),
        "shirt": rng.uniform(0.1, 0.9, 3),
        "aspect": float(rng.uniform(0.72, 0.84)),  # head width / height
        "mouth_w": float(rng.uniform(0.26, 0.34)),  # lip half-width / head half-height
        "bg": rng.uniform(0.15, 0.85, (2, 3)),
    }


def _syllables(rng: np.random.Generator, rate: float, duration: float) -> np.ndarray:
    """A renewal process of syllables started 2 s before the clip: rows (onset s, duration s, amplitude), some skipped,
    with occasional phrase pauses. Only syllables that overlap the clip are returned."""
    rows = []
    t = -rng.uniform(1.0, 2.0)
    while t < duration:
        period = rng.uniform(0.7, 1.3) / rate
        dur = period * rng.uniform(0.6, 0.9)
        if rng.random() > 0.1 and t + dur > 0:
            rows.append((t, dur, rng.uniform(0.5, 1.0)))
        t += period
        if rng.random() < 0.07:
            t += rng.uniform(0.3, 0.8)  # phrase pause
    return np.asarray(rows, dtype=float).reshape(-1, 3)


def _syllable_envelope(syl: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Amplitude envelope at times ``t``: per syllable a raised-cosine rise over its first 20% and a cosine decay."""
    env = np.zeros_like(t)
    for on, dur, amp in syl:
        m = (t >= on) & (t < on + dur)
        x = (t[m] - on) / dur
        e = np.where(x < 0.2, 0.5 - 0.5 * np.cos(np.pi * x / 0.2), 0.5 + 0.5 * np.cos(np.pi * (x - 0.2) / 0.8))
        env[m] = np.maximum(env[m], amp * e)
    return env


def _speech_audio(rng: np.random.Generator, talker: dict, syl: np.ndarray, n: int, sr: int) -> np.ndarray:
    """Voiced harmonic source with a pitch contour, time-varying formants, the syllable envelope, fricatives."""
    t = np.arange(n) / sr
    env = _syllable_envelope(syl, t)
    # control rate 100 Hz for pitch and formants
    tc = np.arange(0.0, n / sr + 0.01, 0.01)
    f0c = talker["f0"] * 2.0 ** (0.22 * _smooth(rng, tc, 0.1, 1.5, 5))
    vowel_of = rng.integers(0, len(_VOWELS), max(len(syl), 1))
    idx = np.clip(np.searchsorted(syl[:, 0], tc, side="right") - 1, 0, max(len(syl) - 1, 0))
    formants = _VOWELS[vowel_of[idx]] * talker["tract"]  # (M, 3)
    kernel = np.hanning(9) / np.hanning(9).sum()  # smooth the vowel transitions over ~80 ms
    formants = np.stack([np.convolve(np.pad(formants[:, j], 4, mode="edge"), kernel, "valid") for j in range(3)], 1)
    f0 = np.interp(t, tc, f0c)
    phase = _TWO_PI * np.cumsum(f0) / sr + rng.uniform(0, _TWO_PI)
    n_harm = int(0.45 * sr / f0c.max())
    s1, c1 = np.sin(phase), np.cos(phase)
    s_prev, s_k = np.zeros(n), s1.copy()
    voiced = np.zeros(n)
    for k in range(1, n_harm + 1):
        fk = k * f0c[:, None]  # (M, 1)
        gain = (1.0 / (1.0 + ((fk - formants) / _BANDWIDTHS) ** 2)).sum(1) * k ** -0.7
        gain[k * f0c > 0.45 * sr] = 0.0
        voiced += np.interp(t, tc, gain) * s_k
        s_prev, s_k = s_k, 2.0 * c1 * s_k - s_prev  # sin((k+1)p) = 2 cos(p) sin(kp) - sin((k-1)p)
    voiced /= np.abs(voiced).max() + 1e-12
    # fricative bursts at ~40% of syllable onsets: high-passed noise, 30-80 ms, ending where the vowel peaks
    fric_env = np.zeros(n)
    for on, dur, amp in syl:
        if rng.random() < 0.4:
            d = rng.uniform(0.03, 0.08)
            m = (t >= on) & (t < on + d)
            fric_env[m] = amp * np.sin(np.pi * (t[m] - on) / d)
    fric = _band_noise(rng, n, 2500.0, 7000.0, sr) * 0.35 * fric_env
    x = voiced * env + fric + rng.uniform(0.002, 0.012) * rng.standard_normal(n)
    return x * rng.uniform(0.3, 0.6) / (np.abs(x).max() + 1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# impulsive event sounds (sparse setting): each starts abruptly at sample 0

def _damped(f: float, tau: float, n: int, sr: int, phase: float = np.pi / 2) -> np.ndarray:
    t = np.arange(n) / sr
    return np.sin(_TWO_PI * f * t + phase) * np.exp(-t / tau)


def _event_sound(kind: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(0.4 * sr)
    t = np.arange(n) / sr
    click = _band_noise(rng, n, 1000.0, 7000.0, sr) * np.exp(-t / 0.002)
    if kind == "bounce":  # low thud with a click
        x = _damped(rng.uniform(70, 140), rng.uniform(0.04, 0.08), n, sr) + 0.4 * click
    elif kind == "hammer":  # metallic clink: inharmonic partials
        f1 = rng.uniform(1500, 2400)
        x = sum(a * _damped(f1 * r, rng.uniform(0.06, 0.15) / r, n, sr, rng.uniform(0, _TWO_PI) if r > 1 else np.pi / 2)
                for a, r in ((1.0, 1.0), (0.6, 2.76)) if f1 * r < 0.45 * sr) + 0.8 * click
    elif kind == "chop":  # broadband thwack plus a woody resonance
        x = _band_noise(rng, n, 200, 4000, sr) * np.exp(-t / rng.uniform(0.02, 0.04)) \
            + 0.7 * _damped(rng.uniform(350, 700), 0.05, n, sr)
    elif kind == "clap":  # short band-passed noise burst
        x = _band_noise(rng, n, 800, 4000, sr) * np.exp(-t / rng.uniform(0.008, 0.02))
    elif kind == "bark":  # harmonic call with a falling pitch and a sharp attack
        d = rng.uniform(0.15, 0.25)
        f0 = rng.uniform(380, 600) * (1.0 - 0.25 * np.clip(t / d, 0, 1))
        ph = _TWO_PI * np.cumsum(f0) / sr
        formant = rng.uniform(900, 1500)
        x = sum(np.sin(k * ph) / (1.0 + ((k * f0 - formant) / 300.0) ** 2) for k in range(1, 10))
        x = x * np.clip(t / 0.004, 0, 1) * np.where(t < d, 1.0, np.exp(-(t - d) / 0.02))
    elif kind == "door":  # low slam plus a short rattle
        x = _damped(rng.uniform(50, 100), rng.uniform(0.08, 0.14), n, sr) + 0.5 * click
        for dt in rng.uniform(0.02, 0.12, rng.integers(3, 7)):
            x = x + 0.3 * np.roll(click, int(dt * sr)) * (t >= dt)
    elif kind == "crack":  # a volley of crackles, the first at 0
        x = click.copy()
        for dt in rng.uniform(0.005, 0.09, rng.integers(3, 9)):
            x = x + rng.uniform(0.2, 0.7) * np.roll(click, int(dt * sr)) * (t >= dt)
    elif kind == "strike":  # clatter of pins: several knocks within 0.2 s, the first at 0
        x = _damped(rng.uniform(600, 1500), 0.03, n, sr)
        for dt in rng.uniform(0.01, 0.2, rng.integers(3, 8)):
            k = _damped(rng.uniform(600, 1500), 0.03, n, sr)
            x = x + rng.uniform(0.3, 0.8) * np.roll(k, int(dt * sr)) * (t >= dt)
        x = x + 0.5 * _damped(rng.uniform(60, 120), 0.15, n, sr)
    else:
        raise ValueError(f"unknown event class {kind!r}; classes: {SPARSE_CLASSES}")
    return x / (np.abs(x).max() + 1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# drawing: a scene is a list of parts (soft-edged ellipses or rectangles with per-frame geometry)

@dataclass
class _Part:
    shape: str  # "ellipse" | "rect"
    cx: np.ndarray  # (T,) centre x (px)
    cy: np.ndarray  # (T,) centre y (px)
    rx: np.ndarray  # (T,) half-width (px)
    ry: np.ndarray  # (T,) half-height (px)
    color: np.ndarray  # (3,) or (T, 3) RGB in [0, 1]
    alpha: np.ndarray  # (T,) opacity in [0, 1]


def _part(shape: str, T: int, cx, cy, rx, ry, color, alpha=1.0) -> _Part:
    b = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float32), (T,)).astype(np.float32)  # noqa: E731
    return _Part(shape, b(cx), b(cy), np.maximum(b(rx), 0.3), np.maximum(b(ry), 0.3),
                 np.clip(np.asarray(color, dtype=np.float32), 0, 1), np.clip(b(alpha), 0, 1))


def _composite(canvas: np.ndarray, parts: Sequence[_Part], sl: slice) -> None:
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


def _parts_box(parts: Sequence[_Part], size: int) -> np.ndarray:
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


def _clutter(rng: np.random.Generator, size: int, n: int, muted: float = 0.6) -> list[_Part]:
    """Static background clutter: ``n`` random rectangles and ellipses in muted colours."""
    parts = []
    for _ in range(n):
        col = muted * rng.uniform(0.1, 0.9, 3) + (1 - muted) * 0.5
        parts.append(_part(rng.choice(["rect", "ellipse"]), 1, rng.uniform(0, size), rng.uniform(0, size),
                           rng.uniform(0.03, 0.2) * size, rng.uniform(0.03, 0.2) * size, col))
    return parts


def _background(rng: np.random.Generator, size: int, top, bottom, clutter: int) -> np.ndarray:
    """(H, W, 3) float32: a vertical gradient, plus static clutter."""
    g = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    top, bottom = np.asarray(top, np.float32), np.asarray(bottom, np.float32)
    bg = (top * (1 - g) + bottom * g) * np.ones((1, size, 1), np.float32)  # (H, W, 3)
    bg = bg[None].copy()
    _composite(bg, _clutter(rng, size, clutter), slice(0, 1))
    return bg[0]


def _render(bg: np.ndarray, parts: Sequence[_Part], T: int, gain: np.ndarray, noise_sigma: float,
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
        _composite(canvas, parts, sl)
        canvas *= gain[sl, None, None, None]
        canvas += bank[pick[sl]]
        out[sl] = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# dense settings: a talker

def _talker_parts(talker: dict, T: int, cx, cy, R, opening, blink) -> tuple[list[_Part], int]:
    """Parts of a talker whose head (half-height ``R`` px) is centred at (cx, cy); returns the parts and the index of
    the lips part (the sound source)."""
    asp, mw = talker["aspect"], talker["mouth_w"]
    skin = talker["skin"]
    my = cy + 0.45 * R
    parts = [
        _part("ellipse", T, cx, cy + 1.25 * R, 1.0 * R, 0.45 * R, talker["shirt"]),  # shoulders
        _part("rect", T, cx, cy + 0.9 * R, 0.28 * R, 0.3 * R, skin * 0.9),  # neck
        _part("ellipse", T, cx, cy - 0.12 * R, asp * R * 1.08, 0.98 * R, talker["hair"]),  # hair
        _part("ellipse", T, cx, cy, asp * R, R, skin),  # head
        _part("ellipse", T, cx - 0.36 * asp * R, cy - 0.18 * R, 0.12 * R, 0.07 * R * (1 - blink), [0.1, 0.08, 0.08]),
        _part("ellipse", T, cx + 0.36 * asp * R, cy - 0.18 * R, 0.12 * R, 0.07 * R * (1 - blink), [0.1, 0.08, 0.08]),
        _part("ellipse", T, cx, cy + 0.1 * R, 0.07 * R, 0.13 * R, skin * 0.8),  # nose
        _part("ellipse", T, cx, my, mw * R * (1 + 0.08 * opening), (0.07 + 0.2 * opening) * R, talker["lips"]),
        _part("ellipse", T, cx, my, 0.82 * mw * R, (0.012 + 0.19 * opening) * R, [0.12, 0.03, 0.03]),  # mouth
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
    talker = _talker(trng)
    syl = _syllables(rng, talker["rate"], cfg.duration_sec)
    audio = _speech_audio(rng, talker, syl, n, sr)
    # mouth opening: the syllable envelope averaged over +-20 ms around each frame time (no lag), plus a little wobble
    sub = np.linspace(-0.02, 0.02, 5)
    opening = _syllable_envelope(syl, (tf[:, None] + sub[None]).ravel()).reshape(T, -1).mean(1)
    opening = np.clip(opening + 0.03 * _smooth(rng, tf, 0.2, 1.0), 0, 1.1)
    blink = _blinks(rng, tf)
    if cfg.setting == "dense-crop":
        R = 0.42 * S * (1 + 0.03 * _smooth(rng, tf, 0.05, 0.3))
        cx = 0.5 * S + 0.03 * S * _smooth(rng, tf, 0.05, 0.4)
        cy = 0.47 * S + 0.02 * S * _smooth(rng, tf, 0.05, 0.4)
        bg = _background(rng, S, talker["bg"][0], talker["bg"][1], clutter=3)
        parts, src = _talker_parts(talker, T, cx, cy, R, opening, blink)
    else:
        R0 = rng.uniform(0.14, 0.2) * S
        R = R0 * (1 + 0.03 * _smooth(rng, tf, 0.05, 0.3))
        lo, hi = 0.12 * S + R0, 0.88 * S - R0  # keep the head inside the centre-crop region
        cx = rng.uniform(lo, hi) + 0.04 * S * _smooth(rng, tf, 0.02, 0.15)
        cy = rng.uniform(lo, hi - 0.3 * R0) + 0.03 * S * _smooth(rng, tf, 0.02, 0.15)
        bg = _background(rng, S, rng.uniform(0.2, 0.8, 3), rng.uniform(0.2, 0.8, 3), clutter=int(rng.integers(12, 25)))
        distractors = _moving_distractors(rng, S, tf, int(rng.integers(3, 6)))
        if rng.random() < 0.3:  # a second, silent talker whose mouth moves with speech nobody hears
            other = _talker(rng)
            osyl = _syllables(rng, other["rate"], cfg.duration_sec)
            oopen = _syllable_envelope(osyl, tf)
            oR = rng.uniform(0.12, 0.18) * S
            ocx = rng.uniform(0.1, 0.9) * S + 0.04 * S * _smooth(rng, tf, 0.02, 0.15)
            ocy = rng.uniform(0.1, 0.9) * S + 0.03 * S * _smooth(rng, tf, 0.02, 0.15)
            distractors += _talker_parts(other, T, ocx, ocy, oR, oopen, _blinks(rng, tf))[0]
        talker_parts, src = _talker_parts(talker, T, cx, cy, R, opening, blink)
        # the distractors may pass behind the talker but not in front of the mouth: draw the talker last
        parts, src = distractors + talker_parts, len(distractors) + src
    gain = 1.0 + 0.03 * _smooth(rng, tf, 0.05, 0.5)
    frames = _render(bg, parts, T, gain, 0.012, rng)
    sidecar = {
        "label": "speech",
        "classes": ["speech"],
        "event_onsets_sec": [round(float(v), 5) for v in syl[:, 0] if 0.0 <= v < cfg.duration_sec],
        "event_classes": ["syllable"] * int(((syl[:, 0] >= 0) & (syl[:, 0] < cfg.duration_sec)).sum()),
        "syllables": [[round(float(a), 5), round(float(b), 5), round(float(c), 4)] for a, b, c in syl],
        "mouth_opening": [round(float(v), 4) for v in opening],
        "talker": {"f0_hz": round(talker["f0"], 2), "syllable_rate_hz": round(talker["rate"], 3)},
        "source_boxes": _parts_box([parts[src]], S).tolist(),
        "offscreen_onsets_sec": [],
        "offscreen_classes": [],
    }
    return {"frames": frames, "audio": audio, "sidecar": sidecar}


def _moving_distractors(rng: np.random.Generator, S: int, tf: np.ndarray, n: int) -> list[_Part]:
    """Silent moving shapes on smooth random paths; about half pulsate at 2-7 Hz (random phase), like a mouth would."""
    T = len(tf)
    parts = []
    for _ in range(n):
        r = rng.uniform(0.04, 0.09) * S
        cx = rng.uniform(0.1, 0.9) * S + rng.uniform(0.05, 0.25) * S * _smooth(rng, tf, 0.05, 0.4)
        cy = rng.uniform(0.1, 0.9) * S + rng.uniform(0.05, 0.25) * S * _smooth(rng, tf, 0.05, 0.4)
        puls = 1.0 + (rng.random() < 0.5) * 0.3 * np.sin(_TWO_PI * rng.uniform(2, 7) * tf + rng.uniform(0, _TWO_PI))
        parts.append(_part(rng.choice(["rect", "ellipse"]), T, cx, cy, r * puls, r * rng.uniform(0.6, 1.4) * puls,
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
                  by: np.ndarray, s: float) -> list[_Part]:
    """The parts of an event object of class ``kind`` centred near (bx, by) with half-size ``s`` px. Each action spans
    tau in [-0.6, +0.6] s around its contact instant (tau = 0), where the sound starts; idle outside."""
    T = len(tf)
    tau = _nearest_tau(tf, times)
    act = np.isfinite(tau)
    ta = np.where(act, tau, 10.0)
    col = lambda base: np.clip(np.asarray(base) + rng.uniform(-0.08, 0.08, 3), 0, 1)  # noqa: E731
    P = lambda *a, **k: _part(*a, **k)  # noqa: E731
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
    times = _event_times(rng, n_events, cfg.duration_sec, cfg.min_event_gap_sec)
    # the object: half-size s so that its box (about 2.2 s x 2.2 s) covers <= ~5% of the frame
    s = rng.uniform(0.075, 0.1) * S
    margin = 0.1 * S + 1.6 * s
    bx = rng.uniform(margin, S - margin) + 0.02 * S * _smooth(rng, tf, 0.03, 0.2)
    by = rng.uniform(margin, S - margin) + 0.02 * S * _smooth(rng, tf, 0.03, 0.2)
    obj = _object_parts(kind, rng, tf, times, bx, by, s)
    bg = _background(rng, S, rng.uniform(0.25, 0.8, 3), rng.uniform(0.25, 0.8, 3), clutter=int(rng.integers(10, 25)))
    distractors = _moving_distractors(rng, S, tf, int(rng.integers(2, 4)))
    # a silently bouncing ball: periodic vertical motion with contacts that make no sound
    r = rng.uniform(0.03, 0.05) * S
    f_b = rng.uniform(0.6, 1.5)
    floor_y = rng.uniform(0.4, 0.9) * S
    hop = floor_y - r - rng.uniform(0.08, 0.2) * S * np.abs(np.sin(np.pi * f_b * tf + rng.uniform(0, np.pi)))
    distractors.append(_part("ellipse", T, rng.uniform(0.1, 0.9) * S + 0.1 * S * _smooth(rng, tf, 0.02, 0.1), hop,
                             r, r, rng.uniform(0, 1, 3)))
    decoy = None
    if rng.random() < 0.5:  # an object of another class acting silently
        decoy = SPARSE_CLASSES[int(rng.integers(0, len(SPARSE_CLASSES)))]
        ds = rng.uniform(0.06, 0.09) * S
        dm = 0.1 * S + 1.6 * ds
        dtimes = _event_times(rng, int(rng.integers(1, 3)), cfg.duration_sec, cfg.min_event_gap_sec)
        distractors += _object_parts(decoy, rng, tf, dtimes, np.full(T, rng.uniform(dm, S - dm)),
                                     np.full(T, rng.uniform(dm, S - dm)), ds)
    parts = distractors + obj  # the sound source is never occluded
    gain = 1.0 + 0.03 * _smooth(rng, tf, 0.05, 0.5)
    frames = _render(bg, parts, T, gain, 0.012, rng)
    # audio: ambient noise + hum + events + off-screen sounds
    audio = rng.uniform(0.004, 0.015) * _coloured_noise(rng, n, sr, rng.uniform(0.5, 1.5))
    if rng.random() < 0.6:
        f_hum = float(rng.choice([50.0, 60.0]))
        for k in (1, 2, 3):
            audio += rng.uniform(0.0, 0.015) / k * np.sin(_TWO_PI * k * f_hum * t + rng.uniform(0, _TWO_PI))
    for te in times:
        _add_at(audio, _event_sound(kind, rng, sr) * rng.uniform(0.3, 0.7), te, sr)
    n_off = int(rng.choice(3, p=[0.4, 0.4, 0.2]))
    off_times = np.sort(rng.uniform(0.0, cfg.duration_sec, n_off))
    off_classes = [SPARSE_CLASSES[int(rng.integers(0, len(SPARSE_CLASSES)))] for _ in range(n_off)]
    for te, k in zip(off_times, off_classes):
        _add_at(audio, _event_sound(k, rng, sr) * rng.uniform(0.1, 0.4), te, sr)
    sidecar = {
        "label": kind,
        "classes": [kind],
        "event_onsets_sec": [round(float(v), 5) for v in times],
        "event_classes": [kind] * len(times),
        "object_half_size_px": round(float(s), 3),
        "decoy_class": decoy,
        "source_boxes": _parts_box(obj, S).tolist(),
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
# one clip, a dataset

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


def write_clip(cfg: SynthConfig, root: str | os.PathLike, index: int) -> str:
    """Generate clip ``index`` and write its mp4 and then its sidecar (the sidecar marks the clip as finished)."""
    from paperlib.core.io import atomic_output
    from paperlib.core.media import write_video

    clip = generate_clip(cfg, index)
    cid = clip["id"]
    options = {"threads": "1"} | ({"x264-params": cfg.x264_params} if cfg.x264_params else {})
    write_video(video_path(root, cid), clip["frames"], fps=cfg.fps, audio=clip["audio"], sample_rate=cfg.sample_rate,
                vcodec="libx264", acodec="aac", crf=cfg.crf, video_options=options)
    with atomic_output(sidecar_path(root, cid)) as tmp:  # temporary name, fsync, rename
        tmp.write_text(json.dumps(clip["sidecar"], separators=(",", ":")))
    return cid


def _is_done(cfg: SynthConfig, root: Path, index: int) -> bool:
    cid = clip_id(cfg, index)
    return sidecar_path(root, cid).is_file() and video_path(root, cid).is_file()


def _work(args: tuple[dict, str, int]) -> str:
    cfg_d, root, index = args
    cfg = SynthConfig(**cfg_d)
    try:
        return write_clip(cfg, root, index)
    except Exception as e:
        raise RuntimeError(f"synthetic clip {index} ({clip_id(cfg, index)}) under {root} failed: "
                           f"{type(e).__name__}: {e}") from e


def _splits(cfg: SynthConfig, n: int) -> dict[str, list[int]]:
    """Indices per split: dense by "video" (all clips of a talker in one split), sparse by clip; seeded by cfg.seed."""
    unit = cfg.clips_per_video if cfg.setting != "sparse" else 1
    groups = [list(range(g, min(n, g + unit))) for g in range(0, n, unit)]
    order = np.random.default_rng([cfg.seed, 1337]).permutation(len(groups))
    n_test = int(round(cfg.split_fractions[2] * len(groups)))
    n_valid = int(round(cfg.split_fractions[1] * len(groups)))
    if len(groups) >= 3:
        n_test, n_valid = max(n_test, 1), max(n_valid, 1)
    test, valid, train = order[:n_test], order[n_test:n_test + n_valid], order[n_test + n_valid:]
    pick = lambda gs: sorted(i for g in gs for i in groups[g])  # noqa: E731
    return {"train": pick(train), "valid": pick(valid), "test": pick(test)}


def _write_text(path: Path, text: str) -> None:
    from paperlib.core.io import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_lists(cfg: SynthConfig, root: str | os.PathLike, n: int) -> dict[str, list[str]]:
    """Write the split lists / annotation CSVs of the layout; returns {split: [ids]}."""
    root = Path(root)
    splits = {k: [clip_id(cfg, i) for i in v] for k, v in _splits(cfg, n).items()}
    if cfg.setting == "sparse":
        rows = []
        for split, ids in splits.items():
            for i in _splits(cfg, n)[split]:
                cid = clip_id(cfg, i)
                ytid, start_ms, _ = cid.rsplit("_", 2)
                rows.append((i, f"{ytid},{int(start_ms) // 1000},{SPARSE_CLASSES[i % len(SPARSE_CLASSES)]},"
                                f"{'test' if split == 'test' else 'train'}"))
        _write_text(root / "vggsound_sparse.csv", "".join(r + "\n" for _, r in sorted(rows)))
        _write_text(root / "picked_sparse_classes.csv", "class\tis_sparse\n" + "".join(f"{c}\ty\n" for c in
                                                                                       sorted(SPARSE_CLASSES)))
        for split, ids in splits.items():
            _write_text(root / f"vggsound_sparse_{split}.txt", "".join(i + "\n" for i in ids))
    else:
        for split, ids in splits.items():
            _write_text(root / f"lrs3_{split}.txt", "".join(i + "\n" for i in ids))
    return splits


def _versions() -> dict[str, str]:
    import av

    import paperlib

    v = {"paperlib": paperlib.__version__, "numpy": np.__version__, "av": av.__version__,
         "python": sys.version.split()[0]}
    try:
        v["ffmpeg_libavcodec"] = ".".join(str(x) for x in av.library_versions["libavcodec"])
    except Exception:  # noqa: BLE001 - provenance only
        pass
    return v


def generate(cfg: SynthConfig, root: str | os.PathLike, clips: int, workers: int = 1, progress: bool = True) -> Path:
    """Generate ``clips`` clips of ``cfg`` under ``root`` (resumable: finished clips are skipped), then the split lists
    and ``synth.json``. Workers run in a spawn pool; the content does not depend on their number or order."""
    from tqdm import tqdm

    from paperlib.core.io import remove_stale_partials

    cfg.validate()
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(root)  # hidden temporaries of a killed earlier run (never files under final names)
    manifest_path = root / "synth.json"
    keys = ("setting", "size", "seed", "duration_sec", "fps", "sample_rate", "clips_per_video", "event_count_probs",
            "min_event_gap_sec", "crf", "x264_params")
    if manifest_path.is_file():
        old = to_dict(SynthConfig()) | json.loads(manifest_path.read_text()).get("config", {})  # fields added later
        new = to_dict(cfg)
        diff = {k: (old.get(k), new[k]) for k in keys if json.dumps(old.get(k)) != json.dumps(new[k])}
        if diff:
            raise ValueError(f"{manifest_path}: {root} holds a different synthetic dataset ({diff}); "
                             f"use another folder")
    todo = [i for i in range(clips) if not _is_done(cfg, root, i)]
    t0 = time.perf_counter()
    bar = tqdm(total=clips, initial=clips - len(todo), desc=f"synth {cfg.setting} {cfg.size}px", unit="clip",
               disable=not progress)
    if workers <= 1 or len(todo) <= 1:
        for i in todo:
            _work((to_dict(cfg), str(root), i))
            bar.update(1)
    else:
        import multiprocessing as mp

        cfg_d = to_dict(cfg)
        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_work, [(cfg_d, str(root), i) for i in todo]):
                bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - t0
    write_lists(cfg, root, clips)
    run = {"generated": len(todo), "seconds": round(elapsed, 2), "workers": workers,
           "clips_per_sec": round(len(todo) / elapsed, 3) if todo and elapsed > 0 else None}
    runs = json.loads(manifest_path.read_text()).get("runs", []) if manifest_path.is_file() else []
    manifest = {"config": to_dict(cfg), "clips": clips, "classes": list(SPARSE_CLASSES) if cfg.setting == "sparse"
                else ["speech"], "generator_version": GENERATOR_VERSION, "versions": _versions(),
                "last_run": run, "runs": runs + [run]}  # every (resumed) run, in order
    _write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return root


# ----------------------------------------------------------------------------------------------------------------------
# the oracle

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

    from paperlib.core.media import read_audio, read_video

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


# ----------------------------------------------------------------------------------------------------------------------
# figure

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


# ----------------------------------------------------------------------------------------------------------------------
# command line

def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib synth", description=__doc__.split("\n\n")[0])
    p.add_argument("dst", nargs="?", help="output folder (the dataset root)")
    p.add_argument("--setting", choices=SETTINGS, default="dense-crop")
    p.add_argument("--clips", type=int, default=400, help="number of clips")
    p.add_argument("--size", type=int, default=64, help="frame side in px (256 = paper geometry)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    p.add_argument("--crf", type=int, default=SynthConfig.crf, help="libx264 CRF")
    p.add_argument("--clips-per-video", type=int, default=SynthConfig.clips_per_video)
    p.add_argument("--examples", metavar="OUT.png", help="render sample frames + spectrograms of each setting")
    p.add_argument("--oracle", action="store_true", help="print the oracle fraction of random test items of DST")
    p.add_argument("--xcorr", action="store_true",
                   help="print the non-learned cross-correlation baseline on random test items of DST (21 classes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a SynthConfig field, e.g. --set event_count_probs=[0,0.15,0.35,0.5]")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.examples:
        print(render_examples(a.examples, size=a.size, seed=a.seed))
    if a.dst is None:
        if not a.examples:
            p.error("DST is required unless --examples is given")
        return 0
    cfg = SynthConfig(setting=a.setting, size=a.size, seed=a.seed, crf=a.crf, clips_per_video=a.clips_per_video)
    try:
        cfg = apply_overrides(cfg, a.overrides).validate()
    except (KeyError, TypeError, ValueError) as e:
        p.error(str(e))
    root = generate(cfg, a.dst, a.clips, workers=a.workers, progress=not a.no_progress)
    last = json.loads((root / "synth.json").read_text())["last_run"]
    print(f"{root}: {a.clips} clips ({last['generated']} new, {last['seconds']} s, {last['clips_per_sec']} clips/s)")
    ids = (root / ("vggsound_sparse_test.txt" if a.setting == "sparse" else "lrs3_test.txt")).read_text().split()
    if a.oracle:
        for nc, mo in ((21, 2.0), (3, 1.0)):
            r = oracle_fraction(root, sample_items(ids, per_clip=8, max_off_sec=mo, num_classes=nc))
            print(f"oracle {a.setting} {nc} classes, 5-s windows: {r['fraction']:.3f} with a cue over {r['n']} items "
                  f"(top-1 ceiling {r['ceiling_top1']:.3f})")
    if a.xcorr:
        items = sample_items(ids, per_clip=8)
        for use_box in (True, False):
            r = xcorr_baseline(root, items, use_box=use_box, progress=not a.no_progress)
            print(f"xcorr {a.setting} ({'source box' if use_box else 'whole frame'}), 21 classes over {r['n']} items: "
                  f"top-1 {r['top1']:.3f}, +-1 {r['top1_tol1']:.3f}; with a cue {r['top1_with_cue']:.3f}, "
                  f"without {r['top1_without_cue']:.3f} (cue share {r['cue_fraction']:.3f})")
    return 0


__all__ = ["SETTINGS", "SPARSE_CLASSES", "DENSE_EVENT_PROBS", "SynthConfig", "clip_id", "video_path", "sidecar_path",
           "load_sidecar",
           "generate_clip", "write_clip", "write_lists", "generate", "has_cue", "oracle_fraction", "sample_items",
           "xcorr_baseline", "render_examples", "cli"]

