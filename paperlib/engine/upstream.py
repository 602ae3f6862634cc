"""Upstream pre-training of the feature extractors on synthetic data: the benchmark's stand-in for the public weights
the paper's extractors start from.

Paper (Sec. 3, Sec. 7.2, Tables 3/5): the visual extractor (S3D) starts from Kinetics-400 action classification, the
audio extractor (ResNet18) from VGGSound sound classification, both tasks that need no offsets; "feature extractors
not pre-trained" starts them at random. AVST_dec trains its audio extractor from scratch.

Here, the synthetic counterpart:
- A set of its own: dense-crop, dense-wide and sparse clips of :mod:`paperlib.data.synthetic` with seed
  :data:`DATA_SEED`, which no sync train/valid/test split uses (the campaign's sets use seeds 0, 1 and 1000); the
  sparse clips carry 3-5 events each (``DENSE_EVENT_PROBS``) so most windows hold a sound to classify. Held-out clips
  of seed ``DATA_SEED + 1`` test it.
- The task: classify each window's content, each backbone on its own modality: the visual backbone on frames
  (:data:`VIDEO_CLASSES`: a close talker, a talker in a wide cluttered scene, the 8 sparse event classes), the audio
  backbone on spectrograms (:data:`AUDIO_CLASSES`: speech and the 8 event classes). A linear classifier on the
  global-average-pooled features sits on each backbone and is dropped afterwards (as the public files' ``fc``).
- Windows are cut from random starts (audio and video aligned; offsets play no part) and transformed as the sync runs
  transform them (:func:`paperlib.data.transforms.train_transforms` / ``eval_transforms`` of the run's geometry), so
  the backbones see the same input statistics.

:func:`ensure_upstream` trains once per :class:`UpstreamConfig` and caches the result under a folder by its hash:
``upstream-<hash>-visual.pt`` and ``upstream-<hash>-audio.pt`` (``{"model": backbone state_dict}``, read by
:func:`paperlib.model.weights.load_backbone_weights` like the public files, through ``model.visual_weights`` /
``model.audio_weights``) and ``upstream-<hash>.json`` (the config, each backbone's test accuracy against its test set's
majority-class null, steps, seconds). The hash covers the config and the synthetic generator's version, and the file
names carry it, so runs that load the weights change their own hash when the upstream training changes.

Deviations: the clips are generated in memory (no H.264 round trip; the sync sets are decoded from mp4), and the
classes are the benchmark's content classes, not Kinetics' or VGGSound's. An interrupted upstream training starts
again (minutes); nothing half-written is kept (atomic writes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from paperlib.core.config import config_hash, to_dict
from paperlib.core.geometry import Geometry
from paperlib.core.io import atomic_output, lock_folder, write_json_atomic
from paperlib.data.datasets import DataConfig
from paperlib.data.synthetic import DENSE_EVENT_PROBS, SPARSE_CLASSES, SynthConfig
from paperlib.data.synthetic.config import GENERATOR_VERSION
from paperlib.data.transforms import eval_transforms, train_transforms
from paperlib.engine.plateau import load_synth_clips
from paperlib.model.backbones import BACKBONES
from paperlib.model.sparsesync import to_channels_last

VIDEO_CLASSES = ("talker-close", "talker-wide", *SPARSE_CLASSES)
AUDIO_CLASSES = ("speech", *SPARSE_CLASSES)
DATA_SEED = 4242  # no sync set uses it (campaign: 0, 1 and 1000)
SETTINGS = ("dense-crop", "dense-wide", "sparse")
FORMAT = "paperlib-upstream/1"


@dataclass(frozen=True)
class UpstreamConfig:
    """One upstream training: the input geometry it serves, the data and the optimisation."""

    size: int = 64  # synthetic frame side (px), as the sync sets of the profile
    crop: int = 48  # px, the sync runs' crop
    clip_sec: float = 5.0  # s, the sync runs' window (the audio extractor is trained per length, as the paper's)
    backbone: str = "small"  # paperlib.model.backbones.BACKBONES
    clips_per_setting: int = 80  # training clips of each of SETTINGS
    test_clips_per_setting: int = 16
    windows_per_test_clip: int = 2
    steps: int = 1000
    batch_size: int = 8  # as the CPU sync runs
    lr: float = 1e-3
    warmup_steps: int = 50
    seed: int = 0

    def geometry(self) -> Geometry:
        return Geometry(crop=self.crop, clip_sec=self.clip_sec)

    def digest(self) -> str:
        return config_hash({"config": to_dict(self), "generator": GENERATOR_VERSION, "format": FORMAT})


@dataclass(frozen=True)
class UpstreamWeights:
    """Where an upstream training's files are (they exist once :func:`ensure_upstream` returned them)."""

    visual: Path
    audio: Path
    report: Path

    def summary(self) -> dict[str, Any]:
        return json.loads(self.report.read_text())


def upstream_paths(cfg: UpstreamConfig, root: str | Path) -> UpstreamWeights:
    """The files of ``cfg``'s upstream training under ``root`` (not created)."""
    h = cfg.digest()
    root = Path(root)
    return UpstreamWeights(root / f"upstream-{h}-visual.pt", root / f"upstream-{h}-audio.pt",
                           root / f"upstream-{h}.json")


class PooledClassifier(nn.Module):
    """A backbone, global average pooling over its grid, a linear classifier."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x).flatten(2).mean(-1))


def _synth(setting: str, size: int, seed: int) -> SynthConfig:
    cfg = SynthConfig(setting=setting, size=size, seed=seed)
    if setting == "sparse":
        cfg = dataclasses.replace(cfg, event_count_probs=DENSE_EVENT_PROBS)
    return cfg.validate()


def labels(setting: str, sidecar: dict[str, Any]) -> tuple[int, int]:
    """(video class, audio class) of a clip of ``setting``."""
    if setting == "sparse":
        k = SPARSE_CLASSES.index(sidecar["label"])
        return 2 + k, 1 + k
    return (0 if setting == "dense-crop" else 1), 0


def load_set(cfg: UpstreamConfig, seed: int, per_setting: int, cache: Path | None, progress: bool
             ) -> list[dict[str, Any]]:
    """Clips of every setting with their (video, audio) labels."""
    out = []
    for setting in SETTINGS:
        for c in load_synth_clips(_synth(setting, cfg.size, seed), per_setting, cache, progress):
            v, a = labels(setting, c["sidecar"])
            out.append({"frames": c["frames"], "audio": c["audio"], "video_label": v, "audio_label": a})
    return out


def _window(clip: dict[str, Any], start_frame: int, geo: Geometry) -> dict[str, torch.Tensor]:
    t, n = geo.frames, geo.samples
    a0 = int(round(start_frame / geo.fps * geo.sample_rate))
    frames = torch.from_numpy(clip["frames"][start_frame:start_frame + t]).permute(0, 3, 1, 2)  # (T, 3, S, S)
    audio = torch.from_numpy(clip["audio"][a0:a0 + n])
    if frames.shape[0] != t or audio.shape[0] != n:
        raise ValueError(f"a {geo.clip_sec:g}-s window from frame {start_frame} does not fit a clip of "
                         f"{len(clip['frames'])} frames")
    return {"video": frames, "audio": audio}


def batch(clips: Sequence[dict[str, Any]], picks: Sequence[tuple[int, int]], tf, geo: Geometry,
          gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Transformed windows ``picks`` ((clip index, start frame) pairs) with their labels."""
    vids, auds = [], []
    for c, start in picks:
        s = tf(_window(clips[c], start, geo), gen)
        vids.append(s["video"])
        auds.append(s["audio"])
    return {"video": torch.stack(vids), "audio": torch.stack(auds),
            "video_label": torch.tensor([clips[c]["video_label"] for c, _ in picks]),
            "audio_label": torch.tensor([clips[c]["audio_label"] for c, _ in picks])}


def _last_start(clip: dict[str, Any], geo: Geometry) -> int:
    frames = len(clip["frames"])
    by_audio = int((len(clip["audio"]) - geo.samples) / geo.sample_rate * geo.fps)
    return min(frames - geo.frames, by_audio)


def test_picks(clips: Sequence[dict[str, Any]], per_clip: int, geo: Geometry) -> list[tuple[int, int]]:
    """Fixed, evenly spread test windows of every clip."""
    return [(c, int(round(k * _last_start(clip, geo) / max(1, per_clip - 1))))
            for c, clip in enumerate(clips) for k in range(per_clip)]


def majority_null(y: torch.Tensor) -> float:
    """Accuracy of always guessing the commonest class of the test labels."""
    return float(torch.bincount(y).max()) / len(y)


@torch.no_grad()
def evaluate(models: dict[str, PooledClassifier], clips, picks, geo: Geometry, batch_size: int) -> dict[str, Any]:
    tf = eval_transforms(geo)
    gen = torch.Generator().manual_seed(0)
    correct = {k: 0 for k in models}
    ys: dict[str, list[torch.Tensor]] = {k: [] for k in models}
    for m in models.values():
        m.eval()
    for i in range(0, len(picks), batch_size):
        b = batch(clips, picks[i:i + batch_size], tf, geo, gen)
        for k, m in models.items():
            pred = m(b[k]).argmax(-1)
            correct[k] += int((pred == b[f"{k}_label"]).sum())
            ys[k].append(b[f"{k}_label"])
    out = {}
    for k in models:
        y = torch.cat(ys[k])
        out[k] = {"accuracy": correct[k] / len(y), "null": majority_null(y), "n": len(y)}
    return out


def train_upstream(cfg: UpstreamConfig, cache: Path | None = None, progress: bool = True
                   ) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Train both backbones on their content tasks; returns the backbones and the report (test accuracy per
    modality against its majority-class null, steps, seconds)."""
    t0 = time.monotonic()
    geo = cfg.geometry().validate()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train = load_set(cfg, DATA_SEED, cfg.clips_per_setting, cache, progress)
    test = load_set(cfg, DATA_SEED + 1, cfg.test_clips_per_setting, cache, progress)
    vis_cls, aud_cls = BACKBONES[cfg.backbone]
    models = {"video": PooledClassifier(vis_cls(), len(VIDEO_CLASSES)),
              "audio": PooledClassifier(aud_cls(), len(AUDIO_CLASSES))}
    for m in models.values():
        to_channels_last(m)  # oneDNN's fastest CPU layout, as the sync runs (values unchanged)
    params = [p for m in models.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    tf = train_transforms(DataConfig(), geo)
    losses: list[dict[str, float]] = []
    for step in tqdm(range(1, cfg.steps + 1), desc="upstream", disable=not progress, leave=False):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, 0.01 + 0.99 * step / max(1, cfg.warmup_steps))
        idx = rng.integers(len(train), size=cfg.batch_size)
        picks = [(int(c), int(rng.integers(_last_start(train[c], geo) + 1))) for c in idx]
        b = batch(train, picks, tf, geo, gen)
        for m in models.values():
            m.train()
        parts = {k: F.cross_entropy(m(b[k]), b[f"{k}_label"]) for k, m in models.items()}
        loss = sum(parts.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 20 == 0 or step == cfg.steps:
            losses.append({"step": step, **{k: v.item() for k, v in parts.items()}})
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"upstream training diverged at step {step}: losses {parts}")
    test_res = evaluate(models, test, test_picks(test, cfg.windows_per_test_clip, geo), geo, 2 * cfg.batch_size)
    report = {"format": FORMAT, "hash": cfg.digest(), "config": to_dict(cfg), "data_seed": DATA_SEED,
              "test_seed": DATA_SEED + 1, "classes": {"video": list(VIDEO_CLASSES), "audio": list(AUDIO_CLASSES)},
              "train_clips": len(train), "test": test_res, "steps": cfg.steps, "seconds": time.monotonic() - t0,
              "losses": losses, "generator_version": GENERATOR_VERSION}
    return {k: m.backbone for k, m in models.items()}, report


def ensure_upstream(cfg: UpstreamConfig, root: str | Path, cache: Path | None = None,
                    progress: bool = True) -> UpstreamWeights:
    """The upstream weights of ``cfg`` under ``root``: read when present, trained once otherwise (one process at a
    time: others wait for the lock and then find the files)."""
    paths = upstream_paths(cfg, root)
    if paths.report.is_file() and paths.visual.is_file() and paths.audio.is_file():
        return paths
    with lock_folder(Path(root), f"train the upstream extractors {cfg.digest()}", wait=True):
        if paths.report.is_file() and paths.visual.is_file() and paths.audio.is_file():
            return paths
        backbones, report = train_upstream(cfg, cache, progress)
        for which, path in (("video", paths.visual), ("audio", paths.audio)):
            with atomic_output(path) as tmp:
                torch.save({"model": backbones[which].state_dict()}, tmp)
        write_json_atomic(paths.report, report)  # last: its presence says the weights are whole
    return paths
