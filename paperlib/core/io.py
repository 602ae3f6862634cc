"""Atomic file output: the one way paperlib writes a file that other processes (or a resumed run) may read.

A writer works on a hidden temporary sibling, ``.<stem>.partial-<host>.<pid>.<id><suffix>``, which is fsynced and
renamed over the final name only when complete; the folder is fsynced too, so the rename itself survives a crash.
An interrupted writer (exception, SIGKILL, pre-emption) therefore never leaves a partial file under the final name.
The temporary's name says which process on which host was writing it, so :func:`remove_stale_partials` can tell the
leftover of a killed writer from a file being written right now by a live process or by another host.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import socket
import sys
import time
import uuid
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

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


# errno values whose message the user must see first: the disk, the quota, the file size limit, the permissions
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def write_failure(path: Path, error: BaseException) -> OSError | None:
    """The OSError to raise when writing ``path`` failed with ``error``: its cause first, the file named, the previous
    file said to be kept. Libraries bury the cause (torch.save raises "unexpected pos ..." from the OSError of a full
    disk or of ``ulimit -f``, whose own text names no file); the chain of ``error`` and the exceptions it was raised
    from is searched for it. None when none of them is a write failure."""
    chain, seen = [], set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        code = _write_errno(path, e)
        if code is not None:
            return OSError(code, f"{path}: {os.strerror(code)} while writing it; the previous {path.name} (if any) "
                                 f"is kept unchanged")
    return None


def _write_errno(path: Path, error: BaseException) -> int | None:
    """The errno of a write failure ``error`` is about (by its errno, or its text), None when it is not one."""
    if isinstance(error, OSError) and error.filename:
        about = Path(error.filename).name
        if about != path.name and not about.startswith(f".{path.stem}.partial-"):
            return None  # another file's problem (e.g. a source the writer reads), reported as it is
    if isinstance(error, OSError) and error.errno in _WRITE_ERRNOS:
        return error.errno
    return next((c for c in _WRITE_ERRNOS if os.strerror(c) in str(error)), None)


def _discard_partial(tmp: Path) -> None:
    """Remove a writer's temporary; in a folder that became read-only it cannot be unlinked, so it is emptied instead
    (its space is freed; :func:`remove_stale_partials` removes the empty name once the folder is writable again)."""
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        try:
            os.truncate(tmp, 0)
        except OSError:
            pass


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary sibling path to write; on success it is fsynced and renamed to ``path``, on failure
    removed. A failed write (full disk, quota, ``ulimit -f``, read-only folder) raises an OSError that names ``path``
    and its cause first (:func:`write_failure`); the previous file under ``path`` is never touched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as e:
        explained = write_failure(path, e)
        if explained is None:
            raise
        raise explained from e
    finally:
        if tmp.exists():
            _discard_partial(tmp)


def write_texts_atomic(files: Mapping[str | os.PathLike, str]) -> list[Path]:
    """Write several text files as one set: every temporary is written and fsynced before the first rename, so a
    failure while writing any of them (full disk, an exception) leaves all the previous files as they were. The
    renames follow each other at once (a crash between two of them can still leave a mixed set)."""
    temps: list[tuple[Path, Path]] = []
    try:
        for name, text in files.items():
            path = Path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = partial_name(path)
            temps.append((tmp, path))
            try:
                with open(tmp, "wb") as f:
                    f.write(text.encode())
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                raise (write_failure(path, e) or e) from e
        for tmp, path in temps:
            os.replace(tmp, path)
        for folder in dict.fromkeys(path.parent for _, path in temps):
            _fsync_dir(folder)
    finally:
        for tmp, _ in temps:
            if tmp.exists():
                _discard_partial(tmp)
    return [path for _, path in temps]


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


# ---------------------------------------------------------------------------------------------------------------------
# Folder locks: one process at a time trains a run folder, fills a campaign folder, generates a data set.
#
# The lock is an advisory ``flock`` on ``<folder>/.lock``, a file that is never deleted (deleting it would let a
# waiter lock the old inode while a newcomer locks a new one). The kernel drops the lock when its process ends in any
# way (exit, exception, SIGKILL, pre-emption), so the lock of a dead process is taken over at once and no stale lock
# can block a folder; the file also records its holder (pid, host, start time, command) for the messages of waiters
# and of refused processes, and the holder a newcomer took it over from.

LOCK_FILE = ".lock"


class FolderBusyError(RuntimeError):
    """A folder is locked by another live process; the message names the folder and the holder."""

    def __init__(self, folder: Path, holder: Mapping[str, Any] | None, purpose: str):
        self.folder, self.holder = folder, dict(holder or {})
        super().__init__(f"{folder}: cannot {purpose}: the folder is in use by {describe_holder(holder)}; wait for "
                         "that process to finish or stop it (the lock of a process that has ended is taken over "
                         "automatically)")


def describe_holder(holder: Mapping[str, Any] | None) -> str:
    """``pid N on host H since T (what: command)`` for a lock holder record, as the messages print it."""
    if not holder:
        return "another process (it has not recorded itself yet)"
    text = f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started_utc')}"
    what = "; ".join(str(holder[k]) for k in ("purpose", "command") if holder.get(k))
    return f"{text} ({what})" if what else text


def read_lock_holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The holder recorded in ``folder``'s lock file (the last one, if nobody holds it now); None when none is."""
    try:
        data = (Path(folder) / LOCK_FILE).read_bytes()
        holder = json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


class FolderLock:
    """A held folder lock (:func:`lock_folder`); ``previous``: the record of a holder that ended without releasing it
    (a killed process), None otherwise. ``release()`` (or leaving the ``with`` block) unlocks it."""

    def __init__(self, folder: Path, fd: int, holder: dict[str, Any], previous: dict[str, Any] | None):
        self.folder, self.holder, self.previous = folder, holder, previous
        self._fd: int | None = fd
        _HELD.add(self)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD.discard(self)
        try:
            os.ftruncate(fd, 0)  # no holder on record: a later reader sees a free lock, not an ended holder
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


# A forked child (a DataLoader worker) shares the parent's open lock file, and an flock lasts until every descriptor
# of it is closed: a child that outlived a killed parent would keep the run locked. Children close their copies.
_HELD: "weakref.WeakSet[FolderLock]" = weakref.WeakSet()


def _forget_locks_in_child() -> None:
    for lock in list(_HELD):
        if lock._fd is not None:
            try:
                os.close(lock._fd)
            except OSError:
                pass
            lock._fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_locks_in_child)


def lock_folder(folder: str | os.PathLike, purpose: str, *, wait: bool = False, timeout_s: float | None = None,
                poll_s: float = 0.5, notify: Callable[[str], None] | None = None) -> FolderLock:
    """Lock ``folder`` (created if missing) for this process, to ``purpose`` (e.g. "train this run").

    Held by another live process: ``wait=False`` raises :class:`FolderBusyError` naming the holder at once;
    ``wait=True`` waits (``notify`` gets one message naming the holder; default: stderr) until it is free, or raises
    after ``timeout_s``. A lock whose holder ended without releasing it is free; the returned lock's ``previous``
    names that holder. The lock is not inherited by child processes started with exec (the campaign's workers,
    torchrun); it is released by ``release()``, at ``with``-block exit, or by the kernel when this process ends."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise OSError(e.errno, f"{folder}: cannot {purpose}: its lock file {path.name} cannot be opened "
                               f"({e.strerror})") from None
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            except OSError as e:  # a file system without locks
                raise OSError(e.errno, f"{folder}: cannot {purpose}: its lock file {path.name} cannot be locked "
                                       f"({e.strerror}); this file system does not support flock") from None
            holder = _busy_holder(folder)
            if not wait or (deadline is not None and time.monotonic() >= deadline):
                raise FolderBusyError(folder, holder, purpose)
            if not told:
                message = f"{folder}: waiting to {purpose}: the folder is in use by {describe_holder(holder)}"
                (notify or (lambda m: print(m, file=sys.stderr, flush=True)))(message)
                told = True
            time.sleep(poll_s)
        previous = read_lock_holder(folder)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
                  "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    return FolderLock(folder, fd, holder, previous)


def _busy_holder(folder: Path) -> dict[str, Any] | None:
    """The holder of a lock found busy; it records itself right after locking, so an empty record is read again."""
    for _ in range(20):
        holder = read_lock_holder(folder)
        if holder is not None:
            return holder
        time.sleep(0.05)
    return None


def unique_folder(root: str | os.PathLike, base: str) -> Path:
    """Create and return a new folder ``root/base`` (``root/base-1``, ``-2``, ... when taken): ``mkdir`` without
    ``exist_ok`` makes the choice atomic, so concurrent callers with the same ``base`` (two invocations in one
    second) get different folders."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(100_000):
        path = root / (base if i == 0 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new folder under {root} for {base!r}")
