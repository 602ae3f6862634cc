"""The statistics and verdict rules behind every training claim (pure; never tuned toward the paper's values).

- chance = (2 tol + 1) / C: the accuracy of always predicting one interior class when offsets are uniform
  (1/C for Acc@1; 3/C for Acc@1 with +-1 tolerance).
- s.e. of an accuracy p on n test items: sqrt(p'(1 - p') / n) with p' = (pn + 1)/(n + 2) (never 0). A result is
  "at chance" when p < chance + 2 sqrt(chance (1 - chance) / n).
- Every comparison states the smallest difference it could have detected: (2 + 0.84) s.e. of the difference, the true
  difference the 2-s.e. rule finds with 80 % power.
- Repeated runs (``Measure.seeds``: the run retrained with other seeds, the whole chain): the accuracy is the mean
  of the k runs and its s.e. the larger of the between-seed s.e. (sample sd / sqrt(k)), which holds both the
  seed-to-seed and the test-sampling variance, and the binomial s.e. of the k n pooled items (a floor where the k runs
  happen to agree); at chance is judged on the pooled items. With 3 seeds the sd has 2 degrees of freedom, so the
  2-s.e. rule is a normal approximation; the evidence lists every seed's accuracy so a reader can judge the spread.
- "A beats B" holds when A - B > 2 s.e. of the difference (sqrt(se_A^2 + se_B^2); the test items are treated as
  independent, which is conservative for paired items). When both arms are at chance the comparison is
  "not testable at this profile": the runs did not learn the task, so their difference carries no information about
  the claim. When at least one arm is above chance it is judged ("not reproduced" if the difference is within noise or
  reversed).
- "the gap grows" (difference of differences) holds when it exceeds 2 s.e. of the four-term difference; a gap whose two
  arms are both at chance makes it not testable.
- "A is no better than B" (saturation) holds unless A - B > 2 s.e., and only when both runs learned (above chance) and
  the comparison could have detected the gain at stake (the paper's gain before saturation): otherwise it is
  "not testable at this profile".
- A claim with several parts (settings, grids) is reproduced when every part is reproduced; reproduced in part when
  some part is reproduced and another is not reproduced or could not be judged (the evidence lists every part with
  its verdict); not reproduced when no part is reproduced and at least one was judged; not testable when none can be
  judged.
- At the smoke profile every training claim is "not testable at this profile" (the numbers are still reported).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from paperlib.paper.report import Claim

Z = 2.0  # s.e. multiple a difference must exceed to count
POWER_Z = 0.8416  # normal quantile of 0.8: the detectable difference is (Z + POWER_Z) s.e. at 80 % power
SMOKE_EVIDENCE = "smoke profile: a wiring check of a few optimiser steps, its numbers carry no information"
# Can the mini profile test a claim? (the report's column; mini's sparse runs are starved by design: 350 steps)
MINI_YES = "yes"
MINI_SPARSE = "no: it rests on sparse runs, which mini trains 350 of the ~5,000 steps they need (full trains them)"
MINI_PART = "in part: its dense parts yes; its sparse parts rest on runs mini trains 350 of ~5,000 steps"
MINI_DEPTH6 = "no: it needs depth 6, which mini does not train (its budget allows depths 1-3; full trains 1, 2, 3, 6)"

def chance_level(num_classes: int, tol: int = 0) -> float:
    """Accuracy of always predicting one interior class under uniform offsets: (2 tol + 1) / C, at most 1."""
    if num_classes < 1 or tol < 0:
        raise ValueError(f"need num_classes >= 1 and tol >= 0, got {num_classes}, {tol}")
    return min(1.0, (2 * tol + 1) / num_classes)


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
    chance: float  # fraction
    seeds: tuple[float, ...] = ()  # each repeated run's accuracy (the run and its retrainings with other seeds)

    @classmethod
    def repeated(cls, label: str, accs: Sequence[float], n: int, chance: float) -> "Measure":
        """The mean of repeated runs of one configuration (one accuracy per seed, each on ``n`` test items)."""
        if not accs:
            raise ValueError(f"{label}: no runs to average")
        accs = tuple(float(a) for a in accs)
        return cls(label, sum(accs) / len(accs), n, chance, accs if len(accs) > 1 else ())

    @property
    def runs(self) -> int:
        return max(1, len(self.seeds))

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
        return self.acc > self.chance + Z * math.sqrt(self.chance * (1 - self.chance) / (self.n * self.runs))

    @property
    def seeds_text(self) -> str:
        """"mean of k seeds: a / b / c" (percent); empty for one run."""
        if not self.seeds:
            return ""
        return f"mean of {self.runs} seeds: {' / '.join(f'{100 * a:.1f}' for a in self.seeds)}"

    def __str__(self) -> str:
        seeds = f" ({self.seeds_text}, sd {100 * self.seed_sd:.1f})" if self.seeds else ""
        return f"{self.label} {100 * self.acc:.1f}%{seeds}{'' if self.above_chance else ' (at chance)'}"


@dataclasses.dataclass(frozen=True)
class Part:
    """The verdict on one part of a claim and the numbers behind it."""

    verdict: str
    text: str


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def detectable_difference(se: float) -> float:
    """The smallest true difference the 2-s.e. rule detects with 80 % power, given the s.e. of the difference:
    (Z + 0.84) s.e. (0.84: the normal quantile of 0.8). A smaller effect may be missed by the comparison."""
    return (Z + POWER_Z) * se


def _detectable(se: float) -> str:
    return f"detects >= {100 * detectable_difference(se):.1f} pts at 80 % power"


def _missing(what: str) -> Part:
    return Part("not testable at this profile",
                f"{what}: run not available (not in this profile's plan, or not finished)")


def _difference(a: Measure | None, b: Measure | None, what: str) -> tuple[float, float, str] | Part:
    """(a - b, its s.e., the evidence text) of two measures, or the Part of a comparison that cannot be judged
    (a run missing, or both runs at chance)."""
    if a is None or b is None:
        return _missing(what or "comparison")
    d, se = a.acc - b.acc, math.hypot(a.se, b.se)
    head = f"{what + ': ' if what else ''}{a} vs {b}: {_pts(d)} (2 s.e. {100 * Z * se:.1f}; {_detectable(se)})"
    if not (a.above_chance or b.above_chance):
        return Part("not testable at this profile", head + ", both at chance")
    return d, se, head


def compare_better(a: Measure | None, b: Measure | None, what: str = "", both_learned: bool = False) -> Part:
    """Part of a claim "a beats b": judged on the 2-s.e. rule, not testable when both are at chance.

    ``both_learned``: also not testable when either run is at chance, for claims about the data rather than the
    models ("sparse is harder than dense"): a run that never left chance says how long it trained, not how hard its
    data is."""
    diff = _difference(a, b, what)
    if isinstance(diff, Part):
        return diff
    d, se, head = diff
    if both_learned and not (a.above_chance and b.above_chance):
        return Part("not testable at this profile", head + ", a run at chance (it never learned)")
    if d > Z * se:
        return Part("reproduced", head)
    return Part("not reproduced", head + (", reversed" if d < -Z * se else ", within noise"))


def compare_gap_growth(a_hi: Measure | None, b_hi: Measure | None, a_lo: Measure | None, b_lo: Measure | None,
                       what: str = "") -> Part:
    """Part of a claim "the gap a - b is larger in the hi setting than in the lo setting"."""
    pre = f"{what}: " if what else ""
    if None in (a_hi, b_hi, a_lo, b_lo):
        return _missing(what or "gap")
    g_hi, g_lo = a_hi.acc - b_hi.acc, a_lo.acc - b_lo.acc
    se = math.sqrt(sum(m.se ** 2 for m in (a_hi, b_hi, a_lo, b_lo)))
    head = (f"{pre}gap {_pts(g_hi)} ({a_hi}, {b_hi}) vs {_pts(g_lo)} ({a_lo}, {b_lo}); growth {_pts(g_hi - g_lo)} "
            f"(2 s.e. {100 * Z * se:.1f}; {_detectable(se)})")
    if not (a_hi.above_chance or b_hi.above_chance) or not (a_lo.above_chance or b_lo.above_chance):
        return Part("not testable at this profile", head + ", a gap between two at-chance runs")
    if g_hi - g_lo > Z * se:
        return Part("reproduced", head)
    return Part("not reproduced", head + (", shrinks" if g_hi - g_lo < -Z * se else ", within noise"))


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
    if d > Z * se:
        return Part("not reproduced", head + ", still growing")
    if not (a.above_chance and b.above_chance):  # a run that never learned says nothing about saturation
        return Part("not testable at this profile", head + ", a run at chance (it never learned)")
    if effect is not None and detectable_difference(se) > effect:
        return Part("not testable at this profile",
                    head + f", too weak to see a {100 * effect:.1f}-pt gain (the effect at stake)")
    return Part("reproduced", head)


def combine(parts: Sequence[Part]) -> str:
    """Verdict of a claim from its parts (the rule in the module docstring)."""
    verdicts = [p.verdict for p in parts]
    if not verdicts or all(v == "not testable at this profile" for v in verdicts):
        return "not testable at this profile"
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "reproduced in part" if "reproduced" in verdicts else "not reproduced"


def judge(text: str, parts: Sequence[Part], profile: str, mini: str = MINI_YES) -> Claim:
    """A :class:`Claim` from its parts; at smoke always "not testable at this profile" (numbers kept as evidence).
    ``mini``: whether the mini profile's runs can test the claim (``MINI_*``)."""
    evidence = "; ".join(p.text for p in parts) or "no runs"
    if profile == "smoke":
        return Claim(text, "not testable at this profile", f"{SMOKE_EVIDENCE}. {evidence}", mini)
    if len(parts) > 1:
        evidence = "; ".join(f"[{p.verdict}] {p.text}" for p in parts)
    return Claim(text, combine(parts), evidence, mini)

