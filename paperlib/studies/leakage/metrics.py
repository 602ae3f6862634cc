"""Pure metrics of the codec-leakage study: top-k accuracy, the modulo indicator of Sec. 7.1 and its chance level, the
binomial verdict, and the first-difference profile with its periodograms (Fig. 6)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from paperlib.studies.leakage.config import VERDICT_LEAK, VERDICT_NONE, ProbeConfig


def n_classes_for(cfg: ProbeConfig) -> int:
    """Number of start classes: starts on the grid within the first half of the clip."""
    return int(round(cfg.clip_seconds / 2 / cfg.step_seconds))


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of items whose true class is among the k highest logits. Shapes: (N, C), (N,)."""
    topk = np.argsort(-logits, axis=1)[:, :k]
    return float(np.mean(np.any(topk == labels[:, None], axis=1)))


def modulo_congruence(topk: np.ndarray, labels: np.ndarray, period: int) -> float:
    """Fraction of the top-k predictions (N, k) congruent to the true class (N,) modulo ``period`` (Sec. 7.1)."""
    return float(np.mean((topk % period) == (labels[:, None] % period)))


def modulo_chance(n_classes: int, period: int) -> float:
    """Chance level of :func:`modulo_congruence` for predictions unrelated to uniform true classes.

    sum_r n_r^2 / N^2 with n_r the number of classes in residue r (8.4 % for 50 classes, period 12).
    """
    counts = np.bincount(np.arange(n_classes) % period, minlength=period)
    return float(np.sum(counts.astype(float) ** 2) / n_classes ** 2)


def binomial_verdict(n_correct: int, n_items: int, chance: float, alpha: float = 0.01) -> tuple[float, str]:
    """One-sided exact binomial test of Acc@1 against chance. Returns (p-value, verdict)."""
    from scipy.stats import binomtest

    if n_items <= 0:
        raise ValueError("no held-out items to test")
    p = float(binomtest(int(n_correct), int(n_items), float(chance), alternative="greater").pvalue)
    return p, (VERDICT_LEAK if p < alpha else VERDICT_NONE)


def first_difference_profile(frames: np.ndarray) -> np.ndarray:
    """Mean absolute first difference per transition. frames: (T, H, W[, C]) -> (T-1,)."""
    x = np.asarray(frames, dtype=np.float32)
    return np.abs(np.diff(x, axis=0)).reshape(x.shape[0] - 1, -1).mean(axis=1)


def folded_periodogram(x: np.ndarray, periods: Iterable[int]) -> np.ndarray:
    """Epoch-folding periodogram: the one-way ANOVA F statistic of the series grouped by phase (t mod p) per period.

    ~1 for noise; large at the period of a periodic pattern. Per degree of freedom, so multiples of the true period
    (which fit the same pattern with more phases) score about p/multiple as much, and divisors mix peaks with troughs.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = []
    for p in periods:
        if not 2 <= p < n:
            out.append(np.nan)
            continue
        phase = np.arange(n) % p
        counts = np.bincount(phase, minlength=p)
        means = np.bincount(phase, weights=x, minlength=p) / np.maximum(counts, 1)
        between = np.sum(counts * (means - x.mean()) ** 2) / (p - 1)
        within = np.sum((x - means[phase]) ** 2) / max(n - p, 1)
        out.append(between / (within + 1e-12 * (between + 1.0)))
    return np.asarray(out)


def fft_periodogram(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classical periodogram of the mean-removed series. Returns (periods in samples, power), DC excluded."""
    x = np.asarray(x, dtype=np.float64)
    power = np.abs(np.fft.rfft(x - x.mean())) ** 2 / len(x)
    freqs = np.fft.rfftfreq(len(x))
    return 1.0 / freqs[1:], power[1:]
