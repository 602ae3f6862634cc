"""Atomic file output: the one way paperlib writes a file that other processes (or a resumed run) may read.

A writer works on a hidden temporary sibling, ``.<stem>.partial-<host>.<pid>.<id><suffix>``, which is fsynced and
renamed over the final name only when complete; the folder is fsynced too, so the rename itself survives a crash.
An interrupted writer (exception, SIGKILL, pre-emption) therefore never leaves a partial file under the final name.
The temporary's name says which process on which host was writing it, so :func:`remove_stale_partials` can tell the
leftover of a killed writer from a file being written right now by a live process or by another host.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
_PARTIAL_RE = re.compile(r"^\..+\.partial-(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}(\.[^.]*)?$")


def partial_name(path: Path) -> Path:
    """The hidden temporary sibling a writer of ``path`` uses (host, pid and a random id in the name)."""
    return path.with_name(f".{path.stem}.partial-{HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}{path.suffix}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary sibling path to write; on success it is fsynced and renamed to ``path``, on failure
    removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def json_default(o: Any) -> Any:
    """``json.dump(default=...)`` for numpy/torch scalars and arrays and paths."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: replace them (recursively) by None so files stay standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Indented, key-sorted JSON written atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def _writer_gone(name: str) -> bool:
    m = _PARTIAL_RE.match(name)
    if not m or m["host"] != HOST or int(m["pid"]) == os.getpid():
        return False
    try:
        os.kill(int(m["pid"]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def remove_stale_partials(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Delete under ``root`` (or only in it, ``recursive=False``) the temporaries of :func:`atomic_output` whose writer
    was killed (written on this host by a process that no longer exists); returns what was removed. Final names,
    other hosts' files and files of live writers are never touched."""
    removed = []
    walk = os.walk(root) if recursive else [(root, [], [e.name for e in _scandir(root) if e.is_file()])]
    for folder, _, files in walk:
        for name in files:
            if name.startswith(".") and ".partial-" in name and _writer_gone(name):
                p = Path(folder) / name
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed


def _scandir(folder: str | os.PathLike) -> list[os.DirEntry]:
    try:
        return list(os.scandir(folder))
    except OSError:
        return []
