"""Where campaign runs live and how their worker processes are scheduled (:mod:`paperlib.paper.campaign`).

Each campaign hash owns a folder ``<runs_root>/campaign/<profile>/<slug>-<hash>/`` holding
    campaign.json     the job (:class:`Job`): key, hash, spec, the test split's data config, the parent's folder
    .lock             held by the worker that trains and tests the run (pid, host, start time): a second campaign's
                      worker waits on it, then finds the run finished (:func:`paperlib.core.io.lock_folder`)
    config.json       the run's resolved configuration, what the trainer is launched on
                      (``python -m paperlib train --config config.json [--init-from PARENT/checkpoints/best.pt]``)
    train.log         the worker's output for this run (copied into the run directory when it is done)
    <name>-<stamp>/   run directories (:mod:`paperlib.engine.runs` layout); a finished one also holds
                      ``test_detail.json``
    <name>-restored/  a finished run copied back from a results folder (:func:`paperlib.paper.results.restore_runs`):
                      its files without checkpoints, and ``restored.json`` naming where they came from
A worker is a separate process, ``python -m paperlib campaign --worker FOLDER [FOLDER ...]`` (OMP/MKL one thread),
that runs the jobs of the given folders in order (:func:`paperlib.paper.campaign.run_jobs`). :func:`schedule` starts
one worker for all jobs (``parallel == 1``: one interpreter start, which keeps the smoke plan within seconds) or one
per job, at most ``parallel`` at a time, each once its parent has finished.

How a worker trains a run (:func:`train_command`): in its own process (``Job.nproc == 0``: the smoke/mini/full
default), or as a child command: ``torchrun --standalone --nproc_per_node N -m paperlib train ...`` (``nproc == N``:
the paper profile, and any profile given several processes), or ``LAUNCHER python -m paperlib train ...`` where
``Job.launcher`` is a command prefix that starts every rank itself (e.g. ``srun --ntasks-per-node 8``, whose
``SLURM_*`` variables the engine reads, or ``torchrun --nnodes 2 ... --no-python`` under one ``srun`` task per node).
The worker then evaluates the run's best checkpoint itself, in one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from tqdm.auto import tqdm

from paperlib.core.io import write_json_atomic
from paperlib.engine import runs

TEST_DETAIL = "test_detail.json"
SPEC_FILE = "campaign.json"
RUN_CONFIG_FILE = runs.CONFIG_FILE  # the resolved config of a hash folder's run (its run directories hold copies)
LOG_FILE = "train.log"
RESTORED_FILE = "restored.json"  # marks a run directory restored from committed files (no checkpoints)


@dataclass
class Job:
    """One run to train (or resume) and evaluate, as the worker reads it from ``<hash folder>/campaign.json``."""

    key: str  # the plan key that owns the folder
    hash: str  # its campaign hash
    hash_root: Path  # the hash folder
    parent_root: Path | None  # the parent run's hash folder (its best.pt initialises this run), None from scratch
    device: str  # where the test evaluation runs
    test_data: dict[str, Any]  # the DataConfig (``to_dict``) of the split the run is tested on
    spec: dict[str, Any]  # the RunSpec, for the record
    profile: str
    nproc: int = 0  # processes of the torchrun that trains the run; 0: train in the worker's own process
    launcher: list[str] = dataclasses.field(default_factory=list)  # a command prefix that starts the ranks itself

    @property
    def config_file(self) -> Path:
        return self.hash_root / RUN_CONFIG_FILE

    def write(self) -> None:
        data = dataclasses.asdict(self) | {"hash_root": str(self.hash_root), "config": str(self.config_file),
                                           "parent_root": None if self.parent_root is None else str(self.parent_root)}
        write_json_atomic(self.hash_root / SPEC_FILE, data)

    @classmethod
    def read(cls, hash_root: str | os.PathLike) -> "Job":
        data = json.loads((Path(hash_root) / SPEC_FILE).read_text())
        fields = {f.name for f in dataclasses.fields(cls)}
        job = cls(**{k: v for k, v in data.items() if k in fields})
        job.hash_root = Path(job.hash_root)
        job.parent_root = None if job.parent_root is None else Path(job.parent_root)
        return job


# ---------------------------------------------------------------------------------------------------------------------
# run folders


def slug(key: str) -> str:
    return key.replace("/", "_")


def hash_root(runs_root: Path, profile: str, key: str, h: str) -> Path:
    """The folder of campaign hash ``h``, named after the plan key that owns it."""
    return runs_root / "campaign" / profile / f"{slug(key)}-{h}"


def attempts(hroot: Path) -> list[Path]:
    """The run directories of a hash folder, oldest first."""
    return runs.list_runs(hroot)


def finished(hroot: Path) -> Path | None:
    """The finished run of a hash folder: results.json and test_detail.json both written."""
    for run in reversed(attempts(hroot)):
        if (run / runs.RESULTS_FILE).is_file() and (run / TEST_DETAIL).is_file():
            return run
    return None


def restored(run: Path) -> bool:
    """Is ``run`` a copy of committed run files (:data:`RESTORED_FILE`), which has no checkpoint to fine-tune from?"""
    return (run / RESTORED_FILE).is_file()


def tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def redirect_output(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so C libraries too) to ``path`` (appended)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab", buffering=0) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


# ---------------------------------------------------------------------------------------------------------------------
# how a run is trained


def train_command(job: Job, args: Sequence[str]) -> list[str]:
    """The command that trains ``job``'s run, ``args`` being the ``paperlib train`` arguments (``--config FILE
    [--init-from CKPT]`` or ``--resume RUN_DIR``); see the module docstring. With ``nproc == 0`` it is the equivalent
    command line of the in-process training, for the log."""
    if job.launcher:
        return [*job.launcher, sys.executable, "-m", "paperlib", "train", *args]
    if job.nproc:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(job.nproc),
                "-m", "paperlib", "train", *args]
    return ["python", "-m", "paperlib", "train", *args]


def run_training(job: Job, args: Sequence[str]) -> None:
    """Run :func:`train_command` as a child process (its output goes where this process's goes: the run's
    ``train.log`` in a worker); raise RuntimeError when it fails."""
    cmd = train_command(job, args)
    code = subprocess.call(cmd)
    if code != 0:
        raise RuntimeError(f"{job.key}: the training command exited with status {code}: {shlex.join(cmd)}")


# ---------------------------------------------------------------------------------------------------------------------
# worker processes and the scheduler


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def launch(jobs: Sequence[Job]) -> subprocess.Popen:
    """Start a worker process on ``jobs`` (run in order); its output is appended to ``.worker.stderr`` of the first
    folder (each job's own output goes to its ``train.log``; a second campaign's worker on the same folder appends
    its lines, e.g. that it waits for the first one, and never truncates the file under the first)."""
    err = jobs[0].hash_root / ".worker.stderr"
    with open(err, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", "paperlib", "campaign", "--worker",
                                 *(str(j.hash_root) for j in jobs)],
                                stdout=f, stderr=subprocess.STDOUT, env=_worker_env())


def failure(jobs: Sequence[Job]) -> RuntimeError:
    """The error of a failed worker: the first unfinished run's log, with its last lines."""
    for job in jobs:
        if finished(job.hash_root) is None:
            log = job.hash_root / LOG_FILE
            return RuntimeError(f"campaign run {job.key} failed; log: {log}\n--- last lines ---\n{tail(log)}")
    return RuntimeError(f"a campaign worker failed after its runs finished; see {jobs[0].hash_root}")


def schedule(jobs: Mapping[str, Job], parent: Mapping[str, str | None], parallel: int, progress: bool) -> None:
    """Run the jobs (by hash; ``parent`` maps a hash to its parent's): parents first; one worker for all when
    ``parallel == 1``, else one per job, ``parallel`` at a time. Progress is a tqdm bar over runs."""
    bar = tqdm(total=len(jobs), desc="campaign runs", unit="run", disable=not progress)
    try:
        if parallel == 1:
            proc = launch(list(jobs.values()))
            counted = 0
            while proc.poll() is None:
                time.sleep(0.5)
                n = sum(finished(j.hash_root) is not None for j in jobs.values())
                bar.update(n - counted)
                counted = n
            n = sum(finished(j.hash_root) is not None for j in jobs.values())
            bar.update(n - counted)
            if proc.returncode != 0 or n != len(jobs):
                raise failure(list(jobs.values()))
            return
        pending = list(jobs)  # parents come first (plan order)
        running: dict[str, subprocess.Popen] = {}
        done: set[str] = set()
        while pending or running:
            for h, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[h]
                if proc.returncode != 0 or finished(jobs[h].hash_root) is None:
                    for p in running.values():
                        p.terminate()
                    for p in running.values():
                        p.wait()
                    raise failure([jobs[h]])
                done.add(h)
                bar.update(1)
            for h in list(pending):
                if len(running) >= parallel:
                    break
                p = parent[h]
                if p is not None and p in jobs and p not in done:
                    continue
                pending.remove(h)
                running[h] = launch([jobs[h]])
            time.sleep(0.5)
    finally:
        bar.close()
