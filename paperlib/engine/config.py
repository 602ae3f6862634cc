"""The composition root of a training run: ``TrainConfig``, ``RunConfig`` (model + data + train) and the presets.

Model and data configs live next to the code that reads them (:mod:`paperlib.model.sparsesync`,
:mod:`paperlib.data.datasets`); the generic override/serialise/hash machinery is :mod:`paperlib.core.config`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from paperlib.core.config import apply_overrides, flatten, from_dict, merge
from paperlib.core.geometry import Geometry, official_max_offset
from paperlib.data.datasets import DataConfig
from paperlib.model.sparsesync import ModelConfig


@dataclasses.dataclass
class TrainConfig:
    """Optimisation, schedule, precision, stopping, logging and run management (official values as defaults)."""

    base_lr: float = 5e-6  # per process; the optimiser gets base_lr x world size (paper Sec. 7.3)
    scale_lr_by_world_size: bool = True
    betas: tuple[float, float] = (0.9, 0.999)  # official configs; the paper prints beta_1 = 0.99
    eps: float | None = None  # None: 1e-7 under fp16/bf16 autocast, 1e-8 in fp32 (official)
    weight_decay: float = 0.0
    warmup_steps: int = 1000  # linear warm-up length in iterations (official `warmup: 1000`)
    warmup_start_factor: float = 0.01  # the warm-up starts at 1% of the lr ("100-times lower", Sec. 7.3)
    clip_grad_norm: float = 1.0  # max global gradient norm; 0 disables
    batch_size: int = 10  # clips per process and step (Sec. 7.3)
    eval_batch_size: int | None = None  # None: batch_size
    epochs: int = 10000  # official num_epochs (early stopping ends runs)
    max_steps: int | None = None  # stop after this many optimiser steps
    time_budget_min: float | None = None  # stop after this many minutes of training + evaluation (across resumes)
    eval_every_steps: int = 0  # 0: evaluate valid at the end of every epoch (official)
    patience: int = 140  # evaluations without a new best early_stop_metric before stopping (official: 140 epochs)
    # patience in optimiser steps instead of evaluations (None: ``patience`` rules): stop once the training loss has
    # left chance and no evaluation since has set a new best for this many steps; a run still at chance is never
    # stopped by it (only ``max_steps``, the cap, ends it), so slow arms are not cut off on their plateau
    patience_steps: int | None = None
    # with patience_steps: a new lowest valid loss also counts as progress (best.pt is still chosen by
    # early_stop_metric). Top-1 on a small valid set moves by several points between evaluations, so alone it can end
    # a run whose valid loss is still falling: on the full profile's 72-item dense-crop valid set it stopped
    # AVST_dec's base at 2,800 steps while its valid loss fell from 2.03 to 1.67 over the last 600 (the official
    # patience, 140 epochs, is far longer than any CPU budget allows)
    patience_counts_valid_loss: bool = False
    # stop this many steps after the training loss left chance (plateau studies: the steps to leave it are measured,
    # not the convergence after); None: off
    stop_after_plateau_steps: int | None = None
    early_stop_metric: str = "accuracy_1"  # valid metric to maximise (official: top-1 without tolerance)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto: bf16 on CUDA, fp32 on CPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # convolution weights' memory order: channels_last (channels_last_3d for Conv3d) is oneDNN's preferred layout and
    # made the cpu-recipe training step 1.39x faster on one thread (bench.cpu_train_step, same run); auto: channels_last
    # on CPU, contiguous on CUDA (not measured there yet); the logits differ only by float rounding
    memory_format: str = "auto"  # auto | contiguous | channels_last
    # torch.compile the training step (the objective: model + losses); eager by default: scripts/gpu_check.sh measures
    # whether it pays on a GPU (not measured yet), and on CPU its compile time outweighs short runs. Not part of the
    # campaign's run cache (it changes only float rounding, like the device).
    compile: bool = False
    num_workers: int = 8  # DataLoader workers per process (official 8)
    seed: int = 1337  # global seeds are seed + rank; the sampler uses seed and the epoch
    log_every: int = 50  # steps between loss logs (official: 200); .item() happens only here (and every step on CPU)
    checkpoint_every_steps: int = 0  # extra last.pt writes between evaluations; 0: only at evaluations and the end
    run_root: str = "runs"  # run directories go to run_root/<name>-<timestamp>
    name: str = "train"
    resume: str | None = None  # run directory, or a checkpoint in its checkpoints/, to resume (restores everything)
    init_from: str | None = None  # fine-tune from this paperlib or official checkpoint
    init_carry_optimizer: bool = True  # with init_from: carry optimiser/scaler/scheduler state (official), or not
    init_strict: bool = True  # with init_from: every key and shape must match; False: mismatches keep their fresh init
    init_skip: list[str] = dataclasses.field(default_factory=list)  # key prefixes never loaded from init_from
    overfit_batches: int = 0  # >0: sanity mode, train and validate on the same first N batches
    test: bool = True  # evaluate the best checkpoint on the test split at the end
    sync_batchnorm: bool = True  # convert BatchNorm to SyncBatchNorm under DDP on CUDA
    ddp_timeout_s: float = 600.0  # collective timeout (official 600 s): a dead rank ends the others within this bound
    plateau_rel_tol: float = 0.05  # "at chance": loss >= (1 - tol) * ln(C)
    plateau_warn_steps: int = 1000  # warn after this many steps at chance ...
    plateau_warn_minutes: float = 5.0  # ... or this many minutes, whichever comes first
    tensorboard: bool = True
    progress: bool = True  # tqdm bars (rank 0)
    # --- the plateau recipe (paperlib.engine.recipes; not in the paper or the official code; same model)
    recipe_init: bool = False  # time-anchored init of a fresh head: the parts its variant has (recipes.anchored_parts)
    recipe_modality_flag: float = 8.0  # cross-modal logit bonus in the first self-attention (0: off; AVST_dec: n/a)
    recipe_sync_identity_qk: float = 1.0  # identity query/key in the first cross-modal matching attention (0: off)
    recipe_sync_code_gain: float = 0.5  # time-code damping there (SparseSync: sync input gain; others: amplitude)
    aux_xcorr_weight: float = 0.0  # auxiliary cross-correlation loss on the bridge features (any variant; 0: off)
    aux_match_weight: float = 0.0  # auxiliary first-attention matching loss (any variant; SparseSync: with recipe_init)
    aux_hold_steps: int = 10**9  # the aux weights stay constant for this many steps ...
    aux_decay_steps: int = 300  # ... then fall linearly to 0 over this many


# ---------------------------------------------------------------------------------------------------------------------
# The composite run configuration and its presets (used by ``python -m paperlib train`` and the notebooks).
#
# ``RunConfig`` nests the configs of the model (with the run's one Geometry), the data and the optimisation. A preset
# is a plain dict of differences from the defaults (the official settings); ``"_base"`` names a preset to start from.
# Every paper preset has a tiny CPU twin.


@dataclasses.dataclass
class RunConfig:
    """Everything one training run reads: ``model`` (ModelConfig, holding the run's Geometry: the model and the data
    pipeline both read it from there), ``data`` (DataConfig), ``train`` (TrainConfig)."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    @property
    def geometry(self) -> Geometry:
        return self.model.geometry


PRESETS: dict[str, dict[str, Any]] = {}
MEMORY_FORMATS = ("auto", "contiguous", "channels_last")


def preset_diff(name: str) -> dict[str, Any]:
    """The flattened differences of preset ``name`` from the defaults, with its ``_base`` chain applied first."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    chain, seen = [], set()
    while name is not None:
        if name in seen:
            raise ValueError(f"preset cycle through {name!r}")
        seen.add(name)
        if name not in PRESETS:
            raise KeyError(f"unknown base preset {name!r}; choose from {sorted(PRESETS)}")
        chain.append(PRESETS[name])
        name = PRESETS[name].get("_base")
    out: dict[str, Any] = {}
    for diff in reversed(chain):
        out.update({k: v for k, v in flatten(diff).items() if k != "_base"})
    return out


def resolve(preset: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Defaults, then the preset's differences, then ``key=value`` overrides (type-checked, unknown keys raise)."""
    cfg = RunConfig()
    if preset is not None:
        cfg = merge(cfg, preset_diff(preset))
    return check_run_config(apply_overrides(cfg, overrides))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range_problem(key: str, value: Any, low: float | None, high: float | None, *, low_open: bool = False,
                   high_open: bool = False, optional: bool = False) -> str | None:
    """The problem of ``value`` at ``key`` against [low, high] (``*_open``: that end excluded, None: unbounded), or
    None when it fits; ``optional``: None is allowed too. Every number must be finite."""
    if value is None and optional:
        return None
    lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    allowed = " and ".join(x for x in (lo, hi) if x) or "any finite number"
    allowed = f"a finite number {allowed}" + (" (or null)" if optional else "")
    if not _number(value) or not math.isfinite(value):
        return f"{key} = {value!r}: must be {allowed}"
    if low is not None and (value < low or (low_open and value == low)):
        return f"{key} = {value!r}: must be {allowed}"
    if high is not None and (value > high or (high_open and value == high)):
        return f"{key} = {value!r}: must be {allowed}"
    return None


# train.* ranges: (low, high, low excluded, high excluded, None allowed); every number must also be finite
TRAIN_RANGES: dict[str, tuple[float | None, float | None, bool, bool, bool]] = {
    "base_lr": (0, None, True, False, False),
    "eps": (0, None, True, False, True),
    "weight_decay": (0, None, False, False, False),
    "warmup_steps": (0, None, False, False, False),
    "warmup_start_factor": (0, 1, True, False, False),
    "clip_grad_norm": (0, None, False, False, False),  # 0 disables clipping
    "batch_size": (1, None, False, False, False),
    "eval_batch_size": (1, None, False, False, True),
    "epochs": (1, None, False, False, False),
    "max_steps": (1, None, False, False, True),
    "time_budget_min": (0, None, True, False, True),
    "eval_every_steps": (0, None, False, False, False),
    "patience": (1, None, False, False, False),
    "patience_steps": (1, None, False, False, True),
    "stop_after_plateau_steps": (0, None, False, False, True),
    "num_workers": (0, None, False, False, False),
    "log_every": (1, None, False, False, False),
    "checkpoint_every_steps": (0, None, False, False, False),
    "overfit_batches": (0, None, False, False, False),
    "ddp_timeout_s": (0, None, True, False, False),
    "plateau_rel_tol": (0, 1, False, True, False),
    "plateau_warn_steps": (0, None, False, False, False),
    "plateau_warn_minutes": (0, None, False, False, False),
    "recipe_modality_flag": (0, None, False, False, False),
    "recipe_sync_identity_qk": (None, None, False, False, False),
    "recipe_sync_code_gain": (None, None, False, False, False),
    "aux_xcorr_weight": (0, None, False, False, False),
    "aux_match_weight": (0, None, False, False, False),
    "aux_hold_steps": (0, None, False, False, False),
    "aux_decay_steps": (0, None, False, False, False),
}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DROPOUTS = ("embd_pdrop", "attn_pdrop", "resid_pdrop")


def run_config_problems(cfg: RunConfig) -> list[str]:
    """Every problem of a run configuration, each naming its key, the value and what is allowed: the ranges of the
    train settings (lr finite and > 0, batch >= 1, steps >= 1, finite clipping, ...), the choices (precision, memory
    format, model variant and backbone), the model's sizes and dropouts (0 <= p < 1), the geometry, and whether the
    data config fits the geometry (``DataConfig.validate``). Empty when the configuration can be trained."""
    from paperlib.model.backbones import BACKBONES
    from paperlib.model.sparsesync import VARIANTS

    problems: list[str] = []
    tc = cfg.train
    for name, (low, high, low_open, high_open, optional) in TRAIN_RANGES.items():
        problem = _range_problem(f"train.{name}", getattr(tc, name), low, high, low_open=low_open,
                                 high_open=high_open, optional=optional)
        if problem:
            problems.append(problem)
    betas = list(tc.betas) if isinstance(tc.betas, (list, tuple)) else []
    if len(betas) != 2 or any(_range_problem("", b, 0, 1, high_open=True) for b in betas):
        problems.append(f"train.betas = {tc.betas!r}: must be two finite numbers >= 0 and < 1")
    if tc.precision not in PRECISIONS:
        problems.append(f"train.precision = {tc.precision!r}: must be one of {PRECISIONS}")
    if tc.memory_format not in MEMORY_FORMATS:
        problems.append(f"train.memory_format = {tc.memory_format!r}: must be one of {MEMORY_FORMATS}")
    model = cfg.model
    if isinstance(model, ModelConfig):
        if model.variant not in VARIANTS:
            problems.append(f"model.variant = {model.variant!r}: unknown variant; must be one of {VARIANTS}")
        if model.backbone not in BACKBONES:
            problems.append(f"model.backbone = {model.backbone!r}: unknown backbone; must be one of "
                            f"{tuple(BACKBONES)}")
        for name in ("depth", "d_model", "n_head", "n_selectors", "mlp_ratio"):
            problem = _range_problem(f"model.{name}", getattr(model, name), 1, None)
            if problem:
                problems.append(problem)
        if _number(model.d_model) and _number(model.n_head) and model.n_head >= 1 and model.d_model % model.n_head:
            problems.append(f"model.d_model = {model.d_model}: must be divisible by model.n_head = {model.n_head}")
        for name in DROPOUTS:
            problem = _range_problem(f"model.{name}", getattr(model, name), 0, 1, high_open=True)
            if problem:
                problems.append(problem)
    try:
        cfg.geometry.validate()
    except ValueError as e:
        problems.append(f"model.geometry: {e}")
    else:
        try:
            cfg.data.validate(cfg.geometry)
        except ValueError as e:
            problems.append(f"data: {e}")
    return problems


def check_run_config(cfg: RunConfig, source: str | os.PathLike | None = None) -> RunConfig:
    """Raise one ValueError naming every problem of ``cfg`` (:func:`run_config_problems`; ``source``: the file it was
    read from, named first); return ``cfg`` when there is none. Called before anything of a run is written."""
    problems = run_config_problems(cfg)
    if problems:
        where = f"{source}: " if source is not None else ""
        raise ValueError(f"{where}invalid run configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''})"
                         ": " + "; ".join(problems))
    return cfg


def read_run_config(path: str | os.PathLike) -> RunConfig:
    """A run configuration saved as JSON (a run directory's ``config.json``): a JSON object, type-checked, unknown keys
    refused; every problem raises a ValueError that names the file. The ranges are not checked here
    (:func:`load_run_config` checks them; ``train --config`` checks them after its overrides)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such run configuration file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read the run configuration ({e})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
            type(data), "null")
        raise ValueError(f"{path}: a run configuration must be a JSON object ({{\"model\": ..., \"data\": ..., "
                         f"\"train\": ...}}), got {kind}")
    try:
        return from_dict(RunConfig, data)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: {_type_problems(data, e)}") from None


def _type_problems(data: Mapping[str, Any], error: Exception) -> str:
    """The keys of ``data`` that cannot be set (unknown, or a value of the wrong type), each with its error; the
    message of ``error`` alone when no single key fails."""
    problems = []
    for key, value in flatten(data).items():
        try:
            merge(RunConfig(), {key: value})
        except (KeyError, TypeError, ValueError) as e:
            text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
            problems.append(text if key in text else f"{key} = {value!r}: {text}")
    if not problems:
        problems = [str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)]
    return "; ".join(problems)


def load_run_config(path: str | os.PathLike) -> RunConfig:
    """:func:`read_run_config`, then every value checked (:func:`check_run_config`, the errors naming the file)."""
    return check_run_config(read_run_config(path), path)


def _geometry(**kw: Any) -> dict[str, Any]:
    """A preset's geometry differences (the 3-class grid gets its official +-1 s range)."""
    if kw.get("num_classes") is not None:
        kw.setdefault("max_off_sec", official_max_offset(kw["num_classes"]))
    return {"model": {"geometry": dict(kw)}}


def _join(*diffs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in diffs:
        out.update(flatten(d))
    return out


# Differences from the defaults (= the official LRS3 21-class pre-training settings), keyed by paper setting.
# Fine-tuning presets need the pre-trained checkpoint: add train.init_from=<paperlib or official .pt>.
PRESETS.update({
    # Sec. 5 / Tab. 2: LRS3 ("No Face Crop" or face crop by data.root), 21 classes in [-2, 2] s, 5 s windows
    "paper-lrs3": {"data": {"dataset": "lrs3"}, "train": {"name": "paper-lrs3"}},
    # the 3-class grid [-1, 0, 1] s (official size3 checkpoints; max_off_sec must be 1)
    "paper-lrs3-3cls": _join({"_base": "paper-lrs3"}, _geometry(num_classes=3),
                             {"train": {"name": "paper-lrs3-3cls"}}),
    # Tab. 2/7: fine-tuning on VGGSound-Sparse with the official augmentations (README / sbatch_finetune_sync.sh) and
    # the README's test protocol (random offsets, 25 passes); optimiser/scheduler carried over (no new warm-up).
    "paper-vggsound-sparse-finetune": {
        "_base": "paper-lrs3",
        "data": {"dataset": "vggsound_sparse", "sometimes_upscale_p": 0.5, "p_gray_scale": 0.2, "p_color_jitter": 0.2,
                 "p_audio_aug": 0.2, "fixed_offsets": False, "iter_times": 25},
        "train": {"name": "paper-vggsound-sparse-finetune", "init_carry_optimizer": True},
    },
    "paper-vggsound-sparse-finetune-3cls": _join({"_base": "paper-vggsound-sparse-finetune"}, _geometry(num_classes=3),
                                                 {"train": {"name": "paper-vggsound-sparse-finetune-3cls"}}),
    # Tiny CPU twin of paper-lrs3 (seconds per run; a wiring check, not a result): 2 s windows of 32 px frames,
    # 3 classes, light conv backbones, one layer. Needs data.root=<synthetic dense set>
    # (python -m paperlib synth; any setting laid out as LRS3).
    "smoke": _join(
        _geometry(num_classes=3, clip_sec=2.0, crop=32, n_fft=256, hop=64),
        {"model": {"backbone": "small", "d_model": 32, "n_head": 2, "depth": 1, "n_selectors": 4},
         "data": {"dataset": "lrs3", "min_clip_sec": 3.0},
         "train": {"name": "smoke", "batch_size": 4, "base_lr": 1e-3, "warmup_steps": 5, "max_steps": 8,
                   "num_workers": 0, "log_every": 2, "eval_every_steps": 0}}),
    # Tiny CPU twin of the fine-tuning preset: synthetic sparse set (VGGSound-Sparse layout), official augmentations,
    # random-offset evaluation repeated twice (mean +- std).
    "smoke-finetune": {
        "_base": "smoke",
        "data": {"dataset": "vggsound_sparse", "sometimes_upscale_p": 0.5, "p_gray_scale": 0.2, "p_color_jitter": 0.2,
                 "p_audio_aug": 0.2, "fixed_offsets": False, "iter_times": 2, "upscale_crop": 24},
        "train": {"name": "smoke-finetune"},
    },
    # The small CPU configuration of the paper's architecture on the synthetic dense-crop setting (21 classes, 5 s
    # windows, 48 px crops of 64 px clips). Official optimiser settings except a CPU-sized lr/warm-up/batch; the
    # time budget makes it a minutes-long run. Expect the chance plateau (README) unless a recipe preset is used.
    "cpu-dense-crop": _join(
        _geometry(crop=48),
        {"model": {"backbone": "small", "d_model": 64, "n_head": 4, "depth": 2, "n_selectors": 8},
         "data": {"dataset": "lrs3"},
         "train": {"name": "cpu-dense-crop", "batch_size": 16, "base_lr": 3e-4, "warmup_steps": 100,
                   "num_workers": 1, "log_every": 10, "eval_every_steps": 100, "time_budget_min": 10.0,
                   "patience": 1000}}),
    # cpu-dense-crop with the plateau recipe (paperlib.engine.recipes; README "What to expect and how to get off the
    # plateau"): time-anchored selector init + auxiliary cross-correlation and matching losses, 16 selectors, no
    # dropout, batch 8, lr 1e-3; decoded clips cached in RAM (num_workers 0). The model is the paper's architecture;
    # the recipe only changes initial values and adds training-time losses. Other variants
    # (model.variant=transformer|avst_dec) get every part that has a counterpart in their architecture: time codes,
    # passthrough, identity query/key and both losses; the modality flag too for transformer, no selector anchors.
    "cpu-recipe": _join(
        {"_base": "cpu-dense-crop"},
        {"model": {"n_selectors": 16, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "resid_pdrop": 0.0},
         "data": {"cache_decoded": 100000},
         "train": {"name": "cpu-recipe", "batch_size": 8, "base_lr": 1e-3, "warmup_steps": 100, "num_workers": 0,
                   "eval_every_steps": 200, "recipe_init": True, "aux_xcorr_weight": 1.0, "aux_match_weight": 3.0,
                   "aux_hold_steps": 100000, "aux_decay_steps": 300, "time_budget_min": None}}),
    # the sparse step of the recipe (README "What to expect ..."): fine-tune a cpu-recipe dense-crop model
    # (train.init_from=<its best.pt>) on synthetic sparse clips with 3-5 events each (synth --setting sparse
    # --set event_count_probs=[0,0,0,0.3,0.4,0.3]) for 20 minutes, auxiliary losses kept on (without them the same run
    # stays at chance); test on the standard sparse set. Fresh optimiser (a new task, as the paper's fine-tuning).
    "cpu-recipe-sparse": _join(
        {"_base": "cpu-recipe"},
        {"data": {"dataset": "vggsound_sparse"},
         "train": {"name": "cpu-recipe-sparse", "init_carry_optimizer": False, "time_budget_min": 20.0,
                   "eval_every_steps": 1000}}),
})
