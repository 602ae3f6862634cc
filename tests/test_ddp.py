"""Two-process DDP on CPU (gloo) through torchrun: ranks stay identical, rank 0 alone writes, the run finishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from paperlib.engine import runs


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from paperlib.data.synthetic import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth-dense32-ddp")
    generate(SynthConfig(setting="dense-crop", size=32), root, clips=24, progress=False)
    return root


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_torchrun_two_processes_gloo(synth_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "paperlib", "train", "--preset", "smoke", f"data.root={synth_root}", f"train.run_root={tmp_path}",
           "train.max_steps=4", "train.progress=false", "train.ddp_timeout_s=120"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dirs = runs.list_runs(tmp_path)
    assert len(run_dirs) == 1, run_dirs  # rank 0 alone created a run directory
    run = run_dirs[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    res = json.loads((run / "results.json").read_text())
    assert res["world_size"] == 2 and res["steps"] == 4 and res["ranks_in_sync"] is True
    assert len(res["rank_param_digests"]) == 2 and len(set(res["rank_param_digests"])) == 1
    starts = [r for r in runs.read_metrics(run, "event") if r.get("event") == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2
    # lr scales with the world size (official: base_lr x GPUs)
    assert starts[0]["lr"] == pytest.approx(2 * 1e-3)
    # every valid/test record counts each item once (disjoint shards gathered)
    test = runs.read_metrics(run, "test")[-1]
    assert test["n"] == 4
    assert proc.stdout.count("run directory:") == 1
