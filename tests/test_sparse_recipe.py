"""The sparse step of the plateau recipe (paperlib.paper.sparse_recipe): data sets, cue-item nulls, swapped-modality
probes, and its command ``python -m paperlib sparse-recipe``."""

from __future__ import annotations

import json

import pytest
import torch

from paperlib.commands import sparse_recipe as command
from paperlib.paper import sparse_recipe as SR


def test_sparse_recipe_summary_nulls_by_hand():
    # 4 cue items, 2 without; a model stuck on class 10 is no better than its null anywhere
    items = [{"target": t, "pred": 10, "cue": c} for t, c in ((10, True), (10, True), (11, True), (3, True),
                                                                (5, False), (10, False))]
    s = SR.item_summary(items)
    assert s["n"] == 6 and s["cue_fraction"] == pytest.approx(4 / 6)
    assert s["cue"]["n"] == 4 and s["no_cue"]["n"] == 2 and s["all"]["n"] == 6
    assert s["cue"]["top1"] == s["cue"]["null_top1"] == 0.5 and s["cue"]["z_top1"] == pytest.approx(0.0)
    assert s["cue"]["tol1"] == s["cue"]["null_tol1"] == 0.75
    # a perfect model on varied targets: accuracy 1, null 1/k for k distinct equally frequent targets
    perfect = SR.item_summary([{"target": t, "pred": t, "cue": True} for t in (0, 5, 10, 15)])
    assert perfect["cue"]["top1"] == 1.0 and perfect["cue"]["null_top1"] == 0.25 and perfect["cue"]["z_top1"] > 3
    assert perfect["no_cue"]["n"] == 0 and perfect["no_cue"]["top1"] is None
    assert SR.row_text("x", perfect).startswith("x: all top-1 1.000 (null 0.250); cue items 4/4")


def test_sparse_recipe_swap_probe_takes_the_next_clips_modality():
    class AudioOnly(torch.nn.Module):
        def forward(self, video, audio):
            return audio.flatten(1)[:, :3] + 0 * video.flatten(1)[:, :1]

    v, a = torch.randn(4, 2, 3), torch.randn(4, 5)
    assert torch.equal(SR.SwapModality(AudioOnly(), "audio")(v, a), AudioOnly()(v, a.roll(1, 0)))
    assert torch.equal(SR.SwapModality(AudioOnly(), "video")(v, a), AudioOnly()(v, a))
    with pytest.raises(ValueError, match="modality"):
        SR.SwapModality(AudioOnly(), "text")


def test_sparse_recipe_data_eval_and_command(tmp_path):
    from paperlib.data import synthetic as syn
    from paperlib.engine import config as RC
    from paperlib.model.checkpoints import save_checkpoint
    from paperlib.model.sparsesync import build_model

    roots = SR.make_data(tmp_path, smoke=True, progress=False)
    assert set(roots) == {"dense-crop", "sparse-train", "sparse-test"}
    train_ids = (roots["sparse-train"] / "vggsound_sparse_train.txt").read_text().split()
    counts = [len(syn.load_sidecar(roots["sparse-train"], i)["event_onsets_sec"]) for i in train_ids]
    assert counts and all(3 <= k <= 5 for k in counts)  # DENSE_EVENT_PROBS
    test_ids = (roots["sparse-test"] / "vggsound_sparse_test.txt").read_text().split()
    assert len(test_ids) == 8  # every clip of the test set

    cfg = RC.resolve("smoke")
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    res = SR.evaluate(model, cfg.model, roots["sparse-test"], passes=2, probes=True)
    assert set(res) == {"model", "swapped_audio", "swapped_video", "items"}
    s = res["model"]
    assert s["n"] == 16 == len(res["items"]) and s["cue"]["n"] + s["no_cue"]["n"] == 16
    assert s["cue"]["n"] == sum(it["cue"] for it in res["items"])
    for key in ("model", "swapped_audio", "swapped_video"):
        assert 0.0 <= res[key]["all"]["null_top1"] <= 1.0 and res[key]["n"] == 16

    ck = save_checkpoint(tmp_path / "m.pt", model, cfg.model)
    out = tmp_path / "bench"
    assert command.main(["eval", str(ck), "--root", str(roots["sparse-test"]), "--name", "untrained", "--out",
                         str(out), "--passes", "1"]) == 0
    row = json.loads((out / "table.jsonl").read_text().splitlines()[-1])
    assert row["name"] == "untrained" and row["model"]["n"] == 8 and "swapped_audio" not in row
    assert "items" not in row and row["env"]["torch"] == torch.__version__
    assert len(json.loads((out / "untrained.items.json").read_text())) == 8
    assert command.main(["eval", str(tmp_path / "nope.pt"), "--root", str(roots["sparse-test"]), "--name", "x",
                         "--out", str(out)]) == 2
    assert command.main(["eval", str(ck), "--root", str(roots["dense-crop"]), "--name", "x", "--out", str(out)]) == 2


def test_dispatcher_knows_the_command(capsys):
    from paperlib.commands import main

    with pytest.raises(SystemExit) as exit_:
        main(["sparse-recipe", "--help"])
    assert exit_.value.code == 0 and "eval" in capsys.readouterr().out
