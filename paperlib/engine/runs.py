"""Run directories and provenance: one directory per run, never overwritten, with everything needed to trust a number.

Layout of ``runs/<name>-<YYYYmmdd-HHMMSS>[-N]/`` (written by rank 0 only):
    config.json       the resolved run configuration, written before step 0
    env.json          git sha + dirty flag, torch/torchvision/torchaudio/PyAV/FFmpeg versions, device, host
    metrics.jsonl     one JSON object per line (``{"step", "epoch", "phase", ...}``); read back with
                      :func:`read_metrics`. Each step appears once: a resumed run first drops what the run logged
                      after the checkpoint it resumes from (:func:`rewind_metrics`), since it logs those steps again
    events.out.tfevents.*  TensorBoard curves (same numbers as metrics.jsonl)
    checkpoints/last.pt, checkpoints/best.pt
    init_from.json    a fine-tuned run's source checkpoint: its path, size and sha256 (a reference, not a copy)
    .lock             held by the process training the run (:func:`lock_run_dir`): its pid, host and start time
    results.json      summary written when the run finishes (best valid metrics, test metrics, steps, time)

Why ``env.json`` records decoder versions: in the sibling project (Synchformer) the decoder library version alone moved
Acc@1 by ~20 points, so every result carries the versions that produced it.

Paper: none (engineering); the official code keeps ``cfg-<id>.yaml``, a code backup and ``log-<id>.txt`` per run
instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from paperlib.core.io import (FolderLock, finite_or_none, json_default, lock_folder, unique_folder,
                              write_text_atomic)

CONFIG_FILE = "config.json"
ENV_FILE = "env.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"


def new_run_dir(root: str | os.PathLike, name: str, stamp: str | None = None) -> Path:
    """Create and return a fresh ``root/<name>-<stamp>`` directory; a counter suffix avoids any existing one.

    Creation uses ``mkdir(exist_ok=False)`` (:func:`paperlib.core.io.unique_folder`), so two processes racing for the
    same name get different directories.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"run name must be a plain non-empty name, got {name!r}")
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    return unique_folder(root, f"{name}-{stamp}")


def lock_run_dir(run_dir: str | os.PathLike) -> FolderLock:
    """Lock a run directory for the process that trains it (rank 0): a second process that would train it (a resume
    of a live run, a second campaign) is refused with :class:`paperlib.core.io.FolderBusyError` naming the holder."""
    return lock_folder(run_dir, "train this run")


class MetricsLogger:
    """Append-only ``metrics.jsonl`` plus (optionally) TensorBoard scalars for the same numbers.

    ``log(record)`` writes one JSON line; numeric entries are also sent to TensorBoard as ``<phase>/<key>`` at ``step``.
    ``records`` counts the lines of the file (a checkpoint stores it, so a resume knows what it logs again).
    ``purge_step``: TensorBoard hides its earlier events at this step and later (a resumed run logs them again).
    A disabled logger (``run_dir=None``, e.g. on ranks other than 0) accepts calls and writes nothing.
    """

    def __init__(self, run_dir: str | os.PathLike | None, tensorboard: bool = True, purge_step: int | None = None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._tb = None
        self._file = None
        self.records = 0
        if self.run_dir is None:
            return
        path = self.run_dir / METRICS_FILE
        # A writer killed mid-line (SIGKILL, pre-emption) leaves a torn last line; end it before appending, or the
        # first record of the resumed run (its "resume" event) would be glued to it and lost to read_metrics.
        torn = False
        if path.is_file() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                data = f.read()
            self.records = data.count(b"\n")
            torn = not data.endswith(b"\n")
        self._file = open(path, "a")
        if torn:
            self._file.write("\n")
            self._file.flush()
            self.records += 1
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step)
            except Exception as e:  # noqa: BLE001 - curves are optional, metrics.jsonl is not
                print(f"paperlib: TensorBoard unavailable ({e}); metrics.jsonl only", file=sys.stderr)

    def log(self, record: Mapping[str, Any]) -> None:
        if self._file is None:
            return
        rec = finite_or_none(dict(record))
        rec.setdefault("time", time.time())
        self._file.write(json.dumps(rec, default=json_default) + "\n")
        self._file.flush()
        self.records += 1
        if self._tb is not None and "step" in rec:
            phase = rec.get("phase", "train")
            for k, v in rec.items():
                if k in ("step", "epoch", "time", "phase") or isinstance(v, bool):
                    continue
                if isinstance(v, (int, float)):
                    self._tb.add_scalar(f"{phase}/{k}", v, rec["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def rewind_metrics(run_dir: str | os.PathLike, records: int | None, step: int) -> int:
    """Make ``metrics.jsonl`` hold what a run logged up to a checkpoint, before the run resumes from it.

    Keeps the first ``records`` lines (what the run had logged when it saved the checkpoint; when the checkpoint does
    not say, the records up to ``step``) and, after them, only the ``resume`` events (every attempt stays on record);
    drops torn lines. The resumed run logs the dropped steps again, so each step appears once. The file is replaced
    atomically. Returns the number of records dropped.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for i, line in enumerate(path.read_bytes().splitlines()):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            dropped += bool(line.strip())
            continue
        before = i < records if records is not None else rec.get("step", 0) <= step
        if before or rec.get("event") == "resume":
            kept.append(line.decode() + "\n")
        else:
            dropped += 1
    if dropped:
        write_text_atomic(path, "".join(kept))
    return dropped


def read_metrics(run_dir: str | os.PathLike, phase: str | None = None) -> list[dict[str, Any]]:
    """Records of ``metrics.jsonl`` (optionally one phase); a torn last line (killed writer) is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file (is {run_dir} a paperlib run directory?)")
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if phase is None or rec.get("phase") == phase:
                out.append(rec)
    return out


def list_runs(root: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Run directories under ``root`` (those holding a config.json), oldest first; optionally only ``<name>-*``."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file()]
    if name is not None:
        runs = [p for p in runs if p.name.startswith(f"{name}-")]
    return sorted(runs, key=lambda p: (p.stat().st_mtime, p.name))
