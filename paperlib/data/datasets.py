"""Offsets, windows and datasets of SparseSync: what one training or test example is, to the frame and the sample.

Paper Sec. 3 ("Training procedure": 5 s windows, offsets on a grid of 21 classes in [-2, 2] s) and Sec. 5 (LRS3,
VGGSound-Sparse); every step and number follows the authors' code (v-iashin/SparseSync).

Semantics (official ``EqualifyFromRight`` + ``TemporalCropAndOffsetRandomFeasible``):
- A clip is trimmed to n_v = min(video frames at 25 fps, 10 s * 25, audio samples // 640) frames and 640 * n_v samples.
- Grid ``linspace(-max_off, max_off, C)``; target = index of the nearest grid value.
- Train: ``off = round(choice(grid), 2)``; ``v_start ~ U[max(0, -off), min(vmax, vmax - off)]``,
  vmax = (n_v - 125) / 25;
  ``v_start_i = int(v_start * 25)``; ``a_start_i = int((v_start_i / 25 + off) * 16000)``; then audio jitter
  ``a_start_i += randint(-min(a_start_i, J), min(max_a_start - a_start_i, J))``, J = int(0.05 * 16000) = 800, which
  does not change the label; a slightly negative ``a_start_i`` (rounding) is clamped to 0.
- Valid/test: fixed (offset, vstart) per clip from the official CSVs; ``v_start_i = int(vstart * 25)``,
  ``a_start_i = int((vstart + off) * 16000)`` (raw CSV vstart, no jitter). All splits' CSVs of a configuration are
  merged, as the official ``get_fixed_offsets``. Or, with ``fixed_offsets=False``, random windows ``iter_times`` times.
- Sign: a positive offset means the audio window starts later in source time than the visual one (audio leads).
- Video frames [v_start_i, v_start_i + 125) and audio samples [a_start_i, a_start_i + 80000) are decoded by seeking
  (paperlib.core.media), not by decoding the whole clip; the result is the same (tests/test_media.py).

Datasets (layouts under ``root``): LRS3 ``pretrain/<vid>/<clip>.mp4`` with ``lrs3_{split}.txt`` lists (else an 8:1:1
split by video id with ``random.Random(1337)``, as the official ``make_split_files``); VGGSound(-Sparse)
``video/<ytid>_<startms>_<endms>.mp4`` with ``vggsound.csv`` / ``vggsound_sparse.csv`` (``ytid,start,label,split``, no
header), classes from ``picked_sparse_classes.csv`` (else all labels of the CSV) re-indexed alphabetically, valid
carved from train with the per-class counts of test (seed 1337); a folder of videos (8:1:1 by clip, seed 1337).

Deviations: randomness comes from per-item generators seeded by (seed, epoch, index, attempt): call
``dataset.set_epoch(epoch)`` every epoch; the official code used the global ``random`` state. Clips shorter than
``min_clip_sec`` are found when read (and counted as bad files) rather than by a pre-computed list (filter lists are
also supported: as the official code, an entry is a clip's path relative to the data root, e.g.
``pretrain/<vid>/<clip>.mp4``, matched with whole ids only). Listed LRS3 clips absent on disk are left out and logged
(VGGSound: rows without a file). Bad training files are skipped and replaced by another index (bounded retries),
never silently; a bad valid/test file is an error naming it (never replaced). Fixed-offset CSVs that paperlib
generated carry a ``<csv>.generated.json`` marker next to them (:func:`generated_fixed_offsets`): a test on them is
not at the official windows.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import logging
import os
import random
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from paperlib.core.geometry import Geometry
from paperlib.core.media import MediaError, MediaInfo, probe, read_audio, read_video
from paperlib.data.transforms import eval_transforms, train_transforms

log = logging.getLogger("paperlib.data.datasets")

VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")
SPLITS = ("train", "valid", "test")
SPLIT_SEED = 1337  # official make_split_files / VGGSound valid carving
FIXED_OFFSET_SEED = 1338  # official make_fixed_offset.py: training.seed + 1
PROTOCOL_BASE_URL = "https://raw.githubusercontent.com/v-iashin/SparseSync/main/"


@dataclass
class DataConfig:
    dataset: str = "lrs3"  # lrs3 | vggsound | vggsound_sparse | folder
    root: str = ""  # data root (the layout of the module docstring)
    upscale_crop: int = 192  # px, the crop that is sometimes upscaled to `crop`
    resize_short: int | None = None  # px, rescale the short side on the fly (small CPU geometry); None = as stored
    max_clip_sec: float = 10.0  # s, EqualifyFromRight
    min_clip_sec: float = 9.0  # s, shorter clips are bad files (official: filter list less_than_9s)
    audio_jitter_sec: float = 0.05  # s, train-time audio start jitter (label unchanged)
    p_horizontal_flip: float = 0.5
    sometimes_upscale_p: float = 0.0
    p_color_jitter: float = 0.0
    p_gray_scale: float = 0.0
    p_audio_aug: float = 0.0  # each of reverb, gain, pitch, low-pass, noise, freq mask, time mask
    freq_mask: int = 64  # SpecAugment F
    time_mask: int = 200  # SpecAugment T
    fixed_offsets: bool = True  # valid/test read offsets from the fixed-offset CSVs (generated when absent)
    fixed_offsets_dir: str | None = None  # default <root>/fixed_offsets
    iter_times: int = 1  # valid/test passes with random offsets (requires fixed_offsets=False)
    filter_lists: tuple[str, ...] = ()  # extra files of ids to exclude (relative to root or absolute)
    default_filters: bool = True  # also <root>/filtered_examples_{lrs,vggsound}/*.txt when present
    max_retries: int = 10  # consecutive bad files before an item fails
    cache_decoded: int = 0  # keep up to N whole decoded clips in RAM per dataset (use with num_workers=0); 0: off
    decoded_cache_dir: str = ""  # also keep whole decoded clips as .npz files here, shared by processes and runs

    def validate(self, geo: Geometry) -> "DataConfig":
        """Check this config on its own and against the run's geometry; returns self."""
        if self.dataset not in ("lrs3", "vggsound", "vggsound_sparse", "folder"):
            raise ValueError(f"dataset must be lrs3|vggsound|vggsound_sparse|folder, got {self.dataset!r}")
        geo.validate()
        step = geo.step_sec
        if self.audio_jitter_sec > step / 2 + 1e-9:
            raise ValueError(f"audio_jitter_sec {self.audio_jitter_sec} exceeds half the grid step {step / 2:.3f} s: "
                             f"the jitter would change the label")
        if self.min_clip_sec + 1e-9 < geo.clip_sec + geo.max_off_sec:
            raise ValueError(f"min_clip_sec {self.min_clip_sec} < clip_sec + max_off_sec = "
                             f"{geo.clip_sec + geo.max_off_sec}: some offsets would be infeasible")
        if self.max_clip_sec < self.min_clip_sec:
            raise ValueError(f"max_clip_sec {self.max_clip_sec} < min_clip_sec {self.min_clip_sec}")
        if self.iter_times < 1:
            raise ValueError(f"iter_times must be >= 1, got {self.iter_times}")
        if self.iter_times > 1 and self.fixed_offsets:
            raise ValueError("iter_times > 1 repeats random test windows: set fixed_offsets=False as well")
        if geo.sample_rate % int(geo.fps) or geo.fps != int(geo.fps):
            raise ValueError(f"sample_rate {geo.sample_rate} must be a multiple of an integer fps {geo.fps}")
        for name in ("p_horizontal_flip", "sometimes_upscale_p", "p_color_jitter", "p_gray_scale", "p_audio_aug"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability, got {v}")
        return self


def item_shapes(geo: Geometry) -> dict[str, tuple[int, ...]]:
    """Shapes of an item's tensors: video (T, 3, crop, crop), audio (1, n_fft // 2 + 1, 1 + N // hop)."""
    return {"video": (geo.frames, 3, geo.crop, geo.crop), "audio": (1, *geo.spec_shape)}


# --------------------------------------------------------------------------------------------------------------------
# Offsets and windows (pure functions)
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class Window:
    offset_sec: float  # grid offset (s); positive: the audio window starts later (audio leads)
    target: int  # grid index
    v_start_i: int  # first video frame
    a_start_i: int  # first audio sample (after jitter)


def clip_lengths(info: MediaInfo, cfg: DataConfig, geo: Geometry) -> tuple[int, int]:
    """(n_v frames, n_a samples) after the official EqualifyFromRight trim (max_clip_sec)."""
    spf = geo.sample_rate // int(geo.fps)  # samples per frame: 640
    n_v = min(info.n_frames_at(geo.fps), int(round(cfg.max_clip_sec * geo.fps)),
              info.n_samples_at(geo.sample_rate) // spf)
    return n_v, n_v * spf


def sample_train_window(n_v: int, cfg: DataConfig, geo: Geometry, rng: random.Random, jitter: bool = True) -> Window:
    """A random (offset, start) pair for a clip of ``n_v`` frames, as ``TemporalCropAndOffsetRandomFeasible``."""
    grid = geo.grid()
    t, n = geo.frames, geo.samples
    off = round(float(rng.choice(list(grid))), 2)
    vmax = (n_v - t) / geo.fps
    lo, hi = max(0.0, -off), min(vmax, vmax - off)
    if hi < lo - 1e-9:
        raise ValueError(f"a clip of {n_v} frames cannot hold a {geo.clip_sec} s window at offset {off} s")
    v_start = rng.uniform(lo, hi)
    v_start_i = int(v_start * geo.fps)
    a_start_i = int((v_start_i / geo.fps + off) * geo.sample_rate)
    a_start_i = max(0, a_start_i)  # at most one frame of samples below 0 (frame snapping): clamp, as official
    max_a_start = n_v * (geo.sample_rate // int(geo.fps)) - n
    if jitter and cfg.audio_jitter_sec > 0:
        j = int(cfg.audio_jitter_sec * geo.sample_rate)
        a_start_i += rng.randint(-min(a_start_i, j), min(max_a_start - a_start_i, j))
    return Window(off, geo.offset_to_target(off), v_start_i, a_start_i)


def fixed_window(offset_sec: float, vstart_sec: float, geo: Geometry) -> Window:
    """The window of a fixed-offset CSV row: ``int(vstart * fps)``, ``int((vstart + off) * sr)`` (raw vstart)."""
    v_start_i = int(vstart_sec * geo.fps)
    a_start_i = max(0, int((vstart_sec + offset_sec) * geo.sample_rate))
    return Window(offset_sec, geo.offset_to_target(offset_sec), v_start_i, a_start_i)


# --------------------------------------------------------------------------------------------------------------------
# Fixed-offset CSVs (official format)
# --------------------------------------------------------------------------------------------------------------------

def _fmt_sec(x: float) -> str:
    return str(int(x)) if float(x) == int(x) else str(x)


def fixed_offsets_name(split: str, num_classes: int, clip_sec: float, max_off_sec: float) -> str:
    """``{split}_size{C}_crop{L}_min{-m:.2f}_max{m:.2f}.csv`` as the official ``get_fixed_off_fname``."""
    return f"{split}_size{num_classes}_crop{_fmt_sec(clip_sec)}_min{-max_off_sec:.2f}_max{max_off_sec:.2f}.csv"


def fixed_offsets_path(cfg: DataConfig, geo: Geometry, split: str) -> Path:
    folder = Path(cfg.fixed_offsets_dir) if cfg.fixed_offsets_dir else Path(cfg.root) / "fixed_offsets"
    return folder / fixed_offsets_name(split, geo.num_classes, geo.clip_sec, geo.max_off_sec)


def write_fixed_offsets(path: str | os.PathLike, rows: dict[str, tuple[float, float]]) -> Path:
    """Write {id: (offset_sec, vstart_sec)} with header ``path,offset_sec,vstart_sec``, values rounded to 2 decimals."""
    from paperlib.core.io import atomic_output

    path = Path(path)
    # a writer-unique temporary name, fsync, rename: ranks that build the same CSV at once never clobber each other
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "offset_sec", "vstart_sec"])
        for key, (off, vstart) in rows.items():
            w.writerow([key, round(float(off), 2), round(float(vstart), 2)])
    return path


def read_fixed_offsets(path: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """Read one fixed-offset CSV -> {id: (offset_sec, vstart_sec)}."""
    out: dict[str, tuple[float, float]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", "offset_sec", "vstart_sec"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: header must be path,offset_sec,vstart_sec, got {reader.fieldnames}")
        for row in reader:
            out[row["path"]] = (float(row["offset_sec"]), float(row["vstart_sec"]))
    return out


def generated_marker(csv_path: str | os.PathLike) -> Path:
    """The file that marks a fixed-offset CSV as generated here (not the authors' file)."""
    return Path(f"{csv_path}.generated.json")


def generated_fixed_offsets(cfg: DataConfig, geo: Geometry) -> list[Path]:
    """The fixed-offset CSVs of this configuration that paperlib generated (empty: all are the official files)."""
    return [Path(p) for p in sorted(glob.glob(str(fixed_offsets_path(cfg, geo, "*")))) if
            generated_marker(p).is_file()]


def load_fixed_offsets(cfg: DataConfig, geo: Geometry) -> dict[str, tuple[float, float]]:
    """Merge the CSVs of every split of this configuration (official: the split name is globbed with ``*``)."""
    pattern = str(fixed_offsets_path(cfg, geo, "*"))
    merged: dict[str, tuple[float, float]] = {}
    for p in sorted(glob.glob(pattern)):
        for key, val in read_fixed_offsets(p).items():
            if key in merged and merged[key] != val:
                raise ValueError(f"{p}: {key} has offset/vstart {val}, another split's file has {merged[key]}")
            merged[key] = val
    return merged


# --------------------------------------------------------------------------------------------------------------------
# Records: which clips a split holds
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class Record:
    id: str  # the official id: pretrain/<vid>/<clip> (LRS3), <ytid>_<startms>_<endms> (VGGSound), relative stem
    path: str  # file path
    label: int = -1  # content class (VGGSound(-Sparse)), -1 if none


def _read_lines(path: str | os.PathLike) -> list[str]:
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


def _strip_ext(name: str) -> str:
    base, ext = os.path.splitext(name)
    return base if ext.lower() in VIDEO_EXTS + (".wav",) else name


def filter_list_files(cfg: DataConfig) -> list[Path]:
    """The filter lists of ``cfg``: ``cfg.filter_lists`` and, with ``default_filters``, every ``*.txt`` of the
    official filter folder under root (``filtered_examples_lrs`` for LRS3, ``filtered_examples_vggsound`` else)."""
    root = Path(cfg.root)
    files = [Path(p) if os.path.isabs(p) else root / p for p in cfg.filter_lists]
    if cfg.default_filters:
        sub = "filtered_examples_lrs" if cfg.dataset == "lrs3" else "filtered_examples_vggsound"
        files += sorted((root / sub).glob("*.txt"))
    return files


def filter_entry_id(entry: str, root: str | os.PathLike) -> str:
    """The clip id a filter-list line names: its first comma field as a path relative to the data root (an absolute
    path under ``root`` made relative, ``./`` and the extension dropped): ``pretrain/bRQahFJUSJQ/00003.mp4`` ->
    ``pretrain/bRQahFJUSJQ/00003``, ``G1x66WZKZKQ_215000_225000.mp4`` -> ``G1x66WZKZKQ_215000_225000``.

    The official lists name clips by their path, so an entry is compared with whole ids only: a bare clip number
    (``00003``) names no LRS3 clip (every LRS3 video has its own ``00003``)."""
    key = entry.split(",")[0].strip()
    if os.path.isabs(key):
        rootp = os.path.abspath(os.fspath(root))
        if os.path.commonpath([rootp, os.path.abspath(key)]) == rootp:
            key = os.path.relpath(key, rootp)
    key = os.path.normpath(key).replace(os.sep, "/")
    return _strip_ext(key.removeprefix("./"))


def filtered_ids(cfg: DataConfig) -> set[str]:
    """Ids to exclude (:func:`filter_list_files`, each line read by :func:`filter_entry_id`)."""
    ids: set[str] = set()
    for f in filter_list_files(cfg):
        if not f.is_file():
            raise FileNotFoundError(f"filter list {f} does not exist")
        ids.update(filter_entry_id(line, cfg.root) for line in _read_lines(f))
    return ids


def _split_ids_811(ids: Sequence[str], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """Shuffle sorted ids with Random(seed): first 10 % test, next 10 % valid, the rest train."""
    ids = sorted(ids)
    random.Random(seed).shuffle(ids)
    n = int(len(ids) * 0.1)
    return {"test": ids[:n], "valid": ids[n:2 * n], "train": ids[2 * n:]}


def lrs3_records(cfg: DataConfig, split: str) -> list[Record]:
    root = Path(cfg.root)
    list_file = root / f"lrs3_{split}.txt"
    if list_file.is_file():
        ids = [_strip_ext(x) for x in _read_lines(list_file)]
    else:
        clips = sorted(str(p.relative_to(root).with_suffix("")) for p in (root / "pretrain").glob("*/*.mp4")
                       if not p.name.startswith("."))  # hidden: a killed writer's temporary
        if not clips:
            raise FileNotFoundError(f"no LRS3 clips under {root / 'pretrain'} (expected pretrain/<vid>/<clip>.mp4)")
        by_video: dict[str, list[str]] = defaultdict(list)
        for c in clips:
            by_video[c.split("/")[1]].append(c)
        videos = _split_ids_811(list(by_video))[split]
        ids = sorted(c for v in videos for c in by_video[v])
        log.info("LRS3: no split list %s; split %d videos 8:1:1 by video id (Random(%d)) -> %d %s clips",
                 list_file, len(by_video), SPLIT_SEED, len(ids), split)
    return [Record(i, str(root / f"{i}.mp4")) for i in ids]


def _vggsound_id(ytid: str, start: str) -> str:
    s = int(round(float(start) * 1000))
    return f"{ytid}_{s}_{s + 10000}"


def read_vggsound_csv(path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Rows (id, label, split) of an official VGGSound(-Sparse) annotation CSV (``ytid,start,label,split``)."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.reader(f):
            if not r or len(r) < 4:
                continue
            ytid, start, label, split = r[0].strip(), r[1].strip(), r[2].strip(), r[3].strip()
            try:
                rows.append((_vggsound_id(ytid, start), label, split))
            except ValueError:  # a header line
                continue
    return rows


def sparse_classes(root: Path) -> list[str] | None:
    """The 12 VGGSound-Sparse classes from ``picked_sparse_classes.csv`` (tab-separated ``class\\tis_sparse``)."""
    p = root / "picked_sparse_classes.csv"
    if not p.is_file():
        return None
    with open(p, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        return sorted(r["class"] for r in reader if r.get("is_sparse", "").strip().lower() == "y")


def vggsound_records(cfg: DataConfig, split: str) -> list[Record]:
    root = Path(cfg.root)
    sparse = cfg.dataset == "vggsound_sparse"
    csv_path = root / ("vggsound_sparse.csv" if sparse else "vggsound.csv")
    if not csv_path.is_file():
        raise FileNotFoundError(f"annotation file {csv_path} is missing (official format: ytid,start,label,split)")
    rows = read_vggsound_csv(csv_path)
    classes = sparse_classes(root) if sparse else None
    if classes is None:
        classes = sorted({lab for _, lab, _ in rows})
    else:
        rows = [r for r in rows if r[1] in set(classes)]
    label_of = {c: i for i, c in enumerate(classes)}  # alphabetical re-indexing
    video_dir = root / "video"
    present = {_strip_ext(n): n for n in os.listdir(video_dir)} if video_dir.is_dir() else {}
    rows = [r for r in rows if r[0] in present]
    label = {vid: label_of[lab] for vid, lab, _ in rows}
    # split lists: VGGSound-Sparse keeps the ids of the official VGGSound lists that are in its CSV (assumed to be how
    # the official code reaches 5,252 / 758 / 542 clips; a vggsound_sparse_{split}.txt takes precedence)
    candidates = ([root / f"vggsound_sparse_{split}.txt"] if sparse else []) + [root / f"vggsound_{split}.txt"]
    list_file = next((f for f in candidates if f.is_file()), None)
    if list_file is not None:
        ids = [i for i in (_strip_ext(os.path.basename(x)) for x in _read_lines(list_file)) if i in label]
    else:
        test = sorted(vid for vid, _, s in rows if s == "test")
        train = sorted(vid for vid, _, s in rows if s == "train")
        # valid: from train, per class as many as test has (official, seed 1337)
        per_class_test = Counter(label[v] for v in test)
        rng = random.Random(SPLIT_SEED)
        train_by_class: dict[int, list[str]] = defaultdict(list)
        for v in train:
            train_by_class[label[v]].append(v)
        valid: list[str] = []
        for c in sorted(train_by_class):
            pool = train_by_class[c]
            rng.shuffle(pool)
            valid += pool[:per_class_test.get(c, 0)]
        valid_set = set(valid)
        ids = {"test": test, "valid": sorted(valid), "train": [v for v in train if v not in valid_set]}[split]
    return [Record(i, str(video_dir / present[i]), label[i]) for i in ids]


def folder_records(cfg: DataConfig, split: str) -> list[Record]:
    root = Path(cfg.root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise FileNotFoundError(f"no videos ({', '.join(VIDEO_EXTS)}) under {root}")
    by_id = {str(p.relative_to(root).with_suffix("")): p for p in files}
    ids = sorted(by_id) if split == "all" else _split_ids_811(list(by_id))[split]
    return [Record(i, str(by_id[i])) for i in sorted(ids)]


def records_for(cfg: DataConfig, split: str) -> list[Record]:
    """The clips of a split, filter lists applied."""
    if split not in SPLITS and not (cfg.dataset == "folder" and split == "all"):
        raise ValueError(f"split must be one of {SPLITS}" + (" or 'all'" if cfg.dataset == "folder" else "")
                         + f", got {split!r}")
    if cfg.dataset == "lrs3":
        recs = lrs3_records(cfg, split)
    elif cfg.dataset in ("vggsound", "vggsound_sparse"):
        recs = vggsound_records(cfg, split)
    else:
        recs = folder_records(cfg, split)
    drop = filtered_ids(cfg)
    if drop:
        kept = [r for r in recs if r.id not in drop]
        if len(kept) != len(recs):
            log.info("%s/%s: %d clips excluded by filter lists", cfg.dataset, split, len(recs) - len(kept))
        recs = kept
    if cfg.dataset == "lrs3":  # LRS3 was withdrawn: copies often lack clips of the lists (VGGSound: vggsound_records)
        present = [r for r in recs if os.path.isfile(r.path)]
        if len(present) != len(recs):
            gone = [r.id for r in recs if not os.path.isfile(r.path)]
            log.warning("%s/%s: %d of %d listed clips are on disk; %d left out (e.g. %s)", cfg.dataset, split,
                        len(present), len(recs), len(gone), ", ".join(gone[:3]))
        recs = present
    return recs


def make_fixed_offsets(cfg: DataConfig, geo: Geometry, split: str, records: Sequence[Record] | None = None,
                       seed: int = FIXED_OFFSET_SEED, path: str | os.PathLike | None = None) -> Path:
    """Generate and write the fixed-offset CSV of a split: the train sampling without jitter, ``Random(seed)``.

    Clips that cannot be read or are too short are left out and logged. Returns the CSV path.
    """
    cfg.validate(geo)
    records = records_for(cfg, split) if records is None else records
    rng = random.Random(seed)
    rows: dict[str, tuple[float, float]] = {}
    skipped: dict[str, str] = {}
    min_frames = int(round(cfg.min_clip_sec * geo.fps))
    for rec in records:
        try:
            info = probe(rec.path)
            for kind in ("video", "audio"):
                if getattr(info, kind) is None:
                    raise MediaError(f"{rec.path}: no {kind} stream")
            n_v, _ = clip_lengths(info, cfg, geo)
            if n_v < min_frames:
                raise MediaError(f"{rec.path}: too short ({n_v / geo.fps:.2f} s < {cfg.min_clip_sec} s)")
        except MediaError as e:
            skipped[rec.path] = str(e)
            continue
        w = sample_train_window(n_v, cfg, geo, rng, jitter=False)
        rows[rec.id] = (w.offset_sec, w.v_start_i / geo.fps)
    out = write_fixed_offsets(path or fixed_offsets_path(cfg, geo, split), rows)
    from paperlib.core.io import write_json_atomic

    write_json_atomic(generated_marker(out), {"seed": seed, "rows": len(rows), "skipped": sorted(skipped)})
    log.info("wrote %s: %d rows (seed %d), %d clips skipped", out, len(rows), seed, len(skipped))
    for p, why in skipped.items():
        log.warning("fixed offsets: skipped %s", why)
    return out


# --------------------------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------------------------

class AVSyncDataset(Dataset):
    """Items ``{"video", "audio", "target", "offset_sec", "v_start_sec", "a_start_sec", "id", "label", "path"}``.

    Shapes: video float32 (T, 3, crop, crop), audio float32 (1, F, Ta) (``item_shapes``). ``bad_files`` maps the path of
    every file that failed in this process to the reason; a failed train item is replaced by another random index, at
    most ``cfg.max_retries`` times in a row, then a RuntimeError names the files. A failed valid/test item raises a
    RuntimeError naming its clip (never replaced: the test would hold another clip twice).
    """

    def __init__(self, cfg: DataConfig, geo: Geometry, split: str, records: Sequence[Record], seed: int = 0,
                 fixed: dict[str, tuple[float, float]] | None = None):
        self.cfg, self.geo, self.split, self.records, self.seed = cfg, geo, split, list(records), int(seed)
        self.train = split == "train"
        self.fixed = fixed
        self.transforms = train_transforms(cfg, geo) if self.train else eval_transforms(geo)
        self.epoch = 0
        self.bad_files: dict[str, str] = {}
        self._lengths: dict[str, tuple[int, int]] = {}
        self._min_frames = int(round(cfg.min_clip_sec * geo.fps))
        self._decoded: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # path -> whole clip (cache_decoded)
        if fixed is not None:
            missing = [r.id for r in self.records if r.id not in fixed]
            if missing:
                raise KeyError(f"{len(missing)} {split} clips have no fixed offset (e.g. {missing[:3]}); regenerate "
                               f"the CSV with make_fixed_offsets or set fixed_offsets=False")

    def __len__(self) -> int:
        reps = self.cfg.iter_times if (not self.train and self.fixed is None) else 1
        return len(self.records) * reps

    def set_epoch(self, epoch: int) -> None:
        """Make the random windows and augmentations of ``epoch`` (call before each epoch; the training loop does)."""
        self.epoch = int(epoch)

    def _lengths_of(self, rec: Record) -> tuple[int, int]:
        if rec.path not in self._lengths:
            info = probe(rec.path)
            if info.video is None:
                raise MediaError(f"{rec.path}: no video stream")
            if info.audio is None:
                raise MediaError(f"{rec.path}: no audio stream")
            n_v, n_a = clip_lengths(info, self.cfg, self.geo)
            if n_v < self._min_frames:
                raise MediaError(f"{rec.path}: too short ({n_v / self.geo.fps:.2f} s of video and audio < "
                                 f"min_clip_sec {self.cfg.min_clip_sec} s)")
            self._lengths[rec.path] = (n_v, n_a)
        return self._lengths[rec.path]

    def window(self, index: int, attempt: int = 0) -> Window:
        """The window of item ``index`` (deterministic in seed, epoch, index and attempt)."""
        rec = self.records[index % len(self.records)]
        n_v, n_a = self._lengths_of(rec)
        cfg, geo = self.cfg, self.geo
        if self.fixed is not None and not self.train:
            off, vstart = self.fixed[rec.id]
            w = fixed_window(off, vstart, geo)
            t, n = geo.frames, geo.samples
            if w.v_start_i + t > n_v or w.a_start_i + n > n_a:
                raise MediaError(f"{rec.path}: fixed offset {off} s at vstart {vstart} s does not fit a clip of "
                                 f"{n_v / geo.fps:.2f} s")
            return w
        rng = random.Random(f"{self.seed}/{self.epoch if self.train else 0}/{index}/{attempt}")
        return sample_train_window(n_v, cfg, geo, rng, jitter=self.train)

    def load(self, index: int, attempt: int = 0) -> dict[str, Any]:
        """Decode and transform item ``index`` (raises MediaError on a bad file)."""
        cfg, geo = self.cfg, self.geo
        rec = self.records[index % len(self.records)]
        w = self.window(index, attempt)
        v_start, a_start = w.v_start_i / geo.fps, w.a_start_i / geo.sample_rate
        if cfg.cache_decoded > 0 or cfg.decoded_cache_dir:
            video, audio = self._window_from_cache(rec.path, w)
        else:
            video = read_video(rec.path, v_start, geo.clip_sec, fps=geo.fps, size=cfg.resize_short,
                               channels_first=True)  # (T, 3, H, W) uint8
            audio = read_audio(rec.path, a_start, geo.clip_sec, sample_rate=geo.sample_rate, mono=True)  # (N,)
        sample = {"video": torch.from_numpy(video), "audio": torch.from_numpy(audio)}
        key = f"aug/{self.seed}/{self.epoch if self.train else 0}/{index}/{attempt}"
        gen = torch.Generator().manual_seed(random.Random(key).getrandbits(63))
        try:
            sample = self.transforms(sample, gen)
        except ValueError as e:  # e.g. frames smaller than the crop
            raise MediaError(f"{rec.path}: {e}") from e
        sample.update(target=w.target, offset_sec=float(w.offset_sec), v_start_sec=v_start, a_start_sec=a_start,
                      id=rec.id, label=rec.label, path=rec.path)
        return sample

    def _window_from_cache(self, path: str, w: Window) -> tuple[np.ndarray, np.ndarray]:
        """The window ``w`` cut from the whole decoded clip (decoded once, kept while fewer than ``cache_decoded``
        clips are held). Same frames as a windowed read (both select by index on the output grid); the same samples when
        the file's audio rate is ``sample_rate`` (resampling a whole clip instead of a window can differ slightly near
        the window edges otherwise)."""
        cfg, geo = self.cfg, self.geo
        clip = self._decoded.get(path)
        if clip is None:
            clip = self._decode_whole(path)
            if len(self._decoded) < cfg.cache_decoded:
                self._decoded[path] = clip
        t, n = geo.frames, geo.samples
        video, audio = clip[0][w.v_start_i:w.v_start_i + t], clip[1][w.a_start_i:w.a_start_i + n]
        if len(video) < t or len(audio) < n:
            raise MediaError(f"{path}: window at {w.v_start_i / geo.fps:.2f} s (video) / "
                             f"{w.a_start_i / geo.sample_rate:.2f} s (audio) of {geo.clip_sec} s goes beyond the end "
                             f"({len(clip[0])} frames, {len(clip[1])} samples)")
        return video, audio

    def _decode_whole(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        """Whole clip as (video (T, 3, H, W) uint8, audio (N,) float32), through ``decoded_cache_dir`` when set: the
        file is keyed by the real path, size and mtime of the source and the decode settings; an unreadable cache file
        is decoded again and replaced (written atomically, so concurrent runs never read a partial one)."""
        cfg, geo = self.cfg, self.geo

        def decode() -> tuple[np.ndarray, np.ndarray]:
            return (read_video(path, 0.0, None, fps=geo.fps, size=cfg.resize_short, channels_first=True),
                    read_audio(path, 0.0, None, sample_rate=geo.sample_rate, mono=True))

        if not cfg.decoded_cache_dir:
            return decode()
        from paperlib.core.io import atomic_output

        try:
            st = os.stat(path)
        except OSError as e:
            raise MediaError(f"{path}: cannot read ({e.strerror or e})") from e
        ident = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{geo.fps}|{cfg.resize_short}|{geo.sample_rate}"
        cached = Path(cfg.decoded_cache_dir) / f"{hashlib.sha1(ident.encode()).hexdigest()[:24]}.npz"
        if cached.is_file():
            try:
                with np.load(cached) as z:
                    return z["video"], z["audio"]
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                log.warning("decoded cache %s unreadable (%s): decoding %s again", cached, e, path)
        clip = decode()
        with atomic_output(cached) as tmp:
            np.savez(tmp, video=clip[0], audio=clip[1])
        return clip

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not self.train:  # a valid/test item is its clip's window: another clip in its place would change the test
            rec = self.records[index % len(self.records)]
            try:
                return self.load(index)
            except MediaError as e:
                self.bad_files[rec.path] = str(e)
                raise RuntimeError(f"{self.cfg.dataset}/{self.split}: clip {rec.id} cannot be read ({e}); a "
                                   f"{self.split} clip is never replaced by another one: re-prepare the file, or "
                                   "delete it and allow missing clips (they are then counted as dropped)") from e
        tried: list[str] = []
        idx = index
        for attempt in range(self.cfg.max_retries + 1):
            rec = self.records[idx % len(self.records)]
            if rec.path not in self.bad_files:
                try:
                    return self.load(idx, attempt)
                except MediaError as e:
                    self.bad_files[rec.path] = str(e)
                    log.warning("bad file skipped (%d so far in this process): %s", len(self.bad_files), e)
            tried.append(rec.path)
            # replace by another clip not yet known to be bad (deterministic in seed, epoch, index, attempt)
            good = [i for i, r in enumerate(self.records) if r.path not in self.bad_files]
            if not good:
                break
            idx = random.Random(f"retry/{self.seed}/{self.epoch}/{index}/{attempt}").choice(good)
        raise RuntimeError(f"{len(tried)} consecutive bad files for item {index} of {self.cfg.dataset}/{self.split}"
                           f" ({len(self.bad_files)} of {len(self.records)} clips bad in this process): "
                           + "; ".join(self.bad_files.get(p, p) for p in tried))

    def bad_files_summary(self) -> str:
        """One line per reason kind with counts, for the run log."""
        if not self.bad_files:
            return f"{self.cfg.dataset}/{self.split}: no bad files"
        kinds = Counter(r.split(": ", 1)[-1].split(" (")[0] for r in self.bad_files.values())
        return (f"{self.cfg.dataset}/{self.split}: {len(self.bad_files)} bad files skipped: "
                + ", ".join(f"{k} x{v}" for k, v in kinds.most_common()))


def build_dataset(cfg: DataConfig, geo: Geometry, split: str, seed: int = 0) -> AVSyncDataset:
    """The dataset of a split. Valid/test with ``fixed_offsets`` read the merged fixed-offset CSVs of this
    configuration; when this split's CSV is absent it is generated (``make_fixed_offsets``, seed 1338) and logged."""
    cfg.validate(geo)
    records = records_for(cfg, split)
    if not records:
        raise ValueError(f"{cfg.dataset}/{split} under {cfg.root!r} holds no clips")
    fixed = None
    if split != "train" and cfg.fixed_offsets:
        path = fixed_offsets_path(cfg, geo, split)
        fixed = load_fixed_offsets(cfg, geo)
        if not all(r.id in fixed for r in records):
            if path.exists():
                log.warning("%s does not cover every %s clip; regenerating it", path, split)
            make_fixed_offsets(cfg, geo, split, records)
            fixed = load_fixed_offsets(cfg, geo)
        records = [r for r in records if r.id in fixed]  # unreadable/too short clips were left out of the CSV
    ds = AVSyncDataset(cfg, geo, split, records, seed=seed, fixed=fixed)
    log.info("%s/%s: %d clips, %d items (%s offsets)", cfg.dataset, split, len(records), len(ds),
             "fixed" if fixed is not None else "random")
    return ds


# --------------------------------------------------------------------------------------------------------------------
# Protocol files and the `datasets` command
# --------------------------------------------------------------------------------------------------------------------

_VGGSOUND_FILTERS = ("filtered_audio_has_0_std", "filtered_80_video_has_still_frames", "filtered_broken",
                     "filtered_in_0_dists_group", "filtered_manually_found", "less_than_9s_frames_segments",
                     "145", "190", "299")


def protocol_files(dataset: str) -> list[tuple[str, str]]:
    """(URL, path relative to the data root) of the authors' public protocol files for ``dataset``."""
    base = PROTOCOL_BASE_URL + "data/"
    files: list[tuple[str, str]] = []
    offsets = [(21, c, 2.0) for c in (3, 4, 5, 6, 7)]
    if dataset == "lrs3":
        files += [(f"{base}lrs3_{s}.txt", f"lrs3_{s}.txt") for s in SPLITS]
        files.append((f"{base}filtered_examples_lrs/less_than_9s.txt", "filtered_examples_lrs/less_than_9s.txt"))
        offsets += [(3, c, 1.0) for c in (2, 3, 4, 8)]
        off_dir = "fixed_offsets_lrs3"
    elif dataset in ("vggsound", "vggsound_sparse"):
        files += [(f"{base}vggsound_{s}.txt", f"vggsound_{s}.txt") for s in SPLITS]
        files.append((f"{base}vggsound.csv", "vggsound.csv"))
        files.append((f"{base}picked_sparse_classes.csv", "picked_sparse_classes.csv"))
        files += [(f"{base}filtered_examples_vggsound/{n}.txt", f"filtered_examples_vggsound/{n}.txt")
                  for n in _VGGSOUND_FILTERS]
        if dataset == "vggsound_sparse":  # removed from the repository in ec14d81; last present at 73b6c7c
            files.append(("https://raw.githubusercontent.com/v-iashin/SparseSync/73b6c7c/_repo_assets/"
                          "vggsound_sparse.csv", "vggsound_sparse.csv"))
        offsets += [(3, c, 1.0) for c in (2, 3, 4, 5, 6, 7, 8)] + [(41, 5, 2.0)]
        off_dir = "fixed_offsets_vggsound"
    else:
        raise ValueError(f"no public protocol files for dataset {dataset!r} (lrs3, vggsound, vggsound_sparse)")
    for size, crop, m in offsets:
        for s in SPLITS:
            name = fixed_offsets_name(s, size, crop, m)
            files.append((f"{base}{off_dir}/{name}", f"fixed_offsets/{name}"))
    return files


def fetch_protocol(root: str | os.PathLike, dataset: str, timeout: float = 30.0) -> dict[str, str]:
    """Download the protocol files into ``root`` (existing files are kept). Returns {relative path: status}.

    Needs internet; without it every file reports its error and nothing partial is left behind.
    """
    import urllib.error
    import urllib.request

    root = Path(root)
    status: dict[str, str] = {}
    for url, rel in protocol_files(dataset):
        dst = root / rel
        if dst.exists():
            status[rel] = "present"
            continue
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                data = r.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            status[rel] = f"failed: {getattr(e, 'reason', e)}"
            continue
        from paperlib.core.io import atomic_output

        with atomic_output(dst) as tmp:
            tmp.write_bytes(data)
        status[rel] = "downloaded"
    return status
