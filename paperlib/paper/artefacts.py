"""The training-based paper artefacts: Table 2 (Sec. 5.1), Tables 3 and 5 (Sec. 5.2, 7.2), Table 4 (Sec. 5.2),
Table 6 (Sec. 7.2), Table 7 (Sec. 7.2) and Fig. 3 (Sec. 5.1), each as paper | ours | delta with a verdict per claim.

Every artefact asks :mod:`paperlib.paper.campaign` for training runs by key (``campaign.ensure_runs``: each distinct
configuration is trained once and shared by all artefacts of a profile) and turns the runs' test metrics into tables,
a figure and claims. The table/claim logic is pure (``*_from_records`` functions on any objects with the
``RunRecord`` attributes ``spec``, ``test``, ``params``), so it is tested on hand-made records.

Mapping of the paper's datasets to the synthetic benchmark (smoke and mini profiles): dense-crop = LRS3 (face crop),
dense-wide = LRS3 (no face crop), sparse = VGGSound-Sparse, general = VGGSound (a larger, more varied synthetic set).
"Pre-trained on LRS3" = the dense-crop -> dense-wide chain before sparse; "pre-trained feature extractors" = extractors
carried over from that chain (the paper: S3D on Kinetics 400, ResNet18 on VGGSound; here no external weights at
smoke/mini). At mini the model is the small CPU configuration of the paper's architecture (preset ``cpu-recipe``:
d_model 64, depth 2, 16 selectors, 48-px crops, the issue-11 recipe: time-anchored selector init + auxiliary losses);
at smoke it is the ``smoke`` wiring check (a few steps: every training claim is "not testable at this profile").

Metric: the paper's main metric per grid, Acc@1 for 3 classes and Acc@1 with +-1 class tolerance for 21 classes
(Tables 5-7 also list Acc@1 without tolerance). Accuracies are stored as fractions and shown in percent.

Verdict rules (never tuned toward the paper's values):
- chance = (2 tol + 1) / C: the accuracy of always predicting one interior class when offsets are uniform
  (1/C for Acc@1; 3/C for Acc@1 with +-1 tolerance).
- s.e. of an accuracy p on n test items: sqrt(p'(1 - p') / n) with p' = (pn + 1)/(n + 2) (never 0). A result is
  "at chance" when p < chance + 2 sqrt(chance (1 - chance) / n).
- "A beats B" holds when A - B > 2 s.e. of the difference (sqrt(se_A^2 + se_B^2); the test items are treated as
  independent, which is conservative for paired items). When both arms are at chance the comparison is
  "not testable at this profile": the runs did not learn the task, so their difference carries no information about
  the claim. When at least one arm is above chance it is judged ("not reproduced" if the difference is within noise or
  reversed).
- "the gap grows" (difference of differences) holds when it exceeds 2 s.e. of the four-term difference; a gap whose two
  arms are both at chance makes it not testable.
- A claim with several parts (settings, grids) is reproduced when every part that can be judged is reproduced and at
  least one can; not reproduced when any judged part is not; not testable when none can be judged.
- At the smoke profile every training claim is "not testable at this profile" (the numbers are still reported).
- Per claim: longer inputs help = longest vs shortest trained length, per grid; depth helps = depth 3 (else the
  deepest <= 3) vs depth 1; saturates around 3 = depth helps and the deepest > 3 is not better than 3 by 2 s.e.
  (not testable without a depth > 3); Fig. 3 = SparseSync beats AVST_dec overall, is higher on at least half of the
  content classes and no class is significantly reversed; paper-size parameter counts within +-0.05M of Table 6.
- n is the number of distinct test items: with random-offset test passes over the same clips (sparse/general at mini,
  the VGGSound-Sparse README protocol) the evaluated items are divided by the passes, which widens the s.e.

``checkpoint``: Table 2, Table 7 and Fig. 3 evaluate single models, so they accept ``key=path[,key=path]`` (e.g. the
official checkpoints at the paper profile) and evaluate those files with ``campaign.evaluate_checkpoint`` instead of
training anything (the other cells stay empty); Tables 3/5, 4 and 6 compare several runs and ignore it (with a note).

Deviations: Fig. 3's values are only drawn in the paper (no numbers in the text), so its table has no paper column;
per-class accuracies use the runs' per-item predictions (the grid's main metric, exact counts), or the recorded
per-class Acc@1 with estimated counts when a record has no items. The 3 vs 21 class gap compares the paper's two
headline metrics (Acc@1 vs Acc@1 with tolerance), as the paper does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from paperlib.paper.reproduce import Artefact, Claim, _rel_to, write_text_atomic, environment, repo_root, runs_dir, \
    save_figure

Z = 2.0  # s.e. multiple a difference must exceed to count
SMOKE_EVIDENCE = "smoke profile: a wiring check of a few optimiser steps, its numbers carry no information"

SETTING_DATASET = {"dense-crop": "LRS3 (face crop)", "dense-wide": "LRS3 (no face crop)", "sparse": "VGGSound-Sparse",
                   "general": "VGGSound"}
VARIANT_NAME = {"sparsesync": "SparseSync (ours)", "avst_dec": "AVST_dec", "transformer": "no selectors"}

# ---------------------------------------------------------------------------------------------------------------------
# The paper's numbers (percent), copied from the text of Tables 2-7.

PAPER_TABLE2 = {  # (variant, setting, classes) -> Acc@1 (3 classes) / Acc@1 +-1 class (21 classes)
    ("avst_dec", "dense-crop", 3): 98.4, ("avst_dec", "dense-crop", 21): 89.8,
    ("avst_dec", "dense-wide", 3): 95.8, ("avst_dec", "dense-wide", 21): 83.1,
    ("avst_dec", "sparse", 3): 52.2, ("avst_dec", "sparse", 21): 29.3,
    ("sparsesync", "dense-crop", 3): 96.4, ("sparsesync", "dense-crop", 21): 95.6,
    ("sparsesync", "dense-wide", 3): 95.5, ("sparsesync", "dense-wide", 21): 96.9,
    ("sparsesync", "sparse", 3): 60.3, ("sparsesync", "sparse", 21): 44.3,
}
PAPER_ORACLE_SPARSE_3CLS = 70.0  # human oracle on 240 VGGSound-Sparse videos (Table 2 footnote)

# Table 5 rows (Table 3 is its sparse +-1 column): (row, key template, {setting: (Acc@1, Acc@1 tol)})
ABLATION_ROWS = (
    ("no selectors", "transformer/{s}/c21", {"dense-wide": (78.3, 97.2), "sparse": (21.2, 40.1)}),
    ("sync model not pre-trained on dense data", "sparsesync/{s}/c21/scratch", {"sparse": (5.0, 12.1)}),
    ("feature extractors not pre-trained", "sparsesync/{s}/c21/no-pretrained-extractors",
     {"dense-wide": (76.6, 94.1), "sparse": (16.0, 29.6)}),
    ("frozen feature extractors", "sparsesync/{s}/c21/frozen-extractors",
     {"dense-wide": (38.6, 69.7), "sparse": (14.7, 33.5)}),
    ("full model", "sparsesync/{s}/c21", {"dense-wide": (80.7, 96.9), "sparse": (26.7, 44.3)}),
)
ABLATION_SETTINGS = ("dense-wide", "sparse")

PAPER_TABLE4 = {3: {2: 55.6, 3: 59.4, 4: 60.8, 5: 60.3, 6: 61.2, 7: 62.9},  # classes -> {seconds: accuracy}
                21: {3: 36.8, 4: 43.0, 5: 44.2, 6: 45.6, 7: 46.5}}
PAPER_TABLE6 = {1: (31.2, 61.7, 89.2), 2: (42.8, 78.0, 95.7), 3: (55.3, 80.7, 96.9), 6: (89.0, 81.1, 97.5)}
PAPER_TABLE7 = {"sparse": (26.7, 44.3), "general": (33.5, 51.2)}  # fine-tuned on -> (Acc@1, Acc@1 tol)

_LEN_KEY = re.compile(r"sparsesync/sparse/c(\d+)/len(\d+(?:\.\d+)?)")
_DEPTH_KEY = re.compile(r"sparsesync/dense-wide/c21/depth(\d+)")


# ---------------------------------------------------------------------------------------------------------------------
# Statistics and verdict rules (pure)

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
    acc: float  # fraction in [0, 1]
    n: int  # test items
    chance: float  # fraction

    @property
    def se(self) -> float:
        return binomial_se(self.acc, self.n)

    @property
    def above_chance(self) -> bool:
        return self.acc > self.chance + Z * math.sqrt(self.chance * (1 - self.chance) / self.n)

    def __str__(self) -> str:
        return f"{self.label} {100 * self.acc:.1f}%{'' if self.above_chance else ' (at chance)'}"


@dataclasses.dataclass(frozen=True)
class Part:
    """The verdict on one part of a claim and the numbers behind it."""

    verdict: str
    text: str


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _missing(what: str) -> Part:
    return Part("not testable at this profile", f"{what}: run not available at this profile")


def compare_better(a: Measure | None, b: Measure | None, what: str = "") -> Part:
    """Part of a claim "a beats b": judged on the 2-s.e. rule, not testable when both are at chance."""
    pre = f"{what}: " if what else ""
    if a is None or b is None:
        return _missing(what or "comparison")
    d = a.acc - b.acc
    se = math.hypot(a.se, b.se)
    head = f"{pre}{a} vs {b}: {_pts(d)} (2 s.e. {100 * Z * se:.1f})"
    if not (a.above_chance or b.above_chance):
        return Part("not testable at this profile", head + ", both at chance")
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
            f"(2 s.e. {100 * Z * se:.1f})")
    if not (a_hi.above_chance or b_hi.above_chance) or not (a_lo.above_chance or b_lo.above_chance):
        return Part("not testable at this profile", head + ", a gap between two at-chance runs")
    if g_hi - g_lo > Z * se:
        return Part("reproduced", head)
    return Part("not reproduced", head + (", shrinks" if g_hi - g_lo < -Z * se else ", within noise"))


def compare_not_better(a: Measure | None, b: Measure | None, what: str = "") -> Part:
    """Part of a claim "a is no better than b" (saturation): reproduced unless a - b > 2 s.e."""
    pre = f"{what}: " if what else ""
    if a is None or b is None:
        return _missing(what or "comparison")
    d = a.acc - b.acc
    se = math.hypot(a.se, b.se)
    head = f"{pre}{a} vs {b}: {_pts(d)} (2 s.e. {100 * Z * se:.1f})"
    if not (a.above_chance or b.above_chance):
        return Part("not testable at this profile", head + ", both at chance")
    return Part("not reproduced", head + ", still growing") if d > Z * se else Part("reproduced", head)


def combine(parts: Sequence[Part]) -> str:
    """Verdict of a claim from its parts (see the module docstring)."""
    judged = [p.verdict for p in parts if p.verdict != "not testable at this profile"]
    if not judged:
        return "not testable at this profile"
    return "reproduced" if all(v == "reproduced" for v in judged) else "not reproduced"


def judge(text: str, parts: Sequence[Part], profile: str) -> Claim:
    """A :class:`Claim` from its parts; at smoke always "not testable at this profile" (numbers kept as evidence)."""
    evidence = "; ".join(p.text for p in parts) or "no runs"
    if profile == "smoke":
        return Claim(text, "not testable at this profile", f"{SMOKE_EVIDENCE}. {evidence}")
    if len(parts) > 1:
        evidence = "; ".join(f"[{p.verdict}] {p.text}" for p in parts)
    return Claim(text, combine(parts), evidence)


# ---------------------------------------------------------------------------------------------------------------------
# Reading records (any object with RunRecord's attributes)

def _classes(rec: Any) -> int:
    return int(rec.spec.num_classes)


def _n_eff(test: Mapping[str, Any]) -> int:
    """Test items for the s.e.: distinct items, i.e. ``n`` divided by the random-offset passes over the same clips
    (``passes``; 1 with fixed offsets), since repeated passes over one clip are not independent."""
    return max(1, int(test["n"]) // max(1, int(test.get("passes") or 1)))


def measure(records: Mapping[str, Any], key: str, label: str | None = None, tol: int | None = None) -> Measure | None:
    """The accuracy of run ``key`` (the paper's main metric unless ``tol`` is given); None when the run is absent."""
    rec = records.get(key)
    if rec is None:
        return None
    c = _classes(rec)
    tol = headline_tol(c) if tol is None else tol
    test = rec.test
    acc = test.get("accuracy_1_tol1" if tol else "accuracy_1")
    if acc is None or test.get("n") is None:
        raise ValueError(f"run {key!r}: test metrics lack {'accuracy_1_tol1' if tol else 'accuracy_1'} or n "
                         f"(have {sorted(test)})")
    return Measure(label or key, float(acc), _n_eff(test), chance_level(c, tol))


def _pct(x: float | None) -> float:
    return float("nan") if x is None or (isinstance(x, float) and math.isnan(x)) else round(100 * float(x), 1)


def _delta(ours: float, paper: float | None) -> float:
    return float("nan") if paper is None or math.isnan(ours) else round(ours - paper, 1)


def _cell(records: Mapping[str, Any], key: str, tol: int, paper: float | None) -> dict[str, Any]:
    """paper | ours | delta | 2 s.e. | chance | n for one run and metric (NaN where the run is absent)."""
    m = measure(records, key, tol=tol)
    if m is None:
        return {"paper": paper, "ours": float("nan"), "delta": float("nan"), "2se": float("nan"),
                "chance": float("nan"), "n": 0, "run": f"{key} (not run)"}
    ours = _pct(m.acc)
    return {"paper": paper, "ours": ours, "delta": _delta(ours, paper), "2se": round(100 * Z * m.se, 1),
            "chance": _pct(m.chance), "n": m.n, "run": key}


def _metric_name(tol: int) -> str:
    return "Acc@1 +-1 cls" if tol else "Acc@1"


def _oracle(rec: Any, tol: int) -> dict[str, float]:
    """The synthetic oracle of a test set: share of items holding a sync cue, the model's accuracy on them, and the
    ceiling (cue -> correct, otherwise chance)."""
    t = rec.test
    frac = t.get("cue_fraction")
    if frac is None:
        return {}
    chance = chance_level(_classes(rec), tol)
    cue_acc = t.get("cue_accuracy_1_tol1" if tol else "cue_accuracy_1")
    null = t.get("cue_null_accuracy_1_tol1" if tol else "cue_null_accuracy_1")  # absent in older runs' results
    return {"cue_fraction": _pct(frac), "cue_n": t.get("cue_n"), "ours_on_cue_items": _pct(cue_acc),
            "null_on_cue_items": _pct(null), "oracle_ceiling": _pct(frac + (1 - frac) * chance)}


def runs_table(records: Mapping[str, Any]) -> Any:
    """One row per run used: steps, where it left the chance plateau, wall time, parameters, cache reuse, folder."""
    import pandas as pd

    rows = []
    for key, rec in records.items():
        params = getattr(rec, "params", None) or {}
        rows.append({"run": key, "steps": getattr(rec, "steps", None),
                     "left_plateau_at_step": getattr(rec, "left_plateau_at_step", None),
                     "wall_s": round(float(getattr(rec, "wall_s", float("nan")) or float("nan")), 1),
                     "params": params.get("total"), "reused": getattr(rec, "reused", None),
                     "run_dir": _rel_to(str(getattr(rec, "run_dir", "")), repo_root())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------------
# Keys each artefact asks for

def table2_keys() -> list[str]:
    return [f"{v}/{s}/c{c}" for v in ("sparsesync", "avst_dec") for s in ("dense-crop", "dense-wide", "sparse")
            for c in (21, 3)]


def table3_keys() -> list[str]:
    return [tpl.format(s=s) for _, tpl, paper in ABLATION_ROWS for s in ABLATION_SETTINGS if s in paper]


def table4_keys(plan_keys: Sequence[str]) -> list[str]:
    return sorted((k for k in plan_keys if _LEN_KEY.fullmatch(k)),
                  key=lambda k: (int(_LEN_KEY.fullmatch(k)[1]), float(_LEN_KEY.fullmatch(k)[2])))


def table6_keys(plan_keys: Sequence[str]) -> list[str]:
    return sorted((k for k in plan_keys if _DEPTH_KEY.fullmatch(k)), key=lambda k: int(_DEPTH_KEY.fullmatch(k)[1]))


def table7_keys() -> list[str]:
    return ["sparsesync/sparse/c21", "sparsesync/general/c21"]


def fig3_keys() -> list[str]:
    return [f"{v}/sparse/c{c}" for c in (21, 3) for v in ("sparsesync", "avst_dec")]


def artefact_keys(name: str, plan_keys: Sequence[str]) -> list[str]:
    """The run keys artefact ``name`` asks for (those in ``plan_keys``, the campaign's plan of a profile)."""
    table = {"table2_main_results": table2_keys, "table3_ablation": table3_keys, "table7_finetune": table7_keys,
             "fig3_per_class": fig3_keys}
    if name in table:
        keys = table[name]()
    elif name == "table4_input_length":
        keys = table4_keys(plan_keys)
    elif name == "table6_depth":
        keys = table6_keys(plan_keys)
    else:
        raise KeyError(f"unknown training artefact {name!r}; have {TRAINING_ARTEFACTS}")
    return [k for k in keys if k in set(plan_keys)]


# ---------------------------------------------------------------------------------------------------------------------
# Tables and claims from records (pure)

def table2_from_records(records: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], list[Claim]]:
    """Table 2: SparseSync vs AVST_dec on dense-crop / dense-wide / sparse, 3 and 21 classes, + chance and oracle."""
    import pandas as pd

    rows = []
    for v in ("sparsesync", "avst_dec"):
        for s in ("dense-crop", "dense-wide", "sparse"):
            for c in (3, 21):
                tol = headline_tol(c)
                key = f"{v}/{s}/c{c}"
                row = {"model": VARIANT_NAME[v], "setting": s, "paper dataset": SETTING_DATASET[s], "classes": c,
                       "metric": _metric_name(tol), **_cell(records, key, tol, PAPER_TABLE2[(v, s, c)])}
                if key in records:
                    row.update(_oracle(records[key], tol))
                rows.append(row)
    for c in (3, 21):  # the oracle rows: the paper's human oracle vs the share of test items with a sync cue
        tol = headline_tol(c)
        rec = records.get(f"sparsesync/sparse/c{c}")
        orc = _oracle(rec, tol) if rec is not None else {}
        ours = orc.get("oracle_ceiling", float("nan"))
        paper = PAPER_ORACLE_SPARSE_3CLS if c == 3 else None
        rows.append({"model": "oracle", "setting": "sparse", "paper dataset": SETTING_DATASET["sparse"], "classes": c,
                     "metric": _metric_name(tol), "paper": paper, "ours": ours, "delta": _delta(ours, paper),
                     "chance": _pct(chance_level(c, tol)),
                     "n": (orc.get("cue_n") or 0) // max(1, int(rec.test.get("passes") or 1)) if rec else 0,
                     "run": "share of test items whose windows hold a sync cue (cue -> correct, else chance)",
                     **{k: v for k, v in orc.items() if k != "oracle_ceiling"}})
    df = pd.DataFrame(rows)

    def m(v: str, s: str, c: int) -> Measure | None:
        return measure(records, f"{v}/{s}/c{c}", f"{VARIANT_NAME[v].split(' ')[0]} {s} {c}cls")

    claims = [
        judge("SparseSync outperforms AVST_dec on sparse data (VGGSound-Sparse; Sec. 5.1)",
              [compare_better(m("sparsesync", "sparse", c), m("avst_dec", "sparse", c), f"{c} classes")
               for c in (3, 21)], profile),
        judge("the gap to AVST_dec grows from dense (face crop) to sparse data",
              [compare_gap_growth(m("sparsesync", "sparse", c), m("avst_dec", "sparse", c),
                                  m("sparsesync", "dense-crop", c), m("avst_dec", "dense-crop", c), f"{c} classes")
               for c in (3, 21)], profile),
        judge("the gap to AVST_dec grows from 3 to 21 classes",
              [compare_gap_growth(m("sparsesync", s, 21), m("avst_dec", s, 21), m("sparsesync", s, 3),
                                  m("avst_dec", s, 3), s) for s in ("dense-crop", "dense-wide", "sparse")], profile),
        judge("sparse data is harder than dense data (both models, both grids)",
              [compare_better(m(v, d, c), m(v, "sparse", c), f"{VARIANT_NAME[v].split(' ')[0]} {c} classes")
               for v in ("sparsesync", "avst_dec") for c in (3, 21) for d in ("dense-crop", "dense-wide")], profile),
    ]
    return {"Table 2: SparseSync vs AVST_dec (%, paper | ours | delta)": df}, claims


def table3_from_records(records: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], list[Claim]]:
    """Table 3 (sparse, Acc@1 +-1) and Table 5 (dense-wide and sparse, Acc@1 and Acc@1 +-1) of the ablations."""
    import pandas as pd

    t3, t5 = [], []
    for row, tpl, paper in ABLATION_ROWS:
        key = tpl.format(s="sparse")
        t3.append({"ablation": row, "metric": _metric_name(1),
                   **_cell(records, key, 1, paper["sparse"][1] if "sparse" in paper else None)})
        for s in ABLATION_SETTINGS:
            if s not in paper:
                continue
            for tol in (0, 1):
                t5.append({"ablation": row, "setting": s, "paper dataset": SETTING_DATASET[s],
                           "metric": _metric_name(tol), **_cell(records, tpl.format(s=s), tol, paper[s][tol])})

    def m(tpl: str, s: str) -> Measure | None:
        return measure(records, tpl.format(s=s), f"{tpl.format(s=s)}", tol=1)

    full = "sparsesync/{s}/c21"
    claims = [
        judge("selectors beat the no-selector transformer on sparse data",
              [compare_better(m(full, "sparse"), m("transformer/{s}/c21", "sparse"))], profile),
        judge("the selectors' advantage is larger on sparse than on dense (no face crop) data (Sec. 7.2)",
              [compare_gap_growth(m(full, "sparse"), m("transformer/{s}/c21", "sparse"), m(full, "dense-wide"),
                                  m("transformer/{s}/c21", "dense-wide"))], profile),
        judge("pre-training the sync model on dense data is essential for sparse data",
              [compare_better(m(full, "sparse"), m("sparsesync/{s}/c21/scratch", "sparse"))], profile),
        judge("pre-trained feature extractors help",
              [compare_better(m(full, s), m("sparsesync/{s}/c21/no-pretrained-extractors", s), s)
               for s in ABLATION_SETTINGS], profile),
        judge("trainable (unfrozen) feature extractors help",
              [compare_better(m(full, s), m("sparsesync/{s}/c21/frozen-extractors", s), s)
               for s in ABLATION_SETTINGS], profile),
    ]
    return {"Table 3: ablations on sparse data, 21 classes (%, Acc@1 +-1 cls)": pd.DataFrame(t3),
            "Table 5: ablations, Acc@1 and Acc@1 +-1 cls (%)": pd.DataFrame(t5)}, claims


def table4_from_records(records: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], list[Claim]]:
    """Table 4: accuracy vs input length on sparse data, for each grid the campaign trained."""
    import pandas as pd

    by_c: dict[int, list[tuple[float, str]]] = {}
    for key in records:
        hit = _LEN_KEY.fullmatch(key)
        if hit:
            by_c.setdefault(int(hit[1]), []).append((float(hit[2]), key))
    rows = []
    for c in (3, 21):
        trained = dict((sec, key) for sec, key in sorted(by_c.get(c, [])))
        for sec in sorted(set(PAPER_TABLE4[3]) | set(trained)):  # the paper's rows 2..7 s (21 cls: no 2 s)
            key = trained.get(sec, f"sparsesync/sparse/c{c}/len{sec:g}")
            row = {"classes": c, "length_s": sec, "metric": _metric_name(headline_tol(c)),
                   **_cell(records, key, headline_tol(c), PAPER_TABLE4[c].get(int(sec)) if sec == int(sec) else None)}
            if key in records:
                row.update(_oracle(records[key], headline_tol(c)))
            rows.append(row)
    parts = []
    for c in (3, 21):
        runs = sorted(by_c.get(c, []))
        if len(runs) < 2:
            parts.append(Part("not testable at this profile", f"{c} classes: fewer than two lengths trained"))
            continue
        (s_lo, k_lo), (s_hi, k_hi) = runs[0], runs[-1]
        parts.append(compare_better(measure(records, k_hi, f"{s_hi:g} s"), measure(records, k_lo, f"{s_lo:g} s"),
                                    f"{c} classes, longest vs shortest"))
    claims = [judge("longer inputs help on sparse data", parts, profile)]
    return {"Table 4: accuracy vs input length on sparse data (%)": pd.DataFrame(rows)}, claims


def paper_size_params(depths: Sequence[int] = (1, 2, 3, 6)) -> dict[int, int]:
    """Parameters of the paper-size SparseSync model (S3D + ResNet18, D 512, 21 classes) at each depth (meta device)."""
    from paperlib.model.sparsesync import ModelConfig, model_summary

    return {d: int(model_summary(ModelConfig(depth=d), flops=False)["params"]["total"]) for d in depths}


def table6_from_records(records: Mapping[str, Any], profile: str, paper_params: Mapping[int, int]
                        ) -> tuple[dict[str, Any], list[Claim]]:
    """Table 6: depth 1/2/3/6 with parameter counts (paper-size model and the trained model) and accuracies."""
    import pandas as pd

    trained = {int(_DEPTH_KEY.fullmatch(k)[1]): k for k in records if _DEPTH_KEY.fullmatch(k)}
    rows = []
    for d in sorted(set(PAPER_TABLE6) | set(trained)):
        key = trained.get(d, f"sparsesync/dense-wide/c21/depth{d}")
        paper = PAPER_TABLE6.get(d, (None, None, None))
        ours_p = paper_params.get(d)
        rec = records.get(key)
        trained_p = (getattr(rec, "params", None) or {}).get("total") if rec is not None else None
        base = {"depth": d, "paper params (M)": paper[0],
                "ours paper-size params (M)": round(ours_p / 1e6, 2) if ours_p else float("nan"),
                "params delta (M)": round(ours_p / 1e6 - paper[0], 2) if ours_p and paper[0] else float("nan"),
                "trained model params (M)": round(trained_p / 1e6, 3) if trained_p else float("nan")}
        for tol in (0, 1):
            rows.append({**base, "metric": _metric_name(tol), **_cell(records, key, tol, paper[1 + tol])})
    df = pd.DataFrame(rows)

    def m(d: int | None) -> Measure | None:
        return measure(records, trained[d], f"depth {d}") if d in trained else None

    ds = sorted(trained)
    lo = 1 if 1 in trained else (ds[0] if ds else None)
    mid = 3 if 3 in trained else max((d for d in ds if d <= 3), default=None)
    hi = max((d for d in ds if d > 3), default=None)
    helps = compare_better(m(mid), m(lo), "more layers") if lo is not None and mid is not None and mid > lo else \
        Part("not testable at this profile", f"depths trained: {ds}")
    if hi is None:
        sat = Part("not testable at this profile", f"no depth above 3 trained (depths {ds})")
    elif helps.verdict != "reproduced":  # nothing grew, so nothing can saturate
        sat = Part(helps.verdict, f"{helps.text}; no growth up to depth {mid} to saturate")
    else:
        sat = compare_not_better(m(hi), m(mid), f"depth {hi} vs {mid}")
    claims = [judge("depth helps (more transformer layers, higher accuracy)", [helps], profile),
              judge("the gain saturates around 3 layers", [sat], profile)]
    ok = [abs(paper_params[d] / 1e6 - PAPER_TABLE6[d][0]) <= 0.05 for d in PAPER_TABLE6 if d in paper_params]
    claims.append(Claim(
        "parameter counts of the paper-size model (Table 6 Params)",
        "reproduced" if ok and all(ok) else ("not reproduced" if ok else "not testable at this profile"),
        "; ".join(f"depth {d}: {paper_params[d] / 1e6:.2f}M vs paper {PAPER_TABLE6[d][0]}M"
                  for d in sorted(paper_params) if d in PAPER_TABLE6)
        + " (rule: within the paper's 0.1M rounding, +-0.05M; the paper's own increments of ~11.6M per layer put "
          "depth 3 at ~54.4M)"))
    return {"Table 6: depth of the selectors and the sync transformer (dense, no face crop, 21 classes; %)": df}, claims


def table7_from_records(records: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], list[Claim]]:
    """Table 7: fine-tuning on sparse vs on the larger, more varied general set, tested on the sparse test split."""
    import pandas as pd

    rows = []
    for ft, key in (("sparse", "sparsesync/sparse/c21"), ("general", "sparsesync/general/c21")):
        for tol in (0, 1):
            rows.append({"pre-trained on": "dense-wide (LRS3 no face crop)",
                         "fine-tuned on": f"{ft} ({SETTING_DATASET[ft]})", "tested on": "sparse",
                         "metric": _metric_name(tol), **_cell(records, key, tol, PAPER_TABLE7[ft][tol])})
    claims = [judge("fine-tuning on a larger, more varied set helps on sparse data",
                    [compare_better(measure(records, "sparsesync/general/c21", "fine-tuned on general"),
                                    measure(records, "sparsesync/sparse/c21", "fine-tuned on sparse"))], profile)]
    return {"Table 7: fine-tuning set, tested on sparse (%)": pd.DataFrame(rows)}, claims


def offset_grid(num_classes: int) -> list[float]:
    """Offset (s) of each class: -1, 0, +1 for 3 classes, else a 0.2-s grid centred on 0 (21: -2.0 .. +2.0)."""
    step = 1.0 if num_classes == 3 else 0.2
    half = (num_classes - 1) / 2
    return [round((i - half) * step, 2) for i in range(num_classes)]


def per_class_rows(records: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Long rows of per content class and per offset class accuracy (percent) with counts, for every record given.

    From the per-item predictions (``test["items"]``: label, target, pred) when the record has them: the paper's main
    metric of the grid, exact counts. Otherwise from ``per_content_class_accuracy`` / ``per_offset_class_accuracy``
    (Acc@1), counts from the confusion matrix or estimated as n / classes (``n_is_estimate``).
    """
    rows = []
    for key, rec in records.items():
        v, c, t = key.split("/")[0], _classes(rec), rec.test
        grid = offset_grid(c)
        items = t.get("items")
        if items:
            tol = headline_tol(c)
            groups: dict[tuple[str, str], list[bool]] = {}
            for it in items:
                hit = abs(int(it["pred"]) - int(it["target"])) <= tol
                groups.setdefault(("content class", str(it.get("label"))), []).append(hit)
                groups.setdefault(("offset class", f"{grid[int(it['target'])]:+.1f} s"), []).append(hit)
            order = sorted(groups, key=lambda g: (g[0], float(g[1][:-2]) if g[0] == "offset class" else g[1]))
            for kind, label in order:
                hits = groups[(kind, label)]
                rows.append({"kind": kind, "classes": c, "class": label, "model": VARIANT_NAME[v],
                             "metric": _metric_name(tol), "ours": _pct(sum(hits) / len(hits)), "n": len(hits),
                             "n_is_estimate": False, "run": key})
            continue
        n = _n_eff(t)
        content = t.get("per_content_class_accuracy") or {}
        for label, acc in sorted(content.items()):
            rows.append({"kind": "content class", "classes": c, "class": str(label), "model": VARIANT_NAME[v],
                         "metric": _metric_name(0), "ours": _pct(acc), "n": n // max(1, len(content)),
                         "n_is_estimate": True, "run": key})
        conf = t.get("confusion_matrix")
        for i, acc in enumerate(t.get("per_offset_class_accuracy") or []):
            rows.append({"kind": "offset class", "classes": c, "class": f"{grid[i]:+.1f} s", "model": VARIANT_NAME[v],
                         "metric": _metric_name(0), "ours": _pct(acc), "n": int(sum(conf[i])) if conf else n // c,
                         "n_is_estimate": not conf, "run": key})
    return rows


def fig3_from_records(records: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], list[Claim]]:
    """Fig. 3: per content class and per offset class accuracy, SparseSync vs AVST_dec on sparse data."""
    import pandas as pd

    df = pd.DataFrame(per_class_rows(records))
    parts = []
    for c in (21, 3):
        a, b = f"sparsesync/sparse/c{c}", f"avst_dec/sparse/c{c}"
        overall = compare_better(measure(records, a, "SparseSync"), measure(records, b, "AVST_dec"),
                                 f"{c} classes overall")
        if overall.verdict != "reproduced" or df.empty:
            parts.append(overall)
            continue
        sub = df[(df["kind"] == "content class") & (df["classes"] == c)]
        reversed_, wins, compared = [], 0, 0
        for label, g in sub.groupby("class"):
            ga, gb = g[g["run"] == a], g[g["run"] == b]
            if ga.empty or gb.empty or math.isnan(ga["ours"].iloc[0]) or math.isnan(gb["ours"].iloc[0]):
                continue
            chance = chance_level(c, 1 if "+-1" in ga["metric"].iloc[0] else 0)
            ma = Measure(label, ga["ours"].iloc[0] / 100, max(1, int(ga["n"].iloc[0])), chance)
            mb = Measure(label, gb["ours"].iloc[0] / 100, max(1, int(gb["n"].iloc[0])), chance)
            compared += 1
            wins += ma.acc > mb.acc
            if mb.acc - ma.acc > Z * math.hypot(ma.se, mb.se):
                reversed_.append(f"{label} ({100 * ma.acc:.1f} vs {100 * mb.acc:.1f})")
        text = overall.text + f"; SparseSync higher on {wins} of {compared} content classes" + (
            f"; AVST_dec significantly better on {', '.join(reversed_)}" if reversed_
            else "; no content class significantly reversed")
        parts.append(Part("reproduced" if not reversed_ and 2 * wins >= compared else "not reproduced", text))
    # rule: the overall difference counts (2 s.e.), SparseSync is higher on at least half of the content classes and
    # no class is significantly reversed (2 s.e. with the class's own n)
    claims = [judge("SparseSync's advantage over AVST_dec on sparse data holds across content classes (Fig. 3)",
                    parts, profile)]
    return {"Fig. 3: per content class and per offset class accuracy on sparse data (%)": df}, claims


# ---------------------------------------------------------------------------------------------------------------------
# Figures

def plot_paper_vs_ours(df: Any, label_cols: Sequence[str], title: str):
    """Grouped bars: the paper's value and ours (+- 2 s.e.) per table row, chance as a tick. Returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [" | ".join(str(r[c]) for c in label_cols) for _, r in df.iterrows()]
    x = np.arange(len(df))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(df) + 2), 4.2))
    paper = df["paper"].astype(float).to_numpy()
    ours = df["ours"].astype(float).to_numpy()
    err = df["2se"].astype(float).to_numpy() if "2se" in df else None
    ax.bar(x - 0.2, np.nan_to_num(paper), 0.4, color="0.75", label="paper")
    ax.bar(x + 0.2, np.nan_to_num(ours), 0.4, yerr=None if err is None else np.nan_to_num(err), capsize=2,
           color="tab:blue", label="ours (+-2 s.e.)")
    if "chance" in df:
        ax.scatter(x + 0.2, df["chance"].astype(float), marker="_", s=200, color="k", zorder=3, label="chance")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def plot_fig3(df: Any, title: str):
    """Fig. 3: bars per content class (top) and per offset class (bottom), SparseSync vs AVST_dec, per grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grids = sorted(df["classes"].unique(), reverse=True) if len(df) else [21]
    fig, axes = plt.subplots(2, len(grids), figsize=(6.5 * len(grids), 7), squeeze=False)
    for j, c in enumerate(grids):
        for i, kind in enumerate(("content class", "offset class")):
            ax = axes[i][j]
            sub = df[(df["kind"] == kind) & (df["classes"] == c)] if len(df) else df
            classes = list(dict.fromkeys(sub["class"])) if len(sub) else []
            x = np.arange(len(classes))
            models = list(dict.fromkeys(sub["model"])) if len(sub) else []
            w = 0.8 / max(1, len(models))
            for k, model in enumerate(models):
                g = sub[sub["model"] == model].set_index("class").reindex(classes)
                ax.bar(x + (k - (len(models) - 1) / 2) * w, np.nan_to_num(g["ours"].astype(float)), w, label=model)
            metric = sub["metric"].iloc[0] if len(sub) else _metric_name(0)
            ax.axhline(100 * chance_level(int(c), 1 if "+-1" in metric else 0), color="k", lw=0.8, ls="--",
                       label="chance")
            ax.set_xticks(x, classes, rotation=60, ha="right", fontsize=7)
            ax.set_ylim(0, 100)
            ax.set_ylabel(f"{metric} (%)")
            ax.set_title(f"per {kind}, {c} classes", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# Getting the runs: the campaign (training, cached) or user checkpoints (evaluation only)

def parse_checkpoints(text: str | None, allowed: Sequence[str]) -> dict[str, str]:
    """``"key=path[,key=path...]"`` -> {key: path}; a bare path is accepted when only one key is allowed.

    Raises ValueError for unknown keys or a bare path with several allowed keys, FileNotFoundError for missing files.
    """
    if not text:
        return {}
    out = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        if "=" in item:
            key, path = (s.strip() for s in item.split("=", 1))
        elif len(allowed) == 1:
            key, path = allowed[0], item
        else:
            raise ValueError(f"checkpoint {item!r}: say which run it replaces as key=path; keys: {list(allowed)}")
        if key not in allowed:
            raise ValueError(f"checkpoint for {key!r}: not a run of this artefact; keys: {list(allowed)}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint for {key!r}: no such file {path}")
        out[key] = path
    return out


@dataclasses.dataclass
class CheckpointRecord:
    """A user checkpoint evaluated in place of a training run (the RunRecord attributes the tables read)."""

    spec: Any
    run_dir: Path
    test: dict
    params: dict
    wall_s: float
    steps: int = 0
    left_plateau_at_step: int | None = None
    reused: bool = False


def gather_records(keys: Sequence[str], profile: str, *, seed: int = 0, device: str = "cpu",
                   data_root: str | None = None, checkpoint: str | None = None, runs_root: str | None = None,
                   checkpoint_keys: Sequence[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """Records for ``keys``: trained/reused by the campaign, or (with ``checkpoint``) evaluated from user files only.

    Returns (records, notes). Keys outside the campaign's plan of this profile are left out and named in a note.
    """
    from paperlib.paper import campaign

    if profile not in campaign.PROFILES:
        raise ValueError(f"profile must be one of {campaign.PROFILES}, got {profile!r}")
    plan = campaign.plan(profile)
    notes = []
    if checkpoint:
        ckpts = parse_checkpoints(checkpoint, [k for k in checkpoint_keys if k in plan])
        records = {}
        for key, path in ckpts.items():
            t0 = time.time()
            test = campaign.evaluate_checkpoint(path, key, profile, data_root=data_root or None,
                                                runs_root=runs_root or None, device=device, seed=seed)
            records[key] = CheckpointRecord(spec=plan[key], run_dir=Path(path).parent, test=test,
                                            params=dict(test.get("params") or {}), wall_s=time.time() - t0)
        notes.append(f"checkpoint mode: evaluated {sorted(ckpts)} from the given files, trained nothing; the other "
                     "cells are empty and claims that need them are not testable")
        return records, notes
    wanted = [k for k in keys if k in plan]
    left = [k for k in keys if k not in plan]
    if left:
        notes.append(f"runs not in the {profile} plan (cells left empty): {left}")
    records = campaign.ensure_runs(wanted, profile, runs_root=runs_root or None, data_root=data_root or None,
                                   device=device, seed=seed, progress=True) if wanted else {}
    return dict(records), notes


def _common_notes(profile: str) -> list[str]:
    model = {"smoke": "the `smoke` wiring-check model (tiny, a few steps)",
             "mini": "the small CPU configuration of the paper's architecture (`cpu-recipe`: d_model 64, depth 2, 16 "
                     "selectors, 48-px crops, 5-s windows) with the issue-11 recipe (time-anchored selector init, "
                     "auxiliary losses)",
             "paper": "the paper's geometry and backbones"}.get(profile, profile)
    return [
        "datasets: dense-crop = LRS3 (face crop), dense-wide = LRS3 (no face crop), sparse = VGGSound-Sparse, "
        "general = VGGSound" + ("" if profile == "paper" else " (synthetic stand-ins at this profile)"),
        f"model: {model}",
        "metric: Acc@1 for 3 classes, Acc@1 with +-1 class tolerance for 21 classes (the paper's main metrics); "
        "chance = (2 tol + 1)/C; 2se = two binomial standard errors of our accuracy on n test items",
        f"verdict rule: a difference counts when it exceeds {Z:g} s.e. of the difference; comparisons whose runs are "
        "all at chance are not testable; multi-part claims need every judged part (see paperlib/artefacts.py)",
    ] + ([
        "sparse at mini: each sparse run fine-tunes for a few hundred steps on default sparse clips; the recipe needs "
        "~20 CPU-minutes (~4,900 steps) on clips with 3-5 events each (preset cpu-recipe-sparse) to beat its null on "
        "the cue items (README, issue 11), which mini cannot afford 12 times: expect the sparse rows near chance and "
        "the claims that need them 'not testable'"] if profile == "mini" else [])


def _finish(name: str, profile: str, tables: dict[str, Any], claims: list[Claim], notes: list[str],
            records: Mapping[str, Any], fig, figures_root: str | None, runs_root: str | None, t0: float,
            extra: dict[str, Any] | None = None) -> Artefact:
    """Write the figure and the run summary, and assemble the :class:`Artefact`."""
    import matplotlib.pyplot as plt

    paths = save_figure(fig, name, figures_root or None)
    plt.close(fig)
    out = (Path(runs_root) if runs_root else runs_dir()) / name / f"{profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    summary = {k: {"run_dir": str(getattr(r, "run_dir", "")), "params": getattr(r, "params", {}),
                   "test": {m: x for m, x in r.test.items() if m != "items"},  # items stay in the run folder
                   "steps": getattr(r, "steps", None), "wall_s": getattr(r, "wall_s", None),
                   "left_plateau_at_step": getattr(r, "left_plateau_at_step", None),
                   "reused": getattr(r, "reused", None)} for k, r in records.items()}
    write_text_atomic(out / "records.json", json.dumps(summary, indent=2, default=str))
    write_text_atomic(out / "env.json", json.dumps(environment(), indent=2, default=str))
    tables = {**tables, "Runs used": runs_table(records)}
    prov = {"run_dir": _rel_to(str(out), repo_root()), "runs": {k: v["run_dir"] for k, v in summary.items()},
            "wall_s": round(time.time() - t0, 1), **(extra or {})}
    return Artefact(name, profile, tables=tables, figures=[_rel_to(p, repo_root()) for p in paths], claims=claims,
                    notes=notes, provenance=prov)


def _plan_keys(profile: str) -> list[str]:
    from paperlib.paper import campaign

    return list(campaign.plan(profile))


def _ignored(checkpoint: str | None) -> list[str]:
    given = f" (given: {checkpoint!r}, not used)" if checkpoint else ""
    return [f"the `checkpoint` parameter is ignored by this artefact: it compares several trained runs{given}"]


# ---------------------------------------------------------------------------------------------------------------------
# Artefact functions (called by the notebooks)

def table2_main_results(profile: str = "mini", seed: int = 0, device: str = "cpu", data_root: str | None = None,
                        checkpoint: str | None = None, figures_root: str | None = None,
                        runs_root: str | None = None) -> Artefact:
    """Table 2 (Sec. 5.1): SparseSync vs AVST_dec on dense-crop, dense-wide and sparse data, 3 and 21 classes.

    ``checkpoint``: ``key=path[,key=path]`` (keys like ``sparsesync/sparse/c21``) evaluates those files instead of
    training (e.g. the official checkpoints at the paper profile); nothing is trained then.
    """
    t0 = time.time()
    records, notes = gather_records(table2_keys(), profile, seed=seed, device=device, data_root=data_root,
                                    checkpoint=checkpoint, runs_root=runs_root, checkpoint_keys=table2_keys())
    tables, claims = table2_from_records(records, profile)
    df = next(iter(tables.values()))
    fig = plot_paper_vs_ours(df[df["model"] != "oracle"], ("model", "setting", "classes"),
                             f"Table 2 ({profile}): paper vs ours")
    notes = _common_notes(profile) + notes + [
        "oracle: the paper's is human (70% of 240 VGGSound-Sparse videos synchronisable, 3 classes); ours is the share "
        "of test items whose audio and visual windows hold a sync cue (cue_fraction), the ceiling it implies "
        "(cue -> correct, otherwise chance) and each model's accuracy on the cue items (ours_on_cue_items) beside its "
        "null (null_on_cue_items: the same predictions paired with the cue items' targets at random). Judge the cue "
        "accuracy against that null, not the chance column: cue items favour small offsets (the windows overlap "
        "more), so a model stuck on one small offset scores above 1/C on them"]
    return _finish("table2_main_results", profile, tables, claims, notes, records, fig, figures_root, runs_root, t0)


def table3_ablation(profile: str = "mini", seed: int = 0, device: str = "cpu", data_root: str | None = None,
                    checkpoint: str | None = None, figures_root: str | None = None,
                    runs_root: str | None = None) -> Artefact:
    """Tables 3 and 5 (Sec. 5.2, 7.2): selectors, pre-training on dense data, pre-trained and trainable extractors."""
    t0 = time.time()
    records, notes = gather_records(table3_keys(), profile, seed=seed, device=device, data_root=data_root,
                                    runs_root=runs_root)
    tables, claims = table3_from_records(records, profile)
    df = list(tables.values())[1]
    fig = plot_paper_vs_ours(df, ("ablation", "setting", "metric"), f"Tables 3/5 ({profile}): paper vs ours")
    notes = _common_notes(profile) + notes + _ignored(checkpoint) + [
        "'sync model not pre-trained on dense data' trains on sparse from scratch (sparse only, as in the paper)",
        "'feature extractors not pre-trained': the extractors start from a fresh init instead of the dense chain's "
        "(the paper: instead of Kinetics-400 S3D / VGGSound ResNet18 weights); 'frozen': extractors not trained"]
    return _finish("table3_ablation", profile, tables, claims, notes, records, fig, figures_root, runs_root, t0)


def table4_input_length(profile: str = "mini", seed: int = 0, device: str = "cpu", data_root: str | None = None,
                        checkpoint: str | None = None, figures_root: str | None = None,
                        runs_root: str | None = None) -> Artefact:
    """Table 4 (Sec. 5.2): accuracy vs input length on sparse data (the lengths the campaign trains at the profile)."""
    t0 = time.time()
    keys = table4_keys(_plan_keys(profile))
    records, notes = gather_records(keys, profile, seed=seed, device=device, data_root=data_root, runs_root=runs_root)
    tables, claims = table4_from_records(records, profile)
    df = next(iter(tables.values()))
    fig = plot_paper_vs_ours(df, ("classes", "length_s"), f"Table 4 ({profile}): paper vs ours")
    notes = _common_notes(profile) + notes + _ignored(checkpoint) + [
        f"lengths trained at this profile (classes, seconds): "
        f"{sorted((int(_LEN_KEY.fullmatch(k)[1]), float(_LEN_KEY.fullmatch(k)[2])) for k in keys)}; "
        "the paper trains 2-7 s, the same length for pre-training, fine-tuning and testing",
        "the oracle columns show how the share of test windows holding a cue grows with the length"]
    return _finish("table4_input_length", profile, tables, claims, notes, records, fig, figures_root, runs_root, t0)


def table6_depth(profile: str = "mini", seed: int = 0, device: str = "cpu", data_root: str | None = None,
                 checkpoint: str | None = None, figures_root: str | None = None,
                 runs_root: str | None = None) -> Artefact:
    """Table 6 (Sec. 7.2): depth of the selectors and sync transformer, with parameter counts, on dense-wide data."""
    t0 = time.time()
    keys = table6_keys(_plan_keys(profile))
    records, notes = gather_records(keys, profile, seed=seed, device=device, data_root=data_root, runs_root=runs_root)
    params = paper_size_params(sorted(set(PAPER_TABLE6) | {int(_DEPTH_KEY.fullmatch(k)[1]) for k in keys}))
    tables, claims = table6_from_records(records, profile, params)
    df = next(iter(tables.values()))
    fig = plot_paper_vs_ours(df, ("depth", "metric"), f"Table 6 ({profile}): paper vs ours")
    notes = _common_notes(profile) + notes + _ignored(checkpoint) + [
        "paper-size params: paperlib.model.sparsesync.model_summary of the paper's model (S3D + ResNet18, D 512, 21 classes) at "
        "each depth; trained model params: the model this profile trained (much smaller at smoke/mini)",
        "depth is set for both selectors and the sync transformer at once, as in the paper"]
    return _finish("table6_depth", profile, tables, claims, notes, records, fig, figures_root, runs_root, t0,
                   extra={"paper_size_params": params})


def table7_finetune(profile: str = "mini", seed: int = 0, device: str = "cpu", data_root: str | None = None,
                    checkpoint: str | None = None, figures_root: str | None = None,
                    runs_root: str | None = None) -> Artefact:
    """Table 7 (Sec. 7.2): fine-tuning on a larger, more varied set vs on sparse data, tested on sparse data.

    ``checkpoint``: ``key=path[,key=path]`` for ``sparsesync/sparse/c21`` and ``sparsesync/general/c21`` (the official
    22-07-28T15-49-45 and 22-09-21T21-00-52 files at the paper profile) evaluates them instead of training.
    """
    t0 = time.time()
    records, notes = gather_records(table7_keys(), profile, seed=seed, device=device, data_root=data_root,
                                    checkpoint=checkpoint, runs_root=runs_root, checkpoint_keys=table7_keys())
    tables, claims = table7_from_records(records, profile)
    df = next(iter(tables.values()))
    fig = plot_paper_vs_ours(df, ("fine-tuned on", "metric"), f"Table 7 ({profile}): paper vs ours")
    notes = _common_notes(profile) + notes + [
        "general: a larger, more varied set than sparse (the paper: all of VGGSound, 300+ classes), both fine-tuned "
        "from the dense-wide run and tested on the sparse test split"]
    return _finish("table7_finetune", profile, tables, claims, notes, records, fig, figures_root, runs_root, t0)


def fig3_per_class(profile: str = "mini", seed: int = 0, device: str = "cpu", data_root: str | None = None,
                   checkpoint: str | None = None, figures_root: str | None = None,
                   runs_root: str | None = None) -> Artefact:
    """Fig. 3 (Sec. 5.1): per content class and per offset class accuracy of SparseSync and AVST_dec on sparse data.

    ``checkpoint``: ``key=path[,key=path]`` for the keys of :func:`fig3_keys` evaluates them instead of training.
    """
    t0 = time.time()
    records, notes = gather_records(fig3_keys(), profile, seed=seed, device=device, data_root=data_root,
                                    checkpoint=checkpoint, runs_root=runs_root, checkpoint_keys=fig3_keys())
    tables, claims = fig3_from_records(records, profile)
    fig = plot_fig3(next(iter(tables.values())),
                    f"Fig. 3 ({profile}): per class accuracy on sparse data, SparseSync vs AVST_dec")
    notes = _common_notes(profile) + notes + [
        "the paper gives Fig. 3 as bars only (no values in the text): no paper column; our content classes are the "
        "synthetic sparse event kinds, not VGGSound-Sparse's 12 classes",
        "per-class accuracy: the grid's main metric from the runs' per-item predictions (Acc@1 with estimated counts, "
        "n_is_estimate, when a run has no per-item predictions)"]
    return _finish("fig3_per_class", profile, tables, claims, notes, records, fig, figures_root, runs_root, t0)


TRAINING_ARTEFACTS: dict[str, Callable[..., Artefact]] = {
    "table2_main_results": table2_main_results,
    "table3_ablation": table3_ablation,
    "table4_input_length": table4_input_length,
    "table6_depth": table6_depth,
    "table7_finetune": table7_finetune,
    "fig3_per_class": fig3_per_class,
}


def all_keys(profile: str, names: Sequence[str] | None = None) -> list[str]:
    """Every run key the training artefacts ``names`` (default: all) ask for at ``profile``, in plan order."""
    plan_keys = _plan_keys(profile)
    wanted = set()
    for name in names or TRAINING_ARTEFACTS:
        wanted |= set(artefact_keys(name, plan_keys))
    return [k for k in plan_keys if k in wanted]
