"""Every paper-artefact notebook: committed as its spec says, without outputs, thin (no def/class), and it runs under
papermill at the smoke profile, writing its figures, tables and claims (checked by file and key)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# notebook -> the artefact's name (the stem of its figures/tables/ files) and the figures it must write
EXPECTED = {
    "table1": ("table1_codec_leakage", ["fig6_first_differences", "fig7_training_curves"]),
    "fig4": ("fig4_memory", ["fig4_memory"]),
    "fig5": ("fig5_attention", ["fig5_attention_sparse", "fig5_attention_dense-wide"]),
    "table2": ("table2_main_results", ["table2_main_results"]),
    "table3": ("table3_ablation", ["table3_ablation"]),
    "table4": ("table4_input_length", ["table4_input_length"]),
    "table6": ("table6_depth", ["table6_depth"]),
    "table7": ("table7_finetune", ["table7_finetune"]),
    "fig3": ("fig3_per_class", ["fig3_per_class"]),
}
# artefact -> the folder under runs_root it writes (training artefacts also fill runs_root/campaign/)
RUN_DIRS = {"table1_codec_leakage": "leakage", "fig4_memory": "fig4_memory", "fig5_attention": "fig5_attention"}
TRAINING = {"table2", "table3", "table4", "table6", "table7", "fig3"}


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory):
    """One runs_root for every notebook of the session: the smoke campaign trains each run once and the training
    notebooks share it (as `make reproduce` does)."""
    return tmp_path_factory.mktemp("runs")


def test_notebooks_match_their_spec():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert {p.stem for p in NOTEBOOKS} == set(EXPECTED)


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin_and_clean(nb_path):
    nb = json.loads(nb_path.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and "paper" in "".join(cells[0]["source"]).lower()
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one papermill parameters cell"
    tree = ast.parse("".join(params[0]["source"]))
    assert all(isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) for n in tree.body), \
        "the parameters cell holds literals only"
    for c in cells:
        if c["cell_type"] != "code":
            continue
        assert not c.get("outputs") and c.get("execution_count") is None, "committed with outputs"
        src = "".join(c["source"])
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in ast.walk(ast.parse(src))), \
            "logic belongs in paperlib.paper.artefacts, not in notebooks"
        assert "sys.path" not in src


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_parameters_are_its_artefact_s(nb_path):
    import inspect

    from paperlib.paper.artefacts import ARTEFACTS

    cells = json.loads(nb_path.read_text())["cells"]
    params = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    declared = [n.targets[0].id for n in ast.parse("".join(params["source"])).body]
    func = ARTEFACTS[nb_path.stem]
    assert declared == list(inspect.signature(func).parameters), "parameters differ from the artefact function's"
    assert any(f"artefacts.{func.__name__}(" in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_at_smoke(nb_path, tmp_path, monkeypatch, shared_runs):
    import papermill as pm

    # the kernel must be this interpreter (the venv), whatever PATH says
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    figs, runs = tmp_path / "figures", shared_runs
    pm.execute_notebook(str(nb_path), str(tmp_path / nb_path.name), cwd=str(ROOT), progress_bar=False,
                        kernel_name="python3",
                        parameters={"profile": "smoke", "figures_root": str(figs), "runs_root": str(runs)})
    name, figures = EXPECTED[nb_path.stem]
    for stem in figures:
        for ext in ("png", "pdf"):
            assert (figs / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext} missing or empty"
    data = json.loads((figs / "tables" / f"{name}.json").read_text())
    assert data["profile"] == "smoke" and data["tables"] and data["claims"]
    assert all(c["verdict"] in ("reproduced", "not reproduced", "not testable at this profile") for c in data["claims"])
    assert (figs / "tables" / f"{name}.csv").read_text().count("\n") >= 2
    assert "### Claims" in (figs / "tables" / f"{name}.md").read_text()
    assert any((runs / RUN_DIRS.get(name, name)).iterdir()), "no run directory written"
    if nb_path.stem in TRAINING:
        assert data["tables"].get("Runs used"), "no training run listed"
        assert list((runs / "campaign" / "smoke").glob("*/*/test_detail.json")), "no campaign run under runs_root"
        assert all(c["verdict"] == "not testable at this profile" for c in data["claims"]
                   if "paper-size" not in c["text"]), "a smoke training claim was judged"
    assert not list(ROOT.glob("figures/.*partial*"))
