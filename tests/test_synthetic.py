"""Tests of paperlib.data.synthetic: ground truth against decoded media, layouts, determinism, resume, oracle."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from paperlib.core.geometry import Geometry
from paperlib.commands import synth as synth_command
from paperlib.data import synthetic as syn
from paperlib.data.synthetic import signals
from paperlib.core.media import read_audio, read_video

SR, FPS = 16000, 25


@pytest.fixture(scope="module")
def sparse_root(tmp_path_factory):
    """Eight sparse clips at 48 px, one per event class, each with 3 events."""
    root = tmp_path_factory.mktemp("sparse")
    cfg = syn.SynthConfig(setting="sparse", size=48, seed=3, event_count_probs=(0.0, 0.0, 0.0, 1.0))
    syn.generate(cfg, root, clips=len(syn.SPARSE_CLASSES), progress=False)
    return root, cfg


def _onset_ms(x: np.ndarray, t_sec: float) -> float:
    """First sample near ``t_sec`` whose magnitude exceeds a quarter of the local peak, relative to ``t_sec`` (ms)."""
    i = int(round(t_sec * SR))
    lo = max(0, i - int(0.03 * SR))
    seg = np.abs(x[lo:i + int(0.05 * SR)])
    first = np.flatnonzero(seg > 0.25 * seg.max())[0] + lo
    return (first - i) / SR * 1000.0


def test_sparse_event_onsets_match_decoded_audio(sparse_root):
    root, cfg = sparse_root
    checked = 0
    for i in range(len(syn.SPARSE_CLASSES)):
        cid = syn.clip_id(cfg, i)
        sc = syn.load_sidecar(root, cid)
        assert sc["label"] == syn.SPARSE_CLASSES[i] and len(sc["event_onsets_sec"]) == 3
        x = read_audio(syn.video_path(root, cid))
        off = np.asarray(sc["offscreen_onsets_sec"])
        for te in sc["event_onsets_sec"]:
            if te > 9.95 or (len(off) and np.abs(off - te).min() < 0.1):
                continue  # truncated at the end, or masked by an off-screen sound
            assert abs(_onset_ms(x, te)) < 3.0, (cid, te)
            # silence-ish before, a loud event after
            i0 = int(round(te * SR))
            pre = np.sqrt(np.mean(x[max(0, i0 - 800):i0 - 80] ** 2))
            post = np.abs(x[i0:i0 + 400]).max()
            assert post > 6 * pre, (cid, te, pre, post)
            checked += 1
    assert checked >= 15


def _changed(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) bool: pixels whose colour changed by more than 25/255 in some channel since the previous frame
    (channel-wise, because a coloured object may have the luma of its background); row 0 is all False."""
    f = frames.astype(np.int16)
    d = np.zeros(frames.shape[:3], bool)
    d[1:] = np.abs(f[1:] - f[:-1]).max(-1) > 25
    return d


def test_sparse_visual_motion_at_events_inside_source_box(sparse_root):
    root, cfg = sparse_root
    S = cfg.size
    for i in range(len(syn.SPARSE_CLASSES)):
        cid = syn.clip_id(cfg, i)
        sc = syn.load_sidecar(root, cid)
        frames = read_video(syn.video_path(root, cid))
        assert frames.shape == (250, S, S, 3)
        changed = _changed(frames)
        boxes = np.asarray(sc["source_boxes"])
        assert boxes.shape == (250, 4)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        assert 0.005 < area.mean() / S ** 2 < 0.07, (cid, area.mean() / S ** 2)  # a small object: <= ~5% of the frame
        inside = np.zeros(len(frames))  # share of changed pixels inside the box, and outside it
        outside = np.zeros(len(frames))
        for t, (x0, y0, x1, y1) in enumerate(boxes):
            m = np.zeros((S, S), bool)
            m[y0:y1, x0:x1] = True
            inside[t] = changed[t][m].mean() if m.any() else 0.0
            outside[t] = changed[t][~m].mean()
        tf = np.arange(len(frames)) / FPS
        far = np.abs(tf[:, None] - np.asarray(sc["event_onsets_sec"])[None]).min(1) > 0.7
        # idle between actions (a distractor may pass through the box now and then; the uncompressed 'crack' source
        # itself has ~2.4% of its box changing between events at 48 px, i.e. one pixel of its crack pattern)
        assert np.median(inside[far]) < 0.04, (sc["label"], np.median(inside[far]))
        for te in sc["event_onsets_sec"]:
            win = slice(max(1, int(round(te * FPS)) - 3), int(round(te * FPS)) + 4)  # +-0.12 s around the contact
            # at its event the object moves, and its box changes far more than the rest of the frame
            assert inside[win].max() > 0.05, (sc["label"], te, inside[win].max())
            assert inside[win].max() > 3 * outside[win].mean(), (sc["label"], te, inside[win].max())


def _envelope_lag(frames: np.ndarray, audio: np.ndarray, boxes: np.ndarray) -> tuple[int, float]:
    """Cross-correlate mouth darkness (inside the source box) with audio RMS per frame: (best lag in frames, corr)."""
    T = len(frames)
    g = frames.astype(np.float32).mean(-1)
    dark = np.array([-g[t, y0:y1, x0:x1].mean() for t, (x0, y0, x1, y1) in enumerate(boxes)])
    padded = np.pad(audio[:T * 640 - 320], (320, 0))
    rms = np.sqrt((padded.reshape(T, 640) ** 2).mean(1))  # (T,) over [t/fps - 20 ms, t/fps + 20 ms): centred on frame t
    a = (dark - dark.mean()) / dark.std()
    b = (rms - rms.mean()) / rms.std()
    lags = range(-10, 11)
    corr = [np.mean(a[max(0, k):T + min(0, k)] * b[max(0, -k):T - max(0, k)]) for k in lags]
    k = int(np.argmax(corr))
    return list(lags)[k], float(corr[k])


@pytest.mark.parametrize("setting,size,min_corr", [("dense-crop", 32, 0.5), ("dense-wide", 64, 0.2)])
def test_dense_mouth_follows_decoded_audio(tmp_path, setting, size, min_corr):
    cfg = syn.SynthConfig(setting=setting, size=size, seed=5, clips_per_video=1)
    cid = syn.write_clip(cfg, tmp_path, 0)
    sc = syn.load_sidecar(tmp_path, cid)
    path = syn.video_path(tmp_path, cid)
    frames, audio = read_video(path), read_audio(path)
    lag, corr = _envelope_lag(frames, audio, np.asarray(sc["source_boxes"]))
    assert lag == 0 and corr > min_corr, (lag, corr)
    # the sidecar's syllable onsets are where the decoded audio starts to rise
    on = np.asarray(sc["event_onsets_sec"])
    assert 20 < len(on) < 70  # 3-6 syllables/s, some skipped, pauses
    env = np.sqrt(np.convolve(audio ** 2, np.ones(160) / 160, "same"))
    before = np.array([env[int(t * SR) - 240] for t in on if 0.05 < t < 9.9])
    after = np.array([env[int(t * SR) + 800] for t in on if 0.05 < t < 9.9])
    assert np.median(after / before) > 3


def test_layouts_dense(tmp_path):
    cfg = syn.SynthConfig(setting="dense-crop", size=32, seed=1, clips_per_video=2)
    syn.generate(cfg, tmp_path, clips=6, progress=False)
    lists = {s: (tmp_path / f"lrs3_{s}.txt").read_text().split() for s in ("train", "valid", "test")}
    all_ids = sorted(sum(lists.values(), []))
    assert all_ids == sorted(syn.clip_id(cfg, i) for i in range(6))
    for cid in all_ids:
        assert cid.startswith("pretrain/syn") and cid.count("/") == 2 and not cid.endswith(".mp4")
        assert (tmp_path / f"{cid}.mp4").is_file()
        assert syn.load_sidecar(tmp_path, cid)["id"] == cid
    videos = {s: {i.split("/")[1] for i in ids} for s, ids in lists.items()}
    assert not (videos["train"] & videos["test"]) and not (videos["train"] & videos["valid"])  # split by talker
    man = json.loads((tmp_path / "synth.json").read_text())
    assert man["config"]["setting"] == "dense-crop" and man["clips"] == 6 and "av" in man["versions"]


def test_layouts_sparse(sparse_root):
    root, cfg = sparse_root
    with open(root / "vggsound_sparse.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == len(syn.SPARSE_CLASSES) and all(len(r) == 4 for r in rows)
    for ytid, start, label, split in rows:
        assert split in ("train", "test") and label in syn.SPARSE_CLASSES
        cid = f"{ytid}_{int(start) * 1000}_{(int(start) + 10) * 1000}"
        assert (root / "video" / f"{cid}.mp4").is_file()
        assert syn.load_sidecar(root, cid)["label"] == label
    lines = (root / "picked_sparse_classes.csv").read_text().splitlines()
    assert lines[0] == "class\tis_sparse"
    assert sorted(ln.split("\t")[0] for ln in lines[1:]) == sorted(syn.SPARSE_CLASSES)
    assert all(ln.split("\t")[1] == "y" for ln in lines[1:])
    test_ids = set((root / "vggsound_sparse_test.txt").read_text().split())
    assert test_ids == {f"{r[0]}_{int(r[1]) * 1000}_{(int(r[1]) + 10) * 1000}" for r in rows if r[3] == "test"}


def test_layouts_load_through_dataset_adapters(tmp_path, sparse_root):
    data = pytest.importorskip("paperlib.data.datasets")
    if not hasattr(data, "records_for"):
        pytest.skip("paperlib.data.datasets.records_for is not available")
    root, cfg = sparse_root
    recs = {s: data.records_for(data.DataConfig(dataset="vggsound_sparse", root=str(root)), s)
            for s in ("train", "valid", "test")}
    got = sorted(r.id for rs in recs.values() for r in rs)
    assert got == sorted(syn.clip_id(cfg, i) for i in range(len(syn.SPARSE_CLASSES)))
    classes = sorted(syn.SPARSE_CLASSES)
    for r in sum(recs.values(), []):
        assert classes[r.label] == syn.load_sidecar(root, r.id)["label"]
    dcfg = syn.SynthConfig(setting="dense-wide", size=32, seed=2, clips_per_video=1)
    syn.generate(dcfg, tmp_path, clips=3, progress=False)
    lcfg = data.DataConfig(dataset="lrs3", root=str(tmp_path))
    lrs = {s: data.records_for(lcfg, s) for s in ("train", "valid", "test")}
    assert sorted(r.id for rs in lrs.values() for r in rs) == sorted(syn.clip_id(dcfg, i) for i in range(3))
    assert all(len(rs) == 1 for rs in lrs.values())
    if hasattr(data, "build_dataset"):
        ds = data.build_dataset(data.DataConfig(dataset="lrs3", root=str(tmp_path), fixed_offsets=False),
                                Geometry(crop=24), "test")
        item = ds[0]
        assert item["video"].shape[0] == 125


def _decoded(root, cfg, i):
    p = syn.video_path(root, syn.clip_id(cfg, i))
    return read_video(p), read_audio(p)


def _synth_run(root, seed, workers):
    """``python -m paperlib synth`` in a fresh process, as a user reruns it."""
    cmd = [sys.executable, "-m", "paperlib", "synth", str(root), "--setting", "sparse", "--clips", "2", "--size", "32",
           "--seed", str(seed), "--workers", str(workers), "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert r.returncode == 0, r.stderr


def test_determinism_and_seed(tmp_path):
    # Same seed -> the same content across runs of `synth`, whatever the worker count. The generated frames and audio
    # (before encoding) are bit-identical in a fresh process; the decoded mp4s are compared with a tolerance: on a
    # loaded CI machine x264 once encoded the same clip differently in another run (max 14 grey levels in a few blocks,
    # not reproduced on an idle or CPU-loaded machine since; cause unknown), while another seed differs by > 5 levels
    # on average.
    cfg = syn.SynthConfig(setting="sparse", size=32, seed=11)
    code = ("import hashlib; from paperlib.data import synthetic as s; "
            "c = s.generate_clip(s.SynthConfig(setting='sparse', size=32, seed=11), 1); "
            "print(hashlib.sha1(c['frames'].tobytes() + c['audio'].tobytes()).hexdigest())")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert fresh.returncode == 0, fresh.stderr
    import hashlib

    here = syn.generate_clip(cfg, 1)
    assert fresh.stdout.strip() == hashlib.sha1(here["frames"].tobytes() + here["audio"].tobytes()).hexdigest()
    _synth_run(tmp_path / "a", 11, workers=1)
    _synth_run(tmp_path / "b", 11, workers=2)
    _synth_run(tmp_path / "c", 12, workers=1)
    other = syn.SynthConfig(setting="sparse", size=32, seed=12)
    for i in range(2):
        va, aa = _decoded(tmp_path / "a", cfg, i)
        vb, ab = _decoded(tmp_path / "b", cfg, i)
        diff = np.abs(va.astype(int) - vb)
        assert va.shape == vb.shape and diff.mean() < 1.0, (i, diff.mean(), diff.max())
        assert np.allclose(aa, ab, atol=1e-4), (i, np.abs(aa - ab).max())
        assert syn.load_sidecar(tmp_path / "a", syn.clip_id(cfg, i)) == syn.load_sidecar(tmp_path / "b",
                                                                                          syn.clip_id(cfg, i))
    vc, ac = _decoded(tmp_path / "c", other, 0)
    va, aa = _decoded(tmp_path / "a", cfg, 0)
    assert np.abs(vc.astype(int) - va).mean() > 5 and not np.allclose(ac, aa, atol=1e-3)


def test_resume_skips_finished_and_refuses_other_config(tmp_path):
    cfg = syn.SynthConfig(setting="dense-crop", size=32, seed=0)
    syn.generate(cfg, tmp_path, clips=2, progress=False)
    first = syn.video_path(tmp_path, syn.clip_id(cfg, 0))
    stamp = first.stat().st_mtime_ns
    syn.sidecar_path(tmp_path, syn.clip_id(cfg, 1)).unlink()  # clip 1 counts as unfinished
    syn.generate(cfg, tmp_path, clips=2, progress=False)
    assert first.stat().st_mtime_ns == stamp
    assert syn.sidecar_path(tmp_path, syn.clip_id(cfg, 1)).is_file()
    man = json.loads((tmp_path / "synth.json").read_text())
    assert man["last_run"]["generated"] == 1 and [r["generated"] for r in man["runs"]] == [2, 1]
    with pytest.raises(ValueError, match="different synthetic dataset"):
        syn.generate(syn.SynthConfig(setting="dense-crop", size=32, seed=1), tmp_path, clips=2, progress=False)


def test_oracle_on_hand_made_sidecars():
    sc = {"event_onsets_sec": [6.0]}
    # visual [3, 8), audio [4, 9) -> 6.0 is in both
    assert syn.has_cue(sc, v_start_sec=3.0, offset_sec=1.0)
    # visual [0, 5), audio [1, 6): 6.0 is heard but not seen
    assert not syn.has_cue(sc, v_start_sec=0.0, offset_sec=1.0)
    # visual [2, 7), audio [0.4, 5.4): seen but not heard
    assert not syn.has_cue(sc, v_start_sec=2.0, offset_sec=-1.6)
    # at the very edge of the audio window, inside the margin -> no cue; without margin -> cue
    assert not syn.has_cue(sc, v_start_sec=1.05, offset_sec=0.0, margin_sec=0.1)
    assert syn.has_cue(sc, v_start_sec=1.05, offset_sec=0.0, margin_sec=0.0)
    assert not syn.has_cue({"event_onsets_sec": []}, 2.0, 0.0)
    assert syn.has_cue({"event_onsets_sec": [2.5, 3.0]}, 2.0, 0.0, min_events=2)
    assert not syn.has_cue({"event_onsets_sec": [2.5, 8.0]}, 2.0, 0.0, min_events=2)


def test_oracle_fraction_on_generated_sidecars(sparse_root):
    root, cfg = sparse_root
    ids = [syn.clip_id(cfg, i) for i in range(len(syn.SPARSE_CLASSES))]
    items = syn.sample_items(ids, per_clip=10, seed=0)
    assert set(items.columns) == {"path", "offset_sec", "vstart_sec"}
    assert (items["vstart_sec"] >= np.maximum(0, -items["offset_sec"]) - 1e-9).all()
    assert (items["vstart_sec"] + items["offset_sec"] <= 5.0 + 1e-9).all()
    r = syn.oracle_fraction(root, items)
    manual = np.mean([syn.has_cue(syn.load_sidecar(root, p), v, o) for p, o, v in items.itertuples(index=False)])
    assert r["n"] == 80 and r["fraction"] == pytest.approx(manual) and 0.0 < r["fraction"] < 1.0
    assert r["setting"] == "sparse"


def test_dense_event_training_clips_hold_more_cues():
    """DENSE_EVENT_PROBS (the recipe's sparse training clips): 3-5 events, min_event_gap apart, and clearly more
    random windows with a cue than the default sparse clips (the same classes and generator otherwise)."""
    rng = np.random.default_rng(0)
    share = {}
    for name, probs in (("default", syn.SynthConfig.event_count_probs), ("dense", syn.DENSE_EVENT_PROBS)):
        cfg = syn.SynthConfig(setting="sparse", size=32, event_count_probs=probs)
        cues = []
        for i in range(8):
            sc = syn.generate_clip(cfg, i)["sidecar"]
            t = np.asarray(sc["event_onsets_sec"])
            if name == "dense":
                assert 3 <= len(t) <= 5 and (np.diff(t) >= cfg.min_event_gap_sec).all()
            for _ in range(12):
                o = float(rng.choice(np.linspace(-2.0, 2.0, 21)))
                cues.append(syn.has_cue(sc, float(rng.uniform(max(0.0, -o), min(5.0, 5.0 - o))), o))
        share[name] = float(np.mean(cues))
    assert share["dense"] > share["default"] + 0.2, share


def test_no_start_anchoring_in_scene_statistics():
    """Event times, syllable onsets and audio level carry no trace of the clip start (stationary processes)."""
    cfg = syn.SynthConfig(setting="sparse", size=16, seed=4)
    rng = np.random.default_rng(0)
    times = np.concatenate([signals.event_times(rng, 3, 10.0, 1.2) for _ in range(400)])
    hist = np.histogram(times, bins=5, range=(0, 10))[0] / len(times)
    assert np.abs(hist - 0.2).max() < 0.05
    firsts = []
    for k in range(200):
        syl = signals.syllables(np.random.default_rng([k]), 4.5, 10.0)
        firsts.append(syl[syl[:, 0] >= 0, 0].min())
    # the first onset after t = 0 is spread over a syllable period, not pinned to 0
    assert 0.05 < np.median(firsts) < 0.4 and np.mean(np.asarray(firsts) < 0.02) < 0.15
    # the audio level of the first 0.2 s matches the level elsewhere (no fade-in, no start transient)
    heads, mids = [], []
    for i in range(6):
        a = syn.generate_clip(syn.SynthConfig(setting="dense-crop", size=16, seed=9), i)["audio"]
        heads.append(np.sqrt(np.mean(a[:3200] ** 2)))
        mids.append(np.sqrt(np.mean(a[3200:] ** 2)))
    assert 0.3 < np.mean(heads) / np.mean(mids) < 2.0
    assert cfg.validate() is cfg


def test_config_errors():
    with pytest.raises(ValueError, match="setting"):
        syn.SynthConfig(setting="dense").validate()
    with pytest.raises(ValueError, match="even"):
        syn.SynthConfig(size=33).validate()
    with pytest.raises(FileNotFoundError, match="no sidecar"):
        syn.load_sidecar("/nonexistent-root", "pretrain/x/00000")


def test_cli_generates_and_reports(tmp_path, capsys):
    assert synth_command.main([str(tmp_path / "d"), "--setting", "dense-wide", "--clips", "2", "--size", "32",
                               "--no-progress", "--clips-per-video", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 clips" in out and "clips/s" in out
    assert len((tmp_path / "d" / "lrs3_train.txt").read_text().split()) + \
        len((tmp_path / "d" / "lrs3_test.txt").read_text().split()) + \
        len((tmp_path / "d" / "lrs3_valid.txt").read_text().split()) == 2


def test_cli_overrides(tmp_path):
    assert synth_command.main([str(tmp_path), "--setting", "sparse", "--clips", "1", "--size", "32", "--no-progress",
                               "--set", "event_count_probs=[0,0,0,1]"]) == 0
    sc = syn.load_sidecar(tmp_path, syn.clip_id(syn.SynthConfig(setting="sparse"), 0))
    assert len(sc["event_onsets_sec"]) == 3
    man = json.loads((tmp_path / "synth.json").read_text())
    assert man["config"]["event_count_probs"] == [0, 0, 0, 1]
    with pytest.raises(SystemExit):
        synth_command.main([str(tmp_path / "x"), "--set", "no_such_field=1"])
