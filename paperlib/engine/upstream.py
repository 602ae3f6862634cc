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
- The task (``UpstreamConfig.task``), one of :data:`TASKS`:

  - ``"correspondence"`` (the default): self-supervised audio-visual correspondence, both backbones at once. A small
    head (:class:`CorrespondenceHead`) sees the visual features averaged over space and the audio features averaged
    over frequency, on a common time axis, and says whether the audio window belongs to the video window: half the
    pairs are aligned, the other half take the audio of the same clip at least :data:`MIN_SHIFT_SEC` away or of another
    clip of the same setting at the same time (hard negatives: the content alone cannot tell them apart, the timing of
    mouth movements and sound onsets can). It needs no offsets and no labels, and its shifts are at least 5 steps of the
    21-class grid: the sync task's fine offsets are still to be learnt. This is the self-supervised counterpart of
    the paper's pre-training, and the default because it trains what the content task below cannot: when things move
    and sound. Measured (``results/plateau_study``): neither task shortens the dense-crop sync plateau. With the
    content task's weights SparseSync and AVST_dec left it no sooner than from random extractors (seed 0: at step 890
    against 670, and 1,590 against 1,460; ``results/plateau_study/content_task``); with these, SparseSync left it at
    570 / 630 / 660 against 670 / 680 / 540 (seeds 0-2) and AVST_dec (visual weights only) at 1,580 / 1,830 / 2,150
    against 1,460 / 1,670 / 1,850. What the plateau waits for is the sync head's matching, not the features.
  - ``"content"``: classify each window's content, each backbone on its own modality: the visual backbone on frames
    (:data:`VIDEO_CLASSES`: a close talker, a talker in a wide cluttered scene, the 8 sparse event classes), the audio
    backbone on spectrograms (:data:`AUDIO_CLASSES`: speech and the 8 event classes), the closest counterpart of
    Kinetics / VGGSound classification.

  The heads (a linear classifier on the pooled features, or the correspondence head) are dropped afterwards (as the
  public files' ``fc``).
- Windows are cut from random starts (for the content task audio and video aligned) and transformed as the sync runs
  transform them (:func:`paperlib.data.transforms.train_transforms` / ``eval_transforms`` of the run's geometry), so
  the backbones see the same input statistics.

:func:`ensure_upstream` trains once per :class:`UpstreamConfig` and caches the result under a folder by its hash:
``upstream-<hash>-visual.pt`` and ``upstream-<hash>-audio.pt`` (``{"model": backbone state_dict}``, read by
:func:`paperlib.model.weights.load_backbone_weights` like the public files, through ``model.visual_weights`` /
``model.audio_weights``) and ``upstream-<hash>.json`` (the config, the task's test accuracy against its test
set's majority-class null, per backbone for the content task, steps, seconds). The hash covers the config and the
synthetic generator's version, and the file names carry it, so runs that load the weights change their own hash when
the upstream training changes.

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
TASKS = ("correspondence", "content")
MIN_SHIFT_SEC = 1.0  # s: the smallest shift of a same-clip negative (5 steps of the 21-class grid, 0.2 s each)
FORMAT = "paperlib-upstream/2"


@dataclass(frozen=True)
class UpstreamConfig:
    """One upstream training: the input geometry it serves, the data and the optimisation."""

    size: int = 64  # synthetic frame side (px), as the sync sets of the profile
    crop: int = 48  # px, the sync runs' crop
    clip_sec: float = 5.0  # s, the sync runs' window (the audio extractor is trained per length, as the paper's)
    backbone: str = "small"  # paperlib.model.backbones.BACKBONES
    task: str = "correspondence"  # TASKS
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

    def validate(self) -> "UpstreamConfig":
        if self.task not in TASKS:
            raise ValueError(f"upstream task {self.task!r} is not one of {TASKS}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"upstream backbone {self.backbone!r} is not one of {sorted(BACKBONES)}")
        if self.steps < 1 or self.batch_size < 2 or self.clips_per_setting < 1 or self.test_clips_per_setting < 1:
            raise ValueError("an upstream training needs steps >= 1, batch_size >= 2 and a clip per setting (train "
                             f"and test), got {self.steps}, {self.batch_size}, {self.clips_per_setting}, "
                             f"{self.test_clips_per_setting}")
        return self

    def digest(self) -> str:
        return config_hash({"config": to_dict(self), "generator": GENERATOR_VERSION, "format": FORMAT})


def report_task(report: dict[str, Any]) -> str:
    """The task an upstream report was trained on; the first reports (format ``paperlib-upstream/1``) name none: they
    are the content task's."""
    return report.get("task", "content")


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
    """A backbone, global average pooling over its grid, a linear classifier (the content task)."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x).flatten(2).mean(-1))


class CorrespondenceHead(nn.Module):
    """Whether an audio window belongs to a video window (the correspondence task), scored by how the two streams
    co-vary in time: the visual features averaged over space and the audio features averaged over frequency (resampled
    to the visual time steps) are projected to a common width, centred over time and L2-normalised per time step; the
    logit is a learnt scale times their mean cosine similarity over time, plus a bias.

    Why a correlation and not a learnt comparison: the score is a product of the two streams, so from the first step
    the gradient tells each backbone to move with the other on aligned pairs and apart on negatives (the cross-
    correlation aid of :mod:`paperlib.engine.recipes` uses the same first-order signal). A head that concatenated the
    two streams and learnt the comparison with temporal convolutions stayed at ln 2 for 1,000 steps at 5 s.
    """

    def __init__(self, visual_channels: int, audio_channels: int, width: int = 128):
        super().__init__()
        self.visual = nn.Conv1d(visual_channels, width, 1)
        self.audio = nn.Conv1d(audio_channels, width, 1)
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        v = self.visual(visual.mean((3, 4)))  # (B, D, t)
        a = self.audio(F.interpolate(audio.mean(2), size=v.shape[-1], mode="linear", align_corners=False))
        v = F.normalize(v - v.mean(-1, keepdim=True), dim=1)
        a = F.normalize(a - a.mean(-1, keepdim=True), dim=1)
        return self.scale * (v * a).sum(1).mean(-1) + self.bias


class CorrespondenceModel(nn.Module):
    """Both backbones and the correspondence head."""

    def __init__(self, visual: nn.Module, audio: nn.Module):
        super().__init__()
        self.visual, self.audio = visual, audio
        self.head = CorrespondenceHead(visual.out_channels, audio.out_channels)

    def forward(self, video: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        return self.head(self.visual(video), self.audio(spec))


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
    """Clips of every setting with their setting and (video, audio) content labels."""
    out = []
    for setting in SETTINGS:
        for c in load_synth_clips(_synth(setting, cfg.size, seed), per_setting, cache, progress):
            v, a = labels(setting, c["sidecar"])
            out.append({"frames": c["frames"], "audio": c["audio"], "setting": setting, "video_label": v,
                        "audio_label": a})
    return out


def _window(clip: dict[str, Any], start_frame: int, geo: Geometry, audio_clip: dict[str, Any] | None = None,
            audio_frame: int | None = None) -> dict[str, torch.Tensor]:
    """A window of ``clip``'s frames from ``start_frame``, with the audio of ``audio_clip`` (default: the same clip)
    from ``audio_frame`` (default: in step with the frames), both in video frames."""
    audio_clip = clip if audio_clip is None else audio_clip
    audio_frame = start_frame if audio_frame is None else audio_frame
    t, n = geo.frames, geo.samples
    a0 = int(round(audio_frame / geo.fps * geo.sample_rate))
    frames = torch.from_numpy(clip["frames"][start_frame:start_frame + t]).permute(0, 3, 1, 2)  # (T, 3, S, S)
    audio = torch.from_numpy(audio_clip["audio"][a0:a0 + n])
    if frames.shape[0] != t or audio.shape[0] != n:
        raise ValueError(f"a {geo.clip_sec:g}-s window from frame {start_frame} (audio from frame {audio_frame}) "
                         f"does not fit a clip of {len(clip['frames'])} frames")
    return {"video": frames, "audio": audio}


def batch(clips: Sequence[dict[str, Any]], picks: Sequence[tuple[int, int]], tf, geo: Geometry,
          gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Transformed windows ``picks`` ((clip index, start frame) pairs) with their content labels."""
    vids, auds = [], []
    for c, start in picks:
        s = tf(_window(clips[c], start, geo), gen)
        vids.append(s["video"])
        auds.append(s["audio"])
    return {"video": torch.stack(vids), "audio": torch.stack(auds),
            "video_label": torch.tensor([clips[c]["video_label"] for c, _ in picks]),
            "audio_label": torch.tensor([clips[c]["audio_label"] for c, _ in picks])}


@dataclass(frozen=True)
class Pair:
    """A video window and an audio window for the correspondence task; ``kind`` is "aligned" (label 1), "shifted"
    (the same clip's audio at least MIN_SHIFT_SEC away) or "other-clip" (another clip's audio at the same time)."""

    video_clip: int
    video_start: int
    audio_clip: int
    audio_start: int
    kind: str

    @property
    def label(self) -> int:
        return int(self.kind == "aligned")


def pair_batch(clips: Sequence[dict[str, Any]], pairs: Sequence[Pair], tf, geo: Geometry,
               gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Transformed pairs with their correspondence labels (1: the audio belongs to the frames)."""
    vids, auds = [], []
    for p in pairs:
        s = tf(_window(clips[p.video_clip], p.video_start, geo, clips[p.audio_clip], p.audio_start), gen)
        vids.append(s["video"])
        auds.append(s["audio"])
    return {"video": torch.stack(vids), "audio": torch.stack(auds),
            "label": torch.tensor([p.label for p in pairs], dtype=torch.float32)}


def _last_start(clip: dict[str, Any], geo: Geometry) -> int:
    frames = len(clip["frames"])
    by_audio = int((len(clip["audio"]) - geo.samples) / geo.sample_rate * geo.fps)
    return min(frames - geo.frames, by_audio)


def _min_shift(geo: Geometry) -> int:
    return int(math.ceil(MIN_SHIFT_SEC * geo.fps))


def _partners(clips: Sequence[dict[str, Any]]) -> list[list[int]]:
    """For each clip, the other clips of its setting."""
    return [[j for j, d in enumerate(clips) if j != i and d["setting"] == c["setting"]] for i, c in enumerate(clips)]


def sample_pair(clips: Sequence[dict[str, Any]], partners: Sequence[Sequence[int]], rng: np.random.Generator,
                geo: Geometry) -> Pair:
    """A random training pair: aligned with probability 1/2, else a shifted or an other-clip negative (1/4 each; the
    one that exists when the clip is too short to shift or alone in its setting)."""
    c = int(rng.integers(len(clips)))
    last = _last_start(clips[c], geo)
    v = int(rng.integers(last + 1))
    if rng.random() < 0.5:
        return Pair(c, v, c, v, "aligned")
    shift = _min_shift(geo)
    far = [a for a in range(last + 1) if abs(a - v) >= shift]
    kinds = [k for k, ok in (("shifted", bool(far)), ("other-clip", bool(partners[c]))) if ok]
    if not kinds:
        raise ValueError(f"no negative pair for a {geo.clip_sec:g}-s window: the clips are too short to shift the "
                         f"audio by {MIN_SHIFT_SEC:g} s and clip {c} is the only one of its setting")
    if kinds[int(rng.integers(len(kinds)))] == "shifted":
        return Pair(c, v, c, int(far[int(rng.integers(len(far)))]), "shifted")
    o = int(partners[c][int(rng.integers(len(partners[c])))])
    return Pair(c, v, o, min(v, _last_start(clips[o], geo)), "other-clip")


def held_out_pairs(clips: Sequence[dict[str, Any]], per_clip: int, geo: Geometry) -> list[Pair]:
    """Fixed test pairs, half aligned: at each of ``per_clip`` evenly spread starts of every clip, the aligned pair
    and one negative, by turns the same clip's audio half the clip's start range away and the next clip of the same
    setting's audio at the same time (whichever exists when the other does not)."""
    partners = _partners(clips)
    out = []
    for i, (c, v) in enumerate(test_picks(clips, per_clip, geo)):
        last = _last_start(clips[c], geo)
        out.append(Pair(c, v, c, v, "aligned"))
        a = (v + (last + 1) // 2) % (last + 1)
        negatives = []
        if abs(a - v) >= _min_shift(geo):
            negatives.append(Pair(c, v, c, a, "shifted"))
        if partners[c]:
            o = min((j for j in partners[c] if j > c), default=partners[c][0])
            negatives.append(Pair(c, v, o, min(v, _last_start(clips[o], geo)), "other-clip"))
        if not negatives:
            raise ValueError(f"no negative test pair for a {geo.clip_sec:g}-s window of clip {c}")
        out.append(negatives[i % len(negatives)])
    return out


def test_picks(clips: Sequence[dict[str, Any]], per_clip: int, geo: Geometry) -> list[tuple[int, int]]:
    """Fixed, evenly spread test windows of every clip."""
    return [(c, int(round(k * _last_start(clip, geo) / max(1, per_clip - 1))))
            for c, clip in enumerate(clips) for k in range(per_clip)]


def majority_null(y: torch.Tensor) -> float:
    """Accuracy of always guessing the commonest class of the test labels."""
    return float(torch.bincount(y).max()) / len(y)


@torch.no_grad()
def evaluate(models: dict[str, PooledClassifier], clips, picks, geo: Geometry, batch_size: int) -> dict[str, Any]:
    """The content task's test accuracy per backbone against its majority-class null."""
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


@torch.no_grad()
def evaluate_correspondence(model: CorrespondenceModel, clips, pairs: Sequence[Pair], geo: Geometry,
                            batch_size: int) -> dict[str, Any]:
    """The correspondence task's test accuracy against its majority-class null (the pairs are half aligned: 50 %),
    and per kind of pair."""
    tf = eval_transforms(geo)
    gen = torch.Generator().manual_seed(0)
    model.eval()
    hits: list[bool] = []
    for i in range(0, len(pairs), batch_size):
        b = pair_batch(clips, pairs[i:i + batch_size], tf, geo, gen)
        hits += ((model(b["video"], b["audio"]) > 0).float() == b["label"]).tolist()
    y = torch.tensor([p.label for p in pairs])
    by_kind = {}
    for kind in ("aligned", "shifted", "other-clip"):
        own = [h for h, p in zip(hits, pairs) if p.kind == kind]
        if own:
            by_kind[kind] = {"accuracy": sum(own) / len(own), "n": len(own)}
    return {"correspondence": {"accuracy": sum(hits) / len(hits), "null": majority_null(y), "n": len(hits),
                               "by_kind": by_kind}}


def _lr_at(cfg: UpstreamConfig, step: int) -> float:
    return cfg.lr * min(1.0, 0.01 + 0.99 * step / max(1, cfg.warmup_steps))


def train_upstream(cfg: UpstreamConfig, cache: Path | None = None, progress: bool = True
                   ) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Train both backbones on ``cfg.task``; returns the backbones (``{"video": ..., "audio": ...}``) and the report
    (the task's test accuracy against its majority-class null, per backbone for the content task; steps, seconds)."""
    t0 = time.monotonic()
    cfg = cfg.validate()
    geo = cfg.geometry().validate()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    train = load_set(cfg, DATA_SEED, cfg.clips_per_setting, cache, progress)
    test = load_set(cfg, DATA_SEED + 1, cfg.test_clips_per_setting, cache, progress)
    vis_cls, aud_cls = BACKBONES[cfg.backbone]
    if cfg.task == "content":
        heads = {"video": PooledClassifier(vis_cls(), len(VIDEO_CLASSES)),
                 "audio": PooledClassifier(aud_cls(), len(AUDIO_CLASSES))}
        model: nn.Module = nn.ModuleDict(heads)
    else:
        model = CorrespondenceModel(vis_cls(), aud_cls())
        partners = _partners(train)
    to_channels_last(model)  # oneDNN's fastest CPU layout, as the sync runs (values unchanged)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    tf = train_transforms(DataConfig(), geo)
    losses: list[dict[str, float]] = []
    for step in tqdm(range(1, cfg.steps + 1), desc=f"upstream ({cfg.task})", disable=not progress, leave=False):
        for g in opt.param_groups:
            g["lr"] = _lr_at(cfg, step)
        model.train()
        if cfg.task == "content":
            idx = rng.integers(len(train), size=cfg.batch_size)
            b = batch(train, [(int(c), int(rng.integers(_last_start(train[c], geo) + 1))) for c in idx], tf, geo, gen)
            parts = {k: F.cross_entropy(m(b[k]), b[f"{k}_label"]) for k, m in heads.items()}
        else:
            b = pair_batch(train, [sample_pair(train, partners, rng, geo) for _ in range(cfg.batch_size)], tf, geo,
                           gen)
            parts = {"correspondence": F.binary_cross_entropy_with_logits(model(b["video"], b["audio"]),
                                                                          b["label"])}
        loss = sum(parts.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 20 == 0 or step == cfg.steps:
            losses.append({"step": step, **{k: v.item() for k, v in parts.items()}})
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"upstream training diverged at step {step}: losses {parts}")
    if cfg.task == "content":
        test_res = evaluate(heads, test, test_picks(test, cfg.windows_per_test_clip, geo), geo, 2 * cfg.batch_size)
        backbones = {k: m.backbone for k, m in heads.items()}
    else:
        test_res = evaluate_correspondence(model, test, held_out_pairs(test, cfg.windows_per_test_clip, geo), geo,
                                           2 * cfg.batch_size)
        backbones = {"video": model.visual, "audio": model.audio}
    report = {"format": FORMAT, "hash": cfg.digest(), "task": cfg.task, "config": to_dict(cfg),
              "data_seed": DATA_SEED, "test_seed": DATA_SEED + 1,
              "classes": {"video": list(VIDEO_CLASSES), "audio": list(AUDIO_CLASSES)} if cfg.task == "content" else
              {"correspondence": ["other", "aligned"]},
              "train_clips": len(train), "test": test_res, "steps": cfg.steps, "seconds": time.monotonic() - t0,
              "losses": losses, "generator_version": GENERATOR_VERSION,
              "torch_threads": torch.get_num_threads()}
    return backbones, report


def ensure_upstream(cfg: UpstreamConfig, root: str | Path, cache: Path | None = None,
                    progress: bool = True, threads: int | None = 1) -> UpstreamWeights:
    """The upstream weights of ``cfg`` under ``root``: read when present, trained once otherwise (one process at a
    time: others wait for the lock and then find the files), with ``threads`` torch threads (None: torch's default).

    One thread by default, as the campaign's training workers: on the 2-core machine a two-thread upstream training
    beside one other busy process slowed from ~0.4 to ~2.8 s per step (threads waiting on each other), and one
    thread alone is nearly as fast as two (two one-thread workers ran 4.2x the steps/s of one two-thread process,
    ``paperlib.paper.budget``)."""
    paths = upstream_paths(cfg, root)
    if paths.report.is_file() and paths.visual.is_file() and paths.audio.is_file():
        return paths
    with lock_folder(Path(root), f"train the upstream extractors {cfg.digest()}", wait=True):
        if paths.report.is_file() and paths.visual.is_file() and paths.audio.is_file():
            return paths
        before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            backbones, report = train_upstream(cfg, cache, progress)
        finally:
            torch.set_num_threads(before)
        for which, path in (("video", paths.visual), ("audio", paths.audio)):
            with atomic_output(path) as tmp:
                torch.save({"model": backbones[which].state_dict()}, tmp)
        write_json_atomic(paths.report, report)  # last: its presence says the weights are whole
    return paths
