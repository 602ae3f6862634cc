"""Offsets, windows, transforms and datasets of paperlib.data.datasets / paperlib.data.transforms against the official
semantics."""

from __future__ import annotations

import csv
import random
import urllib.error

import av
import numpy as np
import pytest
import torch
import torchaudio

from paperlib.commands import datasets as datasets_command
from paperlib.data import datasets as D
from paperlib.core.geometry import Geometry, class_grid, offset_to_target
from paperlib.data.datasets import (DataConfig, build_dataset, clip_lengths, fixed_offsets_name, fixed_window,
                                    load_fixed_offsets, read_fixed_offsets, sample_train_window, write_fixed_offsets)
from paperlib.core.media import probe
from paperlib.testing import make_test_clip
from paperlib.data.transforms import (AudioAugment, AudioStandardize, RandomColorDistortion,
                                 RandomHorizontalFlip, RGBSpatialCrop, SpecAugment, pitch_shift)

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


PAPER = Geometry()
SMALL = Geometry(clip_sec=2.0, max_off_sec=1.0, crop=128)  # 2 s windows, offsets in [-1, 1] s (21 classes), 128 px


def small_cfg(root, **kw) -> DataConfig:
    """Data settings for the SMALL geometry on 3-4 s clips."""
    base = dict(dataset="folder", root=str(root), min_clip_sec=3.0, upscale_crop=112, freq_mask=16, time_mask=40)
    base.update(kw)
    return DataConfig(**base).validate(SMALL)


# ---------------------------------------------------------------------------------------------------------------------
# grid, windows
# ---------------------------------------------------------------------------------------------------------------------

def test_grid_and_targets():
    g = class_grid(21, 2.0)
    assert len(g) == 21 and g[0] == -2.0 and g[-1] == 2.0 and g[10] == 0.0
    np.testing.assert_allclose(np.diff(g), 0.2)
    assert offset_to_target(-2.0, 21, 2.0) == 0 and offset_to_target(2.0, 21, 2.0) == 20
    assert offset_to_target(0.2, 21, 2.0) == 11 and offset_to_target(-0.09, 21, 2.0) == 10
    assert list(class_grid(3, 1.0)) == [-1.0, 0.0, 1.0]
    assert D.item_shapes(PAPER) == {"video": (125, 3, 224, 224), "audio": (1, 257, 626)}


def test_config_validation():
    DataConfig().validate(Geometry(num_classes=3, max_off_sec=1.0))
    with pytest.raises(ValueError, match="3-class"):
        DataConfig().validate(Geometry(num_classes=3, max_off_sec=2.0))
    with pytest.raises(ValueError, match="half the grid step"):
        DataConfig(audio_jitter_sec=0.06).validate(Geometry(num_classes=41))
    with pytest.raises(ValueError, match="infeasible"):
        DataConfig(min_clip_sec=6.0).validate(PAPER)
    with pytest.raises(ValueError, match="fixed_offsets=False"):
        DataConfig(iter_times=25).validate(PAPER)
    DataConfig(iter_times=25, fixed_offsets=False).validate(PAPER)


def test_train_windows_official_semantics():
    cfg = DataConfig()
    rng = random.Random(0)
    seen = set()
    for i in range(3000):
        n_v = 175 + (i % 76)  # 7 s (the shortest clip where every offset fits) .. 10 s
        w = sample_train_window(n_v, cfg, PAPER, rng)
        seen.add(w.target)
        assert w.target == offset_to_target(w.offset_sec, 21, 2.0)
        assert w.offset_sec == round(float(class_grid(21, 2.0)[w.target]), 2)
        assert 0 <= w.v_start_i and w.v_start_i + 125 <= n_v
        assert 0 <= w.a_start_i and w.a_start_i + 80000 <= n_v * 640
        unjittered = max(0, int((w.v_start_i / 25 + w.offset_sec) * 16000))
        assert abs(w.a_start_i - unjittered) <= 800  # jitter bounded by int(0.05 * 16000), label unchanged
    assert seen == set(range(21))


@pytest.mark.parametrize("off", [-2.0, 2.0])
def test_grid_edges_are_feasible_in_the_shortest_clip(off):
    """At +-2 s in a 7 s clip there is exactly one visual start; audio and video windows fit."""
    cfg = DataConfig(audio_jitter_sec=0.0)
    rng = random.Random(1)
    for _ in range(200):
        w = sample_train_window(175, cfg, PAPER, rng)
        if w.offset_sec == off:
            assert w.target == (20 if off > 0 else 0)
            assert w.v_start_i == (0 if off > 0 else 50)
            assert w.a_start_i == (32000 if off > 0 else 0)
            assert w.a_start_i - w.v_start_i * 640 == int(off * 16000)  # positive: audio window starts later
            return
    pytest.fail("the edge offset was never drawn")


def test_fixed_window_uses_raw_vstart():
    w = fixed_window(0.2, 2.96, PAPER)
    assert (w.v_start_i, w.a_start_i, w.target) == (74, int((2.96 + 0.2) * 16000), 11)
    w = fixed_window(-2.0, 1.16, PAPER)  # int(1.16 * 25) = 28, as the official truncation
    assert w.v_start_i == int(1.16 * 25) and w.target == 0


def test_fixed_offsets_csv_roundtrip(tmp_path):
    assert fixed_offsets_name("test", 21, 5.0, 2.0) == "test_size21_crop5_min-2.00_max2.00.csv"
    assert fixed_offsets_name("valid", 3, 2.5, 1.0) == "valid_size3_crop2.5_min-1.00_max1.00.csv"
    rows = {"pretrain/-MTRxRO5SRA/00002": (0.2, 2.96), "pretrain/abc/00001": (-2.0, 0.0)}
    cfg = DataConfig(root=str(tmp_path))
    p = write_fixed_offsets(D.fixed_offsets_path(cfg, PAPER, "test"), rows)
    assert p.read_text().splitlines()[:2] == ["path,offset_sec,vstart_sec", "pretrain/-MTRxRO5SRA/00002,0.2,2.96"]
    assert read_fixed_offsets(p) == rows
    write_fixed_offsets(D.fixed_offsets_path(cfg, PAPER, "valid"), {"pretrain/x/00003": (1.0, 1.2)})
    assert load_fixed_offsets(cfg, PAPER) == {**rows, "pretrain/x/00003": (1.0, 1.2)}  # splits merged
    write_fixed_offsets(D.fixed_offsets_path(cfg, PAPER, "train"), {"pretrain/abc/00001": (1.0, 0.0)})
    with pytest.raises(ValueError, match="pretrain/abc/00001"):
        load_fixed_offsets(cfg, PAPER)


# ---------------------------------------------------------------------------------------------------------------------
# the official test sequence, recomputed independently
# ---------------------------------------------------------------------------------------------------------------------

def reference_item(path, v_start_i: int, a_start_i: int, t: int, n: int, crop: int):
    """Straightforward re-computation: full decode, slice, centre crop, normalise; full audio, spectrogram, log, std."""
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        n_all = int(round(float(s.duration * s.time_base) * s.codec_context.sample_rate))
        audio = np.concatenate([f.to_ndarray() for f in c.decode(s)], axis=1)[:, :n_all].mean(0)
    v = torch.from_numpy(frames[v_start_i:v_start_i + t]).permute(0, 3, 1, 2)
    h, w = v.shape[-2:]
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    v = v[..., top:top + crop, left:left + crop].float() / 255.0
    v = (v - IMAGENET_MEAN) / IMAGENET_STD
    spec = torchaudio.transforms.Spectrogram(n_fft=512, hop_length=128, power=2.0)(
        torch.from_numpy(audio[a_start_i:a_start_i + n].copy()))
    spec = torch.log(spec + 1e-6)
    spec = (spec - spec.mean(-1, keepdim=True)) / (spec.std(-1, keepdim=True) + 1e-6)
    return v, spec[None]


@pytest.fixture(scope="module")
def paper_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    make_test_clip(root / "clip.mp4", seconds=7.2, size=(256, 290))
    return root


def test_eval_item_equals_official_test_sequence(paper_clip):
    cfg = DataConfig(dataset="folder", root=str(paper_clip), min_clip_sec=7.0)
    D.write_fixed_offsets(D.fixed_offsets_path(cfg, PAPER, "test"), {"clip": (-1.6, 1.88)})
    ds = D.AVSyncDataset(cfg, PAPER, "test", D.records_for(cfg, "all"), fixed=load_fixed_offsets(cfg, PAPER))
    item = ds[0]
    assert item["video"].shape == (125, 3, 224, 224) and item["audio"].shape == (1, 257, 626)
    v_start_i, a_start_i = int(1.88 * 25), int((1.88 - 1.6) * 16000)
    assert (item["v_start_sec"], item["a_start_sec"]) == (v_start_i / 25, a_start_i / 16000)
    assert item["target"] == 2 and item["offset_sec"] == -1.6 and item["label"] == -1 and item["id"] == "clip"
    ref_v, ref_a = reference_item(paper_clip / "clip.mp4", v_start_i, a_start_i, 125, 80000, 224)
    assert item["video"].is_contiguous()
    torch.testing.assert_close(item["video"], ref_v, rtol=0, atol=2e-6)  # float32 rounding of the normalisation
    torch.testing.assert_close(item["audio"], ref_a, rtol=0, atol=1e-5)


@pytest.mark.parametrize("off, vstart, target", [(1.0, 0.0, 20), (-1.0, 1.0, 0)])
def test_items_at_the_grid_edges(tmp_path, off, vstart, target):
    """In the shortest admissible clip (3 s for 2 s windows at +-1 s) the edge offsets fit exactly and decode right."""
    make_test_clip(tmp_path / "edge.mp4", seconds=3.0, size=(192, 256))
    cfg = small_cfg(tmp_path)
    D.write_fixed_offsets(D.fixed_offsets_path(cfg, SMALL, "test"), {"edge": (off, vstart)})
    ds = D.AVSyncDataset(cfg, SMALL, "test", D.records_for(cfg, "all"), fixed=load_fixed_offsets(cfg, SMALL))
    item = ds[0]
    assert not ds.bad_files and item["target"] == target and item["offset_sec"] == off
    v_start_i, a_start_i = int(vstart * 25), int((vstart + off) * 16000)
    assert a_start_i + 32000 == 48000 or v_start_i + 50 == 75  # one of the windows ends at the clip's end
    ref_v, ref_a = reference_item(tmp_path / "edge.mp4", v_start_i, a_start_i, 50, 32000, 128)
    torch.testing.assert_close(item["video"], ref_v, rtol=0, atol=2e-6)
    torch.testing.assert_close(item["audio"], ref_a, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------------------------------------------------

def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_standardised_spectrogram_statistics():
    spec = torch.randn(257, 626) * 3 + torch.linspace(-10, 5, 257)[:, None]
    out = AudioStandardize()({"audio": spec})["audio"]
    assert out.shape == (1, 257, 626)
    torch.testing.assert_close(out.mean(-1), torch.zeros(1, 257), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(-1), torch.ones(1, 257), atol=1e-5, rtol=0)


def test_flip_crop_and_colour():
    video = torch.randint(0, 256, (4, 3, 40, 50), dtype=torch.uint8)
    flipped = RandomHorizontalFlip(1.0)({"video": video}, gen())["video"]
    assert torch.equal(flipped, video.flip(-1))
    assert torch.equal(RandomHorizontalFlip(0.0)({"video": video}, gen())["video"], video)
    crops = [RGBSpatialCrop(32, random=True)({"video": video}, gen(s))["video"] for s in range(20)]
    for c in crops:  # the same window for every frame: find it in frame 0, check the others
        hits = [(i, j) for i in range(9) for j in range(19) if torch.equal(video[0, :, i:i + 32, j:j + 32], c[0])]
        assert hits and all(torch.equal(video[k, :, hits[0][0]:hits[0][0] + 32, hits[0][1]:hits[0][1] + 32], c[k])
                            for k in range(4))
    assert len({c[0].sum().item() for c in crops}) > 1
    centre = RGBSpatialCrop(32, random=False)({"video": video}, gen())["video"]
    assert torch.equal(centre, video[..., 4:36, 9:41])
    up = RGBSpatialCrop(32, random=True, sometimes_upscale_p=1.0, upscale_from=24)({"video": video}, gen())["video"]
    assert up.shape == (4, 3, 32, 32) and up.dtype == torch.uint8
    gray = RandomColorDistortion(0.0, 1.0)({"video": video}, gen())["video"]
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    jit = RandomColorDistortion(1.0, 0.0)({"video": video}, gen())["video"]
    assert jit.dtype == torch.uint8 and jit.shape == video.shape and not torch.equal(jit, video)


def test_audio_augmentations():
    sr = 16000
    t = torch.arange(2 * sr) / sr
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)
    shifted = pitch_shift(tone, sr, 1000.0)
    assert shifted.shape == tone.shape
    freqs = torch.fft.rfftfreq(len(tone), 1 / sr)
    peak = freqs[torch.fft.rfft(shifted[4000:-4000], n=len(tone)).abs().argmax()]
    assert abs(peak - 440 * 2 ** (10 / 12)) < 5  # +1000 cents
    aug = AudioAugment(1.0, sr)({"audio": tone.clone()}, gen())["audio"]
    assert aug.shape == tone.shape and torch.isfinite(aug).all() and not torch.allclose(aug, tone)
    assert torch.equal(AudioAugment(0.0, sr)({"audio": tone.clone()}, gen())["audio"], tone)
    spec = torch.randn(257, 626)
    masked = SpecAugment(1.0, 64, 200)({"audio": spec}, gen(3))["audio"]
    zero_rows = (masked == 0).all(-1).sum().item()
    zero_cols = (masked == 0).all(0).sum().item()
    assert zero_rows < 64 and zero_cols < 200 and (zero_rows > 0 or zero_cols > 0)


# ---------------------------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    for i in range(3):
        make_test_clip(root / f"c{i}.mp4", seconds=4.0, size=(192, 256), gop=10)
    return root


def test_train_items_decode_the_sampled_windows(folder_root):
    cfg = small_cfg(folder_root, p_horizontal_flip=0.0)
    ds = D.AVSyncDataset(cfg, SMALL, "train", D.records_for(cfg, "all"), seed=3)
    targets = set()
    for idx in range(len(ds)):
        for epoch in range(4):
            ds.set_epoch(epoch)
            item = ds[idx]
            w = ds.window(idx)
            assert item["video"].shape == (50, 3, 128, 128) and item["audio"].shape == (1, 257, 251)
            assert item["target"] == w.target == offset_to_target(item["offset_sec"], 21, 1.0)
            assert item["v_start_sec"] == w.v_start_i / 25 and item["a_start_sec"] == w.a_start_i / 16000
            assert abs(item["a_start_sec"] - item["v_start_sec"] - item["offset_sec"]) <= 0.05 + 1 / 25
            targets.add(item["target"])
    assert len(targets) > 5
    ds.set_epoch(1)
    a, b = ds[0], ds[0]
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["audio"], b["audio"])  # deterministic
    ds.set_epoch(2)
    assert ds[0]["v_start_sec"] != a["v_start_sec"] or ds[0]["offset_sec"] != a["offset_sec"]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["video"].shape == (2, 50, 3, 128, 128) and batch["target"].shape == (2,)


def test_eval_generates_and_reuses_fixed_offsets(folder_root, tmp_path):
    cfg = small_cfg(folder_root, fixed_offsets_dir=str(tmp_path / "fo"))
    ds = build_dataset(cfg, SMALL, "all")
    path = D.fixed_offsets_path(cfg, SMALL, "all")
    rows = read_fixed_offsets(path)
    assert set(rows) == {"c0", "c1", "c2"}
    first = path.read_text()
    for i in range(len(ds)):
        item = ds[i]
        off, vstart = rows[item["id"]]
        assert item["offset_sec"] == off and item["v_start_sec"] == int(vstart * 25) / 25
        assert item["a_start_sec"] == int((vstart + off) * 16000) / 16000
    build_dataset(cfg, SMALL, "all")
    assert path.read_text() == first  # reused, not regenerated
    D.make_fixed_offsets(cfg, SMALL, "all", path=tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text() == first  # seeded
    rnd = build_dataset(small_cfg(folder_root, fixed_offsets=False, iter_times=4), SMALL, "all")
    assert len(rnd) == 12 and len({(rnd[i]["offset_sec"], rnd[i]["v_start_sec"]) for i in range(12)}) > 3


def test_datasets_cli_make_offsets(folder_root, tmp_path, capsys):
    root = tmp_path / "r"
    root.mkdir()
    for name in ("c0", "c1"):
        (root / f"{name}.mp4").write_bytes((folder_root / f"{name}.mp4").read_bytes())
    from paperlib.commands import main

    assert main(["datasets", "make-offsets", "--root", str(root), "--dataset", "folder", "--max-off-sec", "1.0",
                 "--clip-sec", "2", "--min-clip-sec", "3.0", "--splits", "all"]) == 0
    rows = read_fixed_offsets(root / "fixed_offsets" / "all_size21_crop2_min-1.00_max1.00.csv")
    assert set(rows) == {"c0", "c1"}
    assert all(-1.0 <= off <= 1.0 and 0.0 <= vstart for off, vstart in rows.values())
    assert main(["datasets", "summary", "--root", str(root), "--dataset", "folder", "--splits", "all"]) == 0
    assert "folder/all: 2 clips" in capsys.readouterr().out


def test_bad_files_are_skipped_and_counted(folder_root, tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "a_empty.mp4").write_bytes(b"")
    (root / "b_junk.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    make_test_clip(root / "c_noaudio.mp4", seconds=4, sample_rate=None, size=(192, 256))
    make_test_clip(root / "d_short.mp4", seconds=2, size=(192, 256))
    (root / "e_good.mp4").write_bytes((folder_root / "c0.mp4").read_bytes())
    cfg = small_cfg(root)
    ds = D.AVSyncDataset(cfg, SMALL, "train", D.records_for(cfg, "all"))
    items = [ds[i] for i in range(len(ds))]
    assert all(it["id"] == "e_good" for it in items)
    reasons = {k.split("/")[-1]: v for k, v in ds.bad_files.items()}
    assert set(reasons) == {"a_empty.mp4", "b_junk.mp4", "c_noaudio.mp4", "d_short.mp4"}
    assert "empty" in reasons["a_empty.mp4"] and "unreadable" in reasons["b_junk.mp4"]
    assert "no audio stream" in reasons["c_noaudio.mp4"] and "too short" in reasons["d_short.mp4"]
    assert "4 bad files" in ds.bad_files_summary()
    only_bad = D.AVSyncDataset(cfg, SMALL, "train", [r for r in D.records_for(cfg, "all") if r.id != "e_good"])
    with pytest.raises(RuntimeError, match="consecutive bad files"):
        only_bad[0]


def test_lrs3_split_by_video(tmp_path, folder_root):
    clip = (folder_root / "c0.mp4").read_bytes()
    for v in range(20):
        for c in range(2):
            p = tmp_path / "pretrain" / f"vid{v:02d}" / f"{c:05d}.mp4"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(clip)
    cfg = DataConfig(dataset="lrs3", root=str(tmp_path))
    splits = {s: D.records_for(cfg, s) for s in D.SPLITS}
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [32, 4, 4]
    videos = {s: {r.id.split("/")[1] for r in recs} for s, recs in splits.items()}
    assert not (videos["train"] & videos["test"]) and not (videos["valid"] & videos["test"])
    assert splits["test"][0].id.startswith("pretrain/vid") and splits["test"][0].path.endswith(".mp4")
    (tmp_path / "lrs3_test.txt").write_text("pretrain/vid03/00001\n")
    (tmp_path / "filtered_examples_lrs").mkdir()
    (tmp_path / "filtered_examples_lrs" / "less_than_9s.txt").write_text("pretrain/vid00/00000\n")
    assert [r.id for r in D.records_for(cfg, "test")] == ["pretrain/vid03/00001"]
    assert "pretrain/vid00/00000" not in {r.id for r in D.records_for(cfg, "train")}


def test_vggsound_sparse_annotations(tmp_path):
    (tmp_path / "video").mkdir()
    rows = []
    classes = ["lions roaring", "dog barking", "chopping wood", "people, eating"]
    for k, lab in enumerate(classes):
        for j in range(6):
            ytid = f"{k}{j}abcdefghij"[:11]
            split = "test" if j < 2 else "train"
            rows.append([ytid, 30, lab, split])
            if not (k == 0 and j == 5):  # one clip was never downloaded
                (tmp_path / "video" / f"{ytid}_30000_40000.mp4").write_bytes(b"x")
    with open(tmp_path / "vggsound_sparse.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    cfg = DataConfig(dataset="vggsound_sparse", root=str(tmp_path))
    test = D.records_for(cfg, "test")
    valid = D.records_for(cfg, "valid")
    train = D.records_for(cfg, "train")
    assert len(test) == 8 and len(valid) == 8 and len(train) == 7  # valid: per class as many as test, from train
    assert not ({r.id for r in valid} & {r.id for r in train})
    label_names = sorted(classes)
    assert {r.label for r in test} == {0, 1, 2, 3}
    assert all(label_names[r.label] == classes[int(r.id[0])] for r in test + valid + train)  # alphabetical
    assert test[0].id.endswith("_30000_40000") and test[0].path.endswith(".mp4")
    (tmp_path / "picked_sparse_classes.csv").write_text("class\tis_sparse\ndog barking\ty\nlions roaring\ty\n"
                                                        "people, eating\tn\n")
    test = D.records_for(cfg, "test")
    assert len(test) == 4 and {r.label for r in test} == {0, 1}  # dog barking -> 0, lions roaring -> 1
    # the official VGGSound split lists, when present, decide the split (ids outside the sparse CSV are ignored)
    (tmp_path / "vggsound_valid.txt").write_text("10abcdefghi_30000_40000\nzzzzzzzzzzz_0_10000\n")
    assert [r.id for r in D.records_for(cfg, "valid")] == ["10abcdefghi_30000_40000"]


def test_fetch_protocol_urls_and_offline(tmp_path, monkeypatch):
    files = D.protocol_files("lrs3")
    urls = [u for u, _ in files]
    assert D.PROTOCOL_BASE_URL + "data/lrs3_test.txt" in urls
    assert (D.PROTOCOL_BASE_URL + "data/fixed_offsets_lrs3/test_size21_crop5_min-2.00_max2.00.csv",
            "fixed_offsets/test_size21_crop5_min-2.00_max2.00.csv") in files
    sparse = dict((rel, u) for u, rel in D.protocol_files("vggsound_sparse"))
    assert "vggsound_sparse.csv" in sparse and "picked_sparse_classes.csv" in sparse
    assert "fixed_offsets/test_size41_crop5_min-2.00_max2.00.csv" in sparse

    def offline(*a, **k):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    status = D.fetch_protocol(tmp_path, "lrs3")
    assert status and all(v.startswith("failed") for v in status.values())
    assert not any(tmp_path.rglob("*"))
    assert datasets_command.main(["fetch-protocol", "--root", str(tmp_path), "--dataset", "lrs3"]) == 1


def test_clip_lengths_trim_from_the_right(folder_root):
    info = probe(folder_root / "c0.mp4")
    assert clip_lengths(info, DataConfig(), PAPER) == (100, 64000)
    assert clip_lengths(info, DataConfig(max_clip_sec=3.0), PAPER) == (75, 48000)


def test_benchmark_smoke(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "data_pipeline.py"
    spec = importlib.util.spec_from_file_location("bench_data_pipeline", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--smoke", "--out", str(tmp_path)])
    assert set(report["clips_per_s"]) == {"loader", "limit", "whole_clip_decode", "whole_clip_pipeline"}
    assert all(v > 0 for v in report["clips_per_s"].values())
    assert set(report["dataloader_clips_per_s_by_workers"]) == {"0", "1"}
    assert Path(report["path"]).is_file() and Path(report["path"]).parent == tmp_path
