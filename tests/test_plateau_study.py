"""The plateau study's bookkeeping (paperlib.paper.plateau_study): its runs as campaign specs, the per-arm summary,
the upstream training each run loaded, and the rendered STUDY.md."""

from __future__ import annotations

import json

from paperlib.paper import plateau_study as ps


def _row(arm: str, seed: int, left: int | None, upstream_file: str | None = None) -> dict:
    upstream = not arm.endswith("/random-extractors")
    return {"arm": arm, "key": f"x/{arm}", "variant": arm.split("/")[0], "upstream": upstream, "depth": None,
            "clip_sec": None, "seed": seed, "left_chance_at_step": left,
            "stop_reason": "left the plateau" if left else "cap", "steps": (left + 200) if left else 4000,
            "cap": 4000, "wall_s": 1.0, "s_per_step": 0.5, "test_accuracy_1": 0.2 if left else 0.05,
            "test_accuracy_pm1": 0.4, "test_null": 0.07, "n": 400, "run": f"run-{arm}-{seed}",
            "upstream_file": upstream_file if upstream else None,
            "upstream_task": "correspondence" if upstream else None, "upstream_clip_sec": 5.0 if upstream else None,
            "upstream_test": {"correspondence": {"accuracy": 0.6875, "null": 0.5, "n": 192}} if upstream else None}


def test_each_arm_is_a_hidden_campaign_base_run_capped_by_the_study():
    specs = ps.study_specs("full", cap=1234)
    assert set(specs) == {a.key for a in ps.ARMS} and len(ps.ARMS) == 14
    for arm in ps.ARMS:
        s = specs[arm.key]
        assert (s.variant, s.setting, s.num_classes, s.steps, s.hidden) == (arm.variant, "dense-crop", arm.classes,
                                                                            1234, True)
        assert s.pretrained_extractors is arm.upstream
    assert specs["sparsesync/dense-crop/c21/plateau/len2/random-extractors"].clip_sec == 2.0
    # the 2-s input also on the 3-class grid its campaign chain trains on
    c3 = specs["sparsesync/dense-crop/c3/plateau/len2"]
    assert (c3.clip_sec, c3.num_classes, c3.pretrained_extractors) == (2.0, 3, True)
    # names as --arms spells them: one per arm, the grid before the extractors
    names = [a.name for a in ps.ARMS]
    assert len(set(names)) == len(names)
    assert "sparsesync/len2/c3/random-extractors" in names and "sparsesync/depth6" in names
    assert specs["sparsesync/dense-crop/c21/plateau/depth6"].depth == 6


def test_summary_takes_the_median_over_the_seeds_that_left_and_counts_the_rest():
    rows = [_row("sparsesync", 0, 570), _row("sparsesync", 1, 700), _row("sparsesync", 2, None),
            _row("transformer/random-extractors", 0, None)]
    by_arm = {s["arm"]: s for s in ps.summary(rows)}
    assert by_arm["sparsesync"]["median_left_at"] == 635 and by_arm["sparsesync"]["never_left"] == 1
    assert by_arm["sparsesync"]["left_at"] == [570, 700, None] and by_arm["sparsesync"]["seeds"] == [0, 1, 2]
    assert by_arm["transformer/random-extractors"]["median_left_at"] is None
    assert by_arm["transformer/random-extractors"]["upstream"] is False


def test_a_run_names_the_upstream_training_it_loaded(tmp_path):
    report = {"task": "correspondence", "config": {"clip_sec": 5.0},
              "test": {"correspondence": {"accuracy": 0.6875, "null": 0.5, "n": 192, "by_kind": {}}}}
    (tmp_path / "upstream-abc.json").write_text(json.dumps(report))
    got = ps._upstream_used({"model": {"visual_weights": str(tmp_path / "upstream-abc-visual.pt")}})
    assert got == {"upstream_file": "upstream-abc", "upstream_task": "correspondence", "upstream_clip_sec": 5.0,
                   "upstream_test": {"correspondence": {"accuracy": 0.6875, "null": 0.5, "n": 192}}}
    assert ps._upstream_used({"model": {"visual_weights": None}})["upstream_file"] is None
    # weights whose report is gone: named, with no results
    gone = ps._upstream_used({"model": {"visual_weights": str(tmp_path / "upstream-zzz-visual.pt")}})
    assert gone == {"upstream_file": "upstream-zzz", "upstream_task": None, "upstream_clip_sec": None,
                    "upstream_test": None}


def test_the_rendered_study_lists_the_upstream_weights_and_every_run(tmp_path):
    rows = [_row("sparsesync", 0, 570, "upstream-abc"), _row("sparsesync/random-extractors", 0, 670),
            _row("transformer/random-extractors", 0, None)]
    text = ps.render(rows, "full", 4000, 200)
    assert ("Upstream weights `upstream-abc` (5-s windows, correspondence task: correspondence 68.8 % on 192 "
            "held-out items against a null of 50.0 %") in text
    assert "| sparsesync | upstream | 1 | 570 | 570 | 0 |" in text
    assert "| sparsesync | random | 1 | 670 | 670 | 0 |" in text
    assert "| transformer | random | 1 | - | - | 1 |" in text
    assert "| transformer/random-extractors | 0 | - | cap | 4000 |" in text
    out = ps.write_study(rows, tmp_path, "full")
    saved = json.loads((out / "study.json").read_text())
    assert saved["rows"] == rows and (out / "STUDY.md").read_text() == text
