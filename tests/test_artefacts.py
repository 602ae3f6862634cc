"""Table and claim logic of the training-based artefacts (paperlib.paper.tables, paperlib.paper.verdicts) on hand-made
run records: chance levels, standard errors, the verdict rules, paper | ours | delta, oracle columns, per-class rows,
checkpoint parsing; the paper's numbers in the tables and the artefact registry."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from paperlib.paper import artefacts as A
from paperlib.paper import plots as P
from paperlib.paper import report as R
from paperlib.paper import tables as T
from paperlib.paper import verdicts as V
from paperlib.paper.report import VERDICTS

NT = "not testable at this profile"


def rec(key: str, acc1: float, tol1: float | None = None, n: int = 600, **test) -> SimpleNamespace:
    """A RunRecord-like object: the attributes the tables read."""
    c = int(re.search(r"/c(\d+)", key)[1])
    t = {"accuracy_1": acc1, "accuracy_1_tol1": acc1 if tol1 is None else tol1, "n": n, **test}
    return SimpleNamespace(spec=SimpleNamespace(key=key, num_classes=c), test=t, params={"total": 12345},
                           run_dir=Path("/tmp/run") / key.replace("/", "_"), wall_s=3.0, steps=50,
                           left_plateau_at_step=20, reused=False)


def records(spec: dict[str, tuple]) -> dict[str, SimpleNamespace]:
    return {k: rec(k, *v) for k, v in spec.items()}


def verdicts(claims) -> dict[str, str]:
    return {c.text: c.verdict for c in claims}


def test_chance_level_and_headline_metric():
    assert V.chance_level(21) == pytest.approx(1 / 21)
    assert V.chance_level(21, 1) == pytest.approx(3 / 21)
    assert V.chance_level(3, 1) == 1.0
    assert V.headline_tol(21) == 1 and V.headline_tol(3) == 0
    with pytest.raises(ValueError):
        V.chance_level(0)


def test_binomial_se_is_never_zero_and_shrinks_with_n():
    assert V.binomial_se(0.0, 100) > 0 and V.binomial_se(1.0, 100) > 0
    assert V.binomial_se(0.5, 10_000) == pytest.approx(0.005, rel=1e-3)
    assert V.binomial_se(0.3, 100) > V.binomial_se(0.3, 1000)
    with pytest.raises(ValueError):
        V.binomial_se(0.5, 0)


def test_measure_at_chance_uses_two_standard_errors_of_chance():
    c, n = 1 / 21, 400
    bound = c + 2 * math.sqrt(c * (1 - c) / n)
    assert not V.Measure("x", bound - 0.001, n, c).above_chance
    assert V.Measure("x", bound + 0.001, n, c).above_chance


def test_compare_better_rules():
    c = 1 / 21
    hi, mid, low = V.Measure("a", 0.40, 500, c), V.Measure("b", 0.38, 500, c), V.Measure("c", 0.15, 500, c)
    assert V.compare_better(hi, low).verdict == "reproduced"
    within = V.compare_better(hi, mid)
    assert within.verdict == "not reproduced" and "within noise" in within.text
    rev = V.compare_better(low, hi)
    assert rev.verdict == "not reproduced" and "reversed" in rev.text
    stuck = V.Measure("d", 0.05, 500, c, steps=1500)
    both_chance = V.compare_better(V.Measure("a", 0.06, 500, c), stuck)
    assert both_chance.verdict == NT and "chance" in both_chance.text
    assert V.compare_better(None, hi).verdict == NT


def test_gap_growth_and_saturation_rules():
    c = 1 / 3
    m = lambda acc: V.Measure("m", acc, 1000, c)  # noqa: E731
    assert V.compare_gap_growth(m(0.60), m(0.40), m(0.95), m(0.94)).verdict == "reproduced"
    assert V.compare_gap_growth(m(0.60), m(0.58), m(0.95), m(0.94)).verdict == "not reproduced"
    assert V.compare_gap_growth(m(0.34), m(0.33), m(0.95), m(0.90)).verdict == NT  # sparse gap between at-chance runs
    assert V.compare_gap_growth(m(0.60), m(0.33), m(0.95), m(0.90)).verdict == NT  # one arm at chance
    assert V.compare_not_better(m(0.81), m(0.80)).verdict == "reproduced"
    assert V.compare_not_better(m(0.95), m(0.80)).verdict == "not reproduced"
    # no difference found, but the test could not have seen the gain at stake: not testable
    weak = lambda acc: V.Measure("m", acc, 48, c)  # noqa: E731
    assert V.compare_not_better(weak(0.52), weak(0.50)).verdict == "reproduced"
    nt = V.compare_not_better(weak(0.52), weak(0.50), effect=0.077)
    assert nt.verdict == NT and "too weak" in nt.text
    assert V.compare_not_better(m(0.81), m(0.80), effect=0.077).verdict == "reproduced"  # n=1000 detects ~6 pts
    # the deeper run never learned: "no better" for want of training, not saturation
    stuck = V.compare_not_better(m(0.34), m(0.80), effect=0.077)
    assert stuck.verdict == NT and "never left chance" in stuck.text


def test_combine_and_judge():
    ok, bad, nt = V.Part("reproduced", "a"), V.Part("not reproduced", "b"), V.Part(NT, "c")
    # one part reproduced and the others not judged (or not reproduced) is only part of the claim
    assert V.combine([ok, nt]) == "reproduced in part"
    assert V.combine([ok, bad, nt]) == "reproduced in part"
    assert V.combine([ok, ok]) == "reproduced" and V.combine([bad, nt]) == "not reproduced"
    assert V.combine([nt, nt]) == NT and V.combine([]) == NT
    assert V.judge("x", [ok], "mini").verdict == "reproduced"
    part = V.judge("x", [ok, nt], "mini")
    assert part.verdict == "reproduced in part" and "[reproduced] a" in part.evidence and f"[{NT}] c" in part.evidence
    smoke = V.judge("x", [ok], "smoke")
    assert smoke.verdict == NT and "a" in smoke.evidence and "smoke" in smoke.evidence


def _table2_records(ss_sparse: float, avst_sparse: float) -> dict:
    spec = {}
    for v, dense, sparse in (("sparsesync", 0.95, ss_sparse), ("avst_dec", 0.93, avst_sparse)):
        for s, acc in (("dense-crop", dense), ("dense-wide", dense - 0.02), ("sparse", sparse)):
            spec[f"{v}/{s}/c21"] = (acc / 2, acc)
            spec[f"{v}/{s}/c3"] = (min(0.99, acc + 0.02),)
    out = records(spec)
    for c in (3, 21):
        out[f"sparsesync/sparse/c{c}"].test.update(cue_fraction=0.6, cue_n=360, cue_accuracy_1=0.8,
                                                  cue_accuracy_1_tol1=0.9, cue_null_accuracy_1=0.1,
                                                  cue_null_accuracy_1_tol1=0.25)
    return out


def test_table2_paper_ours_delta_oracle_and_claims():
    recs = _table2_records(ss_sparse=0.50, avst_sparse=0.20)
    tables, claims = T.table2_from_records(recs, "mini")
    df = next(iter(tables.values()))
    row = df[(df["model"] == "SparseSync (ours)") & (df["setting"] == "sparse") & (df["classes"] == 21)].iloc[0]
    assert row["paper"] == 44.3 and row["ours"] == 50.0 and row["delta"] == pytest.approx(5.7)
    assert row["chance"] == pytest.approx(14.3) and row["metric"] == "Acc@1 +-1 cls" and row["n"] == 600
    assert row["cue_fraction"] == 60.0 and row["ours_on_cue_items"] == 90.0 and row["null_on_cue_items"] == 25.0
    orc3 = df[(df["model"] == "oracle") & (df["classes"] == 3)].iloc[0]
    assert orc3["paper"] == 70.0 and orc3["ours"] == pytest.approx(100 * (0.6 + 0.4 / 3), abs=0.05)
    assert set(df[df["model"] == "AVST_dec"]["paper"]) == {98.4, 89.8, 95.8, 83.1, 52.2, 29.3}
    v = verdicts(claims)
    assert all(x in VERDICTS for x in v.values())
    # AVST_dec's 3-class sparse run sits at chance (22 % vs 33.3 %): SparseSync beating it there says how long
    # AVST_dec trained, not which model is better, so only the 21-class part (both arms learned) is judged
    beats = next(c for c in claims if c.text.startswith("SparseSync outperforms AVST_dec"))
    assert beats.verdict == "reproduced in part"
    assert "[not testable at this profile] 3 classes" in beats.evidence
    assert "AVST_dec sparse 3cls never left chance (it trained 50 steps)" in beats.evidence
    hard = next(c for c in claims if c.text.startswith("sparse data is harder"))
    assert hard.verdict == "reproduced in part" and "never left chance" in hard.evidence
    assert hard.mini.startswith("no:")
    gap = v["the gap to AVST_dec grows from dense (face crop) to sparse data"]
    assert gap == "reproduced in part"  # the 21-class gap (four arms that learned) grows; the 3-class one is not judged


def test_table2_all_at_chance_is_not_testable_and_missing_runs_leave_empty_cells():
    recs = {k: rec(k, 1 / 21 if k.endswith("c21") else 1 / 3, 3 / 21 if k.endswith("c21") else None)
            for k in T.table2_keys()}
    _, claims = T.table2_from_records(recs, "mini")
    assert {c.verdict for c in claims} == {NT}
    tables, claims = T.table2_from_records({}, "mini")
    df = next(iter(tables.values()))
    assert df["ours"].isna().all() and df["paper"].notna().sum() == 13
    assert {c.verdict for c in claims} == {NT}


def test_table2_smoke_claims_are_never_judged():
    _, claims = T.table2_from_records(_table2_records(0.5, 0.2), "smoke")
    assert {c.verdict for c in claims} == {NT}


def test_table3_verdicts_follow_the_numbers():
    spec = {"sparsesync/sparse/c21": (0.25, 0.45), "transformer/sparse/c21": (0.10, 0.20),
            "sparsesync/sparse/c21/scratch": (0.05, 0.14),
            "sparsesync/sparse/c21/no-pretrained-extractors": (0.2, 0.44),
            "sparsesync/sparse/c21/frozen-extractors": (0.12, 0.25),
            "sparsesync/dense-wide/c21": (0.8, 0.97), "transformer/dense-wide/c21": (0.78, 0.96),
            "sparsesync/dense-wide/c21/no-pretrained-extractors": (0.7, 0.95),
            "sparsesync/dense-wide/c21/frozen-extractors": (0.4, 0.7)}
    tables, claims = T.table3_from_records(records(spec), "mini")
    t3, t5 = tables.values()
    assert list(t3["paper"]) == [40.1, 12.1, 29.6, 33.5, 44.3]
    assert len(t5) == 2 * (2 + 1 + 2 + 2 + 2)  # scratch only on sparse; two metrics each
    v = verdicts(claims)
    assert v["selectors beat the no-selector transformer on sparse data"] == "reproduced"
    assert v["pre-training the sync model on dense data is essential for sparse data"] == "reproduced"
    assert v["pre-trained feature extractors help"] == "not reproduced"  # 44 vs 45: within noise on sparse
    assert v["trainable (unfrozen) feature extractors help"] == "reproduced"


def test_table4_longest_vs_shortest_per_grid():
    spec = {"sparsesync/sparse/c21/len3": (0.1, 0.30), "sparsesync/sparse/c21/len5": (0.2, 0.45),
            "sparsesync/sparse/c3/len5": (0.6,)}
    tables, claims = T.table4_from_records(records(spec), "mini")
    df = next(iter(tables.values()))
    r = df[(df["classes"] == 21) & (df["length_s"] == 3)].iloc[0]
    assert r["paper"] == 36.8 and r["ours"] == 30.0
    assert math.isnan(df[(df["classes"] == 21) & (df["length_s"] == 2)].iloc[0]["paper"])  # paper has no 2 s/21 cls
    # the 21-class part holds, the 3-class part cannot be judged (one length): only part of the claim is shown
    assert claims[0].verdict == "reproduced in part"
    assert "fewer than two lengths" in claims[0].evidence
    _, claims = T.table4_from_records(records({**spec, "sparsesync/sparse/c21/len7": (0.1, 0.28)}), "mini")
    assert claims[0].verdict == "not reproduced"


def test_table6_depth_saturation_and_params():
    paper_params = {1: 31_227_756, 2: 42_788_204, 3: 54_348_652, 6: 89_029_996}
    sat = {f"sparsesync/dense-wide/c21/depth{d}": (a / 1.3, a) for d, a in ((1, 0.5), (2, 0.7), (3, 0.8), (6, 0.81))}
    tables, claims = T.table6_from_records(records(sat), "mini", paper_params)
    v = verdicts(claims)
    assert v["depth helps (more transformer layers, higher accuracy)"] == "reproduced"
    assert v["the gain saturates around 3 layers"] == "reproduced"
    # the paper's 55.3M for depth 3 is off its own constant per-layer increment (11.56M): a typo for 54.3M, and our
    # 54.35M matches the line its other rows draw, so the counts are reproduced and the typo named
    params = next(c for c in claims if c.text.startswith("parameter counts"))
    assert params.verdict == "reproduced"
    assert "the paper's 55.3M is a typo for 54.3M" in params.evidence and "11.56M per layer" in params.evidence
    off = {**paper_params, 2: 44_000_000}  # a count off both the paper's number and its line
    assert T.params_claim(off).verdict == "reproduced in part"
    df = next(iter(tables.values()))
    assert df[df["depth"] == 1]["ours paper-size params (M)"].iloc[0] == pytest.approx(31.23)
    assert df[df["depth"] == 1]["trained model params (M)"].iloc[0] == pytest.approx(0.012)
    grow = {**sat, "sparsesync/dense-wide/c21/depth6": (0.7, 0.95)}
    _, claims = T.table6_from_records(records(grow), "mini", paper_params)
    assert verdicts(claims)["the gain saturates around 3 layers"] == "not reproduced"
    flat = {k: (0.05, 0.14) for k in sat}
    _, claims = T.table6_from_records(records(flat), "mini", paper_params)
    assert verdicts(claims)["the gain saturates around 3 layers"] == NT


def test_table7_general_vs_sparse():
    tables, claims = T.table7_from_records(records({"sparsesync/sparse/c21": (0.27, 0.44),
                                                    "sparsesync/general/c21": (0.33, 0.52)}), "mini")
    df = next(iter(tables.values()))
    assert list(df["paper"]) == [26.7, 44.3, 33.5, 51.2]
    assert list(df["delta"]) == pytest.approx([0.3, -0.3, -0.5, 0.8])
    assert claims[0].verdict == "reproduced"


def test_fig3_per_class_rows_counts_and_reversal():
    content = {"bark": 0.6, "clap": 0.1}
    conf = [[10, 0, 0], [0, 5, 5], [0, 0, 10]]
    a = rec("sparsesync/sparse/c3", 0.8, n=1000, per_content_class_accuracy=content,
            per_offset_class_accuracy=[1.0, 0.5, 1.0], confusion_matrix=conf)
    b = rec("avst_dec/sparse/c3", 0.5, n=1000, per_content_class_accuracy={"bark": 0.5, "clap": 0.6},
            per_offset_class_accuracy=[0.5, None, 0.5])
    rows = T.per_class_rows({"sparsesync/sparse/c3": a, "avst_dec/sparse/c3": b})
    offs = [r for r in rows if r["kind"] == "offset class" and r["run"] == "sparsesync/sparse/c3"]
    assert [r["class"] for r in offs] == ["-1.0 s", "+0.0 s", "+1.0 s"] and [r["n"] for r in offs] == [10, 10, 10]
    assert math.isnan([r for r in rows if r["run"] == "avst_dec/sparse/c3" and r["class"] == "+0.0 s"][0]["ours"])
    bark = [r for r in rows if r["class"] == "bark" and r["run"] == "sparsesync/sparse/c3"][0]
    assert bark["n"] == 500 and bark["n_is_estimate"]
    tables, claims = T.fig3_from_records({"sparsesync/sparse/c3": a, "avst_dec/sparse/c3": b}, "mini")
    assert claims[0].verdict == "not reproduced" and "clap" in claims[0].evidence  # overall better, clap reversed
    b.test["per_content_class_accuracy"] = {"bark": 0.5, "clap": 0.05}
    _, claims = T.fig3_from_records({"sparsesync/sparse/c3": a, "avst_dec/sparse/c3": b}, "mini")
    # the 3-class part holds; the 21-class runs are absent, so only part of the claim is shown
    assert claims[0].verdict == "reproduced in part" and "higher on 2 of 2" in claims[0].evidence


def test_fig3_rows_from_items_use_the_main_metric_and_exact_counts():
    items = [{"label": "bark", "target": 10, "pred": 11}, {"label": "bark", "target": 10, "pred": 10},
             {"label": "clap", "target": 0, "pred": 5}, {"label": "clap", "target": 20, "pred": 20}]
    r = rec("sparsesync/sparse/c21", 0.5, 0.75, n=8, passes=2, items=items)
    rows = T.per_class_rows({"sparsesync/sparse/c21": r})
    got = {(x["kind"], x["class"]): (x["ours"], x["n"], x["metric"]) for x in rows}
    # pred 11 is within +-1 of 10; two random-offset passes over the same clips: 2 items of a class are 1 distinct item
    assert got[("content class", "bark")] == (100.0, 1, "Acc@1 +-1 cls")
    assert got[("content class", "clap")] == (50.0, 1, "Acc@1 +-1 cls")
    assert [x["class"] for x in rows if x["kind"] == "offset class"] == ["-2.0 s", "+0.0 s", "+2.0 s"]
    assert T.measure({"k/x/c21": r}, "k/x/c21").n == 4  # two random-offset passes over the same clips count once


def test_offset_grid():
    assert T.offset_grid(3) == [-1.0, 0.0, 1.0]
    g = T.offset_grid(21)
    assert g[0] == -2.0 and g[10] == 0.0 and g[-1] == 2.0 and len(g) == 21


def test_keys_match_the_contract():
    assert len(T.table2_keys()) == 12 and "avst_dec/dense-wide/c3" in T.table2_keys()
    assert "sparsesync/sparse/c21/scratch" in T.table3_keys()
    assert "sparsesync/dense-wide/c21/scratch" not in T.table3_keys()
    plan = ["sparsesync/sparse/c21/len5", "sparsesync/sparse/c21/len3", "sparsesync/sparse/c3/len5",
            "sparsesync/dense-wide/c21/depth2", "sparsesync/dense-wide/c21/depth1", "sparsesync/sparse/c21"]
    assert T.artefact_keys("table4", plan) == ["sparsesync/sparse/c3/len5", "sparsesync/sparse/c21/len3",
                                               "sparsesync/sparse/c21/len5"]
    assert T.artefact_keys("table6", plan) == ["sparsesync/dense-wide/c21/depth1", "sparsesync/dense-wide/c21/depth2"]
    assert T.artefact_keys("table7", plan) == ["sparsesync/sparse/c21"]
    with pytest.raises(KeyError):
        T.artefact_keys("table9", plan)


def test_parse_checkpoints(tmp_path):
    f = tmp_path / "best.pt"
    f.write_bytes(b"x")
    keys = ["sparsesync/sparse/c21", "sparsesync/general/c21"]
    assert A.parse_checkpoints(f"sparsesync/general/c21={f}", keys) == {"sparsesync/general/c21": str(f)}
    assert A.parse_checkpoints(str(f), keys[:1]) == {keys[0]: str(f)}
    assert A.parse_checkpoints("", keys) == {}
    with pytest.raises(ValueError, match="key=path"):
        A.parse_checkpoints(str(f), keys)
    with pytest.raises(ValueError, match="not a run"):
        A.parse_checkpoints(f"avst_dec/sparse/c21={f}", keys)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        A.parse_checkpoints(f"{keys[0]}={tmp_path / 'missing.pt'}", keys)


def test_records_missing_metrics_raise_naming_the_run():
    bad = rec("sparsesync/sparse/c21", 0.3)
    del bad.test["accuracy_1_tol1"]
    with pytest.raises(ValueError, match="sparsesync/sparse/c21"):
        T.measure({"sparsesync/sparse/c21": bad}, "sparsesync/sparse/c21")


def test_plots_render(tmp_path):
    tables, _ = T.table2_from_records(_table2_records(0.5, 0.2), "mini")
    fig = P.plot_paper_vs_ours(next(iter(tables.values())), ("model", "setting", "classes"), "t")
    paths = R.save_figure(fig, "t2", tmp_path)
    assert all(Path(p).stat().st_size > 1000 for p in paths)
    a = rec("sparsesync/sparse/c3", 0.8, per_content_class_accuracy={"bark": 0.6}, per_offset_class_accuracy=[1, 0, 1])
    fig = P.plot_fig3(__import__("pandas").DataFrame(T.per_class_rows({"sparsesync/sparse/c3": a})), "f3")
    assert len(fig.axes) == 2


@pytest.mark.parametrize("profile", ["smoke", "mini", "paper"])
def test_artefacts_ask_for_exactly_the_campaign_contract_keys(profile):
    from paperlib.paper.plan import contract_keys

    assert set(A.all_keys(profile)) == set(contract_keys(profile))


def test_checkpoint_mode_evaluates_and_trains_nothing(tmp_path, monkeypatch):
    from paperlib.paper import campaign

    f = tmp_path / "official.pt"
    f.write_bytes(b"x")
    calls = []

    def fake_eval(path, key, profile, **kw):
        calls.append((path, key, profile))
        return {"accuracy_1": 0.3, "accuracy_1_tol1": 0.5, "n": 542, "params": {"total": 7}}

    monkeypatch.setattr(campaign, "evaluate_checkpoint", fake_eval)
    monkeypatch.setattr(campaign, "ensure_runs", lambda *a, **k: pytest.fail("trained in checkpoint mode"))
    recs, notes = A.gather_records(T.table7_keys(), "paper", checkpoint=f"sparsesync/general/c21={f}",
                                   checkpoint_keys=T.table7_keys())
    assert calls == [(str(f), "sparsesync/general/c21", "paper")] and list(recs) == ["sparsesync/general/c21"]
    assert recs["sparsesync/general/c21"].spec.num_classes == 21 and "checkpoint mode" in notes[0]
    _, claims = T.table7_from_records(recs, "paper")
    assert claims[0].verdict == NT  # the sparse arm was not given


def test_reproduce_trains_the_campaign_once_before_the_notebooks(monkeypatch):
    from paperlib.paper import campaign
    from paperlib.paper import reproduce as experiments

    asked = []
    monkeypatch.setattr(campaign, "ensure_runs",
                        lambda keys, profile, **kw: asked.append((list(keys), profile)) or {})
    assert experiments.train_campaign("smoke", ["fig4"]) is None
    row = experiments.train_campaign("smoke", ["table7", "fig3", "fig4"])
    assert row["status"] == "ok" and len(asked) == 1
    assert set(asked[0][0]) == set(T.table7_keys()) | set(T.fig3_keys()) and asked[0][1] == "smoke"

    def boom(*a, **k):
        raise RuntimeError("run x failed; log: y")

    monkeypatch.setattr(campaign, "ensure_runs", boom)
    row = experiments.train_campaign("smoke", ["table7"])
    assert row["status"] == "failed" and "run x failed" in row["error"]


def test_paper_columns_come_from_the_paper_numbers():
    from paperlib.core import paper_numbers as numbers
    from paperlib.studies import leakage

    t2 = next(iter(T.table2_from_records({}, "mini")[0].values()))
    row = t2[(t2["model"] == "AVST_dec") & (t2["setting"] == "sparse") & (t2["classes"] == 21)]
    assert row["paper"].iloc[0] == numbers.TABLE2[("avst_dec", "sparse", 21)] == 29.3
    t3, t5 = T.table3_from_records({}, "mini")[0].values()
    assert list(t3["paper"]) == [r.acc["sparse"][1] for r in numbers.TABLE5] == [40.1, 12.1, 29.6, 33.5, 44.3]
    assert len(t5) == 2 * sum(len(r.acc) for r in numbers.TABLE5)
    t7 = next(iter(T.table7_from_records({}, "mini")[0].values()))
    assert list(t7["paper"]) == [26.7, 44.3, 33.5, 51.2]
    # the leakage study's rows are the paper's Table 1 rows, with the paper's labels
    assert {k: r.label for k, r in leakage.ROWS.items()} == {k: v[0] for k, v in numbers.TABLE1.items()}


def test_every_notebook_name_has_an_artefact():
    assert set(A.ARTEFACTS) == {"table1", "table2", "table3", "table4", "table6", "table7", "fig3", "fig4", "fig5"}
    assert A.ALIASES == {"table5": "table3"} and set(A.TRAINING_ARTEFACTS) == set(T.TRAINING_KEYS)
    assert set(A.all_keys("mini")) == set(A.all_keys("mini", list(A.ARTEFACTS)[1:7]))


# ---------------------------------------------------------------------------------------------------------------------
# Table 1's claims as the paper states them, smoke, and the report of a failed notebook


def _table1_rows(n: int = 1000, **acc1):
    import pandas as pd

    from paperlib.studies.leakage import VERDICT_LEAK, VERDICT_NONE

    labels = {k: v[0] for k, v in numbers_table1().items()}
    leaks = {"mpeg4": 27.0, "h264": 2.4, "prores": 2.6, "aac44100": 86.0, "aac22050": 23.0, "aac16000": 6.5,
             "pcm22050": 2.9} | acc1
    return pd.DataFrame([{"row": r, "codec": labels[r], "acc1": a, "p_value": 1e-6 if a > 4 else 0.5,
                          "verdict": VERDICT_LEAK if a > 4 else VERDICT_NONE, "modulo_top5": 30.0 if r == "mpeg4"
                          else math.nan, "modulo_chance": 8.4, "chance_acc1": 2.0, "n_test_items": n}
                         for r, a in leaks.items()])


def numbers_table1() -> dict:
    from paperlib.core import paper_numbers

    return paper_numbers.TABLE1


def test_table1_claims_follow_the_paper():
    v = verdicts(T.table1_claims(_table1_rows(), "mini"))
    assert set(v.values()) == {"reproduced"} and len(v) == 6
    # the paper: AAC at 16 kHz still leaks (6.3 / 19.3 vs chance 2 / 10). At chance here, that claim is not reproduced
    # and the ordering 22.05k > 16k > lossless holds only in part (a rule "16 kHz is at chance" would have passed)
    v = verdicts(T.table1_claims(_table1_rows(aac16000=2.0), "mini"))
    assert v[T.TABLE1_CLAIMS[3][0]] == "not reproduced"
    assert v[T.TABLE1_CLAIMS[2][0]] == "reproduced in part"
    # rows not run: not testable; at smoke nothing is judged (the classifier trained for a few epochs)
    partial = _table1_rows().iloc[:3]
    assert verdicts(T.table1_claims(partial, "mini"))[T.TABLE1_CLAIMS[4][0]] == NT
    smoke = T.table1_claims(_table1_rows(), "smoke")
    assert {c.verdict for c in smoke} == {NT} and all("smoke" in c.evidence for c in smoke)
    assert T.MODULO_CLAIM in {c.text for c in smoke}


def test_table1_chance_claims_need_the_power_to_see_the_smallest_leak():
    """'does not leak' holds only when the test would have found a leak as small as the paper's AAC 16 kHz one
    (6.3 % at chance 2 %: 4.3 pts): at 1000 test items it finds >= 1.4 pts, at 50 only >= 6.3 pts."""
    assert T.leak_detectable(0.02, 1000) == pytest.approx(3.1679 * math.sqrt(0.02 * 0.98 / 1000), rel=1e-4)
    strong = {c.text: c for c in T.table1_claims(_table1_rows(n=1000), "mini")}
    weak = {c.text: c for c in T.table1_claims(_table1_rows(n=50), "mini")}
    for claim in (T.TABLE1_CLAIMS[1][0], T.TABLE1_CLAIMS[4][0]):  # ProRes, lossless: "~ chance" only
        assert strong[claim].verdict == "reproduced" and "detects a leak >= 1.4 pts" in strong[claim].evidence
        assert weak[claim].verdict == NT and "detects a leak >= 6.3 pts" in weak[claim].evidence
    # mpeg4 >> H.264 still holds at 50 items; "H.264 ~ chance" cannot be judged there: reproduced in part
    assert weak[T.TABLE1_CLAIMS[0][0]].verdict == "reproduced in part"


def test_report_shows_only_what_this_run_produced(tmp_path):
    import os
    import time

    from paperlib.paper import report as R

    tables = tmp_path / "tables"
    tables.mkdir()
    for name, verdict, evidence in (("table2_main_results", "reproduced", "this run's 45.6"),
                                    ("table3_ablation", "not reproduced", "an earlier run's 12.3")):
        (tables / f"{name}.md").write_text(f"## {name} table\n")
        (tables / f"{name}.json").write_text(json.dumps({"name": name, "profile": "mini", "claims": [
            {"text": f"{name} claim", "verdict": verdict, "evidence": evidence}]}))
    old = time.time() - 3600
    os.utime(tables / "table3_ablation.json", (old, old))  # an earlier run's: this run's notebook failed
    results = [{"notebook": "table2.ipynb", "status": "ok", "error": None, "wall_s": 1.0},
               {"notebook": "table3.ipynb", "status": "failed", "error": "boom", "wall_s": 2.0}]
    text = R.write_report("mini", results, out=tmp_path / "REPORT.md", since=time.time() - 60).read_text()
    assert "table2_main_results claim" in text and "table2_main_results table" in text
    assert "table3_ablation" not in text and "12.3" not in text and "45.6" in text
    assert "| table3.ipynb | failed |" in text and "- table3.ipynb: boom" in text


def test_every_comparison_states_its_detectable_difference():
    def m(acc, n=48, c=21):
        return V.Measure("x", acc, n, V.chance_level(c, 1))

    part = V.compare_better(m(0.8), m(0.5))
    se = math.hypot(m(0.8).se, m(0.5).se)
    assert V.detectable_difference(se) == pytest.approx(2.8416 * se)
    assert f"detects >= {100 * 2.8416 * se:.1f} pts at 80 % power" in part.text
    # four times the items halve it
    assert V.detectable_difference(math.hypot(m(0.8, 192).se, m(0.5, 192).se)) < 0.55 * V.detectable_difference(se)
    assert "detects >=" in V.compare_gap_growth(m(0.8), m(0.5), m(0.6), m(0.5)).text


def test_seed_table_mean_spread_and_chance_count():
    recs = {s: {"sparsesync/dense-crop/c21": rec("sparsesync/dense-crop/c21", a1, t1, n=400),
                "avst_dec/dense-crop/c21": rec("avst_dec/dense-crop/c21", 0.05, 0.15, n=400)}
            for s, (a1, t1) in enumerate(((0.40, 0.80), (0.20, 0.60), (0.30, 0.70)))}
    df = T.seed_table(recs)
    ss = df[df["run"] == "sparsesync/dense-crop/c21"].iloc[0]
    assert ss["seeds"] == "0 1 2" and ss["acc1_tol1 per seed"] == "80.0 / 60.0 / 70.0"
    assert ss["acc1_tol1 mean"] == 70.0 and ss["acc1_tol1 sd"] == 10.0 and ss["acc1_tol1 range"] == 20.0
    assert ss["acc1 mean"] == 30.0 and ss["n"] == 400 and ss["seeds above chance"] == 3
    av = df[df["run"] == "avst_dec/dense-crop/c21"].iloc[0]
    assert av["seeds above chance"] == 0 and av["acc1_tol1 chance"] == pytest.approx(14.3)


def test_runs_table_flags_runs_that_never_learned():
    recs = _table2_records(ss_sparse=0.50, avst_sparse=0.15)
    rt = T.runs_table(recs).set_index("run")
    assert rt.loc["avst_dec/sparse/c21", "learned"].startswith("no: at chance")  # 15 % within +-1, chance 14.3 %
    assert rt.loc["sparsesync/sparse/c21", "learned"] == "yes"


def test_repeated_seeds_average_and_carry_their_spread():
    """The mean of repeated runs: its s.e. is the between-seed s.e. when the seeds disagree (so a gap that one run
    shows can vanish in the seeds' spread) and the pooled binomial s.e. when they agree."""
    chance = V.chance_level(21, 1)
    spread = V.Measure.repeated("A", [0.60, 0.20, 0.25], 400, chance)
    assert spread.acc == pytest.approx(0.35) and spread.runs == 3 and spread.seed_sd == pytest.approx(0.2179, abs=1e-4)
    assert spread.se == pytest.approx(0.2179 / math.sqrt(3), abs=1e-4)
    agree = V.Measure.repeated("A", [0.5, 0.5, 0.5], 400, chance)
    assert agree.se == pytest.approx(V.binomial_se(0.5, 1200)) and agree.seed_sd == 0.0
    assert V.Measure.repeated("A", [0.3], 400, chance) == V.Measure("A", 0.3, 400, chance)  # one run: as before
    low = V.Measure.repeated("B", [0.25, 0.24, 0.25], 400, chance)
    one_seed = V.compare_better(V.Measure("A", 0.60, 400, chance), V.Measure("B", 0.25, 400, chance))
    assert one_seed.verdict == "reproduced"  # seed 0 alone looks decisive ...
    three = V.compare_better(spread, low, "21 classes")
    assert three.verdict == "not reproduced" and "within noise" in three.text  # ... its seeds do not carry it
    assert "mean of 3 seeds: 60.0 / 20.0 / 25.0, sd 21.8" in three.text
    # a mean of seeds whose planned runs are not all in: the claim on it is provisional
    partial = V.Measure.repeated("A", [0.60], 400, chance, planned=3)
    claim = V.judge("A beats B", [V.compare_better(partial, V.Measure("B", 0.25, 400, chance))], "full")
    assert claim.verdict == "reproduced" and claim.provisional == "1 of 3 seeds"
    assert claim.verdict_text == "provisional: 1 of 3 seeds (reproduced so far)"
    # at chance is judged on the pooled items: 3 x 400 items make 17 % (chance 14.3 %) distinguishable
    assert V.Measure.repeated("B", [0.17, 0.17, 0.17], 400, chance).above_chance
    assert not V.Measure("B", 0.17, 400, chance).above_chance


def test_tables_average_repeated_records_and_list_every_seed():
    recs = _table2_records(ss_sparse=0.50, avst_sparse=0.15)
    key = "sparsesync/sparse/c21"
    seeds = {0: recs[key], 1: rec(key, 0.2, 0.40, n=800), 2: rec(key, 0.2, 0.45, n=800)}
    recs[key] = SimpleNamespace(by_seed=seeds, spec=recs[key].spec, test=recs[key].test, steps=50,
                                left_plateau_at_step=20, wall_s=9.0, params={"total": 1}, reused=True,
                                run_dir=recs[key].run_dir)
    m = T.measure(recs, key)
    assert m.acc == pytest.approx((0.50 + 0.40 + 0.45) / 3) and m.runs == 3
    tables, claims = T.table2_from_records(recs, "full")
    df = next(iter(tables.values()))
    cell = df[(df["model"] == "SparseSync (ours)") & (df["setting"] == "sparse") & (df["classes"] == 21)].iloc[0]
    assert cell["ours"] == 45.0 and "mean of 3 seeds: 50.0 / 40.0 / 45.0" in cell["run"]
    beats = [c for c in claims if c.text.startswith("SparseSync outperforms AVST_dec")][0]
    assert "mean of 3 seeds" in beats.evidence
    rt = T.runs_table(recs)
    assert list(rt[rt["run"] == key]["seed"]) == [0, 1, 2]
