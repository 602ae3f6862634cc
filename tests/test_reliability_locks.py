"""Concurrent writers: folder locks (a second process refused or kept waiting, the holder named; the lock of a killed
process taken over), a live run never resumed by a second process, two campaigns on one runs folder (started
together, and one started while the other is mid-run) training each run once, and two ``reproduce`` invocations in
the same second keeping both output folders."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from test_reliability_checkpoints import stand_in_fit

from paperlib.commands import train as train_command
from paperlib.core.io import FolderBusyError, lock_folder, read_lock_holder
from paperlib.engine import runs

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _holder_process(folder: Path, hold_s: float) -> subprocess.Popen:
    """A process that locks ``folder``, prints "locked", holds it ``hold_s`` seconds, releases it and exits."""
    code = textwrap.dedent(f"""
        import time
        from paperlib.core.io import lock_folder
        with lock_folder({str(folder)!r}, "hold it for the test"):
            print("locked", flush=True)
            time.sleep({hold_s})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.timeout(60)
def test_a_locked_folder_refuses_or_waits_naming_the_holder_and_a_killed_holder_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    proc = _holder_process(folder, 3.0)
    try:
        with pytest.raises(FolderBusyError) as e:
            lock_folder(folder, "train this run")
        msg = str(e.value)
        assert f"{folder}: cannot train this run: the folder is in use by pid {proc.pid} on host " \
               f"{socket.gethostname()} since " in msg and "hold it for the test" in msg, msg
        heard = []
        t0 = time.monotonic()
        with lock_folder(folder, "train this run", wait=True, poll_s=0.1, notify=heard.append) as lock:
            assert time.monotonic() - t0 > 1.0  # it waited for the holder to release it
            assert len(heard) == 1 and f"waiting to train this run: the folder is in use by pid {proc.pid}" in heard[0]
            assert lock.previous is None  # the holder released it when it exited
            assert read_lock_holder(folder)["pid"] == os.getpid()
        assert read_lock_holder(folder) is None  # released: no holder on record
    finally:
        proc.kill()
        proc.wait()

    # a holder killed with SIGKILL: the lock is free at once, and the newcomer knows whose lock it took over
    proc = _holder_process(folder, 60.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with lock_folder(folder, "train this run") as lock:
        assert lock.previous["pid"] == proc.pid
    # a timeout while waiting ends in the same error naming the holder
    proc = _holder_process(folder, 60.0)
    try:
        with pytest.raises(FolderBusyError, match=f"pid {proc.pid}"):
            lock_folder(folder, "train this run", wait=True, timeout_s=0.5, poll_s=0.1, notify=lambda m: None)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.timeout(60)
def test_a_forked_child_does_not_keep_a_killed_holders_lock(tmp_path):
    """A DataLoader worker is a forked child: it shares the lock file of the trainer that forked it. When the trainer
    is killed and the child lives on for a while, the run folder must be free at once, not after the child."""
    folder = tmp_path / "run"
    code = textwrap.dedent(f"""
        import os, time
        from paperlib.core.io import lock_folder
        lock = lock_folder({str(folder)!r}, "train this run")
        child = os.fork()
        if child == 0:
            print("child running", flush=True)  # its fork handler, which closes its copy, has run by now
            time.sleep(30)
            os._exit(0)
        print(child, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    # both lines, in whichever order: on a busy machine the child may not have run at all when the parent prints
    lines = {proc.stdout.readline().strip(), proc.stdout.readline().strip()}
    assert "child running" in lines
    child = int(next(x for x in lines if x != "child running"))
    try:
        with pytest.raises(FolderBusyError, match=f"pid {proc.pid}"):
            lock_folder(folder, "train this run")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        os.kill(child, 0)  # the child still lives
        with lock_folder(folder, "train this run") as lock:
            assert lock.previous["pid"] == proc.pid
    finally:
        proc.kill()
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_run_being_trained_is_not_resumed_by_a_second_process(tmp_path, capsys):
    run = stand_in_fit(tmp_path / "runs", max_steps=2)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with runs.lock_run_dir(run):  # the live trainer (here: this process, through another open file)
        assert train_command.main(["--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert f"paperlib train: {run}: cannot train this run: the folder is in use by pid {os.getpid()}" in err, err
        with pytest.raises(FolderBusyError):
            stand_in_fit(tmp_path / "runs", max_steps=4, resume=str(run))
    # nothing was rewound or written by the refused resumes
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p.name != ".lock"} == \
        {p: b for p, b in before.items() if p.name != ".lock"}
    # once the trainer is gone the resume runs, in the same folder
    assert stand_in_fit(tmp_path / "runs", max_steps=4, resume=str(run)) == run


# ---------------------------------------------------------------------------------------------------------------------
# two campaigns on one runs folder (smoke profile)

CHAIN = "sparsesync/dense-wide/c21"  # fine-tunes sparsesync/dense-crop/c21: two runs
SINGLE = "sparsesync/dense-crop/c21"  # trained from scratch: one run


def _campaign(runs_root: Path, log: Path, key: str) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "paperlib", "campaign", "--profile", "smoke", "--keys", key,
                                 "--runs-root", str(runs_root), "--parallel", "1"], stdout=f,
                                stderr=subprocess.STDOUT, env=ENV, cwd=REPO)


def _check_trained_once(runs_root: Path, logs: list[Path], n_runs: int) -> None:
    """Both campaigns finished, every hash folder holds one run directory whose train.log tells one training, and
    each run keeps its two checkpoint files (a fine-tune references its parent's best.pt, no copy)."""
    hash_folders = sorted((runs_root / "campaign" / "smoke").iterdir())
    assert len(hash_folders) == n_runs, hash_folders
    for folder in hash_folders:
        (run,) = runs.list_runs(folder)  # trained once: one run directory per hash
        log = (folder / "train.log").read_text()
        assert log.count("== campaign ") == 1 and log.count("== done ") == 1, log[-2000:]
        assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*.pt")) == \
            ["checkpoints/best.pt", "checkpoints/last.pt"]
        assert [r["event"] for r in runs.read_metrics(run, "event")].count("start") == 1
    outs = [log.read_text() for log in logs]
    assert all("Traceback" not in o for o in outs), outs


@pytest.mark.timeout(300)
def test_two_campaigns_started_together_train_each_run_once(tmp_path):
    root = tmp_path / "runs"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_campaign(root, log, SINGLE) for log in logs]
    assert [p.wait(timeout=280) for p in procs] == [0, 0], [log.read_text()[-3000:] for log in logs]
    _check_trained_once(root, logs, 1)


@pytest.mark.timeout(300)
def test_a_campaign_started_mid_run_waits_for_the_first_naming_it(tmp_path):
    root = tmp_path / "runs"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = _campaign(root, logs[0], CHAIN)
    # wait until the first campaign's worker trains the chain's first run (it holds that hash folder's lock), then
    # pause it there; the second campaign's worker starts with the same folder (its stderr goes there)
    deadline = time.monotonic() + 240
    holder = hash_folder = None
    while holder is None and time.monotonic() < deadline:
        for folder in (root / "campaign" / "smoke").glob("sparsesync_dense-crop_c21-*"):
            h = read_lock_holder(folder)
            if h and runs.list_runs(folder):
                holder, hash_folder = h, folder
        time.sleep(0.1)
    assert holder is not None, logs[0].read_text()[-3000:]
    os.kill(holder["pid"], signal.SIGSTOP)
    try:
        second = _campaign(root, logs[1], CHAIN)
        stderr = hash_folder / ".worker.stderr"
        while time.monotonic() < deadline and f"in use by pid {holder['pid']}" not in stderr.read_text():
            assert second.poll() is None, logs[1].read_text()[-3000:]
            time.sleep(0.2)
        text = stderr.read_text()
        assert "waiting to train and test campaign run" in text and f"in use by pid {holder['pid']} on host " \
               f"{holder['host']} since {holder['started_utc']}" in text, text
    finally:
        os.kill(holder["pid"], signal.SIGCONT)
    assert first.wait(timeout=240) == 0 and second.wait(timeout=240) == 0, [log.read_text()[-3000:] for log in logs]
    _check_trained_once(root, logs, 2)
    assert "already trained and tested (by another campaign)" in (hash_folder / ".worker.stderr").read_text()


# ---------------------------------------------------------------------------------------------------------------------
# two reproduce invocations in the same second


def test_two_reproduce_invocations_in_one_second_keep_both_output_folders(tmp_path, monkeypatch):
    from paperlib.paper import reproduce as R

    both_running = threading.Barrier(2, timeout=30)

    def run_notebook(nb, profile, out_dir, parameters=None, **kw):
        both_running.wait()  # the two invocations write at the same time
        (out_dir / nb.name).write_text(f"executed by {threading.current_thread().name}")
        return {"notebook": nb.name, "status": "ok", "error": None, "wall_s": 0.0}

    monkeypatch.setattr(R, "run_notebook", run_notebook)
    monkeypatch.setattr(R, "train_campaign", lambda *a, **kw: None)
    monkeypatch.setattr(R, "write_report", lambda *a, **kw: tmp_path / "REPORT.md")
    monkeypatch.setattr(R.time, "strftime", lambda fmt, *a: "20260101-000000")  # one second for both
    errors = []

    def invoke(name):
        try:
            R.reproduce("smoke", only=["fig3"], runs_root=str(tmp_path / "runs"),
                        figures_root=str(tmp_path / "figures"))
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=invoke, args=(n,), name=n) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    folders = sorted((tmp_path / "runs" / "notebooks").iterdir())
    assert [f.name for f in folders] == ["smoke-20260101-000000", "smoke-20260101-000000-1"]
    writers = set()
    for f in folders:
        (nb,) = [p for p in f.iterdir() if p.suffix == ".ipynb"]
        writers.add(nb.read_text())
        assert json.loads((f / "results.json").read_text())[0]["status"] == "ok"
    assert writers == {"executed by first", "executed by second"}
