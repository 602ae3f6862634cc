"""Notebook parameters guard themselves: an undeclared name (a misspelt ``-p``) or a bad value stops the notebook in its
check cell, naming the problem and the declared parameters, before any work starts; the notebooks name the project's
kernel and show their figures inline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paperlib.paper.notebook_parameters import NotebookParameterError, check_parameters, user_names

ROOT = Path(__file__).resolve().parents[1]
DECLARED = ["profile", "seed", "device", "figures_root", "runs_root"]
DEFAULTS = {"profile": "mini", "seed": 0, "device": "auto", "figures_root": "", "runs_root": ""}


def test_defaults_pass_and_notebook_names_and_modules_are_not_parameters():
    ns = {**DEFAULTS, "__name__": "__main__", "_i1": "x", "In": [], "Out": {}, "json": json, "art": object()}
    check_parameters(ns, DECLARED, notebook_names=["art"])
    assert user_names(ns) == set(DEFAULTS) | {"art"}


def test_a_misspelt_name_is_refused_with_the_declared_parameters():
    ns = {**DEFAULTS, "profil": "smoke"}
    with pytest.raises(NotebookParameterError) as e:
        check_parameters(ns, DECLARED, notebook="table2.ipynb")
    msg = str(e.value)
    assert msg.startswith("table2.ipynb: unknown parameter profil")
    assert "Declared parameters: profile='mini', seed=0, device='auto', figures_root='', runs_root=''" in msg


@pytest.mark.parametrize("name, value, expected", [
    ("seed", "notanumber", "seed must be a whole number, got 'notanumber' (str)"),
    ("seed", 1.5, "seed must be a whole number"),
    ("seed", True, "seed must be a whole number"),
    ("seed", -1, "seed must be >= 0, got -1"),
    ("profile", "smok", "profile must be one of 'smoke', 'mini', 'full', 'paper', got 'smok'"),
    ("device", "gpu", "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("figures_root", 3, "figures_root must be text, got 3 (int)"),
])
def test_bad_values_are_named(name, value, expected):
    with pytest.raises(NotebookParameterError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        check_parameters({**DEFAULTS, name: value}, DECLARED)


def test_every_problem_at_once_and_a_missing_parameter():
    ns = {k: v for k, v in DEFAULTS.items() if k != "device"}
    ns.update(seed="x", profil="smoke")
    with pytest.raises(NotebookParameterError) as e:
        check_parameters(ns, DECLARED)
    assert "unknown parameter profil" in str(e.value) and "device is not set" in str(e.value) \
        and "seed must be a whole number" in str(e.value)


def test_notebooks_name_the_project_kernel_and_check_right_after_the_parameters():
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "paperlib"
        assert nb["metadata"]["kernelspec"]["display_name"] == "Python (paperlib)"
        cells = nb["cells"]
        i = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
        check = "".join(cells[i + 1]["source"])
        assert "check_parameters(globals()" in check and f'notebook="{nb_path.name}"' in check
        assert any("display(Image(" in "".join(c["source"]) for c in cells[i + 2:]), "no inline figure"


def test_papermill_stops_at_once_on_a_misspelt_parameter(tmp_path):
    """``papermill notebooks/table2.ipynb out.ipynb -p profil smoke`` exits non-zero naming ``profil`` and the declared
    parameters, in the notebook's own kernel, without training anything."""
    from paperlib.paper.reproduce import ensure_kernel

    assert ensure_kernel() == "paperlib"
    venv_bin = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(venv_bin, "papermill"), "notebooks/table2.ipynb", str(tmp_path / "out.ipynb"),
                        "-p", "profil", "smoke", "-p", "runs_root", str(tmp_path / "runs"),
                        "-p", "figures_root", str(tmp_path / "figures")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - t0
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    assert "NotebookParameterError" in out and "unknown parameter profil" in out, out[-3000:]
    assert "Declared parameters: profile='mini', seed=0" in out
    assert not (tmp_path / "runs").exists(), "the notebook went on past its parameter check"
    print(f"papermill refused the misspelt parameter in {wall:.1f} s")


def test_reproduce_runs_notebooks_in_the_project_kernel_and_copies_them_for_the_lab(tmp_path, monkeypatch):
    import papermill as pm

    from paperlib.paper import reproduce as R

    kernels = []

    def execute(src, dst, **kw):  # stands in for papermill: records the kernel, writes the executed copy
        kernels.append(kw["kernel_name"])
        Path(dst).write_text(f'{{"run": {len(kernels)}}}')

    monkeypatch.setattr(pm, "execute_notebook", execute)
    monkeypatch.setattr(R, "executed_dir", lambda: tmp_path / "executed")
    nb = ROOT / "notebooks" / "fig4.ipynb"
    assert R.run_notebook(nb, "smoke", tmp_path / "out", lab_copy=True)["status"] == "ok"
    assert kernels == ["paperlib"]
    assert (tmp_path / "executed" / "fig4.ipynb").read_text() == '{"run": 1}'
    R.run_notebook(nb, "smoke", tmp_path / "other")  # a run with its own runs_root: no copy for the lab
    assert (tmp_path / "executed" / "fig4.ipynb").read_text() == '{"run": 1}'
    assert (tmp_path / "other" / "fig4.ipynb").read_text() == '{"run": 2}'
