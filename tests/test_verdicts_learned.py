"""Verdicts only between models that learned (paperlib.paper.verdicts, tables, results) on hand-made records: a
comparison with an arm at chance is not testable (unless the paper's arm is at chance too), "at chance" is judged
against the test set's own null, unfinished seeds make a claim provisional, curves are judged on their learned points,
Table 6's parameter counts name the paper's typo, and a results folder's report is rebuilt from its files alone."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from paperlib.paper import profiles
from paperlib.paper import results as RS
from paperlib.paper import tables as T
from paperlib.paper import verdicts as V
from paperlib.paper.report import Verdict

NT = Verdict.NOT_TESTABLE
REPO = Path(__file__).resolve().parents[1]


def items(targets: list[int], preds: list[int]) -> list[dict]:
    return [{"target": t, "pred": p, "label": "x"} for t, p in zip(targets, preds)]


def rec(key: str, acc1: float, tol1: float | None = None, n: int = 400, steps: int = 1500, **test) -> SimpleNamespace:
    c = int(re.search(r"/c(\d+)", key)[1])
    t = {"accuracy_1": acc1, "accuracy_1_tol1": acc1 if tol1 is None else tol1, "n": n, **test}
    return SimpleNamespace(spec=SimpleNamespace(key=key, num_classes=c), test=t, params={"total": 1},
                           run_dir=Path("/tmp") / key.replace("/", "_"), wall_s=60.0, steps=steps,
                           left_plateau_at_step=None, reused=True)


def test_a_beats_claim_with_the_loser_at_chance_is_not_testable():
    """SparseSync learned and AVST_dec did not: a finding about the budget, not "SparseSync beats AVST_dec" (a rule
    that judged one learned arm would call it reproduced)."""
    c = V.chance_level(21, 1)
    won = V.Measure("SparseSync", 0.41, 400, c, steps=5000)
    stuck = V.Measure("AVST_dec", 0.138, 400, c, steps=5000)
    part = V.compare_better(won, stuck)
    assert part.verdict == NT
    assert "not testable at this profile: AVST_dec never left chance (it trained 5,000 steps)" in part.text
    claim = V.judge("SparseSync beats AVST_dec", [part], "full")
    assert claim.verdict == NT and claim.provisional == ""
    # the same gap between two models that learned is judged
    assert V.compare_better(won, V.Measure("AVST_dec", 0.25, 400, c)).verdict == Verdict.REPRODUCED
    # gap growth needs all four arms to have learned
    grow = V.compare_gap_growth(won, stuck, V.Measure("a", 0.9, 400, c), V.Measure("b", 0.5, 400, c))
    assert grow.verdict == NT and "AVST_dec never left chance" in grow.text


def test_the_scratch_exception_is_judged_while_other_arms_at_chance_are_not():
    """Table 3: the paper's "not pre-trained on dense data" arm sits below chance (12.1 vs 14.3 %), so our scratch arm
    at chance agrees with it and "pre-training is essential" is judged; the transformer arm at chance (the paper's
    learned: 40.1 %) leaves "selectors beat the transformer" not testable."""
    recs = {k: rec(k, 0.2, 0.41, steps=5000) for k in T.table3_keys()}
    recs["sparsesync/sparse/c21/scratch"] = rec("sparsesync/sparse/c21/scratch", 0.05, 0.138, steps=5000)
    recs["transformer/sparse/c21"] = rec("transformer/sparse/c21", 0.05, 0.138, steps=5000)
    _, claims = T.table3_from_records(recs, "full")
    v = {c.text: c for c in claims}
    assert v["pre-training the sync model on dense data is essential for sparse data"].verdict == Verdict.REPRODUCED
    sel = v["selectors beat the no-selector transformer on sparse data"]
    assert sel.verdict == NT and "transformer/sparse/c21 never left chance (it trained 5,000 steps)" in sel.evidence


def test_a_constant_guess_on_a_skewed_test_set_is_at_chance():
    """The test set favours one offset: always predicting it scores above the uniform 3/21 bound, but not above the
    set's own null (judged against 1/C it would count as "learned")."""
    rng = random.Random(0)
    targets = [10 if rng.random() < 0.14 else rng.randrange(21) for _ in range(400)]
    const = [10] * 400
    tol1 = sum(abs(t - 10) <= 1 for t in targets) / 400
    r = rec("avst_dec/dense-crop/c21", sum(t == 10 for t in targets) / 400, tol1, items=items(targets, const))
    m = T.measure({"k": r}, "k")
    uniform_bound = m.chance + 2 * (m.chance * (1 - m.chance) / 400) ** 0.5
    assert m.acc > uniform_bound  # above the uniform bound
    assert m.null == pytest.approx(tol1) and not m.learned
    row = T.runs_table({"avst_dec/dense-crop/c21": r}).iloc[0]
    assert row["learned"].startswith("no") and row["null"] == pytest.approx(100 * tol1, abs=0.051)
    # a model that learned on the same test set beats that null
    good = [t if rng.random() < 0.6 else rng.randrange(21) for t in targets]
    acc = sum(abs(t - p) <= 1 for t, p in zip(targets, good)) / 400
    assert T.measure({"k": rec("x/y/c21", 0.5, acc, items=items(targets, good))}, "k").learned


def test_the_shuffled_targets_null_is_the_mean_over_permutations():
    targets, preds = [0, 0, 1, 2, 2, 2], [2, 2, 2, 0, 1, 1]
    exact = V.empirical_null(targets, 3, 0, preds)
    const = max(targets.count(k) for k in range(3)) / 6
    perms = list(itertools.permutations(targets))
    shuffled = sum(sum(p == t for p, t in zip(preds, perm)) / 6 for perm in perms) / len(perms)
    assert exact == pytest.approx(max(const, shuffled))
    assert shuffled <= const + 1e-12  # never above the best constant guess
    with pytest.raises(ValueError):
        V.empirical_null([], 3)


def test_an_unfinished_seed_makes_a_claim_provisional():
    """Table 2's headline planned on 3 seeds with 1 finished: provisional, and counted apart in the summary."""
    recs = {k: rec(k, 0.2, 0.41 if "sparsesync" in k else 0.30) for k in T.table2_keys()}
    for k in recs:
        if k.endswith("/c3"):
            recs[k].test.update(accuracy_1=0.62 if "sparsesync" in k else 0.45)
    key = "sparsesync/sparse/c21"
    recs[key] = SimpleNamespace(by_seed={0: recs[key]}, planned=(0, 1, 2), spec=recs[key].spec, test=recs[key].test,
                                steps=5000, left_plateau_at_step=None, wall_s=1.0, params={}, reused=True,
                                run_dir=recs[key].run_dir)
    _, claims = T.table2_from_records(recs, "full")
    head = next(c for c in claims if c.text.startswith("SparseSync outperforms AVST_dec"))
    assert head.provisional == "1 of 3 seeds"
    assert head.verdict_text.startswith("provisional: 1 of 3 seeds (")
    assert "SparseSync sparse 21cls 1 of 3 seeds" in head.evidence
    counts = RS.summary_counts(claims)
    assert counts["provisional"][str(head.verdict)] >= 1
    assert sum(counts["final"].values()) + sum(counts["provisional"].values()) == len(claims)


def test_a_curve_with_an_at_chance_middle_point_is_not_called_monotone():
    """Depth 1 and 3 learned, depth 2 sat at chance: the curve's shape is unknown (comparing only the ends, depth 3
    vs 1, would call "depth helps" reproduced)."""
    pts = {1: (0.2, 0.50), 2: (0.04, 0.14), 3: (0.3, 0.80)}
    recs = {f"sparsesync/dense-wide/c21/depth{d}": rec(f"sparsesync/dense-wide/c21/depth{d}", a, b)
            for d, (a, b) in pts.items()}
    _, claims = T.table6_from_records(recs, "mini", {1: 31_227_756, 2: 42_788_204, 3: 54_348_652})
    helps = next(c for c in claims if c.text.startswith("depth helps"))
    assert helps.verdict == NT and "not monotone" in helps.evidence and "depth 2 never left chance" in helps.evidence
    # at-chance points at an end are named and left out; a dip between learned points is not monotone
    c = V.chance_level(21, 1)
    m = lambda label, acc: V.Measure(label, acc, 400, c, steps=900)  # noqa: E731
    end = V.compare_curve([m("1", 0.14), m("2", 0.5), m("3", 0.7)])
    assert end.verdict == Verdict.REPRODUCED and "left out: 1 never left chance" in end.text
    dip = V.compare_curve([m("2", 0.5), m("3", 0.3), m("4", 0.7)])
    assert dip.verdict == Verdict.NOT_REPRODUCED and "not monotone: drops 2 -> 3" in dip.text
    flat = V.compare_curve([m("2", 0.5), m("3", 0.52)])
    assert flat.verdict == Verdict.NOT_REPRODUCED and "within noise" in flat.text
    assert V.compare_curve([m("2", 0.5), m("3", 0.10)]).verdict == NT  # one learned point is no curve


def test_table4_judges_the_whole_curve_of_lengths():
    """6 s below 5 s by more than 2 s.e.: the curve is not monotone, so longer inputs do not simply help (comparing
    only 6 s with 2 s would hide it)."""
    accs = {2: 0.30, 3: 0.35, 4: 0.40, 5: 0.62, 6: 0.45}
    recs = {f"sparsesync/sparse/c21/len{s}": rec(f"sparsesync/sparse/c21/len{s}", a / 2, a) for s, a in accs.items()}
    _, claims = T.table4_from_records(recs, "full")
    part = claims[0].evidence
    assert claims[0].verdict == Verdict.NOT_REPRODUCED and "not monotone: drops 5 s -> 6 s" in part


def test_a_curve_missing_planned_points_is_provisional():
    """Depths 2 and 3 trained of full's 1, 2, 3, 6: the verdict on the two is provisional and names what is not
    finished; with every planned depth in, it is final."""
    accs = {1: 0.70, 2: 0.93, 3: 0.895, 6: 0.90}
    recs = {f"sparsesync/dense-wide/c21/depth{d}": rec(f"sparsesync/dense-wide/c21/depth{d}", a / 2, a)
            for d, a in accs.items()}
    _, part = T.table6_from_records({k: v for k, v in recs.items() if k[-1] in "23"}, "full", {})
    assert part[0].provisional == "depth 1 not finished" and "(provisional: depth 1 not finished)" in part[0].evidence
    assert part[1].provisional == "depth 1, depth 6 not finished"
    _, whole = T.table6_from_records(recs, "full", {})
    assert whole[0].provisional == whole[1].provisional == ""
    # Table 4: the lengths the plan has at each grid (21 classes: no 2 s)
    lens = {f"sparsesync/sparse/c21/len{s}": rec(f"sparsesync/sparse/c21/len{s}", 0.2, 0.4 + s / 100)
            for s in (3, 5)}
    _, claims = T.table4_from_records(lens, "full")
    assert "21 classes 4 s" in claims[0].provisional and "21 classes 2 s" not in claims[0].provisional
    assert "3 classes 2 s" in claims[0].provisional


def test_cells_give_distinct_clips_and_scored_windows():
    """A sparse cell scored on 25 random windows of each of 40 clips: n is the clips, windows the scored windows, and
    a test split that lost clips says how many of the listed ones it scored."""
    r = rec("sparsesync/sparse/c21", 0.2, 0.4, n=1000, passes=25, n_clips=40, clips_listed=42)
    cell = T._cell({"sparsesync/sparse/c21": r}, "sparsesync/sparse/c21", 1, 44.3)
    assert cell["n"] == 40 and cell["windows"] == 1000 and "(40 of 42 listed test clips)" in cell["run"]
    legacy = rec("sparsesync/sparse/c21", 0.2, 0.4, n=800, passes=2)  # results written before n_clips existed
    assert T._cell({"k": legacy}, "k", 1, None)["n"] == 400


def test_table6_parameter_counts_name_the_papers_typo():
    claim = T.params_claim({1: 31_227_756, 2: 42_788_204, 3: 54_348_652, 6: 89_029_996})
    assert claim.verdict == Verdict.REPRODUCED
    assert "depth 3: 54.35M vs paper 55.3M: reproduced; the paper's 55.3M is a typo for 54.3M" in claim.evidence


def test_the_studies_rules_are_named():
    assert V.memory_is_linear(1.03) and not V.memory_is_linear(1.5)
    assert V.memory_is_quadratic(2.04) and not V.memory_is_quadratic(1.5)
    assert V.score_is_calibrated(1.0) and V.score_is_calibrated(1.15) and not V.score_is_calibrated(1.3)
    assert V.score_is_focused(2.3) and not V.score_is_focused(1.49)


def test_table_titles_name_what_they_measured_on():
    tables, _ = T.table7_from_records({}, "mini")
    (title,) = tables
    assert "synthetic stand-ins for LRS3" in title and "model width 64" in title and "64-px frames" in title
    (paper_title,) = T.table7_from_records({}, "paper")[0]
    assert "synthetic" not in paper_title and "LRS3" in paper_title


def test_what_mini_can_test_follows_the_plan(monkeypatch):
    assert T.mini_sparse().startswith("no: it rests on sparse runs, which mini trains 350 steps and full up to 6,000")
    assert T.mini_saturation().startswith("no: it needs a depth above 3")
    mini = profiles.PROFILES["mini"]
    monkeypatch.setitem(profiles.PROFILES, "mini", dataclasses.replace(
        mini, steps={**mini.steps, "sparse": profiles.PROFILES["full"].steps["sparse"]}, depths=(1, 2, 3, 6)))
    assert T.mini_sparse() == "yes" and T.mini_part() == "yes" and T.mini_saturation() == "yes"


# ---------------------------------------------------------------------------------------------------------------------
# A results folder: its report rebuilt from its files alone


def _write_run(folder: Path, acc: float, targets: list[int], preds: list[int], steps: int = 8) -> None:
    folder.mkdir(parents=True)
    n = len(targets)
    test = {"accuracy_1": sum(t == p for t, p in zip(targets, preds)) / n, "accuracy_1_tol1": acc, "n": n,
            "passes": 1, "items": items(targets, preds)}
    (folder / "test_detail.json").write_text(json.dumps({"test": test, "params": {"total": 10}, "wall_s": 12.0}))
    (folder / "results.json").write_text(json.dumps({"steps": steps, "plateau_left_at_step": None,
                                                     "stop_reason": "max_steps"}))
    (folder / "config.json").write_text("{}")
    (folder / "env.json").write_text(json.dumps({"git": {"sha": "0123456789abcdef"}, "cpu": "Test CPU"}))


def test_report_from_a_results_folder_is_rebuilt_from_its_files(tmp_path):
    out = tmp_path / "results" / "smoke"
    (out).mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"profile": "smoke", "seed": 0, "runs": {}, "studies": []}))
    rng = random.Random(1)
    targets = [rng.randrange(3) for _ in range(60)]
    _write_run(RS.run_folder(out, "sparsesync/dense-crop/c3", 0), 0.9, targets, targets)
    _write_run(RS.run_folder(out, "avst_dec/dense-crop/c3", 0), 0.3, targets, [0] * 60)
    report = RS.write_results_report(out)
    text = report.read_text()
    assert "| sparsesync/dense-crop/c3 | 0 | 8 | cap |" in text  # results.json stop_reason max_steps
    assert "| avst_dec/dense-crop/c21 | 0 | not finished |" in text
    assert "Test CPU" in text and "`0123456789ab`" in text and "synthetic" in text
    claims = json.loads((out / "claims.json").read_text())
    assert claims["finished"] == ["avst_dec/dense-crop/c3", "sparsesync/dense-crop/c3"]
    assert claims["runs"]["sparsesync/dense-crop/c3"]["0"] == "runs/sparsesync/dense-crop/c3/0"
    # rebuilt from the same files: the same report but for the date line
    again = RS.write_results_report(out).read_text()
    strip = lambda s: [x for x in s.splitlines() if not x.startswith(RS.DATE_PREFIX)]  # noqa: E731
    assert strip(again) == strip(text) and again.count(RS.DATE_PREFIX) == 1
    # a committed run with a file missing is an error naming it
    (RS.run_folder(out, "avst_dec/dense-crop/c3", 0) / "results.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"avst_dec/dense-crop/c3/0/results.json"):
        RS.write_results_report(out)


def _finished_campaign_run(runs_root: Path, profile: str, key: str, seed: int) -> None:
    """A hash folder of a finished campaign run as the campaign leaves it (campaign.json naming the key; a run
    directory with its config, results, env and test files)."""
    from paperlib.paper.campaign_runner import RUN_CONFIG_FILE, SPEC_FILE, hash_root
    from paperlib.paper.run_config import TRAIN_SEED_BASE

    run = hash_root(runs_root, profile, key, "0123456789ab") / "run-20261207-000000"
    _write_run(run, 0.9, [0, 1, 2], [0, 1, 2])
    (run / RUN_CONFIG_FILE).write_text(json.dumps({"train": {"seed": TRAIN_SEED_BASE + seed}}))
    (run.parent / SPEC_FILE).write_text(json.dumps({"key": key}))


def test_an_export_keeps_what_the_folder_already_holds(tmp_path):
    """A campaign spread over sittings: the second sitting's runs folder lacks the first sitting's runs (a fresh
    machine), yet exporting it keeps the committed runs, the studies' files and the notes, and adds its own runs."""
    out = tmp_path / "results" / "smoke"
    _write_run(RS.run_folder(out, "sparsesync/dense-crop/c21", 0), 0.9, [0, 1], [0, 1])
    _write_run(RS.run_folder(out, "sparsesync/dense-crop/c21/gone", 0), 0.9, [0, 1], [0, 1])  # not in the plan
    (out / "tables").mkdir()
    (out / "tables" / "table1_codec_leakage.json").write_text("{}")
    (out / "manifest.json").write_text(json.dumps({
        "profile": "smoke", "seed": 0, "notes": ["measured by hand"],
        "studies": ["table1_codec_leakage", "fig4_memory"],
        "runs": {"sparsesync/dense-crop/c21": {"0": "runs/sparsesync/dense-crop/c21/0"},
                 "sparsesync/dense-crop/c21/gone": {"0": "runs/sparsesync/dense-crop/c21/gone/0"}}}))
    runs_root = tmp_path / "runs"
    _finished_campaign_run(runs_root, "smoke", "avst_dec/dense-crop/c21", 0)
    man = RS.export_results("smoke", out, runs_root=runs_root, figures_root=tmp_path / "no-figures")
    assert man["runs"] == {"avst_dec/dense-crop/c21": {"0": "runs/avst_dec/dense-crop/c21/0"},
                           "sparsesync/dense-crop/c21": {"0": "runs/sparsesync/dense-crop/c21/0"}}
    assert man["studies"] == ["table1_codec_leakage"]  # fig4's files are not there
    assert man["notes"] == ["measured by hand"]
    assert json.loads((out / "manifest.json").read_text()) == man
    assert (RS.run_folder(out, "avst_dec/dense-crop/c21", 0) / "test_detail.json").is_file()
    with pytest.raises(ValueError, match="holds profile 'smoke'"):
        RS.export_results("mini", out, runs_root=runs_root, figures_root=tmp_path / "no-figures")


def test_an_upstream_training_repeated_elsewhere_keeps_both_reports(tmp_path):
    """The upstream extractors of one configuration trained again in a later sitting (another machine: other float
    rounding, other weights) load into the runs trained since; the earlier report, which the committed runs before
    them loaded, is kept, and the new one is committed beside it under a name of its own."""
    from paperlib.engine.upstream import upstream_paths
    from paperlib.paper.run_config import UPSTREAM_DIR, upstream_configs

    runs_root, out = tmp_path / "runs", tmp_path / "results" / "smoke"
    report = upstream_paths(upstream_configs("smoke")[0], runs_root / UPSTREAM_DIR).report
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"losses": [0.7]}))
    first = RS.export_results("smoke", out, runs_root=runs_root, figures_root=tmp_path / "no-figures")
    assert first["upstream"] == [f"{UPSTREAM_DIR}/{report.name}"]
    assert RS.export_results("smoke", out, runs_root=runs_root, figures_root=tmp_path / "no-figures") == first
    report.write_text(json.dumps({"losses": [0.6]}))
    second = RS.export_results("smoke", out, runs_root=runs_root, figures_root=tmp_path / "no-figures")
    assert len(second["upstream"]) == 2 and second["upstream"][1] == first["upstream"][0]
    new = out / second["upstream"][0]
    assert new.name.startswith(report.stem + "-") and json.loads(new.read_text()) == {"losses": [0.6]}
    assert json.loads((out / first["upstream"][0]).read_text()) == {"losses": [0.7]}


def test_report_command_needs_a_results_folder(tmp_path, capsys):
    from paperlib.commands import main

    assert main(["report", "--from", str(tmp_path)]) == 2
    assert "manifest.json: missing" in capsys.readouterr().err


COMMITTED = sorted((p.parent for p in (REPO / "results").glob("*/manifest.json")),
                   key=lambda p: list(profiles.PROFILES).index(p.name))  # smoke, mini, full, paper


def test_the_committed_reports_are_what_their_files_say(tmp_path):
    """``python -m paperlib report --from results/<profile>`` rebuilds the committed REPORT.md byte for byte, the date
    line aside (on a copy, so the repository is not touched)."""
    import shutil

    assert any(p.name == "mini" for p in COMMITTED), "results/mini must be a results folder (manifest.json)"
    for src in COMMITTED:
        dst = tmp_path / "results" / src.name
        shutil.copytree(src, dst)
        rebuilt = RS.write_results_report(dst).read_text().splitlines()
        committed = (src / "REPORT.md").read_text().splitlines()
        drop = lambda lines: [x for x in lines if not x.startswith(RS.DATE_PREFIX)]  # noqa: E731
        assert drop(rebuilt) == drop(committed), src


def test_the_readme_summary_matches_the_committed_reports():
    """The README's verdict counts and per-claim table are those of the committed reports' claims.json
    (`python -m paperlib report --summary results/mini results/full` prints the block)."""
    folders = [Path("results") / p.name for p in COMMITTED]
    import os

    here = os.getcwd()
    os.chdir(REPO)
    try:
        block = RS.summary_block(folders)
    finally:
        os.chdir(here)
    assert block in (REPO / "README.md").read_text()
