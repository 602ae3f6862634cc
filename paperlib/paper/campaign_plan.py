"""What the campaign trains (:mod:`paperlib.paper.campaign`): the runs of each profile, their data, their configs.

- :func:`plan` lists every run a training artefact may ask for (:func:`contract_keys`) plus the hidden parents of the
  fine-tuning chains, as :class:`RunSpec` s, parents first.
- The data of a setting is a synthetic set generated once (smoke, mini; :func:`ensure_data`) or a prepared real data
  set under ``data_root`` (paper); :func:`data_identity` says what it *is*, independently of where it lies.
- :func:`resolve_spec` resolves a spec's :class:`paperlib.engine.config.RunConfig` once, as a typed object: the
  profile's preset, then the spec's fields. :func:`campaign_hash` fingerprints a resolved config with the
  machine-specific paths replaced by identities (the data set's identity instead of its folder, the parent's campaign
  hash instead of its checkpoint path), so a run is found again from another checkout or machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from paperlib.core.geometry import Geometry, official_max_offset
from paperlib.core.config import apply_overrides, config_hash, merge, to_dict
from paperlib.core.io import write_json_atomic
from paperlib.data import synthetic
from paperlib.data.synthetic import DENSE_EVENT_PROBS, SynthConfig
from paperlib.engine.config import RunConfig, check_run_config, resolve
from paperlib.model.weights import backbone_weight_paths
from paperlib.paper.inputs import check_paper_inputs, paper_input_problems  # noqa: F401 (the campaign's names)
from paperlib.paper.report import runs_dir

PROFILES = ("smoke", "mini", "full", "paper")
VARIANTS = ("sparsesync", "transformer", "avst_dec")
SETTINGS = ("dense-crop", "dense-wide", "sparse", "general")
CLASSES = (21, 3)

# Input lengths (s) of Table 4 per profile. The paper has 2..7 s (2 s only for 3 classes). mini trains a subset: each
# length is a chain of 4 runs (dense-crop, dense-wide, sparse 21 cls, sparse 3 cls), which the 40-minute budget allows
# for two extra lengths around the default 5 s; full has the paper's six. smoke: its default (2 s) and one more.
LENGTHS: dict[str, tuple[float, ...]] = {"smoke": (2.0, 3.0), "mini": (3.0, 5.0, 7.0),
                                         "full": (2.0, 3.0, 4.0, 5.0, 6.0, 7.0),
                                         "paper": (2.0, 3.0, 4.0, 5.0, 6.0, 7.0)}
# Depths of Table 6 (layers of each selector and of the sync transformer). mini: 1, 2 (the cpu-recipe default) and 3;
# depth 6 does not fit the 40-minute budget (its two runs alone would cost ~15 min; see MINI_STEPS); full: the paper's.
DEPTHS: dict[str, tuple[int, ...]] = {"smoke": (1, 2), "mini": (1, 2, 3), "full": (1, 2, 3, 6), "paper": (1, 2, 3, 6)}
# The default depth / length of each profile (what the unsuffixed keys use): the preset's.
DEFAULT_DEPTH = {"smoke": 1, "mini": 2, "full": 2, "paper": 3}
DEFAULT_CLIP_SEC = {"smoke": 2.0, "mini": 5.0, "full": 5.0, "paper": 5.0}
PRESET_OF_PROFILE = {"smoke": "smoke", "mini": "cpu-recipe", "full": "cpu-recipe"}

# Optimiser steps per run kind at mini (batch 8 of the cpu-recipe preset). How they were chosen: the mini plan must
# train in <= 40 min of wall time with two single-threaded processes (= 4,800 process-seconds) on a 2-core machine
# when it is quiet. Calibration (one thread, `nice -n 5`, while other work kept the load at ~4 on the 2 cores, so
# these are upper bounds): 130 steps of the mini dense-crop SparseSync run on 240 clips: the first epoch (30 steps)
# decoded and cached the train clips in 71 s, then 0.47 s/step (0.25 s/step on a less loaded machine, ~0.2 s of CPU
# per step). Relative step costs of the variants, depths, lengths and frozen extractors were measured with random
# inputs of the same geometry (recipe aux losses included, median of 10 steps): COST_*. OVERHEAD_S is the per-run
# cost besides the steps: interpreter start, first-epoch decoding of train + valid clips (~0.12 s per clip quiet),
# valid evaluations every 200 steps and the test evaluation (400 test items; sparse: SPARSE_TEST_PASSES passes). The
# base (dense-crop from scratch) run of each chain gets the largest share: with the CPU recipe (preset cpu-recipe) the
# loss leaves the chance plateau after ~800 steps at batch 8 on dense-crop (step 774 in a long plateau-study run);
# fine-tunes start from a trained model and get less; 3-class fine-tunes re-learn the classifier and get least.
# `budget()` adds it all up.
MINI_STEPS = {"base": 900, "dense-wide": 200, "sparse": 350, "general": 350, "c3": 80, "scratch": 900}
# full: every run long enough to leave its plateau. The sparse step of the recipe (dense-event training clips, the
# aids on) needs ~4,500-5,000 steps at batch 8 before it syncs on sparse clips (README, "What to expect": 3,874 steps
# gave 28 % / 58 % within +-1 class on cue items against a null of 5 / 15 %); dense-crop leaves the plateau after
# ~800-950 steps and keeps improving to ~1,500 (README: 1,484-1,758 steps in 10 minutes). "Not pre-trained on dense
# data" (scratch) gets as many sparse steps as the fine-tune, so the comparison is pre-training vs none at equal
# sparse budgets.
FULL_STEPS = {"base": 1500, "dense-wide": 400, "sparse": 5000, "general": 5000, "c3": 300, "scratch": 5000}
STEPS = {"mini": MINI_STEPS, "full": FULL_STEPS}
# s per step, SparseSync, depth 2, 5-s windows, batch 8, one thread, quiet machine: 0.25 s contiguous, and
# channels-last convolution weights (train.memory_format auto = channels_last on CPU) made the same step 1.39x faster
# (bench.cpu_train_step --preset cpu-recipe --threads 1: 147 -> 106 ms without data loading and aux losses)
SEC_PER_STEP = 0.25 / 1.39
COST_VARIANT = {"sparsesync": 1.0, "transformer": 1.28, "avst_dec": 0.86}  # measured relative step cost
COST_DEPTH = {1: 0.90, 2: 1.0, 3: 1.06, 6: 1.17}  # backbones dominate the step, so depth costs little
# measured at 3, 5 and 7 s; 2, 4 and 6 s are linear interpolations/extrapolations of those (not measured)
COST_LENGTH = {2.0: 0.45, 3.0: 0.63, 4.0: 0.80, 5.0: 1.0, 6.0: 1.27, 7.0: 1.55}
COST_FROZEN = 0.35  # no backward through the extractors
OVERHEAD_S = {"dense-crop": 60.0, "dense-wide": 60.0, "sparse": 80.0, "general": 90.0}
# random-offset passes over valid/test for sparse/general at mini and full (the official README uses 25 on real data;
# with 400 distinct test items, 2 passes give 800 scored windows per sparse run)
SPARSE_TEST_PASSES = 2
# synthetic clips generated per second by one worker at 64 px (10-s clips, x264 + AAC), for the plan's data time
# (measured 4.3 dense-crop and 5.2 sparse clips/s on one worker while other work shared the machine)
SYNTH_CLIPS_PER_S = 4.0

# Synthetic data per profile: training clips per setting, frame size, clips per talker video, and the clips of each
# setting's separate test set ("test": 0 = test on the training set's own test split). dense-crop/dense-wide share
# seed 0 (same talkers); the test sets use TEST_SEED (talkers and events no training clip has). Test clips are cheap
# to make and to score, so mini and full test on 400 distinct items per setting: two standard errors of a difference
# near 50 % are then ~7 points instead of ~20 at 48 items.
SYNTH = {
    "smoke": {"size": 32, "clips": {"dense-crop": 12, "dense-wide": 12, "sparse": 12}, "clips_per_video": 1,
              "test": 0},
    "mini": {"size": 64, "clips": {"dense-crop": 240, "dense-wide": 240, "sparse": 240}, "clips_per_video": 4,
             "test": 400},
    "full": {"size": 64, "clips": {"dense-crop": 480, "dense-wide": 480, "sparse": 600}, "clips_per_video": 4,
             "test": 400},
}
# train / valid / test fractions of the synthetic training sets: with a separate test set (mini, full) their own test
# split keeps only one talker or clip (the split rule keeps >= 1 per split); smoke tests on its own 20 %
SYNTH_SPLIT = {"smoke": (0.7, 0.1, 0.2), "mini": (0.85, 0.15, 0.0), "full": (0.85, 0.15, 0.0)}
TEST_SPLIT = (0.0, 0.0, 1.0)  # a test set is all test
TEST_SEED = 1000
# The sparse step of the recipe trains on sparse clips with 3-5 events per 10-s clip (synthetic.DENSE_EVENT_PROBS)
# instead of the test generator's 0-3, so most windows hold a cue to learn from; it is tested on the standard sparse
# generator. mini and full train every sparse and general run on such clips; smoke keeps the defaults.
DENSE_EVENT_TRAINING = {"smoke": False, "mini": True, "full": True}
# "general": (setting, seed, clips) of the parts linked into one VGGSound-layout set ("larger and more varied" than the
# sparse training set: more clips, and talker clips besides the sparse classes).
GENERAL_PARTS = {
    "smoke": (("sparse", 1, 12), ("dense-wide", 1, 8)),
    "mini": (("sparse", 1, 200), ("dense-wide", 1, 120)),
    "full": (("sparse", 1, 800), ("dense-wide", 1, 400)),
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
# paper: the pretrained feature extractors (Kinetics-400 S3D, the VGGSound ResNet18 of the input length) are read from
# data_root/WEIGHTS_DIR (paperlib.model.weights.backbone_weight_paths); never downloaded.
WEIGHTS_DIR = "weights"
# The plateau recipe (paperlib.engine.recipes) as a switch over the preset's choice (recipe="on" | "off"; None keeps
# the profile preset's choice: on with cpu-recipe, off with smoke and the paper presets). "on" is cpu-recipe's setting.
RECIPE_SWITCH = {"on": {"recipe_init": True, "aux_xcorr_weight": 1.0, "aux_match_weight": 3.0},
                 "off": {"recipe_init": False, "aux_xcorr_weight": 0.0, "aux_match_weight": 0.0}}


# ---------------------------------------------------------------------------------------------------------------------
# specs and the plan


@dataclass(frozen=True)
class RunSpec:
    key: str  # "{variant}/{setting}/c{C}[/suffix]" (the artefacts' keys; hidden parents use the same scheme)
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


def _fmt_len(sec: float) -> str:
    return f"{sec:g}"


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")


def _steps(profile: str, kind: str) -> int:
    if profile == "paper":
        return 0
    if profile == "smoke":
        return {"base": 3, "scratch": 3}.get(kind, 2)
    return STEPS[profile][kind]


def plan(profile: str) -> dict[str, RunSpec]:
    """Every key any training artefact may ask for at ``profile`` (plus hidden parents), parents before children."""
    check_profile(profile)
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
    """The keys the training artefacts ask for, without the hidden parents."""
    check_profile(profile)
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


def closure(keys: Iterable[str], specs: Mapping[str, RunSpec]) -> list[str]:
    """``keys`` and their ancestors, parents first (plan order)."""
    need: set[str] = set()
    for k in keys:
        if k not in specs:
            raise KeyError(f"unknown campaign key {k!r}; known keys: {sorted(specs)}")
        while k is not None and k not in need:
            need.add(k)
            k = specs[k].init_from
    return [k for k in specs if k in need]


def canonical_key(spec: RunSpec, specs: Mapping[str, RunSpec]) -> str:
    """The first key of the plan whose spec equals ``spec`` up to the key (aliases map to the key they alias)."""
    for k, s in specs.items():
        if dataclasses.replace(s, key=spec.key) == spec:
            return k
    return spec.key


# Measured: the mini campaign (data + 33 runs) took 30.9 min on a quiet machine against this plan's 42.7 (so the
# per-step constant is an upper bound there); full's 5,000-step sparse runs took 0.28-0.31 s/step while the test suite
# shared the machine (1.6x the quiet SEC_PER_STEP).
# Wall-time targets of the campaign (data + training) on a quiet 2-core machine with two workers (minutes): mini's
# share of its 60-minute run-all (Table 1, ~7 min, and the other artefacts, ~2 min, take the rest); full's whole
# overnight run (4 hours, Table 1 at full included).
BUDGET_TARGET_MIN = {"mini": 50.0, "full": 225.0}

# Repeated runs. At mini, three seeds of the dense-crop recipe run gave 41.0 / 56.0 / 25.3 % within +-1 class (sd
# 15.4 pts, 3-4x one run's binomial 2 s.e.; results/mini/dense_crop_variants/), so a single run per arm cannot carry
# a verdict whose effect is of that size. Table 2's headline claim (SparseSync vs AVST_dec on sparse data, both
# grids; Fig. 3's overall comparison and "sparse is harder" rest on the same runs) is therefore judged at full on the
# mean of 3 seeds: REPEATED_KEYS are retrained with the campaign's seed + each of REPEAT_SEEDS, the whole chain
# (dense-crop -> dense-wide -> sparse, new initialisation, sampling and random offsets; the same synthetic data).
# What the budget leaves out: the transformer and the other ablation chains (+26 min of wall time each for two
# seeds) stay single runs, and the report says "1 seed" where it compares them.
REPEAT_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (), "mini": (), "full": (1, 2), "paper": ()}
REPEATED_KEYS = ("sparsesync/sparse/c21", "sparsesync/sparse/c3", "avst_dec/sparse/c21", "avst_dec/sparse/c3")


def repeated_keys(keys: Iterable[str], profile: str) -> list[str]:
    """The ones of ``keys`` that ``profile`` retrains under REPEAT_SEEDS: REPEATED_KEYS and their aliases (keys with
    the same spec, e.g. Table 4's ``sparsesync/sparse/c21/len5``)."""
    if not REPEAT_SEEDS[profile]:
        return []
    specs = plan(profile)
    return [k for k in keys if k in specs and canonical_key(specs[k], specs) in REPEATED_KEYS]


def planned_seeds(profile: str, key: str, seed: int = 0) -> tuple[int, ...]:
    """The seeds ``profile`` plans for run ``key``: the campaign seed, and ``seed`` + each of REPEAT_SEEDS for the keys
    it repeats (:func:`repeated_keys`)."""
    repeats = REPEAT_SEEDS[profile] if repeated_keys([key], profile) else ()
    return tuple(seed + o for o in (0,) + tuple(repeats))


def run_minutes(spec: RunSpec, profile: str) -> float:
    """Estimated minutes of one run (steps x SEC_PER_STEP x relative cost + overhead) on one quiet core."""
    cost = COST_VARIANT[spec.variant] * COST_DEPTH[spec.depth or DEFAULT_DEPTH[profile]]
    cost *= COST_LENGTH.get(spec.clip_sec, spec.clip_sec / DEFAULT_CLIP_SEC[profile])
    if spec.frozen_backbones:
        cost *= COST_FROZEN
    return (spec.steps * SEC_PER_STEP * cost + OVERHEAD_S[spec.setting]) / 60


def data_clips(profile: str) -> int:
    """Synthetic clips a whole campaign of ``profile`` generates (training sets, the general parts, test sets)."""
    p = SYNTH[profile]
    n = sum(p["clips"].values()) + sum(c for _, _, c in GENERAL_PARTS[profile])
    return n + p["test"] * len(p["clips"])


def budget(profile: str = "mini", specs: Mapping[str, RunSpec] | None = None, parallel: int = 2) -> dict[str, Any]:
    """The plan's estimated cost at ``profile`` (mini, full): minutes per distinct run (:func:`run_minutes`), their
    sum, the data generation, and the wall time of ``parallel`` workers scheduled as
    :func:`paperlib.paper.campaign.ensure_runs` does (plan order, parents first), against ``BUDGET_TARGET_MIN``."""
    if profile not in STEPS:
        raise ValueError(f"budget() estimates the CPU profiles {tuple(STEPS)}, not {profile!r}")
    specs = plan(profile) if specs is None else specs
    rows = []
    # seed 0: every run of the plan; each repeat seed: the chains of REPEATED_KEYS (ensure_runs at that seed)
    for offset in (0,) + REPEAT_SEEDS[profile]:
        wanted = set(specs) if offset == 0 else set(closure(repeated_keys(specs, profile), specs))
        memo: dict[str, str] = {}
        owner: dict[str, str] = {}
        for key, s in specs.items():  # plan order: a wanted key's parents (in its closure) are hashed first
            if key in wanted:
                owner.setdefault(spec_hash(s, profile, specs, seed=offset, _memo=memo), key)
        tag = "" if offset == 0 else f"@seed{offset}"
        for key in owner.values():
            s = specs[key]
            parent = owner[memo[s.init_from]] + tag if s.init_from else None
            rows.append({"key": key + tag, "parent": parent, "steps": s.steps,
                         "minutes": round(run_minutes(s, profile), 2)})
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
    data_min = data_clips(profile) / (SYNTH_CLIPS_PER_S * parallel) / 60
    wall = now + data_min
    return {"profile": profile, "runs": rows, "n_runs": len(rows), "process_minutes": round(total, 1),
            "parallel": parallel, "training_wall_minutes": round(now, 1), "data_clips": data_clips(profile),
            "data_minutes": round(data_min, 1), "wall_minutes": round(wall, 1),
            "target_wall_minutes": BUDGET_TARGET_MIN[profile], "fits": wall <= BUDGET_TARGET_MIN[profile]}


# ---------------------------------------------------------------------------------------------------------------------
# data


def runs_root_path(runs_root: str | os.PathLike | None) -> Path:
    """The campaign's root folder: ``runs_root``, else the repository's ``runs/``."""
    return Path(runs_root).resolve() if runs_root is not None else runs_dir()


def synth_config(profile: str, setting: str, seed: int = 0, *, test: bool = False) -> SynthConfig:
    """The SynthConfig of a synthetic setting at ``profile`` (smoke, mini, full): its training set (sparse clips
    with dense events where ``DENSE_EVENT_TRAINING``), or with ``test`` its separate test set (the standard
    generator, ``TEST_SEED``, all test)."""
    p = SYNTH[profile]
    split = TEST_SPLIT if test else SYNTH_SPLIT[profile]
    cfg = SynthConfig(setting=setting, size=p["size"], seed=TEST_SEED if test else seed,
                      clips_per_video=p["clips_per_video"], split_fractions=split)
    if setting == "sparse" and not test and DENSE_EVENT_TRAINING[profile]:
        cfg = dataclasses.replace(cfg, event_count_probs=DENSE_EVENT_PROBS)
    return cfg.validate()


def has_test_set(profile: str) -> bool:
    """Does ``profile`` test on separate synthetic test sets (else on each training set's own test split)?"""
    return profile in SYNTH and SYNTH[profile]["test"] > 0


def data_identity(profile: str, setting: str, data_root: str | os.PathLike | None = None) -> str:
    """What the data of a setting *is* (for the campaign hash): the synthetic recipe, or the real folder's path."""
    if profile == "paper":
        return f"paper:{_paper_root(setting, data_root)}"
    if setting == "general":
        parts = [(to_dict(synth_config(profile, s, seed)), n) for s, seed, n in GENERAL_PARTS[profile]]
        return f"synthetic-general:{config_hash({'parts': parts})}"
    cfg = synth_config(profile, setting)
    return f"synthetic:{config_hash({'config': to_dict(cfg), 'clips': SYNTH[profile]['clips'][setting]})}"


def test_identity(profile: str, setting: str, data_root: str | os.PathLike | None = None) -> str:
    """What the test data of a setting *is*: the separate test set's recipe, or the training data's identity (its
    own test split)."""
    if not has_test_set(profile):
        return data_identity(profile, setting, data_root)
    cfg = synth_config(profile, setting, test=True)
    return f"synthetic-test:{config_hash({'config': to_dict(cfg), 'clips': SYNTH[profile]['test']})}"


def test_dir(profile: str, setting: str, runs_root: str | os.PathLike | None = None,
             data_root: str | os.PathLike | None = None) -> Path:
    """The data root a setting is tested on (not created): its separate test set, or its training data."""
    if not has_test_set(profile):
        return data_dir(profile, setting, runs_root, data_root)
    return runs_root_path(runs_root) / "data" / profile / f"{setting}-test"


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
    return runs_root_path(runs_root) / "data" / profile / setting


def ensure_data(profile: str, settings: Iterable[str], runs_root: str | os.PathLike | None = None,
                progress: bool = True, workers: int = 1) -> dict[str, Path]:
    """Generate the synthetic sets of ``settings`` (smoke, mini, full) once, with their separate test sets where
    the profile has them (``{setting}-test`` keys of the result); checks their ``synth.json``."""
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
        if has_test_set(profile):
            troot = test_dir(profile, setting, runs_root)
            _generate_checked(synth_config(profile, setting, test=True), troot, SYNTH[profile]["test"], progress,
                              workers)
            out[f"{setting}-test"] = troot
    return out


def _generate_checked(cfg: SynthConfig, root: Path, clips: int, progress: bool, workers: int) -> Path:
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


def _clips_done(cfg: SynthConfig, root: Path, clips: int) -> bool:
    for i in (0, clips - 1):
        cid = synthetic.clip_id(cfg, i)
        if not (synthetic.video_path(root, cid).is_file() and synthetic.sidecar_path(root, cid).is_file()):
            return False
    return True


def _ensure_general(profile: str, runs_root: str | os.PathLike | None, progress: bool, workers: int) -> Path:
    """The "general" set: a VGGSound-layout folder (``vggsound.csv``, ``vggsound_{split}.txt``, ``video/``,
    ``sidecar/``) of relative links to the clips of GENERAL_PARTS (generated under ``general-parts/``)."""
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
# run configurations and campaign hashes


def _dataset_of(setting: str) -> str:
    if setting in ("dense-crop", "dense-wide"):
        return "lrs3"
    return "vggsound" if setting == "general" else "vggsound_sparse"


def preset_of(profile: str, spec: RunSpec) -> str:
    """The preset a spec's config starts from: the paper preset of its data and classes, or the profile's."""
    if profile == "paper":
        kind = "dense" if spec.setting in ("dense-crop", "dense-wide") else "sparse"
        return PAPER_PRESETS[(kind, spec.num_classes)]
    return PRESET_OF_PROFILE[profile]


def data_fields(profile: str, setting: str, geometry: Geometry, root: Path) -> dict[str, Any]:
    """``data`` fields of a setting (dataset, root, protocol) on top of the profile's preset, for a run's geometry."""
    clip_sec, max_off, crop = geometry.clip_sec, geometry.max_off_sec, geometry.crop
    d: dict[str, Any] = {"root": str(root), "dataset": _dataset_of(setting)}
    if profile == "paper" and setting == "general":
        # VGGSound (Table 7): the official code validates and tests it in one pass at the fixed offsets of
        # fixed_offsets_vggsound (load_fixed_offsets_on_test, iter_times 1); the 25 random passes of the fine-tuning
        # preset are the README's advice for VGGSound-Sparse only (~460k windows an epoch on VGGSound's valid split)
        d |= {"fixed_offsets": True, "iter_times": 1}
    if profile != "paper":
        # whole decoded clips kept in RAM and shared on disk by every run of the profile (each run would otherwise
        # spend ~35 s of its first epoch decoding the same clips); results are unchanged (tests/test_train_recipe.py)
        d |= {"cache_decoded": 100000, "decoded_cache_dir": str(root.parent / "decoded")}
        # clips are 10 s; a window of L s needs L + max_off s (smoke's preset lowers min_clip_sec to 3 s)
        d["min_clip_sec"] = min(10.0, max(clip_sec + max_off, 3.0 if profile == "smoke" else 9.0))
        if setting in ("sparse", "general"):
            d |= SPARSE_AUGMENT
            d |= {"upscale_crop": max(2, int(round(crop * 192 / 224))), "fixed_offsets": False,
                  "iter_times": SPARSE_TEST_PASSES}
    return d


def resolve_spec(spec: RunSpec, profile: str, *, data_root: str | os.PathLike | None = None,
                 runs_root: str | os.PathLike | None = None, seed: int = 0, device: str = "auto",
                 recipe: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """The resolved RunConfig of ``spec``: the profile's preset, then the spec's typed fields, the recipe switch
    (``recipe``: "on" | "off" | None, :data:`RECIPE_SWITCH`), then ``overrides`` (``key=value``, e.g. a smaller
    geometry for a trial; they enter the campaign hash like any field).

    At ``paper``, runs that start their extractors afresh (from scratch, and the frozen-extractor rows) load the
    pretrained extractors from ``data_root/weights/`` (:func:`paperlib.model.weights.backbone_weight_paths`, by the
    final input length); the frozen rows keep those weights (``train.init_skip``: the parent's extractors are not
    loaded), so "frozen" means the Kinetics-400 / VGGSound weights never trained, as in the paper. Existence is
    checked by :func:`paperlib.paper.inputs.check_paper_inputs`, not here.

    ``train.precision`` "auto" is resolved here, since it changes the numbers and so the hash: fp32 at the CPU profiles
    (every profile but paper; a GPU run of them shares their cache), at ``paper`` the device's (bf16 on CUDA, fp32 on
    CPU).
    ``train.device`` stays as given (default "auto": CUDA when present) and is not part of the hash.

    ``train.init_from`` (a parent run's checkpoint, known once the parent has trained), ``train.run_root`` and
    ``train.name`` (where the run lives) are left at the preset's values; the campaign sets them per run.
    """
    base = resolve(preset_of(profile, spec))
    root = data_dir(profile, spec.setting, runs_root, data_root)
    geometry = dataclasses.replace(base.geometry, num_classes=spec.num_classes, clip_sec=spec.clip_sec,
                                   max_off_sec=official_max_offset(spec.num_classes))
    model: dict[str, Any] = {"variant": spec.variant, "geometry": dataclasses.asdict(geometry)}
    if spec.depth is not None:
        model["depth"] = spec.depth
    if spec.frozen_backbones:
        model |= {"train_visual_backbone": False, "train_audio_backbone": False}
    train: dict[str, Any] = {}
    if spec.init_from is not None:
        train["init_carry_optimizer"] = False
        if spec.init_skip:
            train["init_skip"] = list(spec.init_skip)
        train["init_strict"] = False  # 3-class classifiers; anything else must match (checked by the hash)
    if spec.steps:
        train |= {"max_steps": spec.steps, "time_budget_min": None, "patience": 1000000}
    # the campaign's own test evaluation (test_detail.json) replaces train's
    train |= {"seed": TRAIN_SEED_BASE + seed, "device": device, "progress": False, "test": False}
    if recipe:
        if recipe not in RECIPE_SWITCH:
            raise ValueError(f"recipe must be one of {tuple(RECIPE_SWITCH)} (or empty: the profile's), got {recipe!r}")
        train |= RECIPE_SWITCH[recipe]
    pretrained = profile == "paper" and (spec.init_from is None or spec.frozen_backbones)
    if pretrained and spec.frozen_backbones:
        train["init_skip"] = list(BACKBONE_PREFIXES)
    data = data_fields(profile, spec.setting, geometry, root)
    cfg = merge(base, {"model": model, "data": data, "train": train})
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))
    if pretrained and not (cfg.model.visual_weights or cfg.model.audio_weights):
        paths = backbone_weight_paths(Path(str(data_root)).resolve() / WEIGHTS_DIR, cfg.geometry.clip_sec)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, visual_weights=str(paths["visual"]),
                                                                 audio_weights=str(paths["audio"])))
    if cfg.train.precision == "auto":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=_precision(profile, device)))
    return check_run_config(cfg)


def _precision(profile: str, device: str) -> str:
    """The precision "auto" stands for in a campaign run (see :func:`resolve_spec`)."""
    if profile != "paper":
        return "fp32"
    import torch

    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "bf16" if cuda else "fp32"


def test_data_config(spec: RunSpec, profile: str, *, data_root: str | os.PathLike | None = None,
                     runs_root: str | os.PathLike | None = None, seed: int = 0, cfg: RunConfig | None = None,
                     overrides: Sequence[str] = ()) -> Any:
    """The DataConfig of the split a run is tested on: its own setting's (``cfg.data`` when ``cfg``, the spec's
    resolved config, is given), or ``spec.test_setting``'s; on the setting's separate test set where the profile
    has one (:func:`test_dir`). ``overrides`` as for :func:`resolve_spec`."""
    setting = spec.test_setting or spec.setting
    if setting == spec.setting:
        data = (cfg or resolve_spec(spec, profile, data_root=data_root, runs_root=runs_root, seed=seed,
                                    overrides=overrides)).data
    else:
        other = dataclasses.replace(spec, setting=setting, test_setting=None, init_from=None)
        data = resolve_spec(other, profile, data_root=data_root, runs_root=runs_root, seed=seed,
                            overrides=overrides).data
    if has_test_set(profile):
        data = dataclasses.replace(data, root=str(test_dir(profile, setting, runs_root)))
    return data


def campaign_hash(cfg: Mapping[str, Any], data_id: str, parent_hash: str | None, test_setting: str | None,
                  test_id: str | None = None, world_size: int = 1) -> str:
    """The campaign hash of a resolved config (``to_dict`` form, e.g. a run's ``config.json``): the data folder
    replaced by the data's identity, the init checkpoint by the parent's campaign hash, the extractor weights by
    their file names, run-location fields, the device and ``train.compile`` blanked (the precision, resolved by
    :func:`resolve_spec`, stays), and the setting it is tested on with the identity of that test data
    (``test_id``; its test_detail.json lives in the run). ``world_size``: processes per run (the lr and the global
    batch scale with it); 1 adds nothing."""
    d = json.loads(json.dumps(cfg))
    d["data"]["root"] = data_id
    d["data"]["decoded_cache_dir"] = ""  # where decoded clips are cached changes no result
    d["train"]["run_root"] = ""
    d["train"]["name"] = ""
    d["train"]["resume"] = None
    d["train"]["init_from"] = None if parent_hash is None else f"campaign:{parent_hash}"
    d["train"]["progress"] = False
    d["train"]["device"] = ""  # where a run trains does not split the cache
    d["train"].pop("compile", None)  # nor whether its step is compiled (float rounding only)
    for w in ("visual_weights", "audio_weights"):
        if d["model"].get(w):
            d["model"][w] = Path(d["model"][w]).name
    key: dict[str, Any] = {"config": d, "test_setting": test_setting}
    if test_id is not None:
        key["test_data"] = test_id
    if world_size != 1:
        key["world_size"] = int(world_size)
    return config_hash(key)


def spec_test_identity(spec: RunSpec, profile: str, data_root: str | os.PathLike | None = None) -> str | None:
    """The test-data identity that enters a spec's campaign hash: None where runs test on their training data's own
    split (smoke, paper: the data identity already covers it), else the separate test set's."""
    if not has_test_set(profile):
        return None
    return test_identity(profile, spec.test_setting or spec.setting, data_root)


def spec_hash(spec: RunSpec, profile: str, specs: Mapping[str, RunSpec] | None = None, *, seed: int = 0,
              device: str = "auto", data_root: str | os.PathLike | None = None, recipe: str | None = None,
              overrides: Sequence[str] = (), world_size: int = 1, _memo: dict | None = None,
              _configs: Mapping[str, RunConfig] | None = None) -> str:
    """The campaign hash of ``spec`` (:func:`campaign_hash` of its resolved config), its parents' first.

    ``_memo`` collects the hashes by key; ``_configs`` gives already resolved configs by key (else each is resolved
    with ``recipe`` and ``overrides``).
    """
    specs = plan(profile) if specs is None else specs
    memo = {} if _memo is None else _memo
    if spec.key in memo:
        return memo[spec.key]
    parent = None
    if spec.init_from is not None:
        parent = spec_hash(specs[spec.init_from], profile, specs, seed=seed, device=device, data_root=data_root,
                           recipe=recipe, overrides=overrides, world_size=world_size, _memo=memo, _configs=_configs)
    cfg = _configs[spec.key] if _configs is not None and spec.key in _configs else \
        resolve_spec(spec, profile, data_root=data_root, runs_root="/nonexistent", seed=seed, device=device,
                     recipe=recipe, overrides=overrides)
    h = campaign_hash(to_dict(cfg), data_identity(profile, spec.setting, data_root), parent, spec.test_setting,
                      spec_test_identity(spec, profile, data_root), world_size=world_size)
    memo[spec.key] = h
    return h
