"""How a run of the plan (:class:`paperlib.paper.plan.RunSpec`) becomes a run configuration and a campaign hash.

:func:`resolve_spec` resolves a spec's :class:`paperlib.engine.config.RunConfig` once, as a typed object: the profile's
preset, then the spec's fields. :func:`campaign_hash` fingerprints a resolved config with the machine-specific paths
replaced by identities (the data set's identity instead of its folder, the parent's campaign hash instead of its
checkpoint path), so a run is found again from another checkout or machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from paperlib.core.config import apply_overrides, config_hash, merge, to_dict
from paperlib.core.geometry import Geometry, official_max_offset
from paperlib.data.provision import data_dir, data_identity, has_test_set, runs_root_path, test_dir, test_identity
from paperlib.engine.config import RunConfig, check_run_config, resolve
from paperlib.engine.upstream import UpstreamConfig, upstream_paths
from paperlib.model.weights import backbone_weight_paths
from paperlib.paper import profiles
from paperlib.paper.plan import BACKBONE_PREFIXES, RunSpec, loads_pretrained_extractors, plan

PAPER_PRESETS = {("dense", 21): "paper-lrs3", ("dense", 3): "paper-lrs3-3cls",
                 ("sparse", 21): "paper-vggsound-sparse-finetune", ("sparse", 3): "paper-vggsound-sparse-finetune-3cls"}
# random-offset passes over valid/test for sparse/general at mini and full (the official README uses 25 on real data;
# with 400 distinct test items, 2 passes give 800 scored windows per sparse run)
SPARSE_TEST_PASSES = 2
# Official VGGSound-Sparse fine-tuning augmentations (preset paper-vggsound-sparse-finetune); the upscale crop is
# scaled from 192/224 to the profile's crop.
SPARSE_AUGMENT = {"sometimes_upscale_p": 0.5, "p_gray_scale": 0.2, "p_color_jitter": 0.2, "p_audio_aug": 0.2}
TRAIN_SEED_BASE = 1337  # train.seed = 1337 + seed (seed 0 = the official seed)
# paper: the pretrained feature extractors (Kinetics-400 S3D, the VGGSound ResNet18 of the input length) are read from
# data_root/WEIGHTS_DIR (paperlib.model.weights.backbone_weight_paths); never downloaded.
WEIGHTS_DIR = "weights"
# the synthetic profiles' upstream extractor weights (paperlib.engine.upstream) live in <runs_root>/UPSTREAM_DIR
UPSTREAM_DIR = "upstream"
# The plateau recipe (paperlib.engine.recipes) as a switch over the preset's choice (recipe="on" | "off"; None keeps
# the profile preset's choice: on with cpu-recipe, off with smoke and the paper presets). "on" is cpu-recipe's setting.
RECIPE_SWITCH = {"on": {"recipe_init": True, "aux_xcorr_weight": 1.0, "aux_match_weight": 3.0},
                 "off": {"recipe_init": False, "aux_xcorr_weight": 0.0, "aux_match_weight": 0.0}}


def _dataset_of(setting: str) -> str:
    if setting in ("dense-crop", "dense-wide"):
        return "lrs3"
    return "vggsound" if setting == "general" else "vggsound_sparse"


def preset_of(profile: str, spec: RunSpec) -> str:
    """The preset a spec's config starts from: the paper preset of its data and classes, or the profile's."""
    if profile == "paper":
        kind = "dense" if spec.setting in ("dense-crop", "dense-wide") else "sparse"
        return PAPER_PRESETS[(kind, spec.num_classes)]
    return profiles.profile(profile).preset


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

    Runs that start their extractors afresh (a chain's first run, and the frozen-extractor rows) load the
    pre-trained extractors (:func:`extractor_weights`: at ``paper`` the public files under ``data_root/weights/``, by
    the final input length; at the synthetic profiles the upstream training's), unless the spec says
    ``pretrained_extractors=False`` (random extractors: "not pre-trained"). The frozen rows keep those weights
    (``train.init_skip``: the parent's extractors are not loaded), so "frozen" means the pre-trained weights never
    trained, as in the paper. Existence is checked by :func:`paperlib.paper.inputs.check_paper_inputs` (paper) or
    made by the campaign (upstream), not here.

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
    if spec.steps:  # the cap; without patience the run trains to it
        train |= {"max_steps": spec.steps, "time_budget_min": None, "patience": 1000000}
    if spec.patience_steps:  # valid top-1 or valid loss progress both reset it (TrainConfig: why)
        train |= {"patience_steps": spec.patience_steps, "patience_counts_valid_loss": True}
    # the campaign's own test evaluation (test_detail.json) replaces train's
    train |= {"seed": TRAIN_SEED_BASE + seed, "device": device, "progress": False, "test": False}
    if recipe:
        if recipe not in RECIPE_SWITCH:
            raise ValueError(f"recipe must be one of {tuple(RECIPE_SWITCH)} (or empty: the profile's), got {recipe!r}")
        train |= RECIPE_SWITCH[recipe]
    pretrained = loads_pretrained_extractors(spec)
    if pretrained and spec.frozen_backbones:
        train["init_skip"] = list(BACKBONE_PREFIXES)
    data = data_fields(profile, spec.setting, geometry, root)
    cfg = merge(base, {"model": model, "data": data, "train": train})
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))
    if pretrained and not (cfg.model.visual_weights or cfg.model.audio_weights):
        paths = extractor_weights(spec, profile, cfg.geometry.clip_sec, runs_root=runs_root, data_root=data_root)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, visual_weights=paths["visual"],
                                                                 audio_weights=paths["audio"]))
    if cfg.train.precision == "auto":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=_precision(profile, device)))
    return check_run_config(cfg)


def upstream_config(profile: str, clip_sec: float) -> UpstreamConfig | None:
    """The upstream pre-training that serves ``profile``'s runs of ``clip_sec``-second inputs (None at paper, which
    reads the public weights): the profile's frame size and its preset's crop, the run's length where the profile
    trains one per length, else its default length."""
    prof = profiles.profile(profile)
    if prof.upstream is None or prof.synth is None or prof.preset is None:
        return None
    length = clip_sec if prof.upstream_per_length else prof.default_clip_sec
    preset = resolve(prof.preset)
    return UpstreamConfig(size=prof.synth.size, crop=preset.geometry.crop, clip_sec=length,
                          backbone=preset.model.backbone, **dict(prof.upstream))


def upstream_configs(profile: str, specs: Mapping[str, RunSpec] | None = None) -> list[UpstreamConfig]:
    """The distinct upstream trainings the runs of ``specs`` (default: the profile's plan) load, by input length."""
    specs = plan(profile) if specs is None else specs
    found = {upstream_config(profile, s.clip_sec) for s in specs.values() if loads_pretrained_extractors(s)} - {None}
    return sorted(found, key=lambda c: c.clip_sec)


def extractor_weights(spec: RunSpec, profile: str, clip_sec: float, *, runs_root: str | os.PathLike | None = None,
                      data_root: str | os.PathLike | None = None) -> dict[str, str | None]:
    """The pre-trained extractor files a run that starts its extractors afresh loads: at paper the public ones under
    ``data_root/weights/`` (Kinetics-400 S3D, the VGGSound ResNet18 of the input length), at the synthetic profiles
    the upstream training's (:func:`upstream_config`; trained by the campaign before the runs that need them). The
    AVST_dec baseline trains its audio extractor from scratch (paper, Sec. 5), so it gets the visual file only."""
    up = upstream_config(profile, clip_sec)
    if up is None:
        paths = backbone_weight_paths(Path(str(data_root)).resolve() / WEIGHTS_DIR, clip_sec)
        visual, audio = str(paths["visual"]), str(paths["audio"])
    else:
        files = upstream_paths(up, runs_root_path(runs_root) / UPSTREAM_DIR)
        visual, audio = str(files.visual), str(files.audio)
    return {"visual": visual, "audio": None if spec.variant == "avst_dec" else audio}


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
    their file names, run-location fields, the device and ``train.compile`` blanked,
    ``train.patience_counts_valid_loss`` dropped where it has no step patience to count for (the precision, resolved
    by :func:`resolve_spec`, stays), and the setting it is tested on with the identity of that test data
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
    if not (d["train"].get("patience_counts_valid_loss") and d["train"].get("patience_steps")):
        # off, or without step patience to count for: it changed nothing the run did (and runs that predate the
        # switch keep their hashes)
        d["train"].pop("patience_counts_valid_loss", None)
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
