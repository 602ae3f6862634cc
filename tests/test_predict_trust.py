"""predict says how much the model knows: "uncertain" and a warning naming the checkpoint for a model trained only to
chance; the offset, "certain" and no warning for a model that knows the offsets of clips with known offsets; outputs
written atomically, non-UTF-8 file names escaped in every format, non-finite outputs refused, a bar over files."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from paperlib.commands import predict as predict_command
from paperlib.core.media import write_video
from paperlib.engine import config as RC
from paperlib.engine import train as T
from paperlib.studies import predict as P

FPS, SR = 25.0, 16000


def _event_clip(path, seconds=6.0, seed=0, size=(48, 64)):
    """A clip in sync: at random moments (about 3 a second) one white frame and, at the same moment, a 40 ms burst of
    noise; dark and silent in between."""
    rng = np.random.default_rng(seed)
    n_frames = int(seconds * FPS)
    events = np.flatnonzero(rng.random(n_frames) < 3 / FPS)
    frames = np.full((n_frames, *size, 3), 16, np.uint8)
    frames[events] = 240
    audio = np.zeros(int(seconds * SR), np.float32)
    burst = int(0.04 * SR)
    for e in events:
        start = int(e / FPS * SR)
        audio[start:start + burst] = 0.5 * rng.standard_normal(len(audio[start:start + burst]))
    return write_video(path, frames, fps=FPS, audio=audio[None], sample_rate=SR)


class EnvelopeSync(nn.Module):
    """A model that knows the offset of clips like :func:`_event_clip`: the logit of each offset class is the
    correlation of the picture's brightness with the sound's loudness, shifted by that offset (a stand-in for a trained
    SparseSync: training one past the chance plateau takes many minutes of CPU)."""

    def __init__(self, grid, fps):
        super().__init__()
        self.shifts = [int(round(o * fps)) for o in grid]

    def forward(self, video, audio):  # (B, T, 3, H, W), (B, 1, F, Ta)
        v = video.float().mean((2, 3, 4))  # (B, T)
        a = torch.nn.functional.interpolate(audio.float().mean(2), size=v.shape[1], mode="area")[:, 0]  # (B, T)
        out = []
        for s in self.shifts:  # the event at audio time t is seen at video time t + s
            vv, aa = (v[:, s:], a[:, :v.shape[1] - s]) if s >= 0 else (v[:, :s], a[:, -s:])
            vv, aa = vv - vv.mean(1, keepdim=True), aa - aa.mean(1, keepdim=True)
            out.append((vv * aa).sum(1) / (vv.norm(dim=1) * aa.norm(dim=1) + 1e-6))
        return 20 * torch.stack(out, 1)


@pytest.mark.parametrize("offset", [-1.0, 0.0, 1.0])
def test_a_model_that_knows_gives_the_offset_certain_and_without_warning(tmp_path, offset):
    geo = RC.resolve("smoke", []).model.geometry  # 2 s windows, classes -1 / 0 / +1 s
    validation = {"accuracy_1": 0.95, "n": 400, "step": 900}
    assert P.chance_warning("trained.pt", validation, geo.num_classes) is None
    pred = P.Predictor(EnvelopeSync(geo.grid(), geo.fps).eval(), geo, torch.device("cpu"), 40, "trained.pt",
                       validation=validation)
    clip = _event_clip(tmp_path / "events.mp4")
    res = P.predict_video(pred, clip, inject_offset_sec=offset)
    assert res["offset_sec"] == offset and res["clip_offset_sec"] == 0.0
    assert not res["uncertain"] and res["model_warning"] is None
    assert res["certainty"] > 0.5 and res["margin"] > 0.5 and res["itu_bt1359_acceptable"] is True
    assert "uncertain" not in res["summary"] and "in sync" in res["summary"] and "certainty" in res["summary"]


def test_certainty_is_zero_at_chance_and_one_when_sure():
    assert P.certainty(np.full(21, 1 / 21)) == {"margin": 0.0, "entropy": pytest.approx(math.log(21), abs=1e-6),
                                                "certainty": pytest.approx(0.0, abs=1e-6), "top_over_chance": 1.0}
    sure = P.certainty(np.array([0.0, 1.0, 0.0]))
    assert sure["certainty"] == 1.0 and sure["margin"] == 1.0 and sure["top_over_chance"] == 3.0
    assert P.certainty(np.array([0.45, 0.35, 0.2]))["certainty"] < P.MIN_CERTAINTY \
        < P.certainty(np.array([0.6, 0.3, 0.1]))["certainty"]


@pytest.fixture(scope="module")
def chance_checkpoint(tmp_path_factory):
    """The smoke preset trained for 4 steps on 24 synthetic clips: its stored validation accuracy is at chance."""
    from paperlib.data.synthetic import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth-chance")
    generate(SynthConfig(setting="dense-crop", size=32), root, clips=24, progress=False)
    cfg = RC.resolve("smoke", [f"data.root={root}", f"train.run_root={tmp_path_factory.mktemp('runs')}",
                               "train.progress=false", "train.tensorboard=false", "train.max_steps=4",
                               "train.test=false", "data.resize_short=40"])
    run = T.fit(cfg)
    return run / "checkpoints" / "best.pt"


def test_a_model_at_chance_is_uncertain_and_its_checkpoint_named(chance_checkpoint, tmp_path, capsys):
    clip = _event_clip(tmp_path / "events.mp4")
    pred = P.load_predictor(chance_checkpoint, "cpu")
    assert pred.validation is not None and pred.validation["accuracy_1"] <= 0.7
    assert pred.warning and str(chance_checkpoint) in pred.warning and "at chance" in pred.warning
    out = tmp_path / "r.json"
    assert predict_command.main([str(clip), "--checkpoint", str(chance_checkpoint), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"warning: checkpoint {chance_checkpoint}: its stored validation accuracy" in err
    (res,) = json.loads(out.read_text())
    assert res["uncertain"] is True and res["ffmpeg_fix"] is None and res["itu_bt1359_acceptable"] is None
    assert predict_command.main([str(clip), "--checkpoint", str(chance_checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert ": uncertain (the checkpoint is at chance" in printed and "ITU-R" not in printed and "fix:" not in printed


def test_outputs_are_atomic_and_non_utf8_names_escaped(chance_checkpoint, tmp_path, capsys, monkeypatch):
    good = _event_clip(tmp_path / "good.mp4")
    odd = os.path.join(os.fsencode(tmp_path), b"clip_\xff.mp4")
    os.rename(os.fsencode(_event_clip(tmp_path / "tmp.mp4", seed=1)), odd)
    odd_arg = os.fsdecode(odd)  # what Python's argv holds for such a name
    out = tmp_path / "out.csv"
    out.write_text("old results\n")
    from paperlib.core import io as core_io

    def no_space(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core_io.os, "replace", no_space)
    assert predict_command.main([str(good), odd_arg, "--checkpoint", str(chance_checkpoint), "--csv", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "old results\n"
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []
    monkeypatch.undo()
    assert predict_command.main([str(good), odd_arg, "--checkpoint", str(chance_checkpoint), "--csv", str(out)]) == 0
    rows = [r for r in csv.DictReader(out.open(encoding="utf-8")) if r["window"] == "all"]
    assert [r["path"] for r in rows] == [str(good), str(tmp_path / "clip_\\xff.mp4")]
    js = tmp_path / "out.json"
    assert predict_command.main([odd_arg, "--checkpoint", str(chance_checkpoint), "--json", str(js)]) == 0
    assert json.loads(js.read_text())[0]["path"].endswith("clip_\\xff.mp4")
    assert P.shell_quote(odd_arg).endswith("clip_\\xff.mp4'") and P.shell_quote(odd_arg).startswith("$'")


def test_non_finite_outputs_are_refused(chance_checkpoint, tmp_path, capsys, monkeypatch):
    clip = _event_clip(tmp_path / "events.mp4")
    monkeypatch.setattr(P.Predictor, "forward", lambda self, v, a: torch.full((v.shape[0], 3), float("nan")))
    with pytest.raises(P.ModelOutputError, match="not finite"):
        P.predict_video(P.load_predictor(chance_checkpoint, "cpu"), clip)
    assert predict_command.main([str(clip), str(clip), "--checkpoint", str(chance_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {chance_checkpoint}: the model's outputs on {clip} are not finite" in err


def test_progress_bar_over_files(chance_checkpoint, tmp_path, capsys):
    clips = [str(_event_clip(tmp_path / f"c{i}.mp4", seed=i)) for i in range(2)]
    assert predict_command.main([*clips, "--checkpoint", str(chance_checkpoint)]) == 0
    err = capsys.readouterr().err
    assert "predict: 100%" in err and "2/2" in err
