"""The two collective timeouts of a distributed run: a rank that is slow to start (a busy machine, a cold file system)
is waited for up to the start-up timeout, while in training a silent peer ends the others after train.ddp_timeout_s
(paperlib.engine.distributed: init_distributed, enter_training)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# each rank: join with a 2-s training timeout, rank 1 late by 4 s at start-up (must be waited for), then after
# enter_training rank 1 late by 6 s again (rank 0 must give up after ~2 s)
RANK = textwrap.dedent("""
    import json, os, sys, time
    from paperlib.engine.distributed import broadcast_object, enter_training, init_distributed
    out = {}
    d = init_distributed(timeout_s=2.0, device_name="cpu")
    if d.rank == 1:
        time.sleep(4.0)
    t = time.monotonic()
    out["startup"] = broadcast_object("hello" if d.rank == 0 else None, d)
    out["startup_wait_s"] = time.monotonic() - t
    enter_training(d)
    if d.rank == 1:
        time.sleep(6.0)
    t = time.monotonic()
    try:
        broadcast_object("again", d)
        out["training"] = "ok"
    except Exception as e:  # the collective timed out (rank 0) or its peer left (rank 1)
        out["training"] = type(e).__name__ + ": " + str(e)[:200]
    out["training_wait_s"] = time.monotonic() - t
    open(sys.argv[1], "w").write(json.dumps(out))
    os._exit(0)
""")


@pytest.mark.timeout(120)
def test_startup_waits_for_a_late_rank_training_does_not(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, "-c", RANK, str(tmp_path / f"rank{rank}.json")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=100)[0] for p in procs]
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert got[0]["startup"] == got[1]["startup"] == "hello", logs  # a 4-s late start outlived the 2-s timeout
    assert got[0]["startup_wait_s"] > 2.0, got
    assert "timed out" in got[0]["training"].lower() or "timeout" in got[0]["training"].lower(), got
    assert got[0]["training_wait_s"] < 5.5, got  # the training timeout (2 s), not the peer's 6-s silence
    assert Path(tmp_path / "rank1.json").is_file()
