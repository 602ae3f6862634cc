"""The cached training runs behind the paper's training tables (Tables 2, 3/5, 4, 6, 7 and Fig. 3), per profile.

Paper: Sec. 5 (Table 2: dense-dense, dense-sparse, sparse-sparse; 3 and 21 classes), Sec. 5.2 + Sec. 7.2 (Tables 3/5:
selectors, pre-training on dense data, pre-trained and unfrozen feature extractors; Table 6: depth; Table 7: fine-tuning
on a larger general set), Table 4 (input length) and Fig. 3 (per offset class and per content class).

The artefact functions ask for runs by *key* (``plan(profile)`` lists every key; the contract is
``.notes/CAMPAIGN_CONTRACT.md``) and :func:`ensure_runs` trains what is missing:

- Each :class:`RunSpec` resolves to a run configuration (``paperlib.core.config.resolve``): at ``smoke`` the ``smoke``
  preset (seconds, wiring only), at ``mini`` the ``cpu-recipe`` preset (the small CPU model of the paper's architecture
  with the issue-11 recipe) on the synthetic benchmark, at ``paper`` the paper presets on the real datasets under
  ``data_root`` (:data:`PAPER_DATA_DIRS`), stopped by early stopping.
- Chains ("pre-trained on dense data", as in the paper): dense-crop trains from scratch; dense-wide fine-tunes the
  dense-crop run; sparse and general fine-tune the dense-wide run; a 3-class run fine-tunes the 21-class run of the same
  variant and setting with the classifier re-initialised (``train.init_strict=false``). Depth and length rows get their
  own chains at that depth / length ("We use the same input lengths for pre-training, fine-tuning, and testing",
  Table 4); the hidden keys ``.../dense-crop/c21/depth{d}`` etc. hold their parents.
- Runs are cached by a *campaign hash*: the resolved config with machine-specific paths replaced by identities (the
  data set's recipe instead of its folder, the parent's campaign hash instead of its checkpoint path). Each hash owns a
  folder ``<runs_root>/campaign/<profile>/<slug>-<hash>/`` holding the run directory (``paperlib.engine.runs`` layout), the
  training log and ``campaign.json``. Two keys with the same hash (aliases, e.g. ``len5`` and the full model) share one
  run. A finished run (``results.json``) is reused; an unfinished one is resumed (``--resume RUN_DIR``).
- Every run is trained by the entry point of ``python -m paperlib train --preset P key=value ...``
  (``paperlib.engine.train.cli`` with that argv, printed at the top of its ``train.log``) inside a worker subprocess
  (``python -m paperlib.paper.campaign --worker JOBS.json``, OMP/MKL one thread), which then evaluates the best checkpoint
  on the test split once and writes ``test_detail.json`` (metrics with per-offset-class / per-content-class accuracy,
  confusion matrix, per-item predictions and, on synthetic data, the oracle: accuracy on the items whose window holds
  a sync cue, ``paperlib.data.synthetic.has_cue``). With
  ``parallel == 1`` one worker trains all missing runs in dependency order (one interpreter start for all: this keeps
  the smoke plan within seconds); with ``parallel > 1`` each run is its own worker, at most ``parallel`` at a time.

Synthetic data (smoke, mini), generated once under ``<runs_root>/data/<profile>/<setting>/`` by
``paperlib.data.synthetic.generate`` (it skips finished clips and refuses a folder holding another data set):
``dense-crop`` / ``dense-wide`` (LRS3 layout, the same seed: the two share talkers and audio as LRS3's two variants
share videos) and ``sparse`` (VGGSound-Sparse layout), each split 70/10/20 (a larger test split than the official
80/10/10, for less noisy test numbers on small sets). ``general`` (the analogue of VGGSound, "larger and more varied")
is a VGGSound-layout folder of links to two other synthetic sets: sparse clips of another seed and dense-wide talker
clips of another seed (:data:`GENERAL_PARTS`); its content classes are the 8 sparse classes plus ``speech``.

Deviations (from the paper; each is documented at the constant that sets it):
- ``mini`` trains by a fixed number of optimiser steps per run (:data:`MINI_STEPS`), not to early stopping; the
  ``paper`` profile keeps early stopping (``steps=None``).
- Every fine-tune starts a fresh optimiser (``train.init_carry_optimizer=false``; the official fine-tune carries Adam's
  moments), since the 3-class and partial-init runs cannot carry them.
- "Feature extractors not pre-trained" (Tables 3/5): our extractors have no external pre-training; the dense-crop run
  plays the part of their pre-training. The dense-wide row fine-tunes the dense-crop run with the extractors left at
  their fresh init (``train.init_skip``); the sparse row fine-tunes that dense-wide row (its extractors never saw
  dense-crop). "Frozen extractors": the dense-crop extractors, frozen through dense-wide and sparse.
- "Sync model not pre-trained on dense data" trains on sparse from scratch for as many steps as a from-scratch dense
  run (:data:`MINI_STEPS` ``base``), so it is not starved of steps relative to the fine-tune.
- ``mini`` evaluates the sparse and general settings as the official VGGSound-Sparse README (random offsets, several
  passes: :data:`MINI_SPARSE_TEST_PASSES` instead of 25) and trains them with the official fine-tuning augmentations,
  scaled to the CPU crop.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from paperlib.core.io import write_json_atomic
from paperlib.engine import runs

PROFILES = ("smoke", "mini", "paper")
VARIANTS = ("sparsesync", "transformer", "avst_dec")
SETTINGS = ("dense-crop", "dense-wide", "sparse", "general")
CLASSES = (21, 3)

# Input lengths (s) of Table 4 per profile. The paper has 2..7 s (2 s only for 3 classes). mini trains a subset: each
# length is a chain of 4 runs (dense-crop, dense-wide, sparse 21 cls, sparse 3 cls), which the 40-minute budget allows
# for two extra lengths around the default 5 s. smoke: the smoke default (2 s) and one more, for wiring.
LENGTHS: dict[str, tuple[float, ...]] = {"smoke": (2.0, 3.0), "mini": (3.0, 5.0, 7.0),
                                         "paper": (2.0, 3.0, 4.0, 5.0, 6.0, 7.0)}
# Depths of Table 6 (layers of each selector and of the sync transformer). mini: 1, 2 (the cpu-recipe default) and 3;
# depth 6 does not fit the 40-minute budget (its two runs alone would cost ~15 min; see MINI_STEPS).
DEPTHS: dict[str, tuple[int, ...]] = {"smoke": (1, 2), "mini": (1, 2, 3), "paper": (1, 2, 3, 6)}
# The default depth / length of each profile (what the unsuffixed keys use): the preset's.
DEFAULT_DEPTH = {"smoke": 1, "mini": 2, "paper": 3}
DEFAULT_CLIP_SEC = {"smoke": 2.0, "mini": 5.0, "paper": 5.0}
PRESET_OF_PROFILE = {"smoke": "smoke", "mini": "cpu-recipe"}

# Optimiser steps per run kind at mini (batch 8 of the cpu-recipe preset). How they were chosen: the mini plan must
# train in <= 40 min of wall time with two single-threaded processes (= 4,800 process-seconds) on this 2-core machine
# when it is quiet. Calibration (2026-11-26, one thread, `nice -n 5`, while other work kept the load at ~4 on the 2
# cores, so these are upper bounds): 130 steps of the mini dense-crop SparseSync run on 240 clips: the first epoch
# (30 steps) decoded and cached the train clips in 71 s, then 0.47 s/step (0.25 s/step in the lead's run on a less
# loaded machine, ~0.2 s of CPU per step); MINI_SEC_PER_STEP takes the quiet-machine value. Relative step costs of the
# variants, depths, lengths and frozen extractors were measured with random inputs of the same geometry (recipe aux
# losses included, median of 10 steps): MINI_COST_*. MINI_OVERHEAD_S is the per-run cost besides the steps:
# interpreter start, first-epoch decoding of train + valid clips (~0.12 s per clip quiet), valid evaluations every
# 200 steps and the test evaluation (4 random-offset passes on sparse). The base (dense-crop from scratch) run of each
# chain gets the largest share: the recipe leaves the chance plateau after ~800 steps at batch 8 on dense-crop
# (issue 11; runs/plateau/LONG-dense-sparsesync.jsonl left it at step 774); fine-tunes start from a trained model and
# get less; 3-class fine-tunes re-learn the classifier and get least. `mini_budget()` adds it all up: 76 process-
# minutes, 39 min of wall time with parallel=2 (synthetic data generation, ~3 min, comes on top).
MINI_STEPS = {"base": 900, "dense-wide": 200, "sparse": 350, "general": 350, "c3": 80, "scratch": 900}
MINI_SEC_PER_STEP = 0.25  # s per step, SparseSync, depth 2, 5-s windows, batch 8, one thread, quiet machine
MINI_COST_VARIANT = {"sparsesync": 1.0, "transformer": 1.28, "avst_dec": 0.86}  # measured relative step cost
MINI_COST_DEPTH = {1: 0.90, 2: 1.0, 3: 1.06, 6: 1.17}  # backbones dominate the step, so depth costs little
MINI_COST_LENGTH = {3.0: 0.63, 5.0: 1.0, 7.0: 1.55}
MINI_COST_FROZEN = 0.35  # no backward through the extractors
MINI_OVERHEAD_S = {"dense-crop": 40.0, "dense-wide": 40.0, "sparse": 50.0, "general": 60.0}
MINI_SPARSE_TEST_PASSES = 4  # random-offset passes over valid/test for sparse/general (official README: 25)

# Synthetic data per profile: clips per setting, frame size, seeds. dense-crop/dense-wide share seed 0 (same talkers).
SYNTH = {
    "smoke": {"size": 32, "clips": {"dense-crop": 12, "dense-wide": 12, "sparse": 12}, "clips_per_video": 1},
    "mini": {"size": 64, "clips": {"dense-crop": 240, "dense-wide": 240, "sparse": 240}, "clips_per_video": 4},
}
SYNTH_SPLIT = (0.7, 0.1, 0.2)  # train / valid / test fractions of the synthetic sets (see the module docstring)
# "general": (setting, seed, clips) of the parts linked into one VGGSound-layout set (smoke, mini).
GENERAL_PARTS = {
    "smoke": (("sparse", 1, 12), ("dense-wide", 1, 8)),
    "mini": (("sparse", 1, 200), ("dense-wide", 1, 120)),
}
# paper: sub-folders of data_root (prepared with `python -m paperlib prepare`, layouts of paperlib.data.datasets).
PAPER_DATA_DIRS = {"dense-crop": "lrs3", "dense-wide": "lrs3_no_face_crop", "sparse": "vggsound_sparse",
                   "general": "vggsound"}
PAPER_PRESETS = {("dense", 21): "paper-lrs3", ("dense", 3): "paper-lrs3-3cls",
                 ("sparse", 21): "paper-vggsound-sparse-finetune", ("sparse", 3): "paper-vggsound-sparse-finetune-3cls"}
# Official VGGSound-Sparse fine-tuning augmentations (preset paper-vggsound-sparse-finetune); the upscale crop is
# scaled from 192/224 to the profile's crop.
SPARSE_AUGMENT = {"sometimes_upscale_p": 0.5, "p_gray_scale": 0.2, "p_color_jitter": 0.2, "p_audio_aug": 0.2}
BACKBONE_PREFIXES = ("visual_backbone.", "audio_backbone.")
TRAIN_SEED_BASE = 1337  # train.seed = 1337 + seed (seed 0 = the official seed)
TEST_DETAIL = "test_detail.json"
SPEC_FILE = "campaign.json"
LOG_FILE = "train.log"


# ---------------------------------------------------------------------------------------------------------------------
# specs and the plan


@dataclass(frozen=True)
class RunSpec:
    key: str  # "{variant}/{setting}/c{C}[/suffix]" (contract keys; hidden parents use the same scheme)
    variant: str  # "sparsesync" | "transformer" | "avst_dec"
    setting: str  # "dense-crop" | "dense-wide" | "sparse" | "general": the data it trains on
    num_classes: int  # 21 | 3
    clip_sec: float = 5.0  # s, input window
    depth: int | None = None  # None: the profile's default
    init_from: str | None = None  # key of the run whose best.pt initialises this one
    init_skip: tuple[str, ...] = ()  # state-dict key prefixes left at fresh init
    frozen_backbones: bool = False
    test_setting: str | None = None  # evaluate on another setting's test split (None: its own)
    steps: int = 0  # optimiser steps at this profile (0: none fixed, early stopping at paper)


@dataclass
class RunRecord:
    spec: RunSpec
    run_dir: Path
    test: dict  # see TEST_KEYS and the contract
    params: dict  # {"total": int, "trainable": int}
    wall_s: float  # training + evaluation wall time of the run that made it
    steps: int
    left_plateau_at_step: int | None
    reused: bool  # True when found in the cache


def _fmt_len(sec: float) -> str:
    return f"{sec:g}"


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")


def _steps(profile: str, kind: str) -> int:
    if profile == "paper":
        return 0
    if profile == "smoke":
        return {"base": 3, "scratch": 3}.get(kind, 2)
    return MINI_STEPS[kind]


def plan(profile: str) -> dict[str, RunSpec]:
    """Every key any training artefact may ask for at ``profile`` (plus hidden parents), parents before children."""
    _check_profile(profile)
    L0, d0 = DEFAULT_CLIP_SEC[profile], DEFAULT_DEPTH[profile]
    out: dict[str, RunSpec] = {}

    def add(spec: RunSpec) -> None:
        if spec.init_from is not None and spec.init_from not in out:
            raise AssertionError(f"plan: parent {spec.init_from!r} of {spec.key!r} is not planned before it")
        out[spec.key] = spec

    def chain(variant: str, suffix: str = "", *, clip_sec: float = L0, depth: int | None = None,
              settings: Sequence[str] = ("dense-crop", "dense-wide", "sparse"), c3: Sequence[str] = ()) -> None:
        """dense-crop -> dense-wide -> sparse at 21 classes (+ 3-class fine-tunes of the settings in ``c3``)."""
        parent = None
        for s in settings:
            kind = "base" if parent is None else s
            add(RunSpec(f"{variant}/{s}/c21{suffix}", variant, s, 21, clip_sec, depth,
                        init_from=parent, steps=_steps(profile, kind)))
            parent = f"{variant}/{s}/c21{suffix}"
        for s in c3:
            add(RunSpec(f"{variant}/{s}/c3{suffix}", variant, s, 3, clip_sec, depth,
                        init_from=f"{variant}/{s}/c21{suffix}", steps=_steps(profile, "c3")))

    # Table 2 (+ Fig. 3): SparseSync and AVST_dec on the three settings, 21 and 3 classes
    for v in ("sparsesync", "avst_dec"):
        chain(v, c3=("dense-crop", "dense-wide", "sparse"))
    # Tables 3/5: no selectors; sync model not pre-trained on dense data; extractors not pre-trained; frozen extractors
    chain("transformer")
    add(RunSpec("sparsesync/sparse/c21/scratch", "sparsesync", "sparse", 21, L0, None,
                steps=_steps(profile, "scratch")))
    add(RunSpec("sparsesync/dense-wide/c21/no-pretrained-extractors", "sparsesync", "dense-wide", 21, L0,
                init_from="sparsesync/dense-crop/c21", init_skip=BACKBONE_PREFIXES,
                steps=_steps(profile, "dense-wide")))
    add(RunSpec("sparsesync/sparse/c21/no-pretrained-extractors", "sparsesync", "sparse", 21, L0,
                init_from="sparsesync/dense-wide/c21/no-pretrained-extractors", steps=_steps(profile, "sparse")))
    add(RunSpec("sparsesync/dense-wide/c21/frozen-extractors", "sparsesync", "dense-wide", 21, L0,
                init_from="sparsesync/dense-crop/c21", frozen_backbones=True, steps=_steps(profile, "dense-wide")))
    add(RunSpec("sparsesync/sparse/c21/frozen-extractors", "sparsesync", "sparse", 21, L0,
                init_from="sparsesync/dense-wide/c21/frozen-extractors", frozen_backbones=True,
                steps=_steps(profile, "sparse")))
    # Table 4: input length (sparse), own chains; the default length aliases the full model
    for L in LENGTHS[profile]:
        sfx = f"/len{_fmt_len(L)}"
        if L == L0:
            for c in CLASSES:
                base = out[f"sparsesync/sparse/c{c}"]
                add(dataclasses.replace(base, key=f"sparsesync/sparse/c{c}{sfx}"))
        else:
            chain("sparsesync", sfx, clip_sec=L, c3=("sparse",))
    # Table 6: depth (dense-wide, 21 classes), own chains; the default depth aliases the full model
    for d in DEPTHS[profile]:
        sfx = f"/depth{d}"
        if d == d0:
            for s in ("dense-crop", "dense-wide"):
                add(dataclasses.replace(out[f"sparsesync/{s}/c21"], key=f"sparsesync/{s}/c21{sfx}"))
        else:
            chain("sparsesync", sfx, depth=d, settings=("dense-crop", "dense-wide"))
    # Table 7: fine-tuned on the larger, more varied general set, tested on the sparse test split
    add(RunSpec("sparsesync/general/c21", "sparsesync", "general", 21, L0, init_from="sparsesync/dense-wide/c21",
                test_setting="sparse", steps=_steps(profile, "general")))
    return out


def contract_keys(profile: str) -> list[str]:
    """The keys the artefacts ask for (the contract), without the hidden parents."""
    _check_profile(profile)
    keys = [f"{v}/{s}/c{c}" for v in ("sparsesync", "avst_dec") for s in ("dense-crop", "dense-wide", "sparse")
            for c in CLASSES]
    for s in ("dense-wide", "sparse"):
        keys += [f"transformer/{s}/c21", f"sparsesync/{s}/c21/no-pretrained-extractors",
                 f"sparsesync/{s}/c21/frozen-extractors"]
    keys.append("sparsesync/sparse/c21/scratch")
    keys += [f"sparsesync/sparse/c{c}/len{_fmt_len(L)}" for L in LENGTHS[profile] for c in CLASSES]
    keys += [f"sparsesync/dense-wide/c21/depth{d}" for d in DEPTHS[profile]]
    keys.append("sparsesync/general/c21")
    return keys


def mini_budget(specs: Mapping[str, RunSpec] | None = None, parallel: int = 2) -> dict[str, Any]:
    """Estimated minutes per distinct mini run (steps x MINI_SEC_PER_STEP x relative cost + overhead), their sum, and
    the wall time of ``parallel`` workers scheduled as :func:`ensure_runs` does (plan order, parents first)."""
    specs = plan("mini") if specs is None else specs
    memo: dict[str, str] = {}
    owner: dict[str, str] = {}
    for key, s in specs.items():
        owner.setdefault(spec_hash(s, "mini", specs, _memo=memo), key)
    rows = []
    for key in owner.values():
        s = specs[key]
        cost = MINI_COST_VARIANT[s.variant] * MINI_COST_DEPTH[s.depth or DEFAULT_DEPTH["mini"]]
        cost *= MINI_COST_LENGTH.get(s.clip_sec, s.clip_sec / DEFAULT_CLIP_SEC["mini"])
        if s.frozen_backbones:
            cost *= MINI_COST_FROZEN
        sec = s.steps * MINI_SEC_PER_STEP * cost + MINI_OVERHEAD_S[s.setting]
        parent = owner[memo[s.init_from]] if s.init_from else None
        rows.append({"key": key, "parent": parent, "steps": s.steps, "minutes": round(sec / 60, 2)})
    # list scheduling: the next run of the plan whose parent has finished takes the first free worker
    dur = {r["key"]: r["minutes"] for r in rows}
    par = {r["key"]: r["parent"] for r in rows}
    pending, running, done, now = list(dur), {}, set(), 0.0
    while pending or running:
        for k in list(pending):
            if len(running) >= parallel:
                break
            if par[k] is None or par[k] in done:
                pending.remove(k)
                running[k] = now + dur[k]
        k = min(running, key=running.get)
        now = running.pop(k)
        done.add(k)
    total = sum(dur.values())
    return {"runs": rows, "n_runs": len(rows), "process_minutes": round(total, 1), "parallel": parallel,
            "wall_minutes": round(now, 1)}


# ---------------------------------------------------------------------------------------------------------------------
# data


def _runs_root(runs_root: str | os.PathLike | None) -> Path:
    if runs_root is not None:
        return Path(runs_root).resolve()
    from paperlib.paper.reproduce import runs_dir

    return runs_dir()


def synth_config(profile: str, setting: str, seed: int = 0):
    """The SynthConfig of a synthetic setting at ``profile`` (smoke / mini)."""
    from paperlib.data.synthetic import SynthConfig

    p = SYNTH[profile]
    return SynthConfig(setting=setting, size=p["size"], seed=seed, clips_per_video=p["clips_per_video"],
                       split_fractions=SYNTH_SPLIT).validate()


def data_identity(profile: str, setting: str, data_root: str | os.PathLike | None = None) -> str:
    """What the data of a setting *is* (for the campaign hash): the synthetic recipe, or the real folder's path."""
    from paperlib.core.config import config_hash, to_dict

    if profile == "paper":
        return f"paper:{_paper_root(setting, data_root)}"
    if setting == "general":
        parts = [(to_dict(synth_config(profile, s, seed)), n) for s, seed, n in GENERAL_PARTS[profile]]
        return f"synthetic-general:{config_hash({'parts': parts})}"
    cfg = synth_config(profile, setting)
    return f"synthetic:{config_hash({'config': to_dict(cfg), 'clips': SYNTH[profile]['clips'][setting]})}"


def _paper_root(setting: str, data_root: str | os.PathLike | None) -> Path:
    if not data_root:
        raise ValueError("the paper profile needs data_root: a folder holding " +
                         ", ".join(f"{v}/ ({k})" for k, v in PAPER_DATA_DIRS.items()))
    return Path(data_root).resolve() / PAPER_DATA_DIRS[setting]


def data_dir(profile: str, setting: str, runs_root: str | os.PathLike | None = None,
             data_root: str | os.PathLike | None = None) -> Path:
    """The data root of a setting (not created)."""
    if profile == "paper":
        return _paper_root(setting, data_root)
    return _runs_root(runs_root) / "data" / profile / setting


def ensure_data(profile: str, settings: Iterable[str], runs_root: str | os.PathLike | None = None,
                progress: bool = True, workers: int = 1) -> dict[str, Path]:
    """Generate the synthetic sets of ``settings`` (smoke / mini) once; checks their ``synth.json``."""
    if profile not in SYNTH:
        raise ValueError(f"profile {profile!r} uses real data (data_root), not synthetic sets; use {list(SYNTH)}")
    out: dict[str, Path] = {}
    for setting in dict.fromkeys(settings):
        root = data_dir(profile, setting, runs_root)
        if setting == "general":
            out[setting] = _ensure_general(profile, runs_root, progress, workers)
            continue
        n = SYNTH[profile]["clips"][setting]
        _generate_checked(synth_config(profile, setting), root, n, progress, workers)
        out[setting] = root
    return out


def _generate_checked(cfg: Any, root: Path, clips: int, progress: bool, workers: int) -> Path:
    from paperlib.data import synthetic
    from paperlib.core.config import to_dict

    manifest = root / "synth.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        if m.get("clips") == clips and m.get("config") == to_dict(cfg) and _clips_done(cfg, root, clips):
            return root
    synthetic.generate(cfg, root, clips, workers=workers, progress=progress)
    m = json.loads(manifest.read_text())
    if m.get("config") != to_dict(cfg) or m.get("clips") != clips:
        raise RuntimeError(f"{manifest}: does not describe the requested set ({to_dict(cfg)}, {clips} clips)")
    return root


def _clips_done(cfg: Any, root: Path, clips: int) -> bool:
    from paperlib.data import synthetic

    for i in (0, clips - 1):
        cid = synthetic.clip_id(cfg, i)
        if not (synthetic.video_path(root, cid).is_file() and synthetic.sidecar_path(root, cid).is_file()):
            return False
    return True


def _ensure_general(profile: str, runs_root: str | os.PathLike | None, progress: bool, workers: int) -> Path:
    """The "general" set: a VGGSound-layout folder (``vggsound.csv``, ``vggsound_{split}.txt``, ``video/``,
    ``sidecar/``) of relative links to the clips of GENERAL_PARTS (generated under ``general-parts/``)."""
    from paperlib.data import synthetic

    root = data_dir(profile, "general", runs_root)
    ident = data_identity(profile, "general")
    done = root / "general.json"
    if done.is_file() and json.loads(done.read_text()).get("identity") == ident:
        return root
    if root.exists():
        shutil.rmtree(root)  # an unfinished or different build: it only holds links and lists
    parts_root = root.parent / "general-parts"
    tmp = root.with_name(f".{root.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "video").mkdir(parents=True)
    (tmp / "sidecar").mkdir()
    rows, lists = [], {"train": [], "valid": [], "test": []}
    for setting, seed, n in GENERAL_PARTS[profile]:
        cfg = synth_config(profile, setting, seed)
        src = _generate_checked(cfg, parts_root / f"{setting}-seed{seed}", n, progress, workers)
        splits = synthetic.write_lists(cfg, src, n)
        for split, ids in splits.items():
            for cid in ids:
                if setting == "sparse":
                    ytid, start_ms, _ = cid.rsplit("_", 2)
                    start = int(start_ms) // 1000
                    new_ytid = f"g{ytid}"
                    label = synthetic.load_sidecar(src, cid)["label"]
                else:
                    v, c = cid.split("/")[1:]
                    start, new_ytid, label = 0, f"gdw{v[3:]}c{c}", "speech"
                new_id = f"{new_ytid}_{start * 1000}_{(start + 10) * 1000}"
                os.symlink(os.path.relpath(synthetic.video_path(src, cid), tmp / "video"),
                           tmp / "video" / f"{new_id}.mp4")
                os.symlink(os.path.relpath(synthetic.sidecar_path(src, cid), tmp / "sidecar"),
                           tmp / "sidecar" / f"{new_id}.json")
                rows.append(f"{new_ytid},{start},{label},{'test' if split == 'test' else 'train'}")
                lists[split].append(new_id)
    (tmp / "vggsound.csv").write_text("".join(r + "\n" for r in sorted(rows)))
    for split, ids in lists.items():
        (tmp / f"vggsound_{split}.txt").write_text("".join(i + "\n" for i in sorted(ids)))
    write_json_atomic(tmp / "general.json", {"identity": ident, "parts": [list(p) for p in GENERAL_PARTS[profile]],
                                                  "clips": {k: len(v) for k, v in lists.items()}})
    os.replace(tmp, root)
    return root


# ---------------------------------------------------------------------------------------------------------------------
# configs and hashes


def _dataset_of(profile: str, setting: str) -> str:
    if setting in ("dense-crop", "dense-wide"):
        return "lrs3"
    return "vggsound" if setting == "general" else "vggsound_sparse"


def _preset(profile: str, spec: RunSpec) -> str:
    if profile == "paper":
        kind = "dense" if spec.setting in ("dense-crop", "dense-wide") else "sparse"
        return PAPER_PRESETS[(kind, spec.num_classes)]
    return PRESET_OF_PROFILE[profile]


def data_overrides(profile: str, setting: str, num_classes: int, clip_sec: float, data_root_str: str,
                   crop: int) -> list[str]:
    """``data.*`` overrides of a setting (dataset, root, classes, window, protocol) on top of the profile's preset."""
    max_off = 1.0 if num_classes == 3 else 2.0
    o = [f"data.root={data_root_str}", f"data.dataset={_dataset_of(profile, setting)}",
         f"data.num_classes={num_classes}", f"data.max_off_sec={max_off}", f"data.clip_sec={clip_sec:g}"]
    if profile != "paper":
        # whole decoded clips kept in RAM and shared on disk by every run of the profile (each run used to spend
        # ~35 s of its first epoch decoding the same clips); results are unchanged (tests/test_train_recipe.py)
        o += ["data.cache_decoded=100000", f"data.decoded_cache_dir={Path(data_root_str).parent / 'decoded'}"]
        # clips are 10 s; a window of L s needs L + max_off s (smoke's preset lowers min_clip_sec to 3 s)
        o.append(f"data.min_clip_sec={min(10.0, max(clip_sec + max_off, 3.0 if profile == 'smoke' else 9.0)):g}")
        if setting in ("sparse", "general"):
            o += [f"data.{k}={v}" for k, v in SPARSE_AUGMENT.items()]
            o += [f"data.upscale_crop={max(2, int(round(crop * 192 / 224)))}", "data.fixed_offsets=false",
                  f"data.iter_times={MINI_SPARSE_TEST_PASSES if profile == 'mini' else 2}"]
    return o


@functools.lru_cache(maxsize=None)
def _preset_crop(preset: str) -> int:
    from paperlib.engine import config as RC

    return RC.resolve(preset).model.crop


def spec_overrides(spec: RunSpec, profile: str, *, data_root_str: str, seed: int = 0, device: str = "cpu",
                   crop: int | None = None) -> list[str]:
    """The ``key=value`` overrides of a run (without ``train.init_from``, ``train.run_root``, ``train.name``)."""
    if crop is None:
        crop = _preset_crop(_preset(profile, spec))
    o = [f"model.variant={spec.variant}", f"model.num_classes={spec.num_classes}", f"model.clip_sec={spec.clip_sec:g}"]
    o += data_overrides(profile, spec.setting, spec.num_classes, spec.clip_sec, data_root_str, crop)
    if spec.depth is not None:
        o.append(f"model.depth={spec.depth}")
    if spec.frozen_backbones:
        o += ["model.train_visual_backbone=false", "model.train_audio_backbone=false"]
    if spec.init_from is not None:
        o.append("train.init_carry_optimizer=false")
        if spec.init_skip:
            o.append(f"train.init_skip=[{','.join(spec.init_skip)}]")
        o.append("train.init_strict=false")  # 3-class classifiers; anything else must match (checked by the hash)
    if spec.steps:
        o += [f"train.max_steps={spec.steps}", "train.time_budget_min=none", "train.patience=1000000"]
    o += [f"train.seed={TRAIN_SEED_BASE + seed}", f"train.device={device}", "train.progress=false",
          "train.test=false"]  # the campaign's own test evaluation (test_detail.json) replaces train's
    return o


def _normalised(cfg_dict: dict[str, Any], data_id: str, parent_hash: str | None) -> dict[str, Any]:
    d = json.loads(json.dumps(cfg_dict))
    d["data"]["root"] = data_id
    d["data"]["decoded_cache_dir"] = ""  # where decoded clips are cached changes no result
    d["train"]["run_root"] = ""
    d["train"]["name"] = ""
    d["train"]["resume"] = None
    d["train"]["init_from"] = None if parent_hash is None else f"campaign:{parent_hash}"
    d["train"]["progress"] = False
    return d


def resolve_spec(spec: RunSpec, profile: str, *, data_root: str | os.PathLike | None = None,
                 runs_root: str | os.PathLike | None = None, seed: int = 0, device: str = "cpu") -> Any:
    """The resolved RunConfig of ``spec`` (``train.init_from`` left unset: it is a run's checkpoint, found later)."""
    from paperlib.engine import config as RC

    root = data_dir(profile, spec.setting, runs_root, data_root)
    return RC.resolve(_preset(profile, spec), spec_overrides(spec, profile, data_root_str=str(root), seed=seed,
                                                            device=device))


def spec_hash(spec: RunSpec, profile: str, specs: Mapping[str, RunSpec] | None = None, *, seed: int = 0,
              device: str = "cpu", data_root: str | os.PathLike | None = None, _memo: dict | None = None) -> str:
    """The campaign hash of ``spec``: its resolved config with the data folder replaced by the data's identity and
    the init checkpoint by the parent's campaign hash (recursively); run-location fields blanked."""
    from paperlib.core.config import config_hash, to_dict

    specs = plan(profile) if specs is None else specs
    memo = {} if _memo is None else _memo
    if spec.key in memo:
        return memo[spec.key]
    parent = None
    if spec.init_from is not None:
        parent = spec_hash(specs[spec.init_from], profile, specs, seed=seed, device=device, data_root=data_root,
                           _memo=memo)
    cfg = resolve_spec(spec, profile, data_root=data_root, runs_root="/nonexistent", seed=seed, device=device)
    ident = data_identity(profile, spec.setting, data_root)
    h = config_hash({"config": _normalised(to_dict(cfg), ident, parent), "test_setting": spec.test_setting})
    memo[spec.key] = h
    return h


def canonical_key(spec: RunSpec, specs: Mapping[str, RunSpec]) -> str:
    """The first key of the plan whose spec equals ``spec`` up to the key (aliases map to the key they alias)."""
    for k, s in specs.items():
        if dataclasses.replace(s, key=spec.key) == spec:
            return k
    return spec.key


def _slug(key: str) -> str:
    return key.replace("/", "_")


# ---------------------------------------------------------------------------------------------------------------------
# evaluation (pure pieces first)


def cue_metrics(preds: Sequence[int], targets: Sequence[int], cues: Sequence[bool]) -> dict[str, Any]:
    """Accuracy on the items whose window holds a sync cue (the synthetic oracle), and its null.

    Returns ``cue_fraction`` (share of items with a cue), ``cue_n``, ``cue_accuracy_1`` (top-1 on them),
    ``cue_accuracy_1_tol1`` (within +-1 class) and ``cue_null_accuracy_1`` / ``cue_null_accuracy_1_tol1``: the
    accuracy expected if the same predictions were paired with the same targets at random (the product of the two
    marginals over the cue items). Compare the cue accuracy with this null, not with 1/C: a window pair overlaps more
    when the offset is small, so cue items favour small offsets and a model that always predicts one small offset
    scores above 1/C on them without using the content. Accuracies are None without cue items.
    """
    if not (len(preds) == len(targets) == len(cues)):
        raise ValueError(f"{len(preds)} predictions, {len(targets)} targets and {len(cues)} cue flags")
    idx = [i for i, c in enumerate(cues) if c]
    n = len(preds)
    out: dict[str, Any] = {"cue_fraction": (len(idx) / n) if n else None, "cue_n": len(idx)}
    if idx:
        p = [int(preds[i]) for i in idx]
        t = [int(targets[i]) for i in idx]
        out["cue_accuracy_1"] = sum(a == b for a, b in zip(p, t)) / len(idx)
        out["cue_accuracy_1_tol1"] = sum(abs(a - b) <= 1 for a, b in zip(p, t)) / len(idx)
        pc, tc = Counter(p), Counter(t)
        m = len(idx) ** 2
        out["cue_null_accuracy_1"] = sum(k * tc[c] for c, k in pc.items()) / m
        out["cue_null_accuracy_1_tol1"] = sum(k * (tc[c - 1] + tc[c] + tc[c + 1]) for c, k in pc.items()) / m
    else:
        for k in ("cue_accuracy_1", "cue_accuracy_1_tol1", "cue_null_accuracy_1", "cue_null_accuracy_1_tol1"):
            out[k] = None
    return out


def _class_names(data_cfg: Any) -> list[str] | None:
    if data_cfg.dataset not in ("vggsound", "vggsound_sparse"):
        return None
    from paperlib.data.datasets import read_vggsound_csv, sparse_classes

    root = Path(data_cfg.root)
    if data_cfg.dataset == "vggsound_sparse":
        names = sparse_classes(root)
        if names is not None:
            return names
    csv_path = root / ("vggsound_sparse.csv" if data_cfg.dataset == "vggsound_sparse" else "vggsound.csv")
    return sorted({lab for _, lab, _ in read_vggsound_csv(csv_path)})


def test_data_config(spec: RunSpec, profile: str, *, data_root: str | os.PathLike | None = None,
                     runs_root: str | os.PathLike | None = None, seed: int = 0) -> Any:
    """The DataConfig of the split a run is tested on (its own setting, or ``spec.test_setting``)."""
    cfg = resolve_spec(spec, profile, data_root=data_root, runs_root=runs_root, seed=seed)
    setting = spec.test_setting or spec.setting
    if setting == spec.setting:
        return cfg.data
    other = dataclasses.replace(spec, setting=setting, test_setting=None, init_from=None)
    return resolve_spec(other, profile, data_root=data_root, runs_root=runs_root, seed=seed).data


def evaluate_model(model: Any, data_cfg: Any, *, num_classes: int, batch_size: int = 8, device: str = "cpu",
                   seed: int = TRAIN_SEED_BASE, progress: bool = False) -> dict[str, Any]:
    """Test metrics of ``model`` on ``data_cfg``'s test split: the official metrics with detail, per-item predictions
    and, when the data root holds synthetic sidecars, the oracle metrics (:func:`cue_metrics`)."""
    import torch
    from torch.utils.data import DataLoader

    from paperlib.data.datasets import build_dataset
    from paperlib.engine.evaluate import preserved_rng, summarise

    ds = build_dataset(data_cfg, "test", seed=seed)
    passes = 1 if data_cfg.fixed_offsets else int(data_cfg.iter_times)
    dev = torch.device(device)
    model = model.to(dev).eval()
    logits, targets, labels, ids, offs, vstarts = [], [], [], [], [], []
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="test", leave=False)
    with preserved_rng(), torch.no_grad():
        for b in loader:
            logits.append(model(b["video"].to(dev), b["audio"].to(dev)).float().cpu())  # (B, C)
            targets.append(torch.as_tensor(b["target"]).long())
            labels += [int(x) for x in b["label"]]
            ids += list(b["id"])
            offs += [float(x) for x in b["offset_sec"]]
            vstarts += [float(x) for x in b["v_start_sec"]]
    lg, tg = torch.cat(logits), torch.cat(targets)
    names = _class_names(data_cfg)
    groups = [names[i] if names is not None and 0 <= i < len(names) else str(i) for i in labels]
    res = summarise({"logits": lg, "target": tg, "label": groups if names is not None else None}, num_classes,
                    detail=True)
    res.setdefault("per_content_class_accuracy", {})
    preds = lg.argmax(1).tolist()
    res["passes"] = passes
    if passes > 1:
        per = len(preds) // passes
        accs = [float((lg[p * per:(p + 1) * per].argmax(1) == tg[p * per:(p + 1) * per]).double().mean())
                for p in range(passes)]
        res["accuracy_1_per_pass"] = accs
    items = [{"id": i, "offset_sec": o, "v_start_sec": v, "target": int(t), "pred": int(p), "label": g}
             for i, o, v, t, p, g in zip(ids, offs, vstarts, tg.tolist(), preds, groups)]
    sidecars = Path(data_cfg.root) / "sidecar"
    if sidecars.is_dir():
        from paperlib.data.synthetic import has_cue, load_sidecar

        cache: dict[str, dict] = {}
        for it in items:
            sc = cache.get(it["id"]) or cache.setdefault(it["id"], load_sidecar(data_cfg.root, it["id"]))
            it["cue"] = bool(has_cue(sc, it["v_start_sec"], it["offset_sec"], clip_sec=data_cfg.clip_sec))
        res.update(cue_metrics(preds, tg.tolist(), [it["cue"] for it in items]))
    else:
        res.update({"cue_fraction": None, "cue_n": None, "cue_accuracy_1": None, "cue_accuracy_1_tol1": None,
                    "cue_null_accuracy_1": None, "cue_null_accuracy_1_tol1": None})
    res["items"] = items
    res["test_data"] = {"dataset": data_cfg.dataset, "root": str(data_cfg.root), "clip_sec": data_cfg.clip_sec,
                        "fixed_offsets": data_cfg.fixed_offsets, "iter_times": data_cfg.iter_times}
    return res


def count_params(model: Any) -> dict[str, int]:
    return {"total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def evaluate_checkpoint(checkpoint: str | os.PathLike, key: str, profile: str = "paper", *,
                        data_root: str | os.PathLike | None = None, runs_root: str | os.PathLike | None = None,
                        device: str = "cpu", seed: int = 0, batch_size: int = 8, progress: bool = True) -> dict:
    """The test metrics of ``key`` (its test split and protocol at ``profile``) for a user-given paperlib or official
    checkpoint instead of a trained run. The checkpoint's classes must match the key's."""
    from paperlib.model.checkpoints import load_model

    specs = plan(profile)
    if key not in specs:
        raise KeyError(f"unknown campaign key {key!r} at profile {profile!r}; e.g. {list(specs)[:4]}")
    spec = specs[key]
    model, mcfg = load_model(checkpoint)
    if mcfg.num_classes != spec.num_classes:
        raise ValueError(f"{checkpoint}: the model has {mcfg.num_classes} offset classes, {key!r} needs "
                         f"{spec.num_classes}")
    dcfg = test_data_config(spec, profile, data_root=data_root, runs_root=runs_root, seed=seed)
    if abs(mcfg.clip_sec - dcfg.clip_sec) > 1e-9 or mcfg.crop != dcfg.crop:
        dcfg = dataclasses.replace(dcfg, clip_sec=mcfg.clip_sec, crop=mcfg.crop, fps=mcfg.fps,
                                   sample_rate=mcfg.sample_rate, n_fft=mcfg.n_fft, hop=mcfg.hop)
    t0 = time.time()
    res = evaluate_model(model, dcfg, num_classes=spec.num_classes, batch_size=batch_size, device=device,
                         seed=TRAIN_SEED_BASE + seed, progress=progress)
    res.update(checkpoint=str(checkpoint), key=key, profile=profile, params=count_params(model),
               eval_s=round(time.time() - t0, 2))
    return res


# ---------------------------------------------------------------------------------------------------------------------
# run folders


def _hash_root(runs_root: Path, profile: str, spec: RunSpec, h: str) -> Path:
    return runs_root / "campaign" / profile / f"{_slug(spec.key)}-{h}"


def _attempts(hroot: Path) -> list[Path]:
    return runs.list_runs(hroot)


def _finished(hroot: Path) -> Path | None:
    """The finished run of a hash folder: results.json and test_detail.json both written."""
    for run in reversed(_attempts(hroot)):
        if (run / runs.RESULTS_FILE).is_file() and (run / TEST_DETAIL).is_file():
            return run
    return None


def _record(spec: RunSpec, run_dir: Path, reused: bool) -> RunRecord:
    detail = json.loads((run_dir / TEST_DETAIL).read_text())
    results = json.loads((run_dir / runs.RESULTS_FILE).read_text())
    return RunRecord(spec=spec, run_dir=run_dir, test=detail["test"], params=detail["params"],
                     wall_s=float(detail["wall_s"]), steps=int(results["steps"]),
                     left_plateau_at_step=results.get("plateau_left_at_step"), reused=reused)


# ---------------------------------------------------------------------------------------------------------------------
# the worker (a subprocess): train, then evaluate once


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _fd_redirect(path: Path):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so C libraries too) to ``path`` (appended)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab", buffering=0) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _run_job(job: Mapping[str, Any]) -> None:
    """Train (or resume) one run and write its test_detail.json (called in the worker process)."""
    import torch

    from paperlib.core import config as C
    from paperlib.engine import config as RC
    from paperlib.engine import train
    from paperlib.model.checkpoints import load_model
    from paperlib.model.sparsesync import build_model

    hroot = Path(job["hash_root"])
    log = hroot / LOG_FILE
    t0 = time.time()
    with _fd_redirect(log):
        print(f"== campaign {job['key']} ({job['hash']}) {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
        done = _finished(hroot)
        unfinished = [r for r in _attempts(hroot) if not (r / runs.RESULTS_FILE).is_file()]
        resumable = [r for r in unfinished if (r / runs.CHECKPOINT_DIR / "last.pt").is_file()]
        if done is None and not any((r / runs.RESULTS_FILE).is_file() for r in _attempts(hroot)):
            if resumable:
                argv = ["--resume", str(resumable[-1])]
            else:
                overrides = list(job["overrides"]) + [f"train.run_root={hroot}", f"train.name={job['name']}"]
                if job.get("parent_root"):
                    parent = _finished(Path(job["parent_root"]))
                    if parent is None:
                        raise RuntimeError(f"{job['key']}: its parent run under {job['parent_root']} is not finished")
                    overrides.append(f"train.init_from={parent / runs.CHECKPOINT_DIR / 'best.pt'}")
                argv = ["--preset", job["preset"], *overrides]
            print("python -m paperlib train " + " ".join(argv), flush=True)
            rc = train.cli(argv)
            if rc:
                raise RuntimeError(f"python -m paperlib train exited with {rc}")
        trained = [r for r in _attempts(hroot) if (r / runs.RESULTS_FILE).is_file()]
        if not trained:
            raise RuntimeError(f"{hroot}: training ended without results.json")
        run_dir = trained[-1]
        cfg = C.from_dict(RC.RunConfig, json.loads((run_dir / runs.CONFIG_FILE).read_text()))
        best = run_dir / runs.CHECKPOINT_DIR / "best.pt"
        ckpt = best if best.is_file() else run_dir / runs.CHECKPOINT_DIR / "last.pt"
        model, _ = load_model(ckpt)
        params = count_params(build_model(cfg.model))  # trainable as configured (frozen backbones)
        dcfg = C.from_dict(type(cfg.data), job["test_data"])
        t1 = time.time()
        test = evaluate_model(model, dcfg, num_classes=cfg.model.num_classes,
                              batch_size=cfg.train.eval_batch_size or cfg.train.batch_size, device=job["device"],
                              seed=cfg.train.seed)
        results = json.loads((run_dir / runs.RESULTS_FILE).read_text())
        wall = float(results.get("elapsed_s") or 0.0) + (time.time() - t1)
        write_json_atomic(run_dir / TEST_DETAIL, {
            "key": job["key"], "hash": job["hash"], "checkpoint": str(ckpt), "test": test, "params": params,
            "wall_s": round(wall, 2), "eval_s": round(time.time() - t1, 2), "job_s": round(time.time() - t0, 2),
            "torch_threads": torch.get_num_threads()})
        print(f"== done {job['key']}: test accuracy_1 {test['accuracy_1']:.4f}, tol1 {test['accuracy_1_tol1']:.4f}",
              flush=True)
    shutil.copy2(log, run_dir / LOG_FILE)


def _worker_main(argv: Sequence[str]) -> int:
    """``python -m paperlib.paper.campaign --worker JOBS.json``: run the jobs in order; stop at the first failure."""
    jobs = json.loads(Path(argv[-1]).read_text())
    for job in jobs:
        try:
            _run_job(job)
        except BaseException as e:  # noqa: BLE001 - reported to the parent through the log and the exit code
            with open(Path(job["hash_root"]) / LOG_FILE, "a") as f:
                import traceback

                f.write(f"== FAILED {job['key']}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            print(f"campaign worker: {job['key']} failed: {e}", file=sys.stderr)
            return 1
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# ensure_runs


def _closure(keys: Iterable[str], specs: Mapping[str, RunSpec]) -> list[str]:
    """``keys`` and their ancestors, parents first (plan order)."""
    need: set[str] = set()
    for k in keys:
        if k not in specs:
            raise KeyError(f"unknown campaign key {k!r}; known keys: {sorted(specs)}")
        while k is not None and k not in need:
            need.add(k)
            k = specs[k].init_from
    return [k for k in specs if k in need]


def ensure_runs(keys: Iterable[str], profile: str = "mini", *, runs_root: str | os.PathLike | None = None,
                data_root: str | os.PathLike | None = None, device: str = "cpu", seed: int = 0,
                parallel: int | None = None, progress: bool = True) -> dict[str, RunRecord]:
    """Train what is missing for ``keys`` (dependencies first), reuse finished runs, resume unfinished ones.

    Returns a :class:`RunRecord` per requested key (aliases share their run). A failed run raises RuntimeError with
    the path of its log and its last lines.
    """
    _check_profile(profile)
    keys = list(dict.fromkeys(keys))
    specs = plan(profile)
    order = _closure(keys, specs)
    root = _runs_root(runs_root)
    if parallel is None:
        parallel = 2 if profile == "mini" else 1
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    memo: dict[str, str] = {}
    hashes = {k: spec_hash(specs[k], profile, specs, seed=seed, device=device, data_root=data_root, _memo=memo)
              for k in order}
    # one run per hash, in a folder named after the first key of the plan with the same spec (aliases differ only in
    # their key), so asking for an alias first or the full key first finds the same folder
    owner: dict[str, str] = {}
    for k in order:
        owner.setdefault(hashes[k], k)
    hroot = {h: _hash_root(root, profile, specs[canonical_key(specs[k], specs)], h) for h, k in owner.items()}
    done = {h: _finished(p) for h, p in hroot.items()}
    todo = [h for h in dict.fromkeys(hashes[k] for k in order) if done[h] is None]
    t_start = time.time()
    if todo:
        if profile != "paper":
            ensure_data(profile, {specs[owner[h]].setting for h in todo} |
                        {specs[owner[h]].test_setting for h in todo if specs[owner[h]].test_setting},
                        runs_root=root, progress=progress, workers=parallel)
        jobs = {h: _job(specs[owner[h]], h, hroot, hashes, profile, root, data_root, seed, device) for h in todo}
        _prepare_fixed_offsets(jobs.values(), profile, specs, owner, root, data_root, seed)
        _schedule(jobs, {h: hashes[specs[owner[h]].init_from] if specs[owner[h]].init_from else None for h in todo},
                  parallel, progress)
    out: dict[str, RunRecord] = {}
    for k in keys:
        h = hashes[k]
        run_dir = _finished(hroot[h])
        if run_dir is None:
            raise RuntimeError(f"{k}: no finished run under {hroot[h]} after training")
        _check_run_config(run_dir, h, specs[k], profile, memo, data_root)
        out[k] = _record(specs[k], run_dir, reused=h not in todo)
    return out


def _check_run_config(run_dir: Path, h: str, spec: RunSpec, profile: str, memo: Mapping[str, str],
                      data_root: str | os.PathLike | None) -> None:
    """The run's own config.json must hash to its folder's campaign hash (a moved or edited folder is refused)."""
    from paperlib.core.config import config_hash

    cfg = json.loads((run_dir / runs.CONFIG_FILE).read_text())
    parent = memo[spec.init_from] if spec.init_from else None
    got = config_hash({"config": _normalised(cfg, data_identity(profile, spec.setting, data_root), parent),
                       "test_setting": spec.test_setting})
    if got != h:
        raise RuntimeError(f"{run_dir}: its config.json hashes to {got}, not to its folder's campaign hash {h}; the "
                           "folder was edited or the plan changed; move it away to retrain")


def _job(spec: RunSpec, h: str, hroot: Mapping[str, Path], hashes: Mapping[str, str], profile: str, root: Path,
         data_root: str | os.PathLike | None, seed: int, device: str) -> dict[str, Any]:
    from paperlib.core.config import to_dict

    path = hroot[h]
    path.mkdir(parents=True, exist_ok=True)
    droot = data_dir(profile, spec.setting, root, data_root)
    overrides = spec_overrides(spec, profile, data_root_str=str(droot), seed=seed, device=device)
    test_cfg = test_data_config(spec, profile, data_root=data_root, runs_root=root, seed=seed)
    job = {"key": spec.key, "hash": h, "hash_root": str(path), "name": _slug(spec.key).replace(".", "p"),
           "preset": _preset(profile, spec), "overrides": overrides, "device": device,
           "parent_root": str(hroot[hashes[spec.init_from]]) if spec.init_from else None,
           "test_data": to_dict(test_cfg), "spec": dataclasses.asdict(spec), "profile": profile}
    write_json_atomic(path / SPEC_FILE, job)
    return job


def _prepare_fixed_offsets(jobs: Iterable[Mapping[str, Any]], profile: str, specs: Mapping[str, RunSpec],
                           owner: Mapping[str, str], root: Path, data_root: Any, seed: int) -> None:
    """Write the fixed-offset CSVs of every valid/test configuration before runs start in parallel (two processes
    generating the same CSV would race)."""
    from paperlib.core import config as C
    from paperlib.engine import config as RC
    from paperlib.data.datasets import build_dataset

    seen = set()
    for job in jobs:
        cfg = RC.resolve(job["preset"], job["overrides"])
        tdc = C.from_dict(type(cfg.data), job["test_data"])
        for dcfg, split in ((cfg.data, "valid"), (cfg.data, "test"), (tdc, "test")):
            key = (dcfg.root, dcfg.num_classes, dcfg.clip_sec, dcfg.max_off_sec, split, dcfg.fixed_offsets)
            if key in seen or not dcfg.fixed_offsets:
                continue
            seen.add(key)
            build_dataset(dcfg, split, seed=cfg.train.seed)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _launch(jobs: list[Mapping[str, Any]]) -> tuple[subprocess.Popen, Path]:
    first = Path(jobs[0]["hash_root"])
    spec_path = first / f".jobs-{os.getpid()}-{time.time_ns()}.json"
    write_json_atomic(spec_path, jobs)
    err = first / ".worker.stderr"
    with open(err, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "paperlib.paper.campaign", "--worker", str(spec_path)],
                                stdout=f, stderr=subprocess.STDOUT, env=_worker_env())
    return proc, spec_path


def _failure(proc_jobs: list[Mapping[str, Any]]) -> RuntimeError:
    for job in proc_jobs:
        hroot = Path(job["hash_root"])
        if _finished(hroot) is None:
            log = hroot / LOG_FILE
            return RuntimeError(f"campaign run {job['key']} failed; log: {log}\n--- last lines ---\n{_tail(log)}")
    return RuntimeError(f"a campaign worker failed after its runs finished; see {proc_jobs[0]['hash_root']}")


def _schedule(jobs: Mapping[str, dict[str, Any]], parent: Mapping[str, str | None], parallel: int,
              progress: bool) -> None:
    """Run the jobs: parents first; one worker for all when ``parallel == 1``, else one per job, ``parallel`` at a
    time. Progress is a tqdm bar over runs."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="campaign runs", unit="run", disable=not progress)
    try:
        if parallel == 1:
            proc, spec_path = _launch(list(jobs.values()))
            counted = 0
            while proc.poll() is None:
                time.sleep(0.5)
                n = sum(_finished(Path(j["hash_root"])) is not None for j in jobs.values())
                bar.update(n - counted)
                counted = n
            n = sum(_finished(Path(j["hash_root"])) is not None for j in jobs.values())
            bar.update(n - counted)
            spec_path.unlink(missing_ok=True)
            if proc.returncode != 0 or n != len(jobs):
                raise _failure(list(jobs.values()))
            return
        pending = list(jobs)  # parents come first (plan order)
        running: dict[str, tuple[subprocess.Popen, Path]] = {}
        finished: set[str] = set()
        while pending or running:
            for h, (proc, spec_path) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[h]
                spec_path.unlink(missing_ok=True)
                if proc.returncode != 0 or _finished(Path(jobs[h]["hash_root"])) is None:
                    for p, _ in running.values():
                        p.terminate()
                    for p, _ in running.values():
                        p.wait()
                    raise _failure([jobs[h]])
                finished.add(h)
                bar.update(1)
            for h in list(pending):
                if len(running) >= parallel:
                    break
                p = parent[h]
                if p is not None and p in jobs and p not in finished:
                    continue
                pending.remove(h)
                running[h] = _launch([jobs[h]])
            time.sleep(0.5)
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------------------------------
# command line (worker entry; ``python -m paperlib campaign`` would need registering in paperlib/cli.py)


def cli(argv: list[str]) -> int:
    """``python -m paperlib campaign --profile mini [--keys K ...] [--budget]``: train the plan (or show its budget)."""
    p = argparse.ArgumentParser(prog="python -m paperlib campaign", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="mini", choices=PROFILES)
    p.add_argument("--keys", nargs="*", default=None, help="keys to ensure (default: every contract key)")
    p.add_argument("--runs-root", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", type=int, default=None)
    p.add_argument("--plan", action="store_true", help="print the plan (key, parent, steps) and exit")
    p.add_argument("--budget", action="store_true", help="print the estimated mini budget and exit")
    a = p.parse_args(argv)
    if a.budget:
        print(json.dumps(mini_budget(parallel=a.parallel or 2), indent=1))
        return 0
    if a.plan:
        for k, s in plan(a.profile).items():
            print(f"{k:55s} parent={s.init_from} steps={s.steps}")
        return 0
    keys = a.keys or contract_keys(a.profile)
    recs = ensure_runs(keys, a.profile, runs_root=a.runs_root, data_root=a.data_root, device=a.device, seed=a.seed,
                       parallel=a.parallel)
    for k, r in recs.items():
        t = r.test
        cue = t.get("cue_accuracy_1_tol1")
        print(f"{k:55s} acc1 {t['accuracy_1']:.3f} tol1 {t['accuracy_1_tol1']:.3f} cue_tol1 "
              f"{'-' if cue is None else f'{cue:.3f}'} steps {r.steps} {'reused' if r.reused else 'trained'} "
              f"{r.run_dir}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2:]))
    sys.exit(cli(sys.argv[1:]))
