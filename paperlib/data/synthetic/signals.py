"""Random 1-D signals of the synthetic clips, all stationary (nothing anchored at t = 0): smooth processes and event
times, band-limited and coloured noise, the speech-like audio of a talker (dense settings) and impulsive event sounds
(sparse setting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from paperlib.data.synthetic.config import SPARSE_CLASSES

TWO_PI = 2.0 * np.pi


# ----------------------------------------------------------------------------------------------------------------------
# random building blocks (all stationary: nothing anchored at t = 0)

def smooth(rng: np.random.Generator, t: np.ndarray, fmin: float = 0.05, fmax: float = 0.5, n: int = 4) -> np.ndarray:
    """A smooth, zero-mean, unit-variance process: ``n`` sines with random frequencies, amplitudes and phases."""
    f = rng.uniform(fmin, fmax, n)
    ph = rng.uniform(0.0, TWO_PI, n)
    a = rng.uniform(0.5, 1.0, n)
    x = (a[:, None] * np.sin(TWO_PI * f[:, None] * t[None] + ph[:, None])).sum(0)
    return x / np.sqrt(0.5 * (a ** 2).sum())


def event_times(rng: np.random.Generator, n: int, duration: float, min_gap: float) -> np.ndarray:
    """``n`` times uniform over [0, duration), pairwise at least ``min_gap`` apart (rejection sampling), sorted."""
    for _ in range(1000):
        t = np.sort(rng.uniform(0.0, duration, n))
        if n < 2 or np.diff(t).min() >= min_gap:
            return t
    raise RuntimeError(f"cannot place {n} events {min_gap} s apart in {duration} s")


def band_noise(rng: np.random.Generator, n: int, lo: float, hi: float, sr: int) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz in the FFT domain, unit peak."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (np.abs(x).max() + 1e-12)


def coloured_noise(rng: np.random.Generator, n: int, sr: int, exponent: float) -> np.ndarray:
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


def talker_traits(rng: np.random.Generator) -> dict[str, Any]:
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


def syllables(rng: np.random.Generator, rate: float, duration: float) -> np.ndarray:
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


def syllable_envelope(syl: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Amplitude envelope at times ``t``: per syllable a raised-cosine rise over its first 20% and a cosine decay."""
    env = np.zeros_like(t)
    for on, dur, amp in syl:
        m = (t >= on) & (t < on + dur)
        x = (t[m] - on) / dur
        e = np.where(x < 0.2, 0.5 - 0.5 * np.cos(np.pi * x / 0.2), 0.5 + 0.5 * np.cos(np.pi * (x - 0.2) / 0.8))
        env[m] = np.maximum(env[m], amp * e)
    return env


def speech_audio(rng: np.random.Generator, talker: dict, syl: np.ndarray, n: int, sr: int) -> np.ndarray:
    """Voiced harmonic source with a pitch contour, time-varying formants, the syllable envelope, fricatives."""
    t = np.arange(n) / sr
    env = syllable_envelope(syl, t)
    # control rate 100 Hz for pitch and formants
    tc = np.arange(0.0, n / sr + 0.01, 0.01)
    f0c = talker["f0"] * 2.0 ** (0.22 * smooth(rng, tc, 0.1, 1.5, 5))
    vowel_of = rng.integers(0, len(_VOWELS), max(len(syl), 1))
    idx = np.clip(np.searchsorted(syl[:, 0], tc, side="right") - 1, 0, max(len(syl) - 1, 0))
    formants = _VOWELS[vowel_of[idx]] * talker["tract"]  # (M, 3)
    kernel = np.hanning(9) / np.hanning(9).sum()  # smooth the vowel transitions over ~80 ms
    formants = np.stack([np.convolve(np.pad(formants[:, j], 4, mode="edge"), kernel, "valid") for j in range(3)], 1)
    f0 = np.interp(t, tc, f0c)
    phase = TWO_PI * np.cumsum(f0) / sr + rng.uniform(0, TWO_PI)
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
    fric = band_noise(rng, n, 2500.0, 7000.0, sr) * 0.35 * fric_env
    x = voiced * env + fric + rng.uniform(0.002, 0.012) * rng.standard_normal(n)
    return x * rng.uniform(0.3, 0.6) / (np.abs(x).max() + 1e-12)


# ----------------------------------------------------------------------------------------------------------------------
# impulsive event sounds (sparse setting): each starts abruptly at sample 0

def _damped(f: float, tau: float, n: int, sr: int, phase: float = np.pi / 2) -> np.ndarray:
    t = np.arange(n) / sr
    return np.sin(TWO_PI * f * t + phase) * np.exp(-t / tau)


def event_sound(kind: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(0.4 * sr)
    t = np.arange(n) / sr
    click = band_noise(rng, n, 1000.0, 7000.0, sr) * np.exp(-t / 0.002)
    if kind == "bounce":  # low thud with a click
        x = _damped(rng.uniform(70, 140), rng.uniform(0.04, 0.08), n, sr) + 0.4 * click
    elif kind == "hammer":  # metallic clink: inharmonic partials
        f1 = rng.uniform(1500, 2400)
        x = sum(a * _damped(f1 * r, rng.uniform(0.06, 0.15) / r, n, sr, rng.uniform(0, TWO_PI) if r > 1 else np.pi / 2)
                for a, r in ((1.0, 1.0), (0.6, 2.76)) if f1 * r < 0.45 * sr) + 0.8 * click
    elif kind == "chop":  # broadband thwack plus a woody resonance
        x = band_noise(rng, n, 200, 4000, sr) * np.exp(-t / rng.uniform(0.02, 0.04)) \
            + 0.7 * _damped(rng.uniform(350, 700), 0.05, n, sr)
    elif kind == "clap":  # short band-passed noise burst
        x = band_noise(rng, n, 800, 4000, sr) * np.exp(-t / rng.uniform(0.008, 0.02))
    elif kind == "bark":  # harmonic call with a falling pitch and a sharp attack
        d = rng.uniform(0.15, 0.25)
        f0 = rng.uniform(380, 600) * (1.0 - 0.25 * np.clip(t / d, 0, 1))
        ph = TWO_PI * np.cumsum(f0) / sr
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
