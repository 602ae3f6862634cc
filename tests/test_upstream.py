"""Upstream pre-training of the feature extractors (paperlib.engine.upstream): cached by hash, read back through the
same path as the paper's public weight files (model.visual_weights / audio_weights), and loading them changes what
every variant computes."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from paperlib.core.geometry import Geometry
from paperlib.engine.upstream import (AUDIO_CLASSES, MIN_SHIFT_SEC, VIDEO_CLASSES, CorrespondenceModel,
                                      UpstreamConfig, _partners, ensure_upstream, labels, majority_null,
                                      sample_pair, held_out_pairs, upstream_paths)
from paperlib.model.backbones import BACKBONES
from paperlib.model.sparsesync import VARIANTS, ModelConfig, build_model

TINY = UpstreamConfig(size=32, crop=24, clip_sec=2.0, clips_per_setting=2, test_clips_per_setting=2, steps=4,
                      batch_size=4)
TINY_CONTENT = dataclasses.replace(TINY, task="content", test_clips_per_setting=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("upstream")
    return ensure_upstream(TINY, root, cache=root / "clips", progress=False)


@pytest.fixture(scope="module")
def tiny_content(tmp_path_factory):
    root = tmp_path_factory.mktemp("upstream-content")
    return ensure_upstream(TINY_CONTENT, root, cache=root / "clips", progress=False)


def test_trained_once_and_cached_by_hash(tiny):
    report = json.loads(tiny.report.read_text())
    assert report["hash"] == TINY.digest() and report["steps"] == 4 and report["task"] == "correspondence"
    t = report["test"]["correspondence"]
    # per test window: the aligned pair and, by turns, a shifted or an other-clip pair (2 test clips per setting)
    assert t["n"] == 3 * 2 * TINY.windows_per_test_clip * 2
    assert {k: v["n"] for k, v in t["by_kind"].items()} == {"aligned": 12, "shifted": 6, "other-clip": 6}
    assert t["null"] == 0.5 and 0.0 <= t["accuracy"] <= 1.0
    before = {p: p.stat().st_mtime_ns for p in (tiny.visual, tiny.audio, tiny.report)}
    again = ensure_upstream(TINY, tiny.report.parent, progress=False)
    assert again == tiny and {p: p.stat().st_mtime_ns for p in before} == before
    # another config, other files: the names carry the hash (and so do the campaign hashes of runs loading them)
    other = upstream_paths(UpstreamConfig(size=32, crop=24, clip_sec=3.0), tiny.report.parent)
    assert other.visual.name != tiny.visual.name and TINY.digest() in tiny.visual.name


def test_trained_with_the_threads_asked_for_and_the_process_setting_restored(tmp_path):
    before = torch.get_num_threads()
    cfg = dataclasses.replace(TINY, steps=1, seed=1)
    files = ensure_upstream(cfg, tmp_path, cache=tmp_path / "clips", progress=False, threads=1)
    assert json.loads(files.report.read_text())["torch_threads"] == 1
    assert torch.get_num_threads() == before


def test_the_content_task_reports_each_backbone_against_its_null(tiny_content):
    report = json.loads(tiny_content.report.read_text())
    assert report["task"] == "content" and report["hash"] != TINY.digest()
    for which, classes in (("video", VIDEO_CLASSES), ("audio", AUDIO_CLASSES)):
        t = report["test"][which]
        assert t["n"] == 3 * 1 * TINY.windows_per_test_clip  # 3 settings x 1 clip x windows
        assert 0.0 <= t["accuracy"] <= 1.0 and 0.0 < t["null"] <= 1.0
        assert report["classes"][which] == list(classes)


def _clips(per_setting: int, seconds: float = 10.0):
    frames, sr = int(seconds * 25), 16000
    return [{"frames": np.zeros((frames, 4, 4, 3), np.uint8), "audio": np.zeros(int(seconds * sr), np.float32),
             "setting": setting} for setting in ("dense-crop", "dense-wide", "sparse") for _ in range(per_setting)]


def test_correspondence_pairs_are_half_aligned_and_their_negatives_hard():
    """Negatives are the same clip's audio at least MIN_SHIFT_SEC away or another clip of the same setting at the
    same time: content alone cannot tell them from the aligned pairs."""
    geo = Geometry(crop=4, clip_sec=5.0)
    clips = _clips(3)
    partners = _partners(clips)
    assert partners[0] == [1, 2] and partners[4] == [3, 5]
    rng = np.random.default_rng(0)
    pairs = [sample_pair(clips, partners, rng, geo) for _ in range(2000)]
    kinds = {k: sum(p.kind == k for p in pairs) / len(pairs) for k in ("aligned", "shifted", "other-clip")}
    assert kinds["aligned"] == pytest.approx(0.5, abs=0.04)
    assert kinds["shifted"] == pytest.approx(0.25, abs=0.04) and kinds["other-clip"] == pytest.approx(0.25, abs=0.04)
    for p in pairs:
        assert p.label == int(p.kind == "aligned")
        assert 0 <= p.video_start <= 125 and 0 <= p.audio_start <= 125  # 10-s clips, 5-s windows
        if p.kind == "aligned":
            assert (p.audio_clip, p.audio_start) == (p.video_clip, p.video_start)
        elif p.kind == "shifted":
            assert p.audio_clip == p.video_clip and abs(p.audio_start - p.video_start) >= MIN_SHIFT_SEC * 25
        else:
            assert p.audio_clip != p.video_clip and p.audio_start == p.video_start
            assert clips[p.audio_clip]["setting"] == clips[p.video_clip]["setting"]
    # alone in its setting: shifted negatives only; too short to shift as well: a clear error
    alone = _clips(1)
    assert {sample_pair(alone, _partners(alone), rng, geo).kind for _ in range(200)} == {"aligned", "shifted"}
    short = _clips(1, seconds=5.5)
    with pytest.raises(ValueError, match="too short to shift"):
        for _ in range(200):
            sample_pair(short, _partners(short), rng, geo)
    fixed = held_out_pairs(clips, 2, geo)
    assert fixed == held_out_pairs(clips, 2, geo) and len(fixed) == 9 * 2 * 2
    assert sum(p.label for p in fixed) == len(fixed) // 2
    assert all(abs(p.audio_start - p.video_start) >= 25 for p in fixed if p.kind == "shifted")
    assert {p.kind for p in held_out_pairs(alone, 1, geo)} == {"aligned", "shifted"}


def test_the_correspondence_head_compares_the_streams_step_by_step():
    geo = Geometry.for_classes(21, crop=24, clip_sec=2.0)
    vis, aud = BACKBONES["small"]
    torch.manual_seed(0)
    model = CorrespondenceModel(vis(), aud()).eval()
    video = torch.randn(3, geo.frames, 3, 24, 24)
    spec = torch.randn(3, 1, *geo.spec_shape)
    with torch.no_grad():
        logits = model(video, spec)
        swapped = model(video, spec.flip(0))
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    assert not torch.allclose(logits, swapped)  # the audio each video is paired with matters


def test_config_problems_are_named():
    with pytest.raises(ValueError, match="'captions' is not one of"):
        UpstreamConfig(task="captions").validate()
    with pytest.raises(ValueError, match="batch_size >= 2"):
        UpstreamConfig(batch_size=1).validate()


def test_labels_and_null():
    assert labels("dense-crop", {}) == (0, 0) and labels("dense-wide", {}) == (1, 0)
    assert labels("sparse", {"label": "hammer"}) == (VIDEO_CLASSES.index("hammer"), AUDIO_CLASSES.index("hammer"))
    assert majority_null(torch.tensor([0, 0, 1, 2])) == 0.5


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_load_into_every_variant_and_change_its_outputs(tiny, variant):
    """The AVST_dec baseline trains its audio extractor from scratch (paper), so it gets the visual file only."""
    geometry = Geometry.for_classes(21, crop=TINY.crop, clip_sec=TINY.clip_sec)
    base = dict(geometry=geometry, variant=variant, backbone="small", d_model=32, n_head=2, depth=1, n_selectors=4)
    audio = None if variant == "avst_dec" else str(tiny.audio)
    torch.manual_seed(0)
    plain = build_model(ModelConfig(**base)).eval()
    torch.manual_seed(0)
    loaded = build_model(ModelConfig(**base, visual_weights=str(tiny.visual), audio_weights=audio)).eval()
    files = {"visual_backbone": torch.load(tiny.visual)["model"], "audio_backbone": torch.load(tiny.audio)["model"]}
    for name, sd in files.items():
        own = getattr(loaded, name).state_dict()
        same = all(torch.equal(own[k], v) for k, v in sd.items())
        assert same == (name == "visual_backbone" or audio is not None), name
    # the part after the backbones is the same fresh init in both
    assert all(torch.equal(a, b) for a, b in zip(plain.head.state_dict().values(), loaded.head.state_dict().values()))
    video = torch.randn(2, geometry.frames, 3, TINY.crop, TINY.crop)
    spec = torch.randn(2, 1, *geometry.spec_shape)
    with torch.no_grad():
        assert not torch.allclose(plain(video, spec), loaded(video, spec))


def test_campaign_runs_start_every_variant_from_the_upstream_weights(tmp_path):
    """At the synthetic profiles each chain's first run loads the upstream training's files through the campaign
    (the same model fields as the paper profile's public weights); the AVST_dec baseline keeps a random audio
    extractor; the "not pre-trained" chain starts from random extractors."""
    from paperlib.paper.campaign import ensure_extractors
    from paperlib.paper.plan import plan
    from paperlib.paper.run_config import resolve_spec

    specs = plan("smoke")
    keys = [f"{v}/dense-crop/c21" for v in VARIANTS] + ["sparsesync/dense-crop/c21/no-pretrained-extractors"]
    configs = [resolve_spec(specs[k], "smoke", runs_root=tmp_path) for k in keys]
    (report,) = ensure_extractors([specs[k] for k in keys], configs, "smoke", tmp_path, progress=False)
    assert report.is_file() and configs[0].model.visual_weights.startswith(str(tmp_path / "upstream"))
    for key, cfg in zip(keys, configs):
        torch.manual_seed(0)
        loaded = build_model(cfg.model).eval()
        torch.manual_seed(0)
        plain = build_model(dataclasses.replace(cfg.model, visual_weights=None, audio_weights=None)).eval()
        for name, field in (("visual_backbone", "visual_weights"), ("audio_backbone", "audio_weights")):
            path = getattr(cfg.model, field)
            expected = "no-pretrained" not in key and not (key.startswith("avst_dec") and name == "audio_backbone")
            assert (path is not None) == expected, (key, name)
            if path:
                file = torch.load(path)["model"]
                own = getattr(loaded, name).state_dict()
                assert all(torch.equal(own[k], v) for k, v in file.items()), (key, name)
        geometry = cfg.model.geometry
        video = torch.randn(1, geometry.frames, 3, geometry.crop, geometry.crop)
        spec = torch.randn(1, 1, *geometry.spec_shape)
        with torch.no_grad():
            changed = not torch.allclose(plain(video, spec), loaded(video, spec))
        assert changed == ("no-pretrained" not in key), key


def test_a_results_report_lists_the_upstream_trainings_with_their_accuracy(tiny, tiny_content, tmp_path):
    from paperlib.paper.results import upstream_rows

    (tmp_path / "upstream").mkdir()
    names = []
    for w in (tiny, tiny_content):
        (tmp_path / "upstream" / w.report.name).write_text(w.report.read_text())
        names.append(f"upstream/{w.report.name}")
    rows = upstream_rows(tmp_path, names)
    t = json.loads(tiny.report.read_text())["test"]["correspondence"]
    assert rows[2].startswith(f"| `{names[0]}` | correspondence | 2 | 4 | ")
    assert f"{100 * t['accuracy']:.1f} / {100 * t['null']:.1f} (aligned " in rows[2]
    t = json.loads(tiny_content.report.read_text())["test"]
    assert rows[3].startswith(f"| `{names[1]}` | content | 2 | 4 | ")
    assert f"visual {100 * t['video']['accuracy']:.1f} / {100 * t['video']['null']:.1f}" in rows[3]
