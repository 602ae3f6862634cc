"""The README's quick start works as written: every fenced bash block of its "Quick start" section (set-up, predict on
a clip, one notebook) runs, top to bottom in one shell, in a fresh copy of the repository, and each command exits 0.

The copy holds the repository's tracked files only (as a clone does: no runs/, figures/ outputs or .venv). Instead of
installing 7 GB again, its `.venv` is a link to the venv that runs the tests (``PAPERLIB_TEST_VENV`` names another),
with
the copy's pin files dated before that venv's stamp so that `make venv` finds it up to date; `python` and the notebook
kernel import the copy's `paperlib` (PYTHONPATH). Measured cost: about 2 minutes of one CPU core.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_blocks(readme: str) -> list[str]:
    """The fenced ```bash blocks of the README's "## Quick start" section, in order."""
    m = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.S | re.M)
    assert m, "the README has no '## Quick start' section"
    return re.findall(r"^```bash\n(.*?)^```", m.group(1), re.S | re.M)


def fresh_copy(dest: Path) -> Path:
    """The tracked files of this checkout (their working-tree content) in ``dest``, as a new git repository."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=readme-test", "-c", "user.email=readme-test@localhost"]
    subprocess.run(git + ["init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "copy"], cwd=dest, check=True)
    return dest


def test_quick_start_blocks_cover_set_up_predict_and_a_notebook():
    blocks = quick_start_blocks((ROOT / "README.md").read_text())
    text = "\n".join(blocks)
    assert len(blocks) == 3
    for needed in ("make venv", "source .venv/bin/activate", "paperlib predict", "papermill -k paperlib"):
        assert needed in text, needed


@pytest.mark.slow
def test_quick_start_runs_as_written_in_a_fresh_copy(tmp_path):
    venv = Path(os.environ.get("PAPERLIB_TEST_VENV", sys.prefix))
    stamp = venv / ".installed"
    if not stamp.exists():
        pytest.skip(f"{venv} has no .installed stamp (make venv made none): set PAPERLIB_TEST_VENV to such a venv")
    clone = fresh_copy(tmp_path / "clone")
    (clone / ".venv").symlink_to(venv)
    old = stamp.stat().st_mtime - 60
    for pin in ("requirements.txt", "pyproject.toml"):  # older than the stamp: make venv has nothing to do
        os.utime(clone / pin, (old, old))
    script = "\n".join(["set -euo pipefail", "PS4='+ [$(date +%s)] '", "set -x",
                        *quick_start_blocks((clone / "README.md").read_text())])
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "MAKEFLAGS", "MFLAGS",
                                                              "MAKELEVEL")}
    env.update(PYTHONPATH=str(clone), TORCH_HOME=str(tmp_path / "torch"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PATH=os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                    if not p.startswith(str(Path(sys.prefix)))))
    r = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-6000:]
    assert "Nothing to be done" in log or "is up to date" in log, "make venv reinstalled instead of reusing the venv"
    assert ": uncertain (the checkpoint is at chance" in log and "warning: checkpoint runs/quick/smoke-" in log
    executed = json.loads((clone / "notebooks" / "executed" / "fig4.ipynb").read_text())
    assert executed["metadata"]["kernelspec"]["name"] == "paperlib"
    images = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the executed notebook shows no figure inline"
    assert (clone / "figures" / "fig4_memory.png").stat().st_size > 1000


def test_license_is_the_mit_license_pyproject_names_and_the_citation_names_the_paper():
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    cff = (ROOT / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in cff and "license: MIT" in cff
    assert 'title: "Sparse in Space and Time: Audio-visual Synchronisation with Trainable Selectors"' in cff
    assert [m for m in re.findall(r"family-names: (\w+)", cff)][:4] == ["Iashin", "Xie", "Rahtu", "Zisserman"]
    assert "year: 2022" in cff and "BMVC" in cff
