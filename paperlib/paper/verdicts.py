"""The statistics and verdict rules behind every training claim (pure; never tuned toward the paper's values).

- chance = (2 tol + 1) / C: the accuracy of always predicting one interior class when offsets are uniform
  (1/C for Acc@1; 3/C for Acc@1 with +-1 tolerance).
- The null of a run is the stricter of that uniform chance and two empirical nulls of its own test set: the best
  constant prediction (the share of the test items whose target lies within the tolerance of the most common
  class) and the run's own predictions paired with shuffled targets (their expected accuracy, computed exactly from
  the two marginals). Test sets are not uniform over offsets, so a model stuck on one offset can beat 1/C.
- s.e. of an accuracy p on n test items: sqrt(p'(1 - p') / n) with p' = (pn + 1)/(n + 2) (never 0). A run "left
  chance" (learned) when p > null + 2 sqrt(null (1 - null) / n); otherwise it is "at chance".
- Every comparison states the smallest difference it could have detected: (2 + 0.84) s.e. of the difference, the true
  difference the 2-s.e. rule finds with 80 % power.
- Repeated runs (``Measure.seeds``: the run retrained with other seeds, the whole chain): the accuracy is the mean
  of the k runs and its s.e. the larger of the between-seed s.e. (sample sd / sqrt(k)), which holds both the
  seed-to-seed and the test-sampling variance, and the binomial s.e. of the k n pooled items (a floor where the k runs
  happen to agree); at chance is judged on the pooled items. With 3 seeds the sd has 2 degrees of freedom, so the
  2-s.e. rule is a normal approximation; the evidence lists every seed's accuracy so a reader can judge the spread.
- Every model comparison ("A beats B", "the gap grows", "no better than", across classes) is judged only when every
  arm it names learned: "A learned and B did not within this budget" is a finding about the budget, not about the
  claim. The one exception is an arm whose paper value itself sits at or below chance (``Measure.paper_at_chance``,
  Table 3's "not pre-trained on dense data"): such an arm at chance agrees with the paper and the comparison is
  judged. Otherwise the part is "not testable at this profile: <arm> never left chance (it trained N steps)".
- "A beats B" holds when A - B > 2 s.e. of the difference (sqrt(se_A^2 + se_B^2); the test items are treated as
  independent, which is conservative for paired items).
- "the gap grows" (difference of differences) holds when it exceeds 2 s.e. of the four-term difference.
- "A is no better than B" (saturation) holds unless A - B > 2 s.e., and only when the comparison could have detected
  the gain at stake (the paper's gain before saturation): otherwise it is "not testable at this profile".
- A curve ("more layers help", "longer inputs help") is judged on its points that learned, in order: reproduced when
  the last learned point beats the first by 2 s.e. and no step between neighbouring learned points drops by more
  than 2 s.e. (monotone within noise); a point at chance between two learned points leaves the curve's shape unknown
  (not testable); points at chance at either end are named and left out.
- A claim resting on runs whose planned seeds have not all finished is provisional ("k of m seeds"): its verdict is
  what the finished seeds say so far, and it is counted apart from the final verdicts.
- A claim with several parts (settings, grids) is reproduced when every part is reproduced; reproduced in part when
  some part is reproduced and another is not reproduced or could not be judged (the evidence lists every part with
  its verdict); not reproduced when no part is reproduced and at least one was judged; not testable when none can be
  judged.
- At the smoke profile every training claim is "not testable at this profile" (the numbers are still reported).
- The studies' rules (Fig. 4's growth exponents, Fig. 5's localisation score) are named here too, beside the
  training rules: :func:`memory_is_linear`, :func:`memory_is_quadratic`, :func:`score_is_calibrated`,
  :func:`score_is_focused`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from paperlib.paper.report import Claim, Verdict

Z = 2.0  # s.e. multiple a difference must exceed to count
POWER_Z = 0.8416  # normal quantile of 0.8: the detectable difference is (Z + POWER_Z) s.e. at 80 % power
SMOKE_EVIDENCE = "smoke profile: a wiring check of a few optimiser steps, its numbers carry no information"
MINI_YES = "yes"  # the report's "can mini test it" column for a claim whose runs mini trains in full

# Fig. 4: the fitted exponent of the duration-dependent memory; linear below 1.3, quadratic above 1.7 (the
# exponents the two attention costs predict are 1 and 2; the margins absorb the fit's curvature at short inputs)
LINEAR_MAX_EXPONENT = 1.3
QUADRATIC_MIN_EXPONENT = 1.7
# Fig. 5: the localisation score (attention mass on the source at event times / the source's share of the frame):
# 1 is no preference; an untrained model within 0.2 of it is calibrated, a trained head above 1.5 focuses
CALIBRATED_TOLERANCE = 0.2
FOCUSED_MIN_SCORE = 1.5


def chance_level(num_classes: int, tol: int = 0) -> float:
    """Accuracy of always predicting one interior class under uniform offsets: (2 tol + 1) / C, at most 1."""
    if num_classes < 1 or tol < 0:
        raise ValueError(f"need num_classes >= 1 and tol >= 0, got {num_classes}, {tol}")
    return min(1.0, (2 * tol + 1) / num_classes)


def empirical_null(targets: Sequence[int], num_classes: int, tol: int = 0,
                   preds: Sequence[int] | None = None) -> float:
    """The empirical null of a test set: the larger of the best constant prediction's accuracy (the share of items
    whose target lies within ``tol`` classes of the most favourable single class) and, with ``preds``, the expected
    accuracy of those predictions paired with the targets shuffled (sum over classes of the share predicted k times
    the share of targets within ``tol`` of k). The second never exceeds the first; both are computed so that either
    kind of degenerate model is caught."""
    n = len(targets)
    if n == 0:
        raise ValueError("empirical_null: no test items")
    counts = [0] * num_classes
    for t in targets:
        counts[int(t)] += 1
    near = [sum(counts[j] for j in range(max(0, k - tol), min(num_classes, k + tol + 1))) / n
            for k in range(num_classes)]
    null = max(near)
    if preds is not None:
        if len(preds) != n:
            raise ValueError(f"empirical_null: {len(preds)} predictions for {n} targets")
        pred_share = [0.0] * num_classes
        for p in preds:
            pred_share[int(p)] += 1 / n
        null = max(null, sum(pred_share[k] * near[k] for k in range(num_classes)))
    return null


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy ``p`` measured on ``n`` items, with p' = (pn + 1)/(n + 2) so it is never 0."""
    if n < 1:
        raise ValueError(f"need n >= 1 test items, got {n}")
    q = (p * n + 1) / (n + 2)
    return math.sqrt(q * (1 - q) / n)


def headline_tol(num_classes: int) -> int:
    """The paper's main metric: Acc@1 on the 3-class grid, Acc@1 with +-1 class tolerance on the 21-class grid."""
    return 1 if num_classes > 3 else 0


@dataclasses.dataclass(frozen=True)
class Measure:
    """One accuracy with what is needed to judge it."""

    label: str
    acc: float  # fraction in [0, 1]; the mean over ``seeds`` when there are several
    n: int  # test items (of one run)
    chance: float  # the uniform chance (2 tol + 1) / C, a fraction
    seeds: tuple[float, ...] = ()  # each repeated run's accuracy (the run and its retrainings with other seeds)
    null: float | None = None  # the empirical null of its test set (:func:`empirical_null`), where known
    steps: int | None = None  # optimiser steps the run trained (the most over its seeds)
    planned: int = 1  # seeds the profile plans for this run; fewer finished makes a claim on it provisional
    paper_at_chance: bool = False  # the paper's own arm sits at or below chance (an arm at chance agrees with it)

    @classmethod
    def repeated(cls, label: str, accs: Sequence[float], n: int, chance: float, **kw) -> "Measure":
        """The mean of repeated runs of one configuration (one accuracy per seed, each on ``n`` test items)."""
        if not accs:
            raise ValueError(f"{label}: no runs to average")
        accs = tuple(float(a) for a in accs)
        return cls(label, sum(accs) / len(accs), n, chance, accs if len(accs) > 1 else (), **kw)

    @property
    def runs(self) -> int:
        return max(1, len(self.seeds))

    @property
    def floor(self) -> float:
        """The null this run is judged against: the stricter of the uniform chance and its test set's own null."""
        return max(self.chance, self.null or 0.0)

    @property
    def seed_sd(self) -> float | None:
        """Sample standard deviation of the per-seed accuracies (None for one run)."""
        k = len(self.seeds)
        if k < 2:
            return None
        return math.sqrt(sum((a - self.acc) ** 2 for a in self.seeds) / (k - 1))

    @property
    def se(self) -> float:
        pooled = binomial_se(self.acc, self.n * self.runs)
        sd = self.seed_sd
        return pooled if sd is None else max(pooled, sd / math.sqrt(self.runs))

    @property
    def above_chance(self) -> bool:
        """Whether the run left chance: above its null by 2 binomial s.e. of the null on its (pooled) items."""
        f = self.floor
        return self.acc > f + Z * math.sqrt(f * (1 - f) / (self.n * self.runs))

    learned = above_chance

    @property
    def complete(self) -> bool:
        """Every planned seed finished."""
        return self.runs >= self.planned

    @property
    def seeds_text(self) -> str:
        """"mean of k seeds: a / b / c" (percent); empty for one run."""
        if not self.seeds:
            return ""
        return f"mean of {self.runs} seeds: {' / '.join(f'{100 * a:.1f}' for a in self.seeds)}"

    @property
    def trained_text(self) -> str:
        return f"it trained {self.steps:,} steps" if self.steps is not None else "its steps are not recorded"

    def __str__(self) -> str:
        seeds = f" ({self.seeds_text}, sd {100 * self.seed_sd:.1f})" if self.seeds else ""
        at = "" if self.above_chance else f" (at chance: null {100 * self.floor:.1f}%)"
        return f"{self.label} {100 * self.acc:.1f}%{seeds}{at}"


@dataclasses.dataclass(frozen=True)
class Part:
    """The verdict on one part of a claim, the numbers behind it, and the runs it rests on whose planned seeds have
    not all finished (``(label, finished, planned)`` each)."""

    verdict: str
    text: str
    incomplete: tuple[tuple[str, int, int], ...] = ()
    # the planned points of a curve (lengths, depths) whose runs have not finished: the verdict is on the others
    unfinished: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "verdict", Verdict(self.verdict))


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def detectable_difference(se: float) -> float:
    """The smallest true difference the 2-s.e. rule detects with 80 % power, given the s.e. of the difference:
    (Z + 0.84) s.e. (0.84: the normal quantile of 0.8). A smaller effect may be missed by the comparison."""
    return (Z + POWER_Z) * se


def _detectable(se: float) -> str:
    return f"detects >= {100 * detectable_difference(se):.1f} pts at 80 % power"


def _missing(what: str) -> Part:
    return Part(Verdict.NOT_TESTABLE, f"{what}: run not available (not in this profile's plan, or not finished)")


def _incomplete(*ms: Measure) -> tuple[tuple[str, int, int], ...]:
    return tuple(dict.fromkeys((m.label, m.runs, m.planned) for m in ms if not m.complete))


def _unlearned(*ms: Measure) -> list[Measure]:
    """The arms that never left chance, except those whose paper value is itself at chance."""
    return [m for m in ms if not m.learned and not m.paper_at_chance]


def _never_learned(head: str, arms: Sequence[Measure]) -> str:
    names = "; ".join(f"{m.label} never left chance ({m.trained_text})" for m in arms)
    return f"{head}; not testable at this profile: {names}"


def _difference(a: Measure | None, b: Measure | None, what: str) -> tuple[float, float, str] | Part:
    """(a - b, its s.e., the evidence text) of two measures, or the Part of a comparison that cannot be judged
    (a run missing, or an arm that never left chance)."""
    if a is None or b is None:
        return _missing(what or "comparison")
    d, se = a.acc - b.acc, math.hypot(a.se, b.se)
    head = f"{what + ': ' if what else ''}{a} vs {b}: {_pts(d)} (2 s.e. {100 * Z * se:.1f}; {_detectable(se)})"
    failed = _unlearned(a, b)
    if failed:
        return Part(Verdict.NOT_TESTABLE, _never_learned(head, failed), _incomplete(a, b))
    return d, se, head


def compare_better(a: Measure | None, b: Measure | None, what: str = "") -> Part:
    """Part of a claim "a beats b": judged on the 2-s.e. rule when both arms learned (or an arm at chance is at
    chance in the paper too)."""
    diff = _difference(a, b, what)
    if isinstance(diff, Part):
        return diff
    d, se, head = diff
    inc = _incomplete(a, b)
    if d > Z * se:
        return Part(Verdict.REPRODUCED, head, inc)
    return Part(Verdict.NOT_REPRODUCED, head + (", reversed" if d < -Z * se else ", within noise"), inc)


def compare_gap_growth(a_hi: Measure | None, b_hi: Measure | None, a_lo: Measure | None, b_lo: Measure | None,
                       what: str = "") -> Part:
    """Part of a claim "the gap a - b is larger in the hi setting than in the lo setting": judged when all four
    arms learned."""
    pre = f"{what}: " if what else ""
    if None in (a_hi, b_hi, a_lo, b_lo):
        return _missing(what or "gap")
    g_hi, g_lo = a_hi.acc - b_hi.acc, a_lo.acc - b_lo.acc
    se = math.sqrt(sum(m.se ** 2 for m in (a_hi, b_hi, a_lo, b_lo)))
    head = (f"{pre}gap {_pts(g_hi)} ({a_hi}, {b_hi}) vs {_pts(g_lo)} ({a_lo}, {b_lo}); growth {_pts(g_hi - g_lo)} "
            f"(2 s.e. {100 * Z * se:.1f}; {_detectable(se)})")
    inc = _incomplete(a_hi, b_hi, a_lo, b_lo)
    failed = _unlearned(a_hi, b_hi, a_lo, b_lo)
    if failed:
        return Part(Verdict.NOT_TESTABLE, _never_learned(head, failed), inc)
    if g_hi - g_lo > Z * se:
        return Part(Verdict.REPRODUCED, head, inc)
    return Part(Verdict.NOT_REPRODUCED, head + (", shrinks" if g_hi - g_lo < -Z * se else ", within noise"), inc)


def compare_not_better(a: Measure | None, b: Measure | None, what: str = "", effect: float | None = None) -> Part:
    """Part of a claim "a is no better than b" (saturation): reproduced unless a - b > 2 s.e.; not testable when
    either run is at chance (a deeper model that never left the plateau is "no better" for want of training).

    ``effect`` (a fraction): the smallest gain that would contradict the claim, e.g. the gain the paper reports
    before saturation. Failing to find a difference means nothing when the comparison could not have detected that
    gain: when the detectable difference (:func:`detectable_difference`) exceeds ``effect`` the part is not testable.
    """
    diff = _difference(a, b, what)
    if isinstance(diff, Part):
        return diff
    d, se, head = diff
    inc = _incomplete(a, b)
    if d > Z * se:
        return Part(Verdict.NOT_REPRODUCED, head + ", still growing", inc)
    if effect is not None and detectable_difference(se) > effect:
        return Part(Verdict.NOT_TESTABLE,
                    head + f", too weak to see a {100 * effect:.1f}-pt gain (the effect at stake)", inc)
    return Part(Verdict.REPRODUCED, head, inc)


def curve_shape(points: Sequence[Measure]) -> tuple[list[tuple[Measure, Measure, float, float]], str]:
    """The steps between neighbouring points of a curve (each ``(lo, hi, difference, its s.e.)``) and its shape in
    words: "monotone within noise" when no step drops by more than 2 s.e., else the drops named."""
    steps = [(lo, hi, hi.acc - lo.acc, math.hypot(lo.se, hi.se)) for lo, hi in zip(points, points[1:])]
    drops = [f"{lo.label} -> {hi.label} {_pts(d)}" for lo, hi, d, se in steps if d < -Z * se]
    return steps, ("monotone within noise" if not drops else f"not monotone: drops {'; '.join(drops)} (> 2 s.e.)")


def compare_curve(points: Sequence[Measure | None], what: str = "") -> Part:
    """Part of a claim "higher x, higher accuracy" over a curve given in increasing x (rule in the module
    docstring): judged on the points that learned."""
    pre = f"{what}: " if what else ""
    present = [m for m in points if m is not None]
    inc = _incomplete(*present)
    values = ", ".join(str(m) for m in present)
    learned = [i for i, m in enumerate(present) if m.learned]
    if len(learned) < 2:
        failed = [m for m in present if not m.learned]
        why = "; ".join(f"{m.label} never left chance ({m.trained_text})" for m in failed)
        return Part(Verdict.NOT_TESTABLE, f"{pre}{values or 'no points'}; fewer than two points of the curve "
                                          f"learned{': ' + why if why else ''}", inc)
    first, last = learned[0], learned[-1]
    gaps = [present[i] for i in range(first + 1, last) if not present[i].learned]
    if gaps:
        why = "; ".join(f"{m.label} never left chance ({m.trained_text})" for m in gaps)
        return Part(Verdict.NOT_TESTABLE, f"{pre}{values}; not monotone: {why}, between points that learned, so "
                                          "the curve's shape is unknown", inc)
    pts = [present[i] for i in learned]
    _, shape = curve_shape(pts)
    lo, hi = pts[0], pts[-1]
    d, se = hi.acc - lo.acc, math.hypot(lo.se, hi.se)
    left_out = [m for m in present if not m.learned]
    out = ("; left out: " + "; ".join(f"{m.label} never left chance ({m.trained_text})" for m in left_out)
           if left_out else "")
    head = (f"{pre}{values}; {shape}; {hi.label} vs {lo.label} {_pts(d)} (2 s.e. {100 * Z * se:.1f}; "
            f"{_detectable(se)}){out}")
    if d > Z * se and shape.startswith("monotone"):
        return Part(Verdict.REPRODUCED, head, inc)
    return Part(Verdict.NOT_REPRODUCED, head + ("" if d > Z * se else ", the ends within noise" if d > -Z * se
                                                 else ", reversed"), inc)


def combine(parts: Sequence[Part]) -> Verdict:
    """Verdict of a claim from its parts (the rule in the module docstring)."""
    verdicts = [p.verdict for p in parts]
    if not verdicts or all(v == Verdict.NOT_TESTABLE for v in verdicts):
        return Verdict.NOT_TESTABLE
    if all(v == Verdict.REPRODUCED for v in verdicts):
        return Verdict.REPRODUCED
    return Verdict.IN_PART if Verdict.REPRODUCED in verdicts else Verdict.NOT_REPRODUCED


def provisional_text(parts: Sequence[Part]) -> str:
    """"k of m seeds" (the fewest finished) when any part rests on a run whose planned seeds are not all in, and
    "X, Y not finished" when a part's curve lacks planned points."""
    out = []
    pairs = [(k, m) for p in parts for _, k, m in p.incomplete]
    if pairs:
        k, m = min(pairs)
        out.append(f"{k} of {m} seeds")
    if any(p.unfinished for p in parts):
        out.append(_unfinished_text(parts))
    return "; ".join(out)


def _unfinished_text(parts: Sequence[Part]) -> str:
    """"X, Y not finished": the planned points the parts' curves lack."""
    return f"{', '.join(dict.fromkeys(u for p in parts for u in p.unfinished))} not finished"


def judge(text: str, parts: Sequence[Part], profile: str, mini: str = MINI_YES) -> Claim:
    """A :class:`Claim` from its parts; at smoke always "not testable at this profile" (numbers kept as evidence).
    ``mini``: whether the mini profile's runs can test the claim. A part resting on unfinished seeds makes the
    claim provisional."""
    evidence = "; ".join(p.text for p in parts) or "no runs"
    if profile == "smoke":
        return Claim(text, Verdict.NOT_TESTABLE, f"{SMOKE_EVIDENCE}. {evidence}", mini)
    if len(parts) > 1:
        evidence = "; ".join(f"[{p.verdict}] {p.text}" for p in parts)
    provisional = provisional_text(parts)
    runs = sorted({f"{label} {k} of {m} seeds" for p in parts for label, k, m in p.incomplete})
    if runs:
        evidence += f" (provisional: finished so far {', '.join(runs)})"
    if any(p.unfinished for p in parts):
        evidence += f" (provisional: {_unfinished_text(parts)})"
    return Claim(text, combine(parts), evidence, mini, provisional)


# ---------------------------------------------------------------------------------------------------------------------
# The studies' rules: Fig. 4 (memory growth) and Fig. 5 (selector attention)

def memory_is_linear(exponent: float) -> bool:
    """Fig. 4: memory that grows with input length at a fitted exponent below :data:`LINEAR_MAX_EXPONENT` is linear."""
    return exponent < LINEAR_MAX_EXPONENT


def memory_is_quadratic(exponent: float) -> bool:
    """Fig. 4: an exponent above :data:`QUADRATIC_MIN_EXPONENT` is quadratic growth."""
    return exponent > QUADRATIC_MIN_EXPONENT


def score_is_calibrated(score: float) -> bool:
    """Fig. 5: an untrained model's best head scores within :data:`CALIBRATED_TOLERANCE` of 1 (no preference)."""
    return abs(score - 1.0) < CALIBRATED_TOLERANCE


def score_is_focused(score: float) -> bool:
    """Fig. 5: a trained head scoring above :data:`FOCUSED_MIN_SCORE` focuses on the sound source at event times."""
    return score > FOCUSED_MIN_SCORE
