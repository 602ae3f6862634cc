"""The plateau recipe (paperlib.engine.recipes) and partial initialisation inside the training engine
(paperlib.engine.train.fit), and the decoded-clip cache of the dataset (paperlib.data.datasets): wiring, what is saved,
what is loaded, and that caching changes no sample."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperlib.core import config as C
from paperlib.data.datasets import build_dataset
from paperlib.engine import config as RC
from paperlib.engine import runs
from paperlib.engine import train as T
from paperlib.model.sparsesync import build_model


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from paperlib.data.synthetic import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth-dense32-recipe")
    generate(SynthConfig(setting="dense-crop", size=32), root, clips=24, progress=False)
    return root


def _smoke(root, run_root, *overrides):
    return RC.resolve("smoke", [f"data.root={root}", f"train.run_root={run_root}", "train.progress=false",
                               "train.tensorboard=false", *overrides])


def _events(run, name):
    return [r for r in runs.read_metrics(run, "event") if r.get("event") == name]


RECIPE = ("train.recipe_init=true", "train.aux_xcorr_weight=1.0", "train.aux_match_weight=1.0")


def test_recipe_is_applied_and_the_saved_model_is_the_papers(synth_root, tmp_path):
    run = T.fit(_smoke(synth_root, tmp_path, "train.max_steps=4", "train.test=false", *RECIPE))
    (init,) = _events(run, "recipe_init")
    assert init["applied"]["time_anchored_init"] is True
    (aux,) = _events(run, "aux_losses")
    assert aux["xcorr"] == 1.0 and aux["match"] == 1.0
    train = runs.read_metrics(run, "train")
    assert train and all(math.isfinite(r["aux_loss"]) and r["aux_loss"] > 0 for r in train)
    # the checkpoint holds the paper's model (no wrapper prefix) and loads into a freshly built one
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    fresh = build_model(RC.resolve("smoke").model)
    assert set(saved) == set(fresh.state_dict())
    fresh.load_state_dict(saved)


def test_sparse_recipe_preset_fine_tunes_the_dense_recipe_model():
    """cpu-recipe-sparse loads a cpu-recipe checkpoint strictly (same model), keeps the recipe's auxiliary losses on
    (without them the measured sparse run stays at chance) and starts a fresh optimiser on VGGSound-Sparse-layout
    data."""
    dense, sparse = RC.resolve("cpu-recipe"), RC.resolve("cpu-recipe-sparse", ["train.init_from=/x/best.pt"])
    assert sparse.model == dense.model and sparse.geometry == dense.geometry
    assert sparse.data.dataset == "vggsound_sparse" and sparse.train.init_from == "/x/best.pt"
    assert sparse.train.aux_xcorr_weight > 0 and sparse.train.aux_match_weight > 0 and sparse.train.recipe_init
    assert sparse.train.init_carry_optimizer is False and sparse.train.time_budget_min == 20.0


def test_every_variant_gets_the_recipe_parts_it_has_and_the_log_says_which(synth_root, tmp_path):
    run = T.fit(_smoke(synth_root, tmp_path, "train.max_steps=2", "train.test=false", "model.variant=avst_dec",
                       *RECIPE))
    (init,) = _events(run, "recipe_init")
    applied = init["applied"]
    assert applied["time_anchored_init"] is True and applied["head"] == "avst_dec"
    assert applied["parts"] == ["time_codes", "passthrough", "identity_qk"]
    assert set(applied["not_applicable"]) == {"selector_anchors", "modality_flag"}  # each with its reason
    (aux,) = _events(run, "aux_losses")
    assert aux["xcorr"] == 1.0 and aux["match"] == 1.0  # the matching loss on the first cross-attention
    train = runs.read_metrics(run, "train")
    assert train and all(math.isfinite(r["aux_loss"]) and r["aux_loss"] > 0 for r in train)
    # no recipe at all: no events, no aux loss in the logs
    plain = T.fit(_smoke(synth_root, tmp_path, "train.max_steps=2", "train.test=false"))
    assert not _events(plain, "recipe_init") and not _events(plain, "aux_losses")
    assert all("aux_loss" not in r for r in runs.read_metrics(plain, "train"))


TINY_LR = 1e-12  # a step that leaves the weights where they were to within 1e-12 (the config check refuses lr 0)


def test_recipe_init_changes_the_fresh_model_deterministically(synth_root, tmp_path):
    def first_weights(*extra):
        run = T.fit(_smoke(synth_root, tmp_path, "train.max_steps=1", "train.test=false", f"train.base_lr={TINY_LR}",
                           *extra))
        return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]

    plain, a, b = first_weights(), first_weights("train.recipe_init=true"), first_weights("train.recipe_init=true")
    key = "head.v_selector.selectors"
    assert key in plain and not torch.equal(plain[key], a[key])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_partial_init_keeps_mismatched_and_skipped_keys_fresh(synth_root, tmp_path):
    src = T.fit(_smoke(synth_root, tmp_path / "src", "train.max_steps=2", "train.test=false"))
    ckpt = src / "checkpoints" / "last.pt"
    five = ("model.geometry.num_classes=5", "train.max_steps=1", "train.test=false",
            f"train.base_lr={TINY_LR}", f"train.init_from={ckpt}")
    with pytest.raises(ValueError, match="init_strict=false"):
        T.fit(_smoke(synth_root, tmp_path / "strict", *five, "train.init_carry_optimizer=false"))
    with pytest.raises(ValueError, match="init_carry_optimizer=false"):
        T.fit(_smoke(synth_root, tmp_path / "carry", *five, "train.init_strict=false"))
    with pytest.raises(ValueError, match="matches no key"):
        T.fit(_smoke(synth_root, tmp_path / "typo", *five, "train.init_strict=false",
                     "train.init_carry_optimizer=false", "train.init_skip=[visaul_backbone.]"))
    run = T.fit(_smoke(synth_root, tmp_path / "ok", *five, "train.init_strict=false",
                       "train.init_carry_optimizer=false", "train.init_skip=[visual_backbone.]"))
    (ev,) = _events(run, "init_partial")
    kept = set(ev["kept_fresh"])
    assert any(k.startswith("visual_backbone.") for k in kept)
    assert any(k.startswith("head.") for k in kept)  # the 5-class classifier
    assert not any(k.startswith("audio_backbone.") for k in kept)
    got = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    source = torch.load(ckpt, weights_only=True)["model"]
    cfg = _smoke(synth_root, tmp_path, *five)
    T.seed_everything(cfg.train.seed)
    fresh = dict(build_model(cfg.model).named_parameters())
    for name, param in fresh.items():  # parameters only: BatchNorm statistics move in the one training step
        want = param.detach() if name in kept else source[name]
        # the one step at TINY_LR moves a weight by at most ~1e-12 (a zero bias included)
        assert torch.allclose(got[name], want, rtol=0, atol=1e-9), name


def test_cached_decoding_gives_identical_items(synth_root):
    run = RC.resolve("smoke", [f"data.root={synth_root}"])
    cfg, geo = run.data, run.geometry
    cached = C.merge(cfg, {"cache_decoded": 1000})
    for split in ("train", "test"):
        plain_ds, cache_ds = build_dataset(cfg, geo, split, seed=3), build_dataset(cached, geo, split, seed=3)
        for epoch in (0, 1):
            plain_ds.set_epoch(epoch)
            cache_ds.set_epoch(epoch)
            for i in range(min(len(plain_ds), 6)):
                a, b = plain_ds[i], cache_ds[i]
                assert a["target"] == b["target"] and a["v_start_sec"] == b["v_start_sec"]
                assert torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], b["audio"]), (split, i)
        assert len(cache_ds._decoded) > 0 and not plain_ds._decoded
    small = build_dataset(C.merge(cfg, {"cache_decoded": 2}), geo, "train", seed=3)
    for i in range(len(small)):
        small[i]
    assert len(small._decoded) == 2  # the bound holds


def test_decoded_clips_shared_on_disk_across_datasets(synth_root, tmp_path, monkeypatch, caplog):
    from paperlib.data import datasets as D

    run = RC.resolve("smoke", [f"data.root={synth_root}"])
    cfg, geo = run.data, run.geometry
    disk = C.merge(cfg, {"decoded_cache_dir": str(tmp_path / "decoded")})
    plain_ds, first = build_dataset(cfg, geo, "train", seed=5), build_dataset(disk, geo, "train", seed=5)
    want = [plain_ds[i] for i in range(4)]
    for i in range(4):
        assert torch.equal(first[i]["video"], want[i]["video"]) and torch.equal(first[i]["audio"], want[i]["audio"])
    files = sorted((tmp_path / "decoded").glob("*.npz"))
    assert files and not list((tmp_path / "decoded").glob(".*"))  # complete files only, no temporaries left

    # another dataset (another run, another process) reads the files instead of decoding
    def no_decode(*a, **k):
        raise AssertionError("decoded again although the clip is cached on disk")

    monkeypatch.setattr(D, "read_video", no_decode)
    second = build_dataset(disk, geo, "train", seed=5)
    for i in range(4):
        assert torch.equal(second[i]["video"], want[i]["video"]) and torch.equal(second[i]["audio"], want[i]["audio"])
    monkeypatch.undo()

    # a damaged cache file is decoded again (with a warning) and replaced
    files[0].write_bytes(b"not an npz")
    third = build_dataset(disk, geo, "train", seed=5)
    with caplog.at_level("WARNING", logger="paperlib.data.datasets"):
        got = [third[i] for i in range(4)]
    assert all(torch.equal(g["video"], w["video"]) for g, w in zip(got, want))
    assert "unreadable" in caplog.text
    assert np.load(files[0])["video"].dtype == np.uint8
