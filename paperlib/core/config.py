"""Typed configuration: dataclasses with literal defaults, presets as plain dicts of differences, ``key=value``
overrides.

Rules (after nanoGPT's configurator, without its ``exec``):
- every config is a (possibly nested) dataclass; leaves are bool/int/float/str, ``None`` or tuples/lists of those;
- an override ``a.b=value`` addresses a field by its dotted path; unknown keys raise ``KeyError`` naming the key and the
  valid choices; values are parsed with the field's declared type (``"3"`` -> 3, ``"true"`` -> True,
  ``"[16,7,7]"`` -> (16,7,7));
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


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, path + "."))
        else:
            out[path] = v
    return out


def merge(cfg: T, diff: Mapping[str, Any]) -> T:
    """Apply a (nested or dotted) dict of differences to a dataclass config, type-checked."""
    for k, v in flatten(diff).items():
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
        known = set(flatten(to_dict(cfg)))
        data = {k: v for k, v in flatten(data).items() if k in known}
    return merge(cfg, data)


def config_hash(cfg: Any, length: int = 12) -> str:
    """Stable fingerprint of a resolved config (sorted-key JSON, sha256)."""
    blob = json.dumps(to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
