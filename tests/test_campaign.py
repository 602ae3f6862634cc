"""The training campaign (paperlib.paper.campaign, its plan, run configurations, budget and data): the plan covers the
artefacts' keys, configs resolve, chains are sound, runs are cached/reused/resumed, the trainer runs on a resolved
config file (also under torchrun), and the oracle metric is what it says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paperlib.commands import main
from paperlib.core.config import to_dict
from paperlib.data import provision as PV
from paperlib.engine import config as RC
from paperlib.engine import evaluate as E
from paperlib.engine import runs
from paperlib.paper import budget as B
from paperlib.paper import campaign as C
from paperlib.paper import plan as PL
from paperlib.paper import profiles as PR
from paperlib.paper import run_config as RUN


@pytest.mark.parametrize("profile", list(PR.PROFILES))
def test_plan_covers_contract_keys(profile):
    specs = PL.plan(profile)
    keys = PL.contract_keys(profile)
    assert [k for k in keys if k not in specs] == []
    # the contract's key families, spelled out independently of contract_keys
    for v in ("sparsesync", "avst_dec"):
        for s in ("dense-crop", "dense-wide", "sparse"):
            for c in (21, 3):
                sp = specs[f"{v}/{s}/c{c}"]
                assert (sp.variant, sp.setting, sp.num_classes) == (v, s, c)
    for L in PR.PROFILES[profile].lengths:
        # a length within the 21-class grid's +-2 s trains at 3 classes only (Table 4 has no 21-class 2-s cell)
        short = L <= 2.0 and L != PR.PROFILES[profile].default_clip_sec
        assert (f"sparsesync/sparse/c21/len{L:g}" in specs) is not short
        for c in (3,) if short else (21, 3):
            assert specs[f"sparsesync/sparse/c{c}/len{L:g}"].clip_sec == L
    for d in PR.PROFILES[profile].depths:
        sp = specs[f"sparsesync/dense-wide/c21/depth{d}"]
        assert (sp.depth or PR.PROFILES[profile].default_depth) == d
    assert specs["sparsesync/general/c21"].test_setting == "sparse"
    assert specs["sparsesync/sparse/c21/scratch"].init_from is None
    assert specs["transformer/sparse/c21"].variant == "transformer"
    assert specs["sparsesync/sparse/c21/frozen-extractors"].frozen_backbones
    # "not pre-trained": its own chain from random extractors, trained as the main chain
    npe = specs["sparsesync/dense-crop/c21/no-pretrained-extractors"]
    assert npe.init_from is None and not npe.pretrained_extractors and npe.hidden
    assert npe.steps == specs["sparsesync/dense-crop/c21"].steps
    if profile == "paper":
        assert all(s.steps == 0 for s in specs.values())  # early stopping
    else:
        assert all(s.steps > 0 for s in specs.values())


@pytest.mark.parametrize("profile", list(PR.PROFILES))
def test_chains_acyclic_parents_first_and_as_in_the_paper(profile):
    specs = PL.plan(profile)
    seen: set[str] = set()
    for key, s in specs.items():
        assert s.key == key
        if s.init_from is not None:
            assert s.init_from in seen, f"{key}: parent {s.init_from} comes later"
            p = specs[s.init_from]
            assert p.variant == s.variant and p.clip_sec == s.clip_sec and p.depth == s.depth
            if s.num_classes == 3 and p.num_classes == 21:  # a 3-class fine-tune of the 21-class run's setting
                assert p.setting == s.setting
            else:  # dense-crop -> dense-wide -> sparse / general, on one grid
                assert p.num_classes == s.num_classes
                assert {"dense-wide": "dense-crop", "sparse": "dense-wide", "general": "dense-wide"}[s.setting] \
                    == p.setting
        else:
            assert s.setting == "dense-crop" or key == "sparsesync/sparse/c21/scratch"
        seen.add(key)
    # a 3-class chain of its own only where the 21-class grid does not fit the input (2 s, Table 4)
    c3_bases = {k for k, s in specs.items() if s.init_from is None and s.num_classes == 3}
    assert c3_bases == ({"sparsesync/dense-crop/c3/len2"} if profile in ("full", "paper") else set())


@pytest.mark.parametrize("profile", list(PR.PROFILES))
def test_configs_resolve_and_aliases_share_a_hash(profile, tmp_path):
    specs = PL.plan(profile)
    memo: dict[str, str] = {}
    hashes = {}
    for key, s in specs.items():
        cfg = RUN.resolve_spec(s, profile, data_root="/data", runs_root=tmp_path)
        RC.check_run_config(cfg)
        assert (cfg.model.variant, cfg.geometry.num_classes) == (s.variant, s.num_classes)
        assert cfg.geometry.clip_sec == s.clip_sec
        assert cfg.geometry.max_off_sec == (1.0 if s.num_classes == 3 else 2.0)
        assert cfg.model.depth == (s.depth or PR.PROFILES[profile].default_depth)
        assert cfg.train.max_steps == (s.steps or None)
        assert cfg.model.train_visual_backbone is not s.frozen_backbones
        if s.init_from:
            assert cfg.train.init_carry_optimizer is False
        hashes[key] = RUN.spec_hash(s, profile, specs, data_root="/data", _memo=memo)
    L0, d0 = PR.PROFILES[profile].default_clip_sec, PR.PROFILES[profile].default_depth
    assert hashes[f"sparsesync/sparse/c21/len{L0:g}"] == hashes["sparsesync/sparse/c21"]
    assert hashes[f"sparsesync/dense-wide/c21/depth{d0}"] == hashes["sparsesync/dense-wide/c21"]
    # the parent's identity is part of the hash: same config, other parent -> other hash
    s = specs["sparsesync/sparse/c21"]
    other = dict(specs)
    other["sparsesync/dense-wide/c21"] = specs["sparsesync/dense-wide/c21/frozen-extractors"]
    assert RUN.spec_hash(s, profile, other, data_root="/data") != hashes["sparsesync/sparse/c21"]
    if profile == "paper":
        cfg = RUN.resolve_spec(specs["sparsesync/sparse/c21"], "paper", data_root="/data")
        assert cfg.data.root == "/data/vggsound_sparse" and cfg.data.dataset == "vggsound_sparse"
        with pytest.raises(ValueError, match="data_root"):
            RUN.resolve_spec(specs["sparsesync/sparse/c21"], "paper")


@pytest.mark.parametrize("profile, target, chains", [("mini", 50.0, 9), ("full", 600.0, 13 + 2 * 2)])
def test_budget_counts_every_run_and_says_whether_it_fits_its_target(profile, target, chains, monkeypatch):
    """Every distinct run of the plan, plus (full) the chains of the repeated keys once per repeat seed, each with
    its own campaign hash; from-scratch chains: full's 13 and the SparseSync and AVST_dec chains at seeds 1 and 2.
    At the measured campaign step cost neither plan fits its target with every run at its cap (full: 23 % over, mini:
    its steps are to be re-measured on a quiet machine); ``fits`` says so rather than the estimate being tuned."""
    b = B.budget(profile)
    specs = PL.plan(profile)
    memo: dict[str, str] = {}
    n = len({RUN.spec_hash(s, profile, _memo=memo) for s in specs.values()})
    for offset in PR.PROFILES[profile].repeat_seeds:
        m: dict[str, str] = {}
        again = {RUN.spec_hash(specs[k], profile, seed=offset, _memo=m)
                 for k in PL.closure(PL.repeated_keys(specs, profile), specs)}
        assert not again & set(memo.values())  # a repeat is a run of its own
        n += len(again)
    assert b["n_runs"] == n and (profile != "full" or n == 47 + 16)
    assert b["process_minutes"] / 2 <= b["training_wall_minutes"] <= b["wall_minutes"]
    assert b["fits"] == (b["wall_minutes"] <= target) and b["target_wall_minutes"] == target
    # each run's estimate is its steps at the measured step cost plus its overhead: twice the step cost, twice the
    # minutes besides the overhead
    overhead = {r["key"]: B.OVERHEAD_S[specs[r["key"].split("@")[0]].setting] / 60 for r in b["runs"]}
    monkeypatch.setattr(B, "SEC_PER_STEP", 2 * B.SEC_PER_STEP)
    doubled = {r["key"]: r["minutes"] for r in B.budget(profile)["runs"]}
    for r in b["runs"]:
        assert doubled[r["key"]] - overhead[r["key"]] == pytest.approx(2 * (r["minutes"] - overhead[r["key"]]),
                                                                        abs=0.02)
    assert b["parallel"] == 2 and sum(r["parent"] is None for r in b["runs"]) == chains  # from-scratch chains


def test_budget_says_what_is_left_after_the_committed_full_runs(tmp_path):
    """Every run committed under results/full is found by the current plan's campaign hash once restored (a plan
    change that orphans them fails here), and the budget counts the rest."""
    from paperlib.paper import results as RS

    out = Path(__file__).resolve().parents[1] / "results" / "full"
    committed = sum(len(v) for v in json.loads((out / RS.MANIFEST).read_text())["runs"].values())
    assert committed > 0
    before = B.budget("full", runs_root=tmp_path)
    assert before["left_runs"] == before["n_runs"] and before["left_wall_minutes"] == before["wall_minutes"]
    # what `make reproduce PROFILE=full` restores by default (the profile's committed_results); mini restores none
    from paperlib.paper.reproduce import restore_committed

    assert restore_committed("mini", None, str(tmp_path / "mini")) == 0
    assert restore_committed("full", None, str(tmp_path)) == committed
    after = B.budget("full", runs_root=tmp_path)
    rows = {r["key"]: r for r in after["runs"]}
    assert sum(r["finished"] for r in rows.values()) == committed
    # left: every unfinished result, and the unfinished parents of what is left; not the parents of committed
    # runs (seed 1's dense runs, whose sparse children are committed)
    assert all(r["left"] for r in rows.values() if r["wanted"] and not r["finished"])
    assert not any(r["left"] and r["finished"] for r in rows.values())
    parent = rows["sparsesync/dense-crop/c21@seed1"]
    assert not parent["finished"] and not parent["left"]
    assert after["left_runs"] == sum(r["left"] for r in rows.values()) < after["n_runs"] - committed
    left = sum(r["minutes"] for r in rows.values() if r["left"])
    assert after["left_process_minutes"] == pytest.approx(left, abs=0.1)
    assert after["left_wall_minutes"] < before["left_wall_minutes"]


def test_full_profile_trains_every_run_to_patience_under_caps_far_past_sparsesyncs_plateau():
    """full: the paper's lengths and depths; every run stops on patience in steps (equal rules for every arm) under a
    cap of at least 3x the steps SparseSync needed to leave chance in the same setting."""
    specs = PL.plan("full")
    assert PR.PROFILES["full"].lengths == (2.0, 3.0, 4.0, 5.0, 6.0, 7.0) and PR.PROFILES["full"].depths == (1, 2, 3, 6)
    for s in specs.values():
        assert s.patience_steps > 0, s.key
        if s.setting in ("sparse", "general") and s.num_classes == 21:
            assert s.steps >= 6000, s.key  # the sparse step of the recipe needs ~4,500-5,000 steps
        elif s.init_from is None:
            assert s.steps >= 3 * 950, s.key  # SparseSync left the dense-crop plateau after ~800-950 steps
    # the 2-s base (3 classes) left chance at 1,600-3,580 steps (median 3,060) in the plateau study: a cap of its own,
    # 3x the median, under the same patience as every base
    short = specs["sparsesync/dense-crop/c3/len2"]
    assert short.init_from is None and short.steps >= 3 * 3060 > specs["sparsesync/dense-crop/c21"].steps
    assert short.patience_steps == specs["sparsesync/dense-crop/c21"].patience_steps
    assert PL.plan("smoke")["sparsesync/dense-crop/c21"].steps == PR.PROFILES["smoke"].steps["base"]  # no short-base
    cfg = RUN.resolve_spec(specs["sparsesync/sparse/c21"], "full", runs_root="/r")
    assert cfg.data.root == "/r/data/full/sparse" and cfg.train.max_steps == 6000
    assert cfg.train.patience_steps == 1000 and cfg.train.patience_counts_valid_loss
    # mini keeps its hour with fixed step counts
    assert all(s.patience_steps == 0 for s in PL.plan("mini").values())


def test_mini_and_full_test_on_400_distinct_items_of_a_separate_set():
    for profile in ("mini", "full"):
        specs = PL.plan(profile)
        for key in ("sparsesync/dense-crop/c21", "sparsesync/sparse/c21", "sparsesync/general/c21"):
            tcfg = RUN.test_data_config(specs[key], profile, runs_root="/r")
            setting = specs[key].test_setting or specs[key].setting
            assert tcfg.root == f"/r/data/{profile}/{setting}-test"
        train_cfg, test_cfg = PV.synth_config(profile, "sparse"), PV.synth_config(profile, "sparse", test=True)
        assert train_cfg.event_count_probs != test_cfg.event_count_probs  # dense-event training, standard test
        assert test_cfg.split_fractions == (0.0, 0.0, 1.0) and PV.SYNTH[profile].test >= 400
    # smoke keeps testing on its own split
    assert RUN.test_data_config(PL.plan("smoke")["sparsesync/sparse/c21"], "smoke", runs_root="/r").root == \
        "/r/data/smoke/sparse"


def test_the_test_set_enters_the_campaign_hash():
    spec = PL.plan("mini")["sparsesync/dense-crop/c21"]
    cfg = to_dict(RUN.resolve_spec(spec, "mini", runs_root="/r"))
    ident = PV.data_identity("mini", "dense-crop")
    assert RUN.campaign_hash(cfg, ident, None, None, "synthetic-test:a") != \
        RUN.campaign_hash(cfg, ident, None, None, "synthetic-test:b")
    assert RUN.spec_hash(spec, "mini") == RUN.campaign_hash(cfg, ident, None, None,
                                                        RUN.spec_test_identity(spec, "mini"))


def test_cue_metrics_by_hand():
    preds = [3, 5, 0, 7, 2, 10]
    targets = [3, 4, 2, 7, 9, 10]
    cues = [True, True, True, False, True, False]
    # cue items: (3,3) hit; (5,4) within 1; (0,2) miss; (2,9) miss -> 1/4 top-1, 2/4 within +-1
    m = E.cue_metrics(preds, targets, cues)
    # null: preds {3, 5, 0, 2} x targets {3, 4, 2, 9}, each pairing equally likely: top-1 pairs (3,3), (2,2) -> 2/16;
    # within +-1: (3,3), (3,2), (5,4), (2,3)... pred 3 ~ {3, 4, 2}, 5 ~ {4}, 0 ~ {}, 2 ~ {3, 2} -> 6/16
    assert m == {"cue_fraction": 4 / 6, "cue_n": 4, "cue_accuracy_1": 0.25, "cue_accuracy_1_tol1": 0.5,
                 "cue_null_accuracy_1": 2 / 16, "cue_null_accuracy_1_tol1": 6 / 16}
    stuck = E.cue_metrics([10] * 4, [10, 10, 11, 3], [True] * 4)  # one constant small-offset guess
    assert stuck["cue_accuracy_1"] == stuck["cue_null_accuracy_1"] == 0.5  # no better than its null
    none = E.cue_metrics([1], [1], [False])
    assert none["cue_n"] == 0 and none["cue_accuracy_1"] is None
    with pytest.raises(ValueError):
        E.cue_metrics([1, 2], [1], [True])


def test_unknown_key_and_profile():
    with pytest.raises(KeyError, match="unknown campaign key"):
        C.ensure_runs(["sparsesync/nowhere/c21"], "smoke")
    with pytest.raises(ValueError, match="unknown profile"):
        PL.plan("huge")


@pytest.mark.slow
def test_smoke_ensure_runs_trains_reuses_aliases_and_resumes(tmp_path):
    keys = ["sparsesync/dense-crop/c21", "sparsesync/dense-wide/c21"]
    alias = f"sparsesync/dense-wide/c21/depth{PR.PROFILES['smoke'].default_depth}"
    recs = C.ensure_runs(keys, "smoke", runs_root=tmp_path, progress=False)
    for k in keys:
        r = recs[k]
        assert not r.reused and r.steps == r.spec.steps
        detail = json.loads((r.run_dir / C.TEST_DETAIL).read_text())
        for f in ("accuracy_1", "accuracy_1_tol1", "accuracy_5", "loss", "n", "per_offset_class_accuracy",
                  "per_content_class_accuracy", "confusion_matrix", "cue_fraction", "cue_n", "cue_accuracy_1",
                  "cue_accuracy_1_tol1", "cue_null_accuracy_1", "items"):
            assert f in r.test and f in detail["test"], f
        assert len(r.test["per_offset_class_accuracy"]) == 21
        assert sum(map(sum, r.test["confusion_matrix"])) == r.test["n"] == len(r.test["items"])
        # dense synthetic clips: a syllable onset is almost always inside the window; the oracle is computed
        assert r.test["cue_n"] == sum(it["cue"] for it in r.test["items"])
        assert r.params["total"] >= r.params["trainable"] > 0 and r.wall_s > 0
        assert (r.run_dir / C.LOG_FILE).is_file()
    # the fine-tune was initialised from its parent's best checkpoint
    cfg = json.loads((recs[keys[1]].run_dir / runs.CONFIG_FILE).read_text())
    assert cfg["train"]["init_from"] == str(recs[keys[0]].run_dir / "checkpoints" / "best.pt")
    # each run trained on the resolved config.json of its hash folder (plus --init-from for a fine-tune)
    for k in keys:
        placed = json.loads((recs[k].run_dir.parent / runs.CONFIG_FILE).read_text())
        trained = json.loads((recs[k].run_dir / runs.CONFIG_FILE).read_text())
        assert placed["train"]["init_from"] is None and placed["train"]["run_root"] == str(recs[k].run_dir.parent)
        assert trained == placed | {"train": placed["train"] | {"init_from": trained["train"]["init_from"]}}
        assert "python -m paperlib train --config " in (recs[k].run_dir / C.LOG_FILE).read_text()

    dirs_before = sorted(p for p in (tmp_path / "campaign" / "smoke").rglob("config.json"))
    again = C.ensure_runs(keys + [alias], "smoke", runs_root=tmp_path, progress=False)
    assert all(r.reused for r in again.values())
    assert again[alias].run_dir == again[keys[1]].run_dir == recs[keys[1]].run_dir
    assert again[keys[0]].test == recs[keys[0]].test
    assert sorted(p for p in (tmp_path / "campaign" / "smoke").rglob("config.json")) == dirs_before

    # an unfinished run of the same hash (killed after its last checkpoint) is resumed in its own directory
    run_dir = recs[keys[1]].run_dir
    (run_dir / runs.RESULTS_FILE).unlink()
    (run_dir / C.TEST_DETAIL).unlink()
    res = C.ensure_runs([keys[1]], "smoke", runs_root=tmp_path, progress=False)
    assert res[keys[1]].run_dir == run_dir and not res[keys[1]].reused
    assert any(r.get("event") == "resume" for r in runs.read_metrics(run_dir, phase="event"))
    assert sorted(p for p in (tmp_path / "campaign" / "smoke").rglob("config.json")) == dirs_before

    # a user checkpoint evaluated like a run: the run's own best checkpoint gives the run's test numbers
    ev = C.evaluate_checkpoint(recs[keys[0]].run_dir / "checkpoints" / "best.pt", keys[0], "smoke",
                               runs_root=tmp_path, progress=False)
    assert ev["accuracy_1"] == recs[keys[0]].test["accuracy_1"] and ev["n"] == recs[keys[0]].test["n"]
    assert ev["items"] == recs[keys[0]].test["items"]

    # a failing run raises with the path of its log and its last lines (here: a corrupt parent checkpoint)
    (recs[keys[0]].run_dir / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"(?s)sparsesync/dense-crop/c3 failed; log: .*train\.log.*last lines"):
        C.ensure_runs(["sparsesync/dense-crop/c3"], "smoke", runs_root=tmp_path, progress=False)


def test_committed_runs_restore_and_a_restored_parent_trains_again_to_its_committed_weights(tmp_path):
    """A campaign over sittings on machines that lose runs/: the runs committed to a results folder are copied back
    (no checkpoints), count as finished, and a parent a new run fine-tunes from is trained again, to the same
    weights and test numbers (one machine, one thread)."""
    import torch

    from paperlib.paper import results as RS
    from paperlib.paper.campaign_runner import RESTORED_FILE

    keys = ["sparsesync/dense-crop/c21", "sparsesync/dense-crop/c3"]
    wide = "sparsesync/dense-wide/c21"
    trained = C.ensure_runs([keys[0], wide], "smoke", runs_root=tmp_path / "first", progress=False)
    first = trained[keys[0]]
    out = tmp_path / "results" / "smoke"
    RS.export_results("smoke", out, runs_root=tmp_path / "first", figures_root=tmp_path / "no-figures")
    fresh = tmp_path / "fresh"
    written = {w.parent.name: w for w in RS.restore_runs(out, fresh)}
    assert sorted(written) == sorted(r.run_dir.parent.name for r in trained.values())  # the same hash folders
    assert all((w / RESTORED_FILE).is_file() and not (w / runs.CHECKPOINT_DIR).exists() for w in written.values())
    assert RS.restore_runs(out, fresh) == []  # a finished run is never overwritten
    # a restored chain is finished as it is: its parent is not trained again for it
    found = C.ensure_runs([keys[0], wide], "smoke", runs_root=fresh, progress=False)
    assert all(r.reused and RESTORED_FILE in {p.name for p in r.run_dir.iterdir()} for r in found.values())
    assert found[keys[0]].test == first.test
    written = [written[first.run_dir.parent.name]]

    both = C.ensure_runs(keys, "smoke", runs_root=fresh, progress=False)
    again = both[keys[0]]
    assert not again.reused and not written[0].exists() and (again.run_dir / "checkpoints" / "best.pt").is_file()
    for f in ("accuracy_1", "accuracy_1_tol1", "confusion_matrix", "items"):
        assert again.test[f] == first.test[f], f
    # the test pass runs on the test's own threads, whose float sums may round in another order
    assert again.test["loss"] == pytest.approx(first.test["loss"], rel=1e-6)
    w0 = torch.load(first.run_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)["model"]
    w1 = torch.load(again.run_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)["model"]
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    cfg = json.loads((both[keys[1]].run_dir / runs.CONFIG_FILE).read_text())
    assert cfg["train"]["init_from"] == str(again.run_dir / "checkpoints" / "best.pt")

    # a committed run whose files name another key than the manifest does is refused, naming the file
    detail = out / "runs" / keys[0] / "0" / "test_detail.json"
    detail.write_text(json.dumps(json.loads(detail.read_text()) | {"key": keys[1]}))
    with pytest.raises(ValueError, match=r"test_detail\.json: names key 'sparsesync/dense-crop/c3'"):
        RS.restore_runs(out, tmp_path / "third")


def test_general_set_is_a_vggsound_layout_of_two_generators(tmp_path):
    from paperlib.data.datasets import DataConfig, records_for
    from paperlib.data.synthetic import SPARSE_CLASSES, load_sidecar

    root = PV.ensure_data("smoke", ["general"], runs_root=tmp_path, progress=False)["general"]
    assert root == tmp_path / "data" / "smoke" / "general"
    n_parts = sum(n for _, _, n in PV.SYNTH["smoke"].general_parts)
    rows = (root / "vggsound.csv").read_text().split()
    assert len(rows) == n_parts == len(list((root / "video").iterdir()))
    labels = {r.split(",")[2] for r in rows}
    assert "speech" in labels and labels - {"speech"} <= set(SPARSE_CLASSES)
    cfg = DataConfig(dataset="vggsound", root=str(root))
    split_ids = {s: {r.id for r in records_for(cfg, s)} for s in ("train", "valid", "test")}
    assert sum(map(len, split_ids.values())) == n_parts
    assert not (split_ids["train"] & split_ids["test"]) and not (split_ids["train"] & split_ids["valid"])
    for rec in records_for(cfg, "test"):
        assert Path(rec.path).resolve().is_file()
        sc = load_sidecar(root, rec.id)  # the oracle works on the linked sidecars
        assert sc["setting"] in ("sparse", "dense-wide")
    # a second call reuses the finished build
    mtime = (root / "general.json").stat().st_mtime_ns
    PV.ensure_data("smoke", ["general"], runs_root=tmp_path, progress=False)
    assert (root / "general.json").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_smoke_parallel_workers_respect_dependencies(tmp_path):
    keys = ["sparsesync/dense-crop/c3", "avst_dec/dense-crop/c21"]
    recs = C.ensure_runs(keys, "smoke", runs_root=tmp_path, parallel=2, progress=False)
    parent = C.ensure_runs(["sparsesync/dense-crop/c21"], "smoke", runs_root=tmp_path, progress=False)
    assert parent["sparsesync/dense-crop/c21"].reused  # trained first, as the 3-class run's parent
    child_cfg = json.loads((recs[keys[0]].run_dir / runs.CONFIG_FILE).read_text())
    assert child_cfg["train"]["init_from"] == str(parent["sparsesync/dense-crop/c21"].run_dir / "checkpoints" /
                                                  "best.pt")
    assert child_cfg["model"]["geometry"]["num_classes"] == 3 and child_cfg["train"]["init_strict"] is False
    events = runs.read_metrics(recs[keys[0]].run_dir, phase="event")
    partial = [e for e in events if e.get("event") == "init_partial"]
    assert partial and all(k.startswith("head.classifier") or "classifier" in k for k in partial[0]["kept_fresh"])
    assert all(len(r.test["per_offset_class_accuracy"]) == r.spec.num_classes for r in recs.values())


def _config_file(tmp_path: Path, key: str = "sparsesync/dense-crop/c21") -> tuple[Path, dict]:
    """A smoke run's resolved config written as a file (as the campaign writes it), on its synthetic data."""
    PV.ensure_data("smoke", ["dense-crop"], runs_root=tmp_path, progress=False)
    spec = PL.plan("smoke")[key]
    resolved = RUN.resolve_spec(spec, "smoke", runs_root=tmp_path)
    C.ensure_extractors([spec], [resolved], "smoke", tmp_path, progress=False)  # the upstream weights it loads
    cfg = to_dict(resolved)
    cfg["train"]["run_root"] = str(tmp_path / "runs")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path, cfg


def test_train_command_reads_a_resolved_config_file(tmp_path, capsys):
    path, cfg = _config_file(tmp_path)
    assert main(["train", "--config", str(path), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == cfg
    assert main(["train", "--config", str(path), "--print-config", "train.max_steps=5", "--init-from", "x.pt"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == cfg | {"train": cfg["train"] | {"max_steps": 5, "init_from": "x.pt"}}
    assert main(["train", "--config", str(path), "--preset", "smoke"]) == 2  # a resolved config takes no preset
    assert main(["train", "--config", str(tmp_path / "missing.json")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cfg | {"train": cfg["train"] | {"nope": 1}}))
    assert main(["train", "--config", str(bad)]) == 2  # unknown keys are refused
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_torchrun_trains_a_resolved_config_file(tmp_path):
    path, cfg = _config_file(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "paperlib", "train", "--config", str(path), "train.ddp_timeout_s=120"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = runs.list_runs(tmp_path / "runs")  # rank 0 alone created a run directory
    res = json.loads((run / runs.RESULTS_FILE).read_text())
    assert res["world_size"] == 2 and res["ranks_in_sync"] is True and res["steps"] == cfg["train"]["max_steps"]
    assert json.loads((run / runs.CONFIG_FILE).read_text()) == cfg | {"train": cfg["train"] | {"ddp_timeout_s": 120.0}}


@pytest.mark.slow
def test_progress_report_and_seeds_train_nothing_new(tmp_path, capsys):
    """A campaign spread over sessions: train=False returns the finished runs only and trains nothing; the progress
    report lists finished and missing runs; --seeds trains once per seed and prints the spread."""
    from paperlib.paper.reproduce import progress_report

    key = "sparsesync/dense-crop/c21"
    assert C.ensure_runs([key, "avst_dec/dense-crop/c21"], "smoke", runs_root=tmp_path, train=False) == {}
    assert not (tmp_path / "campaign").exists()  # nothing trained, nothing generated
    assert main(["campaign", "--profile", "smoke", "--runs-root", str(tmp_path), "--keys", key,
                 "--seeds", "0", "1", "--json", str(tmp_path / "seeds.json")]) == 0
    rows = json.loads((tmp_path / "seeds.json").read_text())
    assert [r["run"] for r in rows] == [key] and rows[0]["seeds"] == "0 1" and " / " in rows[0]["acc1 per seed"]
    assert len(list((tmp_path / "campaign" / "smoke").iterdir())) == 2  # one run per seed
    got = C.ensure_runs([key, "avst_dec/dense-crop/c21"], "smoke", runs_root=tmp_path, train=False)
    assert list(got) == [key] and got[key].reused
    report = progress_report("smoke", tmp_path / "report", runs_root=tmp_path)
    text = report.read_text()
    assert f"| {key} | 0 | {PL.plan('smoke')[key].steps} |" in text
    assert "| avst_dec/dense-crop/c21 | 0 | not finished |" in text and f"| {key} | 1 |" not in text
    claims = json.loads((tmp_path / "report" / "claims.json").read_text())
    judged = [c for c in claims["claims"] if not c["claim"].startswith("parameter counts")]  # no training needed
    assert claims["finished"] and judged and all(c["verdict"] == "not testable at this profile" for c in judged)
    assert len(list((tmp_path / "campaign" / "smoke").iterdir())) == 2  # the report trained nothing


def test_repeated_keys_gather_their_seeds(tmp_path, monkeypatch):
    """A profile that repeats a key under other seeds: with_repeats returns a RepeatedRecord over the finished seeds
    (train=False trains nothing), the progress report lists a row per planned seed, and measure() averages them."""
    import dataclasses

    from paperlib.paper import tables as T
    from paperlib.paper.reproduce import progress_report

    key, other = "sparsesync/dense-crop/c21", "avst_dec/dense-crop/c21"
    monkeypatch.setitem(PR.PROFILES, "smoke", dataclasses.replace(PR.PROFILES["smoke"], repeat_seeds=(1, 2)))
    monkeypatch.setattr(PL, "REPEATED_KEYS", (key,))
    assert PL.repeated_keys([key, other, "sparsesync/dense-wide/c21"], "smoke") == [key]
    assert main(["campaign", "--profile", "smoke", "--runs-root", str(tmp_path), "--keys", key,
                 "--seeds", "0", "1"]) == 0
    base = C.ensure_runs([key], "smoke", runs_root=tmp_path, train=False)
    got = C.with_repeats(base, "smoke", runs_root=tmp_path, train=False)
    rep = got[key]
    assert isinstance(rep, C.RepeatedRecord) and list(rep.by_seed) == [0, 1]  # seed 2 not trained
    assert rep.run_dir == base[key].run_dir and rep.by_seed[1].run_dir != rep.run_dir
    assert len(list((tmp_path / "campaign" / "smoke").iterdir())) == 2  # nothing trained
    accs = [r.test["accuracy_1_tol1"] for r in rep.by_seed.values()]
    m = T.measure(got, key)
    assert m.acc == pytest.approx(sum(accs) / 2) and m.seeds == pytest.approx(tuple(accs))
    text = progress_report("smoke", tmp_path / "report", runs_root=tmp_path).read_text()
    assert f"| {key} | 0 | " in text and f"| {key} | 1 | " in text and f"| {key} | 2 | not finished |" in text
    assert f"| {other} | 1 |" not in text  # not a repeated key
