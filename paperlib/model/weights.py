"""Reading weight files safely: paperlib checkpoints (``weights_only``), the official SparseSync pickles (restricted
unpickler with an explicit allow-list), official key names, and pretrained backbone weights from user paths.

This module knows no model configuration, so the model can load backbone weights through it;
:mod:`paperlib.model.checkpoints` builds models from files on top of it. The safety rules are described there.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import typing
import zipfile
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn


FORMAT = "paperlib-checkpoint/2"  # the model config nests its geometry
FORMATS = ("paperlib-checkpoint/1", FORMAT)  # /1: the geometry fields sat flat in the model config
CHECKSUM_KEY = "checksum"  # meta[CHECKSUM_KEY]: content_digest() of the checkpoint, written by save_checkpoint


class CheckpointError(RuntimeError):
    """A checkpoint could not be read, was refused, or does not fit the model; the message names the file/keys."""


# ---------------------------------------------------------------------------------------------------------------------
# paperlib checkpoints
# ---------------------------------------------------------------------------------------------------------------------


def _check_plain(obj: Any, where: str) -> None:
    """Raise TypeError unless ``obj`` holds only tensors and plain data (what ``weights_only=True`` can read)."""
    # exact types: numpy.float64 subclasses float but pickles as a numpy global that weights_only refuses
    if obj is None or type(obj) in (bool, int, float, str, bytes) or isinstance(
            obj, (torch.Tensor, torch.dtype, torch.device, torch.Size)):
        return
    if isinstance(obj, (dict, OrderedDict)):
        for k, v in obj.items():
            if type(k) not in (str, int):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            _check_plain(v, f"{where}.{k}")
        return
    if type(obj) in (list, tuple, set):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(obj).__module__}.{type(obj).__qualname__} is not plain data; convert it "
                    "(e.g. float(x), x.tolist(), dataclasses.asdict(x)) before saving")



def corrupt(path: Path, what: str) -> CheckpointError:
    """The one error of a checkpoint whose bytes changed after it was written (a flipped bit, a bad copy)."""
    return CheckpointError(f"{path}: corrupt checkpoint: {what}; the file changed after it was written (a flipped bit, "
                           "an incomplete copy). Use another checkpoint of the run (last.pt / best.pt) or a backup")


def content_digest(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """The checksum a paperlib checkpoint carries in ``meta["checksum"]``: sha256 over every tensor (name, dtype,
    shape, bytes) and every plain value, in the checkpoint's order, the checksum entry itself left out."""
    h = hashlib.sha256()
    count = 0

    def walk(obj: Any, where: str) -> None:
        nonlocal count
        if isinstance(obj, torch.Tensor):
            t = obj.detach()
            h.update(f"T{where}|{t.dtype}|{tuple(t.shape)}|".encode())
            if t.numel():
                h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
            count += 1
        elif isinstance(obj, Mapping):
            for k, v in obj.items():
                if not (where == ".meta" and k == CHECKSUM_KEY):
                    walk(v, f"{where}.{k}")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{where}[{i}]")
        elif isinstance(obj, (set, frozenset)):
            for v in sorted(obj, key=repr):
                walk(v, f"{where}{{}}")
        else:
            h.update(f"V{where}|{type(obj).__name__}|{obj!r}|".encode())

    walk(ckpt, "")
    return {"algorithm": "sha256", "digest": h.hexdigest(), "tensors": count}


def check_loaded(obj: Any, path: Path) -> None:
    """Raise :func:`corrupt` unless every floating-point tensor in ``obj`` is finite and, when ``obj`` carries a
    checksum (paperlib checkpoints since it was added; older files and official ones have none), it matches."""
    def tensors(o: Any, where: str) -> Iterator[tuple[str, torch.Tensor]]:
        if isinstance(o, torch.Tensor):
            yield where, o
        elif isinstance(o, Mapping):
            for k, v in o.items():
                yield from tensors(v, f"{where}.{k}" if where else str(k))
        elif isinstance(o, (list, tuple, set, frozenset)):
            for i, v in enumerate(o):
                yield from tensors(v, f"{where}[{i}]")

    for where, t in tensors(obj, ""):
        if not (t.is_floating_point() or t.is_complex()) or not t.numel():
            continue
        # a sum is finite when every element is (and is 25x faster to take than isfinite().all()); a sum that
        # overflows is not proof of a bad element, so that case takes the exact test
        if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
            raise corrupt(path, f"tensor {where!r} holds non-finite values (NaN or inf)")
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    stored = meta.get(CHECKSUM_KEY) if isinstance(meta, Mapping) else None
    if stored is None:
        return
    if not isinstance(stored, Mapping) or stored.get("algorithm") != "sha256":
        raise corrupt(path, f"its checksum record is unreadable ({stored!r})")
    got = content_digest(obj)
    if got["digest"] != stored.get("digest"):
        raise corrupt(path, f"its content does not match the checksum written with it (sha256 {got['digest'][:16]}... "
                            f"over {got['tensors']} tensors, written {str(stored.get('digest'))[:16]}... over "
                            f"{stored.get('tensors')})")


def _torch_load(path: Path, map_location: Any) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refusal(path, str(e)) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or not a torch file?): {e}") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle stream fails in the unpickler in many ways
        raise corrupt(path, f"its pickle stream cannot be read ({type(e).__name__}: {e})") from None
    check_loaded(obj, path)
    return obj


def _refusal(path: Path, message: str) -> CheckpointError:
    found = re.findall(r"GLOBAL ([\w.]+)", message)
    lines = [ln.strip() for ln in message.splitlines() if "GLOBAL" in ln or "Unsupported" in ln or "allowlist" in ln]
    detail = (lines or [message.strip().splitlines()[0] if message.strip() else ""])[0]
    if not found:  # an opcode or a structure the unpickler does not expect: damage, not a forbidden class
        return corrupt(path, f"its pickle stream cannot be read ({detail})")
    return CheckpointError(f"{path}: refused to unpickle the global {found[0]}, which is not on paperlib's allow-list "
                           "(tensors, plain containers, OmegaConf configs); the file may be malicious (or corrupt). "
                           f"Details: {detail}")


def _checked_load(path: Path, map_location: Any) -> Any:
    """Refuse up front (by disassembling the pickle, nothing is built) any global outside the active allow-list,
    then load with the restricted unpickler; a damaged file raises :func:`corrupt`."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        unsafe = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except ValueError as e:
        if "returned by torch.save" not in str(e):
            raise corrupt(path, f"its pickle stream cannot be read (ValueError: {e})") from None
        unsafe = []  # not a zip file (a legacy or plain pickle): the restricted unpickler below still applies
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or not a torch file?): {e}") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle stream fails the disassembler in many ways
        raise corrupt(path, f"its pickle stream cannot be read ({type(e).__name__}: {e})") from None
    if unsafe:
        official = {name for _, name in _allowed_globals(False)}
        if all(u in official for u in unsafe):
            raise CheckpointError(f"{path}: holds OmegaConf/numpy objects ({', '.join(unsafe)}): this looks like an "
                                  "official SparseSync checkpoint; load it with "
                                  "paperlib.model.checkpoints.load_model or "
                                  "load_official_checkpoint")
        raise CheckpointError(f"{path}: refused to unpickle: the file asks for {', '.join(unsafe)}, which is not on "
                              "paperlib's allow-list (tensors, plain containers, OmegaConf configs); the file may be "
                              "malicious (or corrupt)")
    return _torch_load(path, map_location)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a paperlib checkpoint with ``torch.load(weights_only=True)``; official files raise (use ``load_model``)."""
    path = Path(path)
    ckpt = _checked_load(path, map_location)
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("meta"), dict) and ckpt["meta"].get("format") in FORMATS):
        raise CheckpointError(f"{path}: not a paperlib checkpoint (no meta.format == {FORMAT!r}); official SparseSync "
                              "files load with paperlib.model.checkpoints.load_model or load_official_checkpoint")
    return ckpt


# ---------------------------------------------------------------------------------------------------------------------
# Restricted loading of official checkpoints
# ---------------------------------------------------------------------------------------------------------------------


class _StubState:
    """Inert stand-in for an OmegaConf class when omegaconf is not installed: stores the pickled state, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state


_OMEGACONF_CLASSES = {
    "omegaconf.dictconfig.DictConfig": "DictConfig", "omegaconf.listconfig.ListConfig": "ListConfig",
    "omegaconf.nodes.AnyNode": "AnyNode", "omegaconf.nodes.StringNode": "StringNode",
    "omegaconf.nodes.IntegerNode": "IntegerNode", "omegaconf.nodes.FloatNode": "FloatNode",
    "omegaconf.nodes.BooleanNode": "BooleanNode", "omegaconf.nodes.BytesNode": "BytesNode",
    "omegaconf.nodes.PathNode": "PathNode", "omegaconf.base.Metadata": "Metadata",
    "omegaconf.base.ContainerMetadata": "ContainerMetadata",
}
_STUBS: dict[str, type] = {name: type(f"Stub{short}", (_StubState,), {"__module__": __name__})
                           for name, short in _OMEGACONF_CLASSES.items()}


def _omegaconf_globals(use_omegaconf: bool) -> list[tuple[Any, str]]:
    if use_omegaconf:
        try:
            import importlib

            out = []
            for name in _OMEGACONF_CLASSES:
                module, _, attr = name.rpartition(".")
                obj = getattr(importlib.import_module(module), attr, None)
                if obj is not None:
                    out.append((obj, name))
            return out
        except ImportError:
            pass
    return [(stub, name) for name, stub in _STUBS.items()]


def _allowed_globals(use_omegaconf: bool) -> list[tuple[Any, str]]:
    import numpy as np

    allowed: list[tuple[Any, str]] = [(typing.Any, "typing.Any"), (defaultdict, "collections.defaultdict"),
                                      (OrderedDict, "collections.OrderedDict")]
    for t in (dict, list, tuple, set, frozenset, int, float, str, bool, bytes, complex, slice):
        allowed.append((t, f"builtins.{t.__name__}"))
    # numpy scalars/arrays (e.g. metrics computed with scikit-learn), under numpy 1.x and 2.x module names
    multiarray = (getattr(np, "_core", None) or np.core).multiarray
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(multiarray.scalar, f"{mod}.scalar"), (multiarray._reconstruct, f"{mod}._reconstruct")]
    allowed += [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray")]
    allowed += [(getattr(np.dtypes, n), f"numpy.dtypes.{n}") for n in np.dtypes.__all__]
    return allowed + _omegaconf_globals(use_omegaconf)


def _restricted_load(path: Path, map_location: Any = "cpu", use_omegaconf: bool = True) -> Any:
    """``torch.load(weights_only=True)`` with the official-checkpoint allow-list; refuses anything else up front."""
    with torch.serialization.safe_globals(_allowed_globals(use_omegaconf)):
        return _checked_load(path, map_location)


def _stub_to_plain(obj: Any) -> Any:
    if isinstance(obj, _StubState):
        d = obj.__dict__
        if "_content" in d:  # DictConfig / ListConfig
            return _stub_to_plain(d["_content"])
        if "_val" in d:  # value nodes
            return _stub_to_plain(d["_val"])
        return {k: _stub_to_plain(v) for k, v in d.items() if not k.startswith("_")}
    if isinstance(obj, Mapping):
        return {k: _stub_to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_stub_to_plain(v) for v in obj]
    return obj


def _config_to_plain(obj: Any) -> Any:
    """OmegaConf object (real or stand-in) -> plain dicts/lists; anything else unchanged."""
    if isinstance(obj, _StubState):
        return _stub_to_plain(obj)
    try:
        from omegaconf import Container, OmegaConf
    except ImportError:
        return obj
    if isinstance(obj, Container):
        try:
            return OmegaConf.to_container(obj, resolve=True)
        except Exception:  # an interpolation that cannot be resolved here (e.g. a custom resolver)
            return OmegaConf.to_container(obj, resolve=False)
    return obj


def load_official_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", use_omegaconf: bool = True) -> dict:
    """Read an official SparseSync checkpoint safely; ``args`` comes back as plain dicts/lists.

    ``use_omegaconf=False`` uses the inert stand-ins even when omegaconf is installed.
    """
    path = Path(path)
    ckpt = _restricted_load(path, map_location, use_omegaconf)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), Mapping):
        raise CheckpointError(f"{path}: not an official SparseSync checkpoint (expected a dict with a 'model' "
                              f"state_dict, got {type(ckpt).__name__})")
    if "args" in ckpt:
        ckpt["args"] = _config_to_plain(ckpt["args"])
    return ckpt


# ---------------------------------------------------------------------------------------------------------------------
# Official -> paperlib key mapping
# ---------------------------------------------------------------------------------------------------------------------

# S3D: kylemin's SepConv3d/BasicConv3d (conv_s, bn_s, conv_t, bn_t / conv, bn) are torchvision Sequentials;
# Mixed branch0 is a Sequential(BasicConv3d) officially but a bare Conv3dNormActivation in torchvision.
_S3D_RULES = [
    (r"\.branch0\.0\.conv\.", ".branch0.0."), (r"\.branch0\.0\.bn\.", ".branch0.1."),
    (r"\.conv_s\.", ".0.0."), (r"\.bn_s\.", ".0.1."), (r"\.conv_t\.", ".1.0."), (r"\.bn_t\.", ".1.1."),
    (r"\.conv\.", ".0."), (r"\.bn\.", ".1."),
]
_HEAD_RULES = [  # applied to the part after "transformer."
    (r"^pre_lnorm_vis\.", "vis_norm."), (r"^pre_lnorm_aud\.", "aud_norm."),
    (r"^(vis|aud)_pos_emb\.(\w+)_embed\.weight$", r"\1_pos.\2_embed"),
    (r"^([va])_selector\.selectors_pos_emb\.time_embed\.weight$", r"\1_selector.selectors_pos"),
    (r"^global_transformer\.OFF_tok$", "sync.off_token"), (r"^global_transformer\.MOD_tok$", "sync.mod_token"),
    (r"^global_transformer\.vis_in_lnorm\.", "sync.vis_norm."),
    (r"^global_transformer\.aud_in_lnorm\.", "sync.aud_norm."),
    (r"^global_transformer\.", "sync."),
    (r"^OFF_tok$", "off_token"), (r"^MOD_tok$", "mod_token"),  # transformer without selectors
    (r"^off_head\.", "classifier."),
]


def _s3d_key(rest: str) -> str:
    """Official/kylemin S3D key after ``base.`` -> torchvision key after ``features.``."""
    rest = "." + rest
    for pat, rep in _S3D_RULES:
        rest, n = re.subn(pat, rep, rest)
        if n:
            break
    return rest[1:]


def official_key_to_paperlib(key: str) -> str:
    """Map one official state_dict key (``AVSyncModel``) to paperlib's ``SyncModel`` key."""
    key = key.removeprefix("module.")
    if key.startswith("vfeat_extractor.base."):
        return "visual_backbone.features." + _s3d_key(key[len("vfeat_extractor.base."):])
    if key.startswith("afeat_extractor."):
        return "audio_backbone." + key[len("afeat_extractor."):]
    if key.startswith("v_bridge.bridge."):
        return "v_bridge." + key[len("v_bridge.bridge."):]
    if key.startswith("transformer."):
        rest = key[len("transformer."):]
        for pat, rep in _HEAD_RULES:
            rest, n = re.subn(pat, rep, rest)
            if n:
                break
        return "head." + rest
    raise CheckpointError(f"official key {key!r} has no paperlib counterpart")



def load_backbone_weights(module: nn.Module, path: str | os.PathLike, which: str) -> None:
    """Load pretrained weights into a backbone from a user path (never downloaded).

    Accepts: the official S3D file (``base.*`` + ``fc.*`` keys), torchvision's S3D/ResNet state_dicts, the official
    ResNetAudio checkpoint (``{"model": ...}`` with a 308-class ``fc``), an official SparseSync checkpoint, or a
    paperlib checkpoint; classifier keys are dropped, the rest must fit exactly.
    """
    path = Path(path)
    obj = _restricted_load(path)
    sd = obj.get("model", obj.get("state_dict", obj)) if isinstance(obj, dict) else obj
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{path}: no state_dict found for the {which} backbone")
    prefixes = {"visual": ("visual_backbone.", "vfeat_extractor."), "audio": ("audio_backbone.", "afeat_extractor.")}
    if which not in prefixes:
        raise ValueError(f"which must be 'visual' or 'audio', got {which!r}")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    for prefix in prefixes[which]:
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            break
    out = {}
    for k, v in sd.items():
        if k.startswith(("fc.", "classifier.")):
            continue
        if k.startswith("base."):
            k = "features." + _s3d_key(k[len("base."):])
        out[k] = v
    try:
        module.load_state_dict(out, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the {which} backbone: {e}") from None


# ---------------------------------------------------------------------------------------------------------------------
# The pretrained feature extractors of the paper (Sec. 3) and where paperlib looks for them
# ---------------------------------------------------------------------------------------------------------------------

# The official model starts S3D from Kinetics-400 weights: kylemin's file, converted by the authors and committed to
# their repository; torchvision's S3D_Weights.KINETICS400_V1 holds the same network in torchvision's key layout.
S3D_OFFICIAL_FILE = "S3D_kinetics400_torchified.pt"
S3D_TORCHVISION_FILE = "s3d-d76dad2f.pth"
S3D_SOURCES = {
    S3D_OFFICIAL_FILE: "the authors' repository (github.com/v-iashin/SparseSync), "
                       "model/modules/feat_extractors/visual/S3D_kinetics400_torchified.pt",
    S3D_TORCHVISION_FILE: "https://download.pytorch.org/models/s3d-d76dad2f.pth (what torchvision's "
                          "S3D_Weights.KINETICS400_V1 downloads into the torch hub cache)",
}
# The authors' ResNet18 audio extractors, trained on VGGSound at one input length each (utils/utils.py FNAME2LINK of
# their repository); Table 4 pairs each input length with its own file.
AUDIO_FILES = {2.0: "ResNetAudio-22-08-04T09-51-04.pt", 3.0: "ResNetAudio-22-08-03T23-14-49.pt",
               4.0: "ResNetAudio-22-08-03T23-14-28.pt", 5.0: "ResNetAudio-22-06-24T08-10-33.pt",
               6.0: "ResNetAudio-22-06-24T17-31-07.pt", 7.0: "ResNetAudio-22-06-24T23-57-11.pt",
               8.0: "ResNetAudio-22-06-25T04-35-42.pt"}
AUDIO_URL = "https://a3s.fi/swift/v1/AUTH_a235c0f452d648828f745589cde1219a/sync/{name}"


def torch_cache_checkpoints() -> Path:
    """The torch hub cache's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where torchvision keeps weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def visual_weight_candidates(weights_dir: str | os.PathLike) -> list[Path]:
    """Where the Kinetics-400 S3D weights are looked for, in order: the official file, then torchvision's, in
    ``weights_dir``, then torchvision's in the torch hub cache. Nothing is ever downloaded."""
    d = Path(weights_dir)
    return [d / S3D_OFFICIAL_FILE, d / S3D_TORCHVISION_FILE, torch_cache_checkpoints() / S3D_TORCHVISION_FILE]


def audio_weight_name(clip_sec: float) -> str:
    """The file name of the authors' VGGSound ResNet18 audio extractor for ``clip_sec``-second inputs."""
    for sec, name in AUDIO_FILES.items():
        if abs(sec - clip_sec) < 1e-6:
            return name
    raise ValueError(f"no official VGGSound audio extractor for {clip_sec:g}-s inputs; the authors released "
                     f"{', '.join(f'{s:g} s' for s in AUDIO_FILES)}")


def backbone_weight_paths(weights_dir: str | os.PathLike, clip_sec: float) -> dict[str, Path]:
    """The files the paper's extractors load for ``clip_sec``-second inputs: {"visual": S3D, "audio": ResNet18}.

    The visual path is the first candidate of :func:`visual_weight_candidates` that exists (the official file's path
    when none does); the audio path is ``weights_dir/ResNetAudio-<id>.pt``. Existence is checked by
    :func:`check_backbone_weights`, not here.
    """
    candidates = visual_weight_candidates(weights_dir)
    visual = next((p for p in candidates if p.is_file()), candidates[0])
    return {"visual": visual, "audio": Path(weights_dir) / audio_weight_name(clip_sec)}


def check_backbone_weights(paths: Mapping[str, str | os.PathLike | None]) -> None:
    """Raise FileNotFoundError naming every missing extractor file of ``paths`` ({"visual": ..., "audio": ...}) and
    where to get it."""
    problems = []
    for which, path in paths.items():
        if not path or Path(path).is_file():
            continue
        path = Path(path)
        if which == "visual":
            tried = visual_weight_candidates(path.parent)
            where = "; ".join(f"{name} from {src}" for name, src in S3D_SOURCES.items())
            problems.append(f"the Kinetics-400 S3D weights: none of {', '.join(map(str, tried))} exists (get {where})")
        else:
            problems.append(f"the VGGSound audio extractor {path} does not exist (get it from "
                            f"{AUDIO_URL.format(name=path.name)})")
    if problems:
        raise FileNotFoundError("missing pretrained feature-extractor weights: " + "; ".join(problems) +
                                "; paperlib never downloads them")


def weights_file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be a torch weights file, read without loading it (None: it looks whole): missing, empty,
    or neither a whole zip archive holding a ``data.pkl`` (torch.save's format; a cut-off download loses the zip's
    central directory at its end) nor a legacy pickle."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist"
    size = path.stat().st_size
    if size == 0:
        return f"{path} is empty"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                if any(n.endswith("data.pkl") for n in z.namelist()):
                    return None
        except (zipfile.BadZipFile, OSError) as e:
            return f"{path} is not a readable torch file ({e})"
        return f"{path} is a zip archive without data.pkl: not a torch file"
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":  # pickle protocol 2+: torch's legacy (non-zip) format
        return None
    return f"{path} ({size} bytes) is not a torch file: a cut-off or failed download? (its zip directory is missing)"
