"""Typed configuration: dataclasses with literal defaults, presets as plain dicts of differences, ``key=value`` overrides.

Rules (after nanoGPT's configurator, without its ``exec``):
- every config is a (possibly nested) dataclass; leaves are bool/int/float/str, ``None`` or tuples/lists of those;
- an override ``a.b=value`` addresses a field by its dotted path; unknown keys raise ``KeyError`` naming the key and the
  valid choices; values are parsed with the field's declared type (``"3"`` -> 3, ``"true"`` -> True, ``"[16,7,7]"`` -> (16,7,7));
- ``config_hash`` fingerprints a resolved config, so runs can be cached by what produced them.

Module-specific configs (``ModelConfig``, ``DataConfig``, ``TrainConfig``) live next to the code that reads them;
this module only knows how to resolve, serialise and hash them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_scalar(text: str, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        errors = []
        for a in args:
            try:
                return _parse_scalar(text, a, key)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise ValueError(f"{key}: cannot parse {text!r} as {typ} ({'; '.join(errors)})")
    if origin in (tuple, list):
        args = typing.get_args(typ)
        inner = args[0] if args else str
        body = text.strip()
        if body.startswith(("[", "(")) and body.endswith(("]", ")")):
            body = body[1:-1]
        items = [s.strip() for s in body.split(",") if s.strip()]
        values = [_parse_scalar(s, inner, key) for s in items]
        return tuple(values) if origin is tuple else values
    if typ is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{key}: expected a boolean (true/false), got {text!r}")
    if typ is int:
        try:
            return int(text)
        except ValueError:
            f = float(text)
            if f != int(f):
                raise ValueError(f"{key}: expected an integer, got {text!r}") from None
            return int(f)
    if typ is float:
        return float(text)
    if typ is str:
        return text
    if typ is Any:
        return json.loads(text) if text[:1] in "[{\"0123456789-" else text
    raise TypeError(f"{key}: unsupported field type {typ}")


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Check/convert a Python value (from a preset dict or JSON) against a field type."""
    if isinstance(value, str) and typ is not str:
        return _parse_scalar(value, typ, key)
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        for a in args:
            try:
                return _coerce(value, a, key)
            except (TypeError, ValueError):
                continue
        raise TypeError(f"{key}: {value!r} does not match {typ}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{key}: expected a sequence, got {value!r}")
        args = typing.get_args(typ)
        inner = args[0] if args else Any
        out = [_coerce(v, inner, key) for v in value]
        return tuple(out) if origin is tuple else out
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is Any:
        return value
    if isinstance(typ, type) and not isinstance(value, typ):
        raise TypeError(f"{key}: expected {typ.__name__}, got {type(value).__name__} {value!r}")
    if typ is int and isinstance(value, bool):
        raise TypeError(f"{key}: expected int, got bool")
    return value


def set_path(cfg: Any, key: str, value: Any) -> Any:
    """Return a copy of dataclass ``cfg`` with the dotted field ``key`` set to ``value`` (type-checked)."""
    head, _, rest = key.partition(".")
    if not dataclasses.is_dataclass(cfg):
        raise KeyError(f"{key}: not a config section")
    names = {f.name for f in dataclasses.fields(cfg)}
    if head not in names:
        raise KeyError(f"unknown config key {key!r}; valid keys here: {sorted(names)}")
    current = getattr(cfg, head)
    if rest:
        return dataclasses.replace(cfg, **{head: set_path(current, rest, value)})
    if dataclasses.is_dataclass(current):
        if not isinstance(value, Mapping):
            raise TypeError(f"{key}: is a section; give a mapping or set its fields with {key}.<field>=...")
        return dataclasses.replace(cfg, **{head: merge(current, value)})
    typ = _field_types(type(cfg))[head]
    return dataclasses.replace(cfg, **{head: _coerce(value, typ, key)})


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, path + "."))
        else:
            out[path] = v
    return out


def merge(cfg: T, diff: Mapping[str, Any]) -> T:
    """Apply a (nested or dotted) dict of differences to a dataclass config, type-checked."""
    for k, v in _flatten(diff).items():
        cfg = set_path(cfg, k, v)
    return cfg


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """Apply ``key=value`` strings (e.g. from the command line)."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        k, v = item.split("=", 1)
        cfg = set_path(cfg, k.strip(), v.strip())
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data (JSON-serialisable) view of a dataclass config; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: Mapping[str, Any], strict: bool = True) -> T:
    """Rebuild a config of type ``cls`` from :func:`to_dict` output. With ``strict``, unknown keys raise."""
    cfg = cls()
    if not strict:
        known = set(_flatten(to_dict(cfg)))
        data = {k: v for k, v in _flatten(data).items() if k in known}
    return merge(cfg, data)


def config_hash(cfg: Any, length: int = 12) -> str:
    """Stable fingerprint of a resolved config (sorted-key JSON, sha256)."""
    blob = json.dumps(to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# ---------------------------------------------------------------------------------------------------------------------
# The composite run configuration and its presets (used by ``python -m paperlib train`` and the notebooks).
#
# ``RunConfig`` nests the module configs, imported lazily from the modules that read them (``paperlib.model``,
# ``paperlib.data``, ``paperlib.train``), so importing this module stays cheap and free of cycles.
# A preset is a plain dict of differences from the defaults (the official settings); ``"_base"`` names a preset to start
# from. Every paper preset has a tiny CPU twin.


def _default_model_config() -> Any:
    from paperlib.model import ModelConfig

    return ModelConfig()


def _default_data_config() -> Any:
    from paperlib.data import DataConfig

    return DataConfig()


def _default_train_config() -> Any:
    from paperlib.train import TrainConfig

    return TrainConfig()


@dataclasses.dataclass
class RunConfig:
    """Everything one training run reads: ``model`` (ModelConfig), ``data`` (DataConfig), ``train`` (TrainConfig)."""

    model: Any = dataclasses.field(default_factory=_default_model_config)
    data: Any = dataclasses.field(default_factory=_default_data_config)
    train: Any = dataclasses.field(default_factory=_default_train_config)


PRESETS: dict[str, dict[str, Any]] = {}


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
        out.update({k: v for k, v in _flatten(diff).items() if k != "_base"})
    return out


def resolve(preset: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Defaults, then the preset's differences, then ``key=value`` overrides (type-checked, unknown keys raise)."""
    cfg = RunConfig()
    if preset is not None:
        cfg = merge(cfg, preset_diff(preset))
    return check_run_config(apply_overrides(cfg, overrides))


# The geometry both the model and the data read; they must agree (a mismatch would fail deep inside the model).
_SHARED_FIELDS = ("num_classes", "clip_sec", "fps", "crop", "sample_rate", "n_fft", "hop")


def check_run_config(cfg: RunConfig) -> RunConfig:
    """Raise ValueError when model and data disagree on the shared geometry (``_SHARED_FIELDS``)."""
    bad = [f"model.{k}={getattr(cfg.model, k)!r} but data.{k}={getattr(cfg.data, k)!r}" for k in _SHARED_FIELDS
           if hasattr(cfg.model, k) and hasattr(cfg.data, k) and getattr(cfg.model, k) != getattr(cfg.data, k)]
    if bad:
        raise ValueError("model and data configs disagree: " + "; ".join(bad) + " (set both sides)")
    return cfg


def _geometry(**kw: Any) -> dict[str, Any]:
    """The same geometry for model and data (a preset helper)."""
    return {"model": dict(kw), "data": dict(kw)}


def _join(*diffs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in diffs:
        out.update(_flatten(d))
    return out


# Differences from the defaults (= the official LRS3 21-class pre-training settings), keyed by paper setting.
# Fine-tuning presets need the pre-trained checkpoint: add train.init_from=<paperlib or official .pt>.
PRESETS.update({
    # Sec. 5 / Tab. 2: LRS3 ("No Face Crop" or face crop by data.root), 21 classes in [-2, 2] s, 5 s windows
    "paper-lrs3": {"data": {"dataset": "lrs3"}, "train": {"name": "paper-lrs3"}},
    # the 3-class grid [-1, 0, 1] s (official size3 checkpoints; max_off_sec must be 1)
    "paper-lrs3-3cls": _join({"_base": "paper-lrs3"}, _geometry(num_classes=3),
                             {"data": {"max_off_sec": 1.0}, "train": {"name": "paper-lrs3-3cls"}}),
    # Tab. 2/7: fine-tuning on VGGSound-Sparse with the official augmentations (README / sbatch_finetune_sync.sh) and
    # the README's test protocol (random offsets, 25 passes); optimiser/scheduler carried over (no new warm-up).
    "paper-vggsound-sparse-finetune": {
        "_base": "paper-lrs3",
        "data": {"dataset": "vggsound_sparse", "sometimes_upscale_p": 0.5, "p_gray_scale": 0.2, "p_color_jitter": 0.2,
                 "p_audio_aug": 0.2, "fixed_offsets": False, "iter_times": 25},
        "train": {"name": "paper-vggsound-sparse-finetune", "init_carry_optimizer": True},
    },
    "paper-vggsound-sparse-finetune-3cls": _join({"_base": "paper-vggsound-sparse-finetune"}, _geometry(num_classes=3),
                                                 {"data": {"max_off_sec": 1.0},
                                                  "train": {"name": "paper-vggsound-sparse-finetune-3cls"}}),
    # Tiny CPU twin of paper-lrs3 (seconds per run; a wiring check, not a result): 2 s windows of 32 px frames,
    # 3 classes, light conv backbones, one layer. Needs data.root=<synthetic dense set>
    # (python -m paperlib synth; any setting laid out as LRS3).
    "smoke": _join(
        _geometry(num_classes=3, clip_sec=2.0, crop=32, n_fft=256, hop=64),
        {"model": {"backbone": "small", "d_model": 32, "n_head": 2, "depth": 1, "n_selectors": 4},
         "data": {"dataset": "lrs3", "max_off_sec": 1.0, "min_clip_sec": 3.0},
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
    # time budget makes it a minutes-long run. Expect the chance plateau (issue 11) unless a recipe preset is used.
    "cpu-dense-crop": _join(
        _geometry(crop=48),
        {"model": {"backbone": "small", "d_model": 64, "n_head": 4, "depth": 2, "n_selectors": 8},
         "data": {"dataset": "lrs3"},
         "train": {"name": "cpu-dense-crop", "batch_size": 16, "base_lr": 3e-4, "warmup_steps": 100,
                   "num_workers": 1, "log_every": 10, "eval_every_steps": 100, "time_budget_min": 10.0,
                   "patience": 1000}}),
    # cpu-dense-crop with the issue-11 recipe (paperlib.recipes; README "What to expect and how to get off the
    # plateau"): time-anchored selector init + auxiliary cross-correlation and matching losses, 16 selectors, no
    # dropout, batch 8, lr 1e-3; decoded clips cached in RAM (num_workers 0). The model is the paper's architecture;
    # the recipe only changes initial values and adds training-time losses. Other variants
    # (model.variant=transformer|avst_dec) get the parts that apply to them (the cross-correlation loss).
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
