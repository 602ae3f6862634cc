"""Checkpoints: paperlib's own (plain data, ``weights_only`` loadable) and the official SparseSync ones (safe loader +
converter), plus pretrained backbone weights from user paths.

Paper: none (engineering). The authors' code (v-iashin/SparseSync): its state_dict layout, its checkpointing and its
released checkpoints (a pickled dict with ``model``, ``args`` = an OmegaConf DictConfig, ``optimizer``, ``scaler``,
``lr_scheduler``, ``metrics``, ``epoch``, ``loss``, ``model_type``).

- paperlib checkpoints hold only tensors and plain data: ``{"model": state_dict, "config": ModelConfig as a dict,
  "meta": {...}, **extra}`` (e.g. optimizer state), ``meta["checksum"]`` a sha256 over all of it (every load checks
  it and that every floating-point tensor is finite: a flipped bit is refused naming the file), written through
  :func:`paperlib.core.io.atomic_output` and read with ``torch.load(weights_only=True)``; a writer killed mid-write
  (SIGKILL, pre-emption) leaves only a hidden temporary, which the next save in the folder removes once its process is
  gone.
- Official checkpoints are read with torch's restricted ``weights_only`` unpickler, extended by an explicit allow-list:
  OmegaConf's DictConfig/ListConfig and their node/metadata classes, ``typing.Any``, plain builtins and numpy scalars
  and arrays. Everything else is refused before any object is built (the pickle is disassembled first), with an error
  naming the file and the forbidden globals. Never ``weights_only=False``. When omegaconf is not installed, inert
  stand-in classes receive the pickled config state, which is then converted to plain dicts and lists.
- ``convert_official_state_dict`` maps every official key (backbones included) to paperlib's layout, infers the
  variant (selectors or not), depth, classes, width and number of selectors, and checks keys and shapes against a
  freshly built model (on the meta device), naming every missing/unexpected/mis-shaped key.

Deviation: the official code loads checkpoints with a plain ``torch.load`` (arbitrary code execution on a malicious
file); here that is impossible by construction.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from paperlib.core.io import atomic_output, remove_stale_partials
from paperlib.core.geometry import official_max_offset
from paperlib.model.sparsesync import ModelConfig, build_model, nest_geometry
from paperlib.model.weights import (CHECKSUM_KEY, FORMAT, FORMATS, CheckpointError, _check_plain, _config_to_plain,
                                    _restricted_load, content_digest, official_key_to_paperlib)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
    remove_stale_partials(path.parent, recursive=False)  # leftovers of writers killed mid-write (full checkpoints each)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, model_cfg: ModelConfig, **extra: Any) -> Path:
    """Write ``{"model": state_dict, "config": dict, "meta": dict, **extra}`` atomically; returns the path.

    ``extra`` entries (optimizer/scheduler state, epoch, metrics, ...) must be tensors or plain data; a ``meta=dict``
    entry is merged into the metadata (format, versions, UTC time).
    """
    from paperlib import __version__
    from paperlib.core.config import to_dict

    path = Path(path)
    meta = {"format": FORMAT, "paperlib_version": __version__, "torch_version": str(torch.__version__),
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    meta.update(extra.pop("meta", None) or {})
    for key in ("model", "config"):
        if key in extra:
            raise ValueError(f"save_checkpoint: {key!r} is reserved")
    ckpt = {"model": model.state_dict(), "config": to_dict(model_cfg), "meta": meta, **extra}
    _check_plain({k: v for k, v in ckpt.items() if k != "model"}, f"checkpoint {path}")
    meta[CHECKSUM_KEY] = content_digest(ckpt)  # checked on every load (paperlib.model.weights.check_loaded)
    _atomic_torch_save(ckpt, path)
    return path


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(t.shape)


def convert_official_state_dict(sd: Mapping[str, torch.Tensor], n_head: int = 8,
                                base: ModelConfig | None = None) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Map an official ``AVSyncModel`` state_dict to paperlib's layout and infer its ``ModelConfig``.

    Infers variant (selectors present or not), depth, classes, width and number of selectors from the tensors;
    ``n_head`` cannot be inferred (8 in every released model; read it from the checkpoint's ``args`` when present);
    geometry comes from ``base`` (default: the paper's) and must give the checkpoint's positional-table sizes.
    Raises CheckpointError naming the keys and shapes on any mismatch.
    """
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if "transformer.off_head.weight" not in sd:
        raise CheckpointError("official state_dict has no 'transformer.off_head.weight': not a SparseSync model")
    num_classes, d_model = _shape(sd["transformer.off_head.weight"])
    if any(k.startswith("transformer.v_selector.") for k in sd):
        variant = "sparsesync"
        depth_keys = [k for k in sd if k.startswith("transformer.v_selector.blocks.")]
        n_selectors = _shape(sd["transformer.v_selector.selectors"])[0]
    elif any(k.startswith("transformer.blocks.") for k in sd):
        variant, n_selectors = "transformer", (base or ModelConfig()).n_selectors
        depth_keys = [k for k in sd if k.startswith("transformer.blocks.")]
    else:
        raise CheckpointError("official state_dict has neither selectors nor transformer blocks")
    depth = 1 + max(int(k.split(".blocks.")[1].split(".")[0]) for k in depth_keys)
    base = base or ModelConfig()
    geometry = dataclasses.replace(base.geometry, num_classes=num_classes, max_off_sec=official_max_offset(num_classes))
    cfg = dataclasses.replace(base, geometry=geometry, variant=variant, backbone="paper", depth=depth, d_model=d_model,
                              n_head=n_head, n_selectors=n_selectors, visual_weights=None, audio_weights=None)
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}  # paperlib key -> official key, for error messages
    for k, v in sd.items():
        if k.startswith("vfeat_extractor.fc.") or k.startswith("afeat_extractor.fc."):
            continue  # classifier of a backbone's pre-training (Identity in the official model, kept by some files)
        new = official_key_to_paperlib(k)
        if new in out:
            raise CheckpointError(f"official keys {origin[new]!r} and {k!r} both map to {new!r}")
        out[new], origin[new] = v, k
    with torch.device("meta"):
        ref = build_model(cfg).state_dict()
    problems = []
    missing = [k for k in ref if k not in out]
    extra = [f"{origin[k]} (-> {k})" for k in out if k not in ref]
    if missing:
        problems.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''} ({len(missing)} in all)")
    if extra:
        problems.append(f"unexpected keys {extra[:8]}{' ...' if len(extra) > 8 else ''} ({len(extra)} in all)")
    bad = [f"{origin[k]} (-> {k}): checkpoint {_shape(out[k])} vs model {_shape(ref[k])}" for k in ref
           if k in out and _shape(out[k]) != _shape(ref[k])]
    if bad:
        problems.append("shape mismatches: " + "; ".join(bad[:8]))
    if problems:
        raise CheckpointError(f"official state_dict does not fit paperlib's {variant} (depth {depth}, {num_classes} "
                              f"classes, geometry clip {geometry.clip_sec} s / crop {geometry.crop}): "
                              + " | ".join(problems))
    return out, cfg


def _n_head_from_args(args: Any) -> int:
    try:
        return int(args["model"]["params"]["transformer"]["params"]["n_head"])
    except (KeyError, TypeError, ValueError):
        return 8


# ---------------------------------------------------------------------------------------------------------------------
# Loading a model from either kind of file
# ---------------------------------------------------------------------------------------------------------------------


def _load_strict(model: nn.Module, sd: Mapping[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model: {e}") from None


def load_model(path: str | os.PathLike, map_location: Any = "cpu", num_classes: int | None = None,
               official_base: ModelConfig | None = None) -> tuple[nn.Module, ModelConfig]:
    """Build the model stored in a paperlib or official checkpoint (auto-detected) and load its weights strictly.

    Returns (model in train mode, ModelConfig). ``num_classes``, when given, must match the file's classifier.
    The returned config has ``visual_weights``/``audio_weights`` cleared (the backbones come from the file).
    ``official_base``: the configuration an official file (which stores no geometry) is read against (its geometry;
    default: the paper's); see :func:`convert_official_state_dict`.
    """
    from paperlib.core.config import from_dict

    path = Path(path)
    ckpt = _restricted_load(path, map_location)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("meta"), dict) and ckpt["meta"].get("format") in FORMATS:
        cfg = from_dict(ModelConfig, nest_geometry(ckpt["config"]))
        cfg = dataclasses.replace(cfg, visual_weights=None, audio_weights=None)
        sd = ckpt["model"]
    elif isinstance(ckpt, dict) and isinstance(ckpt.get("model"), Mapping) and any(
            k.removeprefix("module.").startswith("transformer.") for k in ckpt["model"]):
        args = _config_to_plain(ckpt.get("args"))
        try:
            sd, cfg = convert_official_state_dict(ckpt["model"], n_head=_n_head_from_args(args), base=official_base)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
    else:
        raise CheckpointError(f"{path}: neither a paperlib nor an official SparseSync checkpoint")
    if num_classes is not None and num_classes != cfg.geometry.num_classes:
        raise CheckpointError(f"{path}: the classifier has {cfg.geometry.num_classes} classes (head.classifier.weight "
                              f"{(cfg.geometry.num_classes, cfg.d_model)}) but {num_classes} were requested")
    model = build_model(cfg)
    _load_strict(model, sd, path)
    return model, cfg
