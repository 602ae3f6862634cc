"""Hardening: a generated hostile media corpus through every entry point (predict, prepare, training dataset
loading, the leakage probe), with counts printed: each input is handled correctly or rejected with a clear error
naming the file, never a crash (an unexpected exception type, or a message without the file), a hang (timeouts) or a
silent wrong result (shapes, window counts, stream parameters and decoded lengths are checked)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.core import config as C
from paperlib.engine import config as RC
from paperlib.core.media import MediaError, probe, read_video
from paperlib.testing import make_hostile_corpus

# kinds that no entry point can use: each must be rejected with the file named
BROKEN = {"empty", "trunc_header", "trunc_mdat", "trunc_moov", "random_bytes", "text", "directory", "missing"}
# a faststart mp4 cut in its media data: the headers are intact, the first seconds decode, the rest is gone; a window
# inside the intact part is read correctly (decoded lengths are checked), one beyond it fails naming the file
EITHER = {"trunc_faststart_mdat"}
NO_PAIR = {"audio_only", "video_only", "too_short"}  # readable but not an audio-visual clip of >= one window
CLEAN_ERRORS = (MediaError, ValueError, OSError)  # the documented error types of the entry points


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    entries = make_hostile_corpus(folder)
    dangling = folder / "dangling_link.mp4"
    os.symlink(folder / "nowhere.mp4", dangling)  # a missing file as folder scanners meet it
    return folder, entries + [(dangling, "dangling_link")]


class Tally:
    """Counts per entry point; ``crash`` records what went wrong for the assertion message."""

    def __init__(self, name: str):
        self.name, self.tried, self.handled, self.crashes = name, 0, 0, []

    def ok(self) -> None:
        self.tried += 1
        self.handled += 1

    def crash(self, kind: str, what: str) -> None:
        self.tried += 1
        self.crashes.append(f"{kind}: {what}")

    def clean_error(self, kind: str, path: Path, e: BaseException) -> None:
        """An error counts as handled when its type is documented and its message names the file."""
        if isinstance(e, CLEAN_ERRORS) and (str(path) in str(e) or path.name in str(e)):
            self.ok()
        else:
            self.crash(kind, f"unclear error {type(e).__name__}: {e}")

    def report(self) -> None:
        print(f"\n{self.name}: {self.tried} inputs tried, {self.handled} handled, {len(self.crashes)} crashes")
        assert not self.crashes, f"{self.name}: " + "; ".join(self.crashes)
        assert self.handled == self.tried


def _smoke_cfg(root: Path | None = None):
    over = ["data.resize_short=40", "data.dataset=folder", "data.fixed_offsets=false"]
    if root is not None:
        over.append(f"data.root={root}")
    return RC.resolve("smoke", over)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from paperlib.model.checkpoints import save_checkpoint
    from paperlib.model.sparsesync import build_model
    from paperlib.studies.predict import load_predictor

    cfg = _smoke_cfg()
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model(cfg.model), cfg.model, run_config=C.to_dict(cfg))
    return load_predictor(path, "cpu")


def _expected_windows(path: Path, window: float, fps: float, sr: int) -> int:
    info = probe(path)
    length = min(info.n_frames_at(fps) / fps, info.n_samples_at(sr) / sr)
    return int(math.floor((length - window) / window + 1e-6)) + 1


@pytest.mark.timeout(240)
def test_hostile_corpus_predict(corpus, predictor):
    from paperlib.studies.predict import predict_video

    _, entries = corpus
    t = Tally("predict")
    d = predictor.geometry
    for path, kind in entries:
        try:
            res = predict_video(predictor, path)
        except Exception as e:  # noqa: BLE001 - classified below
            if kind in BROKEN | NO_PAIR | EITHER | {"dangling_link"}:
                t.clean_error(kind, path, e)
            else:
                t.crash(kind, f"readable clip failed: {type(e).__name__}: {e}")
            continue
        if kind in BROKEN | NO_PAIR | {"dangling_link"}:
            t.crash(kind, f"unusable input gave a prediction: {res['summary']}")
            continue
        probs = np.array([w["prob"] for w in res["windows"]])
        want = _expected_windows(path, d.clip_sec, d.fps, d.sample_rate)
        if res["n_windows"] != want or not np.all(np.isfinite(probs)) or not 0 <= res["class"] < d.num_classes:
            t.crash(kind, f"{res['n_windows']} windows (expected {want}), probs {probs}")
        else:
            t.ok()
    t.report()


def _sane_prepared(out: Path) -> str | None:
    info = probe(out)
    if info.video is None or info.audio is None:
        return "a stream is missing"
    v, a = info.video, info.audio
    if abs(v.fps - 25) > 1e-6 or a.sample_rate != 16000 or a.channels != 1:
        return f"{v.fps} fps, {a.sample_rate} Hz, {a.channels} channels"
    if v.width % 2 or v.height % 2 or min(v.width, v.height) != 32:
        return f"size {v.width}x{v.height}"
    if v.n_frames < 1 or a.n_samples < 1:
        return "empty streams"
    return None


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_hostile_corpus_prepare(corpus, tmp_path):
    from paperlib.data.prepare import EncodeSettings, prepare

    folder, entries = corpus
    t = Tally("prepare")
    dst = tmp_path / "prepared"
    report = prepare(folder, dst, "folder", workers=0, settings=EncodeSettings(side=32), progress=False)
    failed = report["failed_files"]
    for path, kind in entries:
        if kind == "missing":  # a missing source folder
            try:
                prepare(folder / "missing", tmp_path / "x", "folder", workers=0, progress=False)
                t.crash(kind, "a missing source folder was accepted")
            except Exception as e:  # noqa: BLE001
                t.clean_error(kind, folder / "missing", e)
            continue
        out = dst / path.relative_to(folder).with_suffix(".mp4")
        if kind in BROKEN | EITHER | {"dangling_link", "audio_only", "video_only"}:
            reason = failed.get(str(path))
            if out.exists() and kind in EITHER and _sane_prepared(out) is None:
                t.ok()  # the decodable part was prepared (a partial source, not a partial output)
            elif out.exists():
                t.crash(kind, f"an output was written for unusable input: {out}")
            elif reason is None:
                t.crash(kind, "silently dropped (not in prepare_report.json failed_files)")
            else:
                t.clean_error(kind, path, MediaError(reason if path.name in reason else f"{path}: {reason}"))
            continue
        if str(path) in failed or not out.exists():
            t.crash(kind, f"readable clip not prepared: {failed.get(str(path))}")
            continue
        bad = _sane_prepared(out)
        src = probe(path)
        got = probe(out)
        # the fps filter ends at the last frame's timestamp: up to one source frame (0.1 s for vfr) shorter
        if bad is None and abs(got.video.duration - src.video.duration) > 0.16:
            bad = f"video lasts {got.video.duration:.2f} s, source {src.video.duration:.2f} s"
        if bad is None and abs(got.audio.duration - src.audio.duration) > 0.1:
            bad = f"audio lasts {got.audio.duration:.2f} s, source {src.audio.duration:.2f} s"
        if bad is None and kind == "rotated_90" and not got.video.height > got.video.width:
            bad = f"rotation not applied: {got.video.width}x{got.video.height}"
        if bad:
            t.crash(kind, bad)
        else:
            t.ok()
    assert not list(dst.rglob(".*partial*")), "partial outputs left behind"
    t.report()


@pytest.mark.timeout(240)
def test_hostile_corpus_training_dataset(corpus, tmp_path):
    from paperlib.data.datasets import AVSyncDataset, build_dataset, item_shapes

    folder, entries = corpus
    run = _smoke_cfg(folder)
    cfg, geo = run.data, run.geometry
    vanished = folder / "vanished.mp4"  # a file deleted after the dataset was built
    vanished.write_bytes((folder / "mono.mp4").read_bytes())
    ds = build_dataset(cfg, geo, "all")
    vanished.unlink()
    entries = [(p, k) for p, k in entries if k != "missing"] + [(vanished, "missing")]
    shapes = item_shapes(geo)
    # known limitation: an mkv stores no per-stream duration, so the VFR clip's length comes from the container
    # (which counts the audio's AAC padding); a window at its very end is beyond the last frame and the clip is
    # skipped as a bad file with that reason (named), never read short
    TRAIN_EITHER = {"vfr"}
    index = {r.path: i for i, r in enumerate(ds.records)}
    t = Tally("training dataset")
    bad_paths = set()
    for path, kind in entries:
        if str(path) not in index:
            # only files are listed: a folder or a dangling link named .mp4 is not a clip
            if kind in ("directory", "dangling_link"):
                t.ok()
            else:
                t.crash(kind, "not listed by the folder layout")
            continue
        try:
            item = ds.load(index[str(path)])
        except Exception as e:  # noqa: BLE001
            bad_paths.add(str(path))
            if kind in BROKEN | NO_PAIR | EITHER | TRAIN_EITHER:
                t.clean_error(kind, path, e)
            else:
                t.crash(kind, f"readable clip failed: {type(e).__name__}: {e}")
            continue
        if kind in BROKEN | NO_PAIR:
            t.crash(kind, "unusable input gave an item")
        elif tuple(item["video"].shape) != shapes["video"] or tuple(item["audio"].shape) != shapes["audio"] \
                or not torch.isfinite(item["video"]).all() or not torch.isfinite(item["audio"]).all():
            t.crash(kind, f"item shapes {item['video'].shape} {item['audio'].shape}, expected {shapes}")
        else:
            t.ok()
    t.report()
    # iterating as the training loop does: bad files are skipped (all of them recorded), items come from good files
    it = AVSyncDataset(cfg, geo, "train", ds.records, seed=0)
    paths = [it[i]["path"] for i in range(len(it))]
    assert set(it.bad_files) == bad_paths
    assert not set(paths) & bad_paths
    assert all(str(folder) in why or Path(p).name in why for p, why in it.bad_files.items())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_hostile_corpus_leakage_probe(corpus):
    from paperlib.studies import leakage as L

    folder, entries = corpus
    for modality in ("audio", "video"):
        cfg = L.probe_config(modality, "smoke", {"clip_seconds": 2.0, "num_threads": 1, "device": "cpu"})
        t = Tally(f"leakage probe ({modality})")
        for path, kind in entries:
            clips, skipped = L.load_clips([path], cfg, progress=False)
            unusable = BROKEN | {"dangling_link", "too_short", "audio_only" if modality == "video" else "video_only"}
            if clips.features:
                if kind in unusable:
                    t.crash(kind, "unusable input gave features")
                elif not np.all(np.isfinite(np.asarray(clips.features[0], np.float32))):
                    t.crash(kind, "non-finite features")
                else:
                    t.ok()
            elif kind in unusable | EITHER:
                t.clean_error(kind, path, MediaError(skipped[0]["reason"]) if skipped else RuntimeError("no reason"))
            else:
                t.crash(kind, f"readable clip skipped: {skipped}")
        # the whole folder: every file is used or listed as skipped with its reason
        report = L.probe(folder, modality, budget="smoke", progress=False, overrides={"num_threads": 1,
                                                                                   "device": "cpu"})
        listed = L.list_media(folder, modality)
        assert report["n_files"] == len(listed)
        assert report["n_used"] + len(report["skipped"]) == len(listed)
        assert {s["file"] for s in report["skipped"]} <= {str(p) for p in listed}
        t.report()


def test_rotation_metadata_is_applied(corpus):
    folder, entries = corpus
    path = dict((k, p) for p, k in entries)["rotated_90"]
    v = read_video(path, 0.0, 1.0, fps=25)
    assert v.shape == (25, 64, 48, 3), v.shape  # stored 64x48 (WxH), displayed rotated by 90 degrees


# ---------------------------------------------------------------------------------------------------------------------
# Untrusted checkpoints: loading never executes code from the file; misfits and truncation fail naming what is wrong


class _Evil:
    """Unpickling this object writes ``marker`` (a stand-in for arbitrary code execution)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory):
    from paperlib.model.checkpoints import save_checkpoint
    from paperlib.model.sparsesync import build_model

    cfg = _smoke_cfg()
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpts") / "good.pt"
    save_checkpoint(path, build_model(cfg.model), cfg.model, run_config=C.to_dict(cfg))
    return path, cfg


def _malicious_files(folder: Path, good: Path, marker: Path) -> list[Path]:
    import pickle

    raw = torch.load(good, weights_only=True)
    zipped = folder / "evil_zip.pt"  # torch's zip format, the payload next to real weights
    torch.save({**raw, "meta": {**raw["meta"], "note": _Evil(marker)}}, zipped)
    legacy = folder / "evil_legacy.pt"  # a bare pickle (torch's legacy format)
    with open(legacy, "wb") as f:
        pickle.dump({"model": _Evil(marker)}, f)
    official = folder / "evil_official.pth"  # official-looking layout
    torch.save({"model": raw["model"], "config": _Evil(marker)}, official)
    return [zipped, legacy, official]


@pytest.mark.timeout(120)
def test_malicious_checkpoints_are_refused_everywhere(smoke_checkpoint, tmp_path, capsys):
    from paperlib.model import checkpoints as K
    from paperlib.model import weights as W
    from paperlib.commands import predict as predict_command
    from paperlib.engine import train as T

    good, cfg = smoke_checkpoint
    marker = tmp_path / "MARKER"
    control = tmp_path / "CONTROL"  # the payload works: a plain unpickle runs it
    import pickle

    pickle.loads(pickle.dumps(_Evil(control)))
    assert control.read_text() == "pwned"
    entry_points = {
        "load_checkpoint": lambda p: W.load_checkpoint(p),
        "load_model": lambda p: K.load_model(p),
        "load_official_checkpoint": lambda p: W.load_official_checkpoint(p),
        "predict --checkpoint": lambda p: predict_command.main([str(tmp_path / "any.mp4"), "--checkpoint", str(p),
                                                                 "--device", "cpu"]),
        "train --init-from (weights loader)": lambda p: T.load_init_weights(
            __import__("paperlib.model.sparsesync", fromlist=["build_model"]).build_model(cfg.model), str(p)),
    }
    tried = handled = 0
    crashes = []
    for path in _malicious_files(tmp_path, good, marker):
        for name, call in entry_points.items():
            tried += 1
            try:
                rc = call(path)
            except (W.CheckpointError, ValueError) as e:
                if str(path) in str(e):
                    handled += 1
                else:
                    crashes.append(f"{name} {path.name}: message without the file: {e}")
            except Exception as e:  # noqa: BLE001
                crashes.append(f"{name} {path.name}: {type(e).__name__}: {e}")
            else:
                err = capsys.readouterr().err
                if name.startswith("predict") and rc == 2 and str(path) in err:
                    handled += 1
                else:
                    crashes.append(f"{name} {path.name}: accepted (rc {rc}) {err}")
            assert not marker.exists(), f"{name} executed code from {path}"
    print(f"\nmalicious checkpoints: {tried} inputs tried, {handled} handled, {len(crashes)} crashes")
    assert not crashes and handled == tried, crashes


def _bit_flipped_files(folder: Path, good: Path) -> list[Path]:
    """Corrupt copies of ``good``: a flipped exponent bit in every tensor (finite values: only the checksum sees it),
    a flipped bit in the pickle stream that the pickle disassembler itself fails on, and a NaN weight in a file
    written before checkpoints carried a checksum."""
    import pickle

    from test_reliability_checkpoints import _entry_offsets, flip_bit, flip_exponent_bits

    tensors = folder / "flipped_tensors.pt"
    tensors.write_bytes(good.read_bytes())
    assert flip_exponent_bits(tensors) > 0
    _, size = next(v for k, v in _entry_offsets(good).items() if k.endswith("data.pkl"))
    stream = None
    for i in range(size):
        candidate = flip_bit(good, "data.pkl", i, 7)
        try:
            torch.serialization.get_unsafe_globals_in_checkpoint(str(candidate))
        except pickle.UnpicklingError:
            stream = candidate.rename(folder / "flipped_pickle.pt")
            break
        except Exception:  # noqa: BLE001 - other failures: look further for the UnpicklingError case
            pass
        candidate.unlink()
    assert stream is not None
    raw = torch.load(good, weights_only=True)
    raw["meta"].pop("checksum")
    key = next(k for k, v in raw["model"].items() if v.is_floating_point())
    raw["model"][key] = raw["model"][key].clone().fill_(float("nan"))
    nan = folder / "nan_no_checksum.pt"
    torch.save(raw, nan)
    return [tensors, stream, nan]


@pytest.mark.timeout(120)
def test_bit_flipped_checkpoints_are_refused_everywhere(smoke_checkpoint, tmp_path, capsys):
    """Each corrupt copy, through every entry point that reads a checkpoint: one CheckpointError naming the file
    ("corrupt checkpoint"), exit status 2 from predict; never an UnpicklingError, a NaN prediction or a pass."""
    from paperlib.commands import predict as predict_command
    from paperlib.engine import train as T
    from paperlib.model import checkpoints as K
    from paperlib.model import weights as W
    from paperlib.model.sparsesync import build_model

    good, cfg = smoke_checkpoint
    entry_points = {
        "load_checkpoint (resume)": W.load_checkpoint,
        "load_model": K.load_model,
        "load_official_checkpoint": W.load_official_checkpoint,
        "predict --checkpoint": lambda p: predict_command.main([str(tmp_path / "any.mp4"), "--checkpoint", str(p),
                                                                 "--device", "cpu"]),
        "train --init-from (weights loader)": lambda p: T.load_init_weights(build_model(cfg.model), str(p)),
    }
    tried, crashes = 0, []
    for path in _bit_flipped_files(tmp_path, good):
        for name, call in entry_points.items():
            tried += 1
            try:
                rc = call(path)
            except W.CheckpointError as e:
                if not (str(e).startswith(f"{path}: corrupt checkpoint") or str(e).startswith(f"{path}: refused")):
                    crashes.append(f"{name} {path.name}: unclear error: {e}")
                continue
            except Exception as e:  # noqa: BLE001
                crashes.append(f"{name} {path.name}: {type(e).__name__}: {e}")
                continue
            err = capsys.readouterr().err
            if not (name.startswith("predict") and rc == 2 and f"{path}: corrupt checkpoint" in err):
                crashes.append(f"{name} {path.name}: accepted (rc {rc}) {err}")
    print(f"\nbit-flipped checkpoints: {tried} inputs tried, {tried - len(crashes)} handled, {len(crashes)} crashes")
    assert not crashes, crashes


@pytest.mark.timeout(120)
def test_misfit_and_truncated_checkpoints_name_keys_and_shapes(smoke_checkpoint, tmp_path):
    import copy

    from paperlib.model import checkpoints as K
    from paperlib.model import weights as W
    from paperlib.engine import train as T
    from paperlib.model.checkpoints import save_checkpoint
    from paperlib.model.sparsesync import build_model

    good, cfg = smoke_checkpoint
    raw = torch.load(good, weights_only=True)
    raw["meta"].pop("checksum")  # files edited by hand, saved without a checksum: the key and shape checks speak
    first = next(iter(raw["model"]))
    wkey = next(k for k, v in raw["model"].items() if k.endswith("weight") and v.ndim >= 2)
    cases = {
        "missing": (lambda sd: sd.pop(first), [first, "Missing"]),
        "extra": (lambda sd: sd.__setitem__("bogus.weight", torch.zeros(2)), ["bogus.weight", "Unexpected"]),
        "shape": (lambda sd: sd.__setitem__(wkey, torch.zeros(3, 3)), [wkey, "[3, 3]"]),
    }
    for name, (edit, words) in cases.items():
        r = copy.deepcopy(raw)
        edit(r["model"])
        path = tmp_path / f"{name}.pt"
        torch.save(r, path)
        with pytest.raises(W.CheckpointError) as e:
            K.load_model(path)
        assert str(path) in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
    # a different class count: the head's shapes are named when fine-tuning into the configured model
    five = dataclasses_replace(cfg.model, geometry=dataclasses_replace(cfg.geometry, num_classes=5))
    other = tmp_path / "five.pt"
    save_checkpoint(other, build_model(five), five)
    with pytest.raises(ValueError) as e:
        T.load_init_weights(build_model(cfg.model), str(other))
    msg = str(e.value)
    assert str(other) in msg and "shape mismatch" in msg and "(5," in msg and "(3," in msg, msg
    # truncated files (inside the zip directory, inside the weights, after the header) fail cleanly
    data = good.read_bytes()
    for cut in (len(data) - 10, len(data) // 2, 100):
        path = tmp_path / f"trunc_{cut}.pt"
        path.write_bytes(data[:cut])
        for load in (W.load_checkpoint, K.load_model, W.load_official_checkpoint):
            with pytest.raises(W.CheckpointError, match="cannot read checkpoint|truncated|not a") as e:
                load(path)
            assert str(path) in str(e.value)


def dataclasses_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)
