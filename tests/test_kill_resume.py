"""Killed runs: SIGKILL at random points, including inside a checkpoint or media write, then resume.

- ``train``: killed several times (a random delay, during a checkpoint write, at random steps), resumed with
  ``--resume RUN_DIR`` until it finishes: no checkpoint under a final name ever fails to load, the final weights
  (and optimiser state) are bit-identical to an uninterrupted run on CPU, and ``metrics.jsonl`` holds each step once,
  with the uninterrupted run's numbers.
- ``synth`` and ``prepare``: killed mid-way (also between a finished temporary file and its rename), restarted: every
  file under a final name is complete, finished files are not redone, the final set equals an uninterrupted run's.
- DDP on CPU (gloo): when one of two ranks dies, the survivor exits non-zero within a bounded time, with a message.
- A papermill notebook that fails mid-way leaves earlier figures, tables and run directories as they were.

Every run is a real subprocess (``python -m paperlib ...`` through a small wrapper, written here, that can hold a write
open so the test can kill the process inside it); kill points come from a seeded RNG (``PAPERLIB_KILL_SEED``).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.core.geometry import Geometry
from paperlib.engine import runs
from paperlib.model.weights import load_checkpoint

SEED = int(os.environ.get("PAPERLIB_KILL_SEED", "20221109"))
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")

# The wrapper runs `python -m paperlib <args>`; KR_HOOK makes the N-th write stall so the test can SIGKILL the process
# inside it: "save:N" (the N-th torch.save writes half the checkpoint to its temporary file, then waits) or
# "replace:N:SUFFIX" (the N-th os.replace onto a name ending in SUFFIX waits: the temporary file is complete but not
# renamed).
# The marker file KR_MARKER receives the temporary file's path once the process is stalled there.
WRAPPER = r'''
import io, os, sys, time
import torch
torch.set_num_threads(1)
hook = os.environ.get("KR_HOOK", "")
marker = os.environ.get("KR_MARKER", "")
calls = [0]


def stall(path):
    with open(marker + ".part", "w") as f:
        f.write(str(path))
    os.replace(marker + ".part", marker)
    time.sleep(300)


if hook.startswith("save:"):
    n, orig = int(hook.split(":")[1]), torch.save

    def save(obj, f, *a, **k):
        calls[0] += 1
        if calls[0] != n or not hasattr(f, "write"):
            return orig(obj, f, *a, **k)
        buf = io.BytesIO()
        orig(obj, buf, *a, **k)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
        stall(f.name)
        f.write(data[len(data) // 2:])

    torch.save = save
elif hook.startswith("replace:"):
    _, n, suffix = hook.split(":", 2)
    n, orig = int(n), os.replace

    def replace(src, dst, *a, **k):
        if str(dst).endswith(suffix):
            calls[0] += 1
            if calls[0] == n:
                stall(src)
        return orig(src, dst, *a, **k)

    os.replace = replace

from paperlib.commands import main

sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill-wrapper") / "paperlib_kill_wrapper.py"
    path.write_text(WRAPPER)
    return path


def _launch(wrapper: Path, args: list[str], log: Path, hook: str = "", marker: Path | None = None,
            cwd: Path | None = None) -> subprocess.Popen:
    env = dict(ENV, KR_HOOK=hook, KR_MARKER=str(marker or ""))
    out = open(log, "ab")
    try:
        return subprocess.Popen([sys.executable, str(wrapper), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, preexec_fn=lambda: os.nice(5))
    finally:
        out.close()


def _kill(proc: subprocess.Popen) -> bool:
    """SIGKILL ``proc`` (ours, by pid); True when it was still running (a real kill), False when it had finished."""
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.returncode == -signal.SIGKILL


def _wait_for(pred, proc: subprocess.Popen, timeout: float, every=None) -> bool:
    """Poll ``pred()`` until true (True), the process ends or ``timeout`` passes (False); ``every()`` runs per poll."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        if proc.poll() is not None:
            return bool(pred())
        if every is not None:
            every()
        time.sleep(0.02)
    return False


def _run(wrapper: Path, args: list[str], log: Path, timeout: float = 240) -> None:
    proc = _launch(wrapper, args, log)
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            _kill(proc)
    assert rc == 0, f"paperlib {args[0]} failed ({rc}):\n{log.read_text()[-4000:]}"


def _visible_files(root: Path) -> dict[str, Path]:
    """Files under final names (no path component starting with '.'), by relative path."""
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _hidden_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()]


# ---------------------------------------------------------------------------------------------------------------------
# fast pieces: what a killed writer leaves behind


def test_metrics_logger_ends_a_torn_line_before_appending(tmp_path):
    with runs.MetricsLogger(tmp_path, tensorboard=False) as lg:
        lg.log({"phase": "train", "step": 1, "loss": 1.0})
    with open(tmp_path / runs.METRICS_FILE, "a") as f:
        f.write('{"phase": "train", "step": 2, "lo')  # the writer was killed mid-line
    with runs.MetricsLogger(tmp_path, tensorboard=False) as lg:  # the resumed run appends
        lg.log({"phase": "event", "event": "resume", "step": 1})
    recs = runs.read_metrics(tmp_path)
    assert [(r["phase"], r["step"]) for r in recs] == [("train", 1), ("event", 1)]


def test_stale_media_partials_are_removed_only_when_their_writer_is_gone(tmp_path):
    from paperlib.core import io as cio

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = cio.HOST
    with cio.atomic_output(tmp_path / "sub" / "a.mp4") as mine:  # this process: alive
        mine.write_bytes(b"x")
        stale = tmp_path / "sub" / f".b.partial-{host}.{dead.pid}.0123abcd.mp4"
        other = tmp_path / f".c.partial-elsewhere-{host}.{dead.pid}.0123abcd.mp4"
        keep = [mine, other, tmp_path / "d.mp4", tmp_path / ".e.partial-nohostpid.mp4"]
        for p in (stale, *keep[1:]):
            p.write_bytes(b"x")
        assert mine.name.startswith(".a.partial-") and mine.suffix == ".mp4"
        assert cio.remove_stale_partials(tmp_path) == [stale]
        assert all(p.exists() for p in keep)
    assert (tmp_path / "sub" / "a.mp4").read_bytes() == b"x" and not mine.exists()


def test_checkpoint_saves_remove_killed_writers_temporaries_in_their_folder_only(tmp_path):
    from paperlib.core import io as cio
    from paperlib.model import checkpoints as ck
    from paperlib.model.sparsesync import ModelConfig, build_model

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = cio.HOST
    stale = tmp_path / f".last.partial-{host}.{dead.pid}.0123abcd.pt"
    live = tmp_path / f".last.partial-{host}.{os.getppid()}.0123abcd.pt"  # the pytest runner's parent: alive
    other_host = tmp_path / f".last.partial-elsewhere-{host}.{dead.pid}.0123abcd.pt"
    nested = tmp_path / "sub" / f".x.partial-{host}.{dead.pid}.0123abcd.pt"  # another folder: not this save's business
    nested.parent.mkdir()
    for p in (stale, live, other_host, nested):
        p.write_bytes(b"x")
    cfg = ModelConfig(geometry=Geometry.for_classes(3, crop=32, clip_sec=2.0, n_fft=256, hop=64), backbone="small",
                      d_model=32, n_head=2, depth=1, n_selectors=4)
    ck.save_checkpoint(tmp_path / "last.pt", build_model(cfg), cfg)
    assert not stale.exists() and live.exists() and other_host.exists() and nested.exists()
    assert (tmp_path / "last.pt").is_file()


# ---------------------------------------------------------------------------------------------------------------------
# synthetic data (an uninterrupted `synth` run: the reference for the synth test and the training set)

SYNTH_ARGS = ["--clips", "16", "--size", "32", "--no-progress"]


@pytest.fixture(scope="module")
def synth_ref(wrapper, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth-ref") / "data"
    _run(wrapper, ["synth", str(root), *SYNTH_ARGS], root.parent / "log.txt")
    return root


# ---------------------------------------------------------------------------------------------------------------------
# training


MAX_STEPS = 20
TRAIN_COMMON = [f"train.max_steps={MAX_STEPS}", "train.checkpoint_every_steps=1", "train.log_every=1",
                "train.test=false", "train.progress=false", "train.tensorboard=false", "train.device=cpu"]
TMP_NAME = re.compile(r"^\..+\.partial-.+$")


def _train_args(data: Path, run_root: Path) -> list[str]:
    return ["train", "--preset", "smoke", f"data.root={data}", f"train.run_root={run_root}", *TRAIN_COMMON]


def _ckpt_step(run_dir: Path | None) -> int | None:
    last = run_dir / "checkpoints" / "last.pt" if run_dir is not None else None
    return load_checkpoint(last)["state"]["step"] if last is not None and last.is_file() else None


class _CheckpointAuditor:
    """Loads every checkpoint under a final name (while runs go on and after each kill); counts failures."""

    def __init__(self):
        self.loads = 0
        self.corrupt: list[str] = []
        self._next = 0.0

    def check(self, run_dir: Path | None) -> None:
        if run_dir is None or not (run_dir / "checkpoints").is_dir():
            return
        for p in sorted((run_dir / "checkpoints").iterdir()):
            if p.name.startswith("."):
                assert TMP_NAME.match(p.name), f"unexpected hidden file {p}"
                continue
            try:
                ck = load_checkpoint(p)
                assert ck["state"]["step"] >= 1 and ck["model"]
                self.loads += 1
            except FileNotFoundError:  # replaced between listing and opening: the new file is checked next time
                continue
            except Exception as e:  # noqa: BLE001 - any failure to load is the bug this test looks for
                self.corrupt.append(f"{p}: {type(e).__name__}: {e}")

    def every(self, run_dir_fn):
        def poll():
            if time.monotonic() >= self._next:
                self.check(run_dir_fn())
                self._next = time.monotonic() + 0.4
        return poll


def _new_records(run_dir: Path | None, since: float) -> list[dict]:
    """Records logged at ``since`` (time.time()) or later (a resume rewrites the file: byte offsets do not last)."""
    if run_dir is None or not (run_dir / runs.METRICS_FILE).is_file():
        return []
    try:
        data = (run_dir / runs.METRICS_FILE).read_bytes()
    except FileNotFoundError:  # replaced right now
        return []
    out = []
    for line in data.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a torn line being written right now
            continue
        if rec.get("time", 0.0) >= since:
            out.append(rec)
    return out


def _same_tensors(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _digest(sd: dict) -> str:
    import hashlib

    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode() + sd[k].contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_killed_repeatedly_resumes_to_identical_weights(wrapper, synth_ref, tmp_path):
    rng = random.Random(SEED)
    t0 = time.monotonic()
    ref_root, root = tmp_path / "ref", tmp_path / "killed"
    _run(wrapper, _train_args(synth_ref, ref_root), tmp_path / "ref.log")
    (ref_run,) = runs.list_runs(ref_root)
    t_ref = time.monotonic() - t0

    audit = _CheckpointAuditor()
    log = tmp_path / "killed.log"
    run_dir: Path | None = None
    kills, fresh_starts, resumes, writes_hit = 0, 0, 0, 0
    # kill plan: a random delay from launch (often before the first checkpoint), inside a checkpoint write, then at
    # random step boundaries (+ a random delay: mid-step, mid-log or mid-write)
    for plan in ("delay", "in_write", "step", "step", "in_write"):
        start_step = _ckpt_step(run_dir)
        if start_step is None:  # nothing to resume: start (again) from scratch
            before = set(runs.list_runs(root))
            args, fresh_starts = _train_args(synth_ref, root), fresh_starts + 1
            if run_dir is not None:  # a run killed before its first checkpoint cannot be resumed, and says so
                r = subprocess.run([sys.executable, "-m", "paperlib", "train", "--resume", str(run_dir)], env=ENV,
                                   capture_output=True, text=True, timeout=120)
                assert r.returncode == 2 and "no checkpoints/last.pt to resume from" in r.stderr, r.stderr
        else:
            args, resumes, before = ["train", "--resume", str(run_dir), "train.progress=false"], resumes + 1, None
        since = time.time()
        marker = tmp_path / f"marker-{kills}"
        hook = f"save:{rng.randint(2, 4)}" if plan == "in_write" else ""
        proc = _launch(wrapper, args, log, hook=hook, marker=marker)

        def current() -> Path | None:
            if before is None:
                return run_dir
            new = [p for p in runs.list_runs(root) if p not in before]
            return new[0] if new else None

        poll = audit.every(current)
        try:
            if plan == "delay":  # a random delay, cut short at step 5 so a fast machine cannot finish the run first
                _wait_for(lambda: any(r.get("phase") == "train" and r["step"] >= 5
                                      for r in _new_records(current(), since)), proc, rng.uniform(1.0, 5.0), poll)
            elif plan == "in_write":
                assert _wait_for(marker.is_file, proc, 120, poll), log.read_text()[-3000:]
            else:
                target = min((start_step or 0) + rng.randint(1, 3), MAX_STEPS - 3)
                hit = _wait_for(lambda: any(r.get("phase") == "train" and r["step"] >= target
                                            for r in _new_records(current(), since)), proc, 120, poll)
                assert hit, log.read_text()[-3000:]
                time.sleep(rng.uniform(0.0, 0.25))
        finally:
            killed = _kill(proc)
        assert killed, f"the run ended before the {plan} kill:\n{log.read_text()[-3000:]}"
        kills += 1
        run_dir = current() or run_dir
        audit.check(run_dir)
        assert audit.corrupt == [], f"after the {plan} kill: {audit.corrupt}"
        if plan == "in_write":
            tmp = Path(marker.read_text())
            # killed with half a checkpoint in its temporary file: it is hidden, never under a final name
            assert tmp.is_file() and TMP_NAME.match(tmp.name) and tmp.parent == run_dir / "checkpoints", tmp
            writes_hit += 1
        assert run_dir is None or not (run_dir / runs.RESULTS_FILE).exists()

    # resume until the run finishes
    for _ in range(3):
        if (run_dir / runs.RESULTS_FILE).is_file():
            break
        _run(wrapper, ["train", "--resume", str(run_dir), "train.progress=false"], log)
        resumes += 1
        audit.check(run_dir)
    t_all = time.monotonic() - t0

    assert audit.corrupt == [], audit.corrupt
    res, ref_res = (json.loads((d / runs.RESULTS_FILE).read_text()) for d in (run_dir, ref_run))
    assert res["steps"] == ref_res["steps"] == MAX_STEPS and res["stop_reason"] == "max_steps"
    assert res["best_step"] == ref_res["best_step"]
    # every resume of this run directory is on record (a torn metrics line from a kill must not swallow it)
    events = [r for r in runs.read_metrics(run_dir, "event") if r.get("event") == "resume"]
    assert len(events) == resumes, (len(events), resumes)
    # each step once, with the uninterrupted run's numbers (a resume drops what it logs again)
    for phase in ("train", "valid"):
        got, want = ([{k: v for k, v in r.items() if k not in ("time", "elapsed_s")}
                      for r in runs.read_metrics(d, phase)] for d in (run_dir, ref_run))
        assert got == want, (phase, [r["step"] for r in got], [r["step"] for r in want])
    for name in ("last", "best"):
        a, b = (torch.load(d / "checkpoints" / f"{name}.pt", weights_only=True) for d in (ref_run, run_dir))
        _same_tensors(a["model"], b["model"], f"{name}.model")
        _same_tensors(a["optimizer"], b["optimizer"], f"{name}.optimizer")
        _same_tensors(a["scheduler"], b["scheduler"], f"{name}.scheduler")
        assert a["state"]["step"] == b["state"]["step"] and a["best_metric"] == b["best_metric"]
    # killed writers' temporaries are gone once a later save ran (paperlib.core.io.remove_stale_partials)
    assert _hidden_files(run_dir / "checkpoints") == []
    digest = _digest(torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"])
    print(f"\ntrain: {kills} kills ({writes_hit} inside a checkpoint write, {fresh_starts - 1} before the first "
          f"checkpoint), {resumes} resumes, {audit.loads} checkpoint loads, {len(audit.corrupt)} corrupt checkpoints, "
          f"weights identical (sha256 {digest}); reference run {t_ref:.1f} s, whole test {t_all:.1f} s, seed {SEED}")


# ---------------------------------------------------------------------------------------------------------------------
# synth and prepare


def _decoded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from paperlib.core.media import read_audio, read_video

    return read_video(path, fps=None), read_audio(path, sample_rate=None)


def _stamps(paths) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


def _kill_and_restart(wrapper, args, dst, tmp_path, rng, finished, check_complete, plans):
    """Run ``args`` killed once per plan ("count": after 1-3 more finished outputs + a random delay; "in_rename": while
    its N-th .mp4 waits, complete, under its temporary name), checking after each kill; then run it to the end.
    Returns (kills, outputs finished before the restart, their stamps, killed writers' temporaries found)."""
    log = tmp_path / "killed.log"
    kills, temps = 0, []
    for i, plan in enumerate(plans):
        n0 = len(finished())
        marker = tmp_path / f"marker-{i}"
        hook = f"replace:{rng.randint(1, 3)}:.mp4" if plan == "in_rename" else ""
        proc = _launch(wrapper, args, log, hook=hook, marker=marker)
        try:
            if plan == "in_rename":
                assert _wait_for(marker.is_file, proc, 120), log.read_text()[-3000:]
            else:
                want = n0 + rng.randint(1, 3)
                assert _wait_for(lambda: len(finished()) >= want, proc, 120), log.read_text()[-3000:]
                # a kill at a random point of the next output, never so late that the run finishes first (an idle
                # machine prepares a 64-px clip in ~30 ms)
                time.sleep(rng.uniform(0.0, 0.03))
        finally:
            killed = _kill(proc)
        assert killed, f"{args[0]} ended before the {plan} kill:\n{log.read_text()[-3000:]}"
        kills += 1
        check_complete()
        if plan == "in_rename":
            tmp = Path(marker.read_text())
            final = tmp.with_name(tmp.name[1:].split(".partial-")[0] + tmp.suffix)
            assert tmp.is_file() and tmp.stat().st_size > 0 and not final.exists(), (tmp, final)
            temps.append(tmp)
    done = finished()
    stamps = _stamps(done)
    temps = sorted(set(temps) | set(_hidden_files(dst)))  # every killed writer's temporary, before the restart
    _run(wrapper, args, log)
    return kills, done, stamps, temps


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_synth_killed_and_restarted_equals_uninterrupted(wrapper, synth_ref, tmp_path):
    rng = random.Random(SEED + 1)
    t0 = time.monotonic()
    dst = tmp_path / "data"
    ref_files = _visible_files(synth_ref)
    ref_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    checked, exact, worst = [0], [0], [0.0]

    def finished() -> list[Path]:  # a clip is finished when its sidecar exists (written after its mp4)
        sc = sorted((dst / "sidecar").rglob("*.json")) if (dst / "sidecar").is_dir() else []
        return [p for s in sc for p in (s, dst / (str(s.relative_to(dst / "sidecar"))[:-5] + ".mp4"))]

    def check_complete() -> None:
        """Every file under a final name is complete: mp4s decode to the reference's content, sidecars equal."""
        for rel, p in _visible_files(dst).items():
            assert rel in ref_files, f"unexpected file {rel}"
            if p.suffix == ".mp4":
                if rel not in ref_cache:
                    ref_cache[rel] = _decoded(ref_files[rel])
                v, a = _decoded(p)
                rv, ra = ref_cache[rel]
                # libx264 through PyAV is not bit-reproducible between the first encode of a process and later ones
                # (see paperlib.data.prepare's docstring and test_synthetic.test_determinism_and_seed): a restarted
                # run's first clip can differ from the uninterrupted run's at coding-noise level. Same frames otherwise.
                diff = float(np.abs(v.astype(np.int16) - rv).mean()) if v.shape == rv.shape else math.inf
                assert diff < 3.0 and a.shape == ra.shape and np.abs(a - ra).max() < 0.05, (rel, diff)
                worst[0] = max(worst[0], diff)
                exact[0] += int(np.array_equal(v, rv) and np.array_equal(a, ra))
                checked[0] += 1
            elif p.suffix == ".json" and rel.startswith("sidecar"):
                assert p.read_bytes() == ref_files[rel].read_bytes(), rel

    args = ["synth", str(dst), *SYNTH_ARGS]
    kills, done, stamps, temps = _kill_and_restart(wrapper, args, dst, tmp_path, rng, finished, check_complete,
                                                   ("count", "in_rename"))
    check_complete()
    final = _visible_files(dst)
    # (fixed_offsets/ under the reference is the data loader's cache, written there by the training tests)
    assert set(final) == {r for r in ref_files if not r.startswith("fixed_offsets/")}
    for rel, p in final.items():
        if rel != "synth.json":  # split lists, sidecars: byte-identical; mp4s: checked by decoding above
            assert p.suffix == ".mp4" or p.read_bytes() == ref_files[rel].read_bytes(), rel
    man, ref_man = (json.loads((d / "synth.json").read_text()) for d in (dst, synth_ref))
    assert man["config"] == ref_man["config"] and man["clips"] == ref_man["clips"] == 16
    n_done = len(done) // 2
    assert man["last_run"]["generated"] == 16 - n_done  # finished clips were skipped ...
    assert _stamps(done) == stamps  # ... and not rewritten (same inode and mtime)
    left = _hidden_files(dst)
    assert left == [] and all(not t.exists() for t in temps), left  # killed writers' temporaries removed on restart
    print(f"\nsynth: {kills} kills (1 between a finished temporary mp4 and its rename), {n_done} of 16 clips finished "
          f"before the restart and not redone, {checked[0]} mp4 checks against the uninterrupted run ({exact[0]} "
          f"decoded bit-identical, largest mean |frame difference| {worst[0]:.3f} grey levels), 0 partial files "
          f"under final names, {len(temps)} hidden temporaries of killed writers (removed on restart); "
          f"{time.monotonic() - t0:.1f} s")


@pytest.fixture(scope="module")
def prepare_src(tmp_path_factory) -> Path:
    from paperlib.testing import make_test_clip

    root = tmp_path_factory.mktemp("prep-src")
    for i in range(8):
        make_test_clip(root / f"c{i}.mp4", seconds=1.2, fps=(25, 30)[i % 2], sample_rate=(16000, 44100)[i % 2],
                       size=(48 + 8 * i, 192), channels=1 + i % 2)
    return root


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_prepare_killed_and_restarted_equals_uninterrupted(wrapper, prepare_src, tmp_path):
    rng = random.Random(SEED + 2)
    t0 = time.monotonic()
    opts = ["--dataset", "folder", "--workers", "0", "--side", "64", "--no-progress"]
    ref, dst = tmp_path / "ref", tmp_path / "out"
    _run(wrapper, ["prepare", str(prepare_src), str(ref), *opts], tmp_path / "ref.log")
    ref_files = _visible_files(ref)
    assert len([r for r in ref_files if r.endswith(".mp4")]) == 8
    checked = [0]

    def finished() -> list[Path]:
        return sorted(dst.glob("c*.mp4"))

    def same_content(p: Path, q: Path) -> None:
        # libx264 through PyAV: the n-th encode in a process differs slightly from the first (prepare's docstring), so
        # the check is: same frame count and geometry, same audio length, differences at coding-noise level
        (v, a), (rv, ra) = _decoded(p), _decoded(q)
        assert v.shape == rv.shape and np.abs(v.astype(np.int16) - rv).mean() < 2.0, p
        assert a.shape == ra.shape and np.abs(a - ra).max() < 0.05, p
        checked[0] += 1

    def check_complete() -> None:
        for rel, p in _visible_files(dst).items():
            assert rel in ref_files, f"unexpected file {rel}"
            if p.suffix == ".mp4":
                same_content(p, ref_files[rel])

    args = ["prepare", str(prepare_src), str(dst), *opts]
    kills, done, stamps, temps = _kill_and_restart(wrapper, args, dst, tmp_path, rng, finished, check_complete,
                                                   ("count", "in_rename"))
    final = _visible_files(dst)
    assert set(final) == set(ref_files)
    for rel in final:
        if rel.endswith(".mp4"):
            same_content(final[rel], ref_files[rel])
    report = json.loads((dst / "prepare_report.json").read_text())
    assert (report["skipped"], report["ok"], report["failed"]) == (len(done), 8 - len(done), 0)
    assert _stamps(done) == stamps  # finished files were not redone
    left = _hidden_files(dst)
    assert left == [] and all(not t.exists() for t in temps), left  # killed writers' temporaries removed on restart
    print(f"\nprepare: {kills} kills (1 between a finished temporary mp4 and its rename), {len(done)} of 8 files "
          f"finished before the restart and skipped (inode and mtime unchanged), {checked[0]} mp4 checks against the "
          f"uninterrupted run, 0 partial files under final names, {len(temps)} hidden temporaries of killed writers "
          f"(removed on restart); "
          f"{time.monotonic() - t0:.1f} s")


# ---------------------------------------------------------------------------------------------------------------------
# DDP on CPU: a dead (or hung) rank must not leave the other hanging

# the training-phase collective timeout these tests exercise; start-up (joining, building datasets, DDP's first
# broadcast) waits up to paperlib.engine.distributed.STARTUP_TIMEOUT_S, so a loaded machine does not fail them early
DDP_TIMEOUT_S = 10.0
STARTUP_WAIT_S = 400.0  # how long the test waits for the first training step on a busy machine


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out + [d for c in out for d in _children(c)]


def _rank_of(pid: int) -> int | None:
    try:
        env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
        cmd = Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return None
    return int(env["RANK"]) if "RANK" in env and "paperlib" in cmd else None


def _ddp_train_args(data: Path, run_root: Path) -> list[str]:
    return ["-m", "paperlib", "train", "--preset", "smoke", f"data.root={data}", f"train.run_root={run_root}",
            "train.max_steps=100000", "train.progress=false", "train.tensorboard=false", "train.log_every=1",
            "train.test=false", f"train.ddp_timeout_s={DDP_TIMEOUT_S}"]


def _training_started(run_root: Path) -> bool:
    return any(r.get("phase") == "train" for d in runs.list_runs(run_root) for r in _new_records(d, 0))


@pytest.mark.slow
@pytest.mark.timeout(STARTUP_WAIT_S + 120)
@pytest.mark.parametrize("how", ["torchrun-sigkill", "direct-sigkill", "direct-sigstop"])
def test_ddp_survivor_exits_when_a_rank_dies(how, synth_ref, tmp_path):
    """torchrun: the agent sees the dead worker and tears the group down. Without an agent (srun-style: each rank a
    process of its own), the survivor's collective fails: at once when the peer's socket closes (SIGKILL), after
    ``train.ddp_timeout_s`` when the peer hangs (SIGSTOP)."""
    run_root = tmp_path / "runs"
    logs = [tmp_path / "rank0.log", tmp_path / "rank1.log"]
    if how.startswith("torchrun"):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *_ddp_train_args(synth_ref, run_root)]
        with open(logs[0], "wb") as out:
            procs = [subprocess.Popen(cmd, env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                      preexec_fn=lambda: os.nice(5))]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        procs = []
        for rank in range(2):
            env = dict(ENV, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port))
            with open(logs[rank], "wb") as out:
                procs.append(subprocess.Popen([sys.executable, *_ddp_train_args(synth_ref, run_root)], env=env,
                                              stdout=out, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(5)))
    victim = None
    try:
        assert _wait_for(lambda: _training_started(run_root), procs[0], STARTUP_WAIT_S), logs[0].read_text()[-3000:]
        if how.startswith("torchrun"):
            workers = {_rank_of(c): c for c in _children(procs[0].pid) if _rank_of(c) is not None}
            assert sorted(workers) == [0, 1], workers
            victim = workers[1]
        else:
            victim = procs[1].pid
        os.kill(victim, signal.SIGSTOP if how.endswith("sigstop") else signal.SIGKILL)
        t_kill = time.monotonic()
        bound = DDP_TIMEOUT_S + 30.0
        try:
            rc = procs[0].wait(timeout=bound)
        except subprocess.TimeoutExpired:
            rc = None
        waited = time.monotonic() - t_kill
    finally:
        if victim is not None and how.endswith("sigstop"):
            os.kill(victim, signal.SIGKILL)
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
    out = logs[0].read_text(errors="replace")
    assert rc is not None, f"{how}: the surviving side still ran {bound:.0f} s after the peer died:\n{out[-3000:]}"
    assert rc != 0, out[-3000:]
    expected = {"torchrun-sigkill": r"ChildFailedError|Signal 9 \(SIGKILL\)",
                "direct-sigkill": r"Connection closed by peer|Connection reset|Broken pipe|Timed out",
                "direct-sigstop": r"Timed out|timed out|Timeout|timeout"}[how]
    assert re.search(expected, out), out[-3000:]
    if how.startswith("direct"):  # the engine names what happened instead of ending in a bare traceback
        assert "a distributed collective failed" in out and "--resume RUN_DIR" in out, out[-3000:]
    if how.startswith("torchrun"):  # the agent took the surviving worker down with it
        status = Path(f"/proc/{workers[0]}/status")
        assert not status.exists() or "\tZ" in status.read_text().split("State:")[1][:4], "rank 0 still running"
    if how == "direct-sigstop":
        assert waited >= DDP_TIMEOUT_S * 0.5, waited  # it was the collective timeout, not something else
    print(f"\nddp {how}: survivor exited with code {rc} {waited:.1f} s after rank 1 was "
          f"{'stopped' if how.endswith('sigstop') else 'killed'} (bound {bound:.0f} s, "
          f"ddp_timeout_s {DDP_TIMEOUT_S:.0f})"
          f"; message: {re.search(expected, out).group(0)!r}")


# ---------------------------------------------------------------------------------------------------------------------
# a notebook that fails mid-way


NOTEBOOK_CELLS = [
    ("markdown", "A tiny artefact notebook made by the test: run directory, table, figure, done-marker."),
    ("parameters", 'out_dir = ""\nruns_root = ""\ntag = "v1"\nfail = False'),
    ("code", "from pathlib import Path\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
             "import pandas as pd\nfrom paperlib.paper import report as ex\nfrom paperlib.engine import runs\n"
             "run = runs.new_run_dir(runs_root, 'nb', stamp='fixed')\n(run / 'result.txt').write_text(tag)"),
    ("code", "ex.save_artefact(ex.Artefact(name='tabX', profile='smoke', tables={'T': pd.DataFrame({'tag': [tag]})}),"
             " out_dir=out_dir)"),
    # the failing run breaks while rendering the figure (invalid mathtext raises inside savefig)
    ("code", "fig, ax = plt.subplots()\nax.plot([0, 1], [0, 1 if tag == 'v1' else 2])\n"
             "ax.set_title('$\\\\frac{$' if fail else tag)\nex.save_figure(fig, 'figX', out_dir=out_dir)"),
    ("code", "ex.write_text_atomic(Path(out_dir) / 'done.txt', tag)"),
]


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(240)
def test_failed_notebook_leaves_earlier_outputs_and_run_dirs(tmp_path, monkeypatch):
    import nbformat
    import papermill as pm

    t0 = time.monotonic()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"},
                                            "language_info": {"name": "python"}})
    for kind, src in NOTEBOOK_CELLS:
        cell = nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        if kind == "parameters":
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    out, runs_root = tmp_path / "figures", tmp_path / "runs"

    def execute(tag: str, fail: bool) -> None:
        pm.execute_notebook(str(path), str(tmp_path / f"out-{tag}.ipynb"), kernel_name="python3", progress_bar=False,
                            parameters={"out_dir": str(out), "runs_root": str(runs_root), "tag": tag, "fail": fail})

    execute("v1", False)
    first = {rel: p.read_bytes() for rel, p in _visible_files(out).items()}
    assert {"figX.png", "figX.pdf", "tables/tabX.csv", "tables/tabX.md", "tables/tabX.json", "done.txt"} <= set(first)
    run1 = runs_root / "nb-fixed"
    assert (run1 / "result.txt").read_text() == "v1"

    with pytest.raises(pm.PapermillExecutionError, match="ValueError"):
        execute("v2", True)
    now = {rel: p.read_bytes() for rel, p in _visible_files(out).items()}
    assert set(now) == set(first)
    # written before the failure: the new table, complete; not reached or failed: the earlier files, byte for byte
    assert json.loads(now["tables/tabX.json"])["tables"]["T"] == [{"tag": "v2"}]
    for rel in ("figX.png", "figX.pdf", "done.txt"):
        assert now[rel] == first[rel], rel
    assert _hidden_files(out) == []  # the failed figure write left no temporary behind
    # the failed run got a new run directory; the first one is untouched
    assert (run1 / "result.txt").read_text() == "v1" and sorted(p.name for p in run1.iterdir()) == ["result.txt"]
    assert (runs_root / "nb-fixed-1" / "result.txt").read_text() == "v2"
    kept = sum(now[r] == first[r] for r in first)
    print(f"\nnotebook: failed run kept {kept} of {len(first)} earlier files byte for "
          f"byte (the table written before the failure is the new complete one), 0 temporaries, run directories "
          f"{sorted(p.name for p in runs_root.iterdir())} (none overwritten); {time.monotonic() - t0:.1f} s")
