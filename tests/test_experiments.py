"""Artefact files are written atomically and completely; the report gathers claims of the requested profile only."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from paperlib.core.io import write_text_atomic  # noqa: E402
from paperlib.paper import report as ex  # noqa: E402


def _artefact(profile="smoke"):
    df = pd.DataFrame({"row": ["a", "b"], "paper": [1.0, 2.0], "ours": [1.5, float("nan")]})
    return ex.Artefact(name="tableX", profile=profile, tables={"Table X": df},
                       claims=[ex.Claim("a beats b", "not reproduced", "1.5 vs nan")], notes=["tiny"])


def test_claim_verdict_is_validated():
    with pytest.raises(ValueError, match="verdict"):
        ex.Claim("x", "maybe", "")


def test_save_artefact_writes_csv_md_json(tmp_path):
    written = ex.save_artefact(_artefact(), out_dir=tmp_path)
    csv = pd.read_csv(tmp_path / "tables" / "tableX.csv")
    assert list(csv["paper"]) == [1.0, 2.0]
    md = (tmp_path / "tables" / "tableX.md").read_text()
    assert "| a beats b | not reproduced | 1.5 vs nan |" in md
    data = json.loads((tmp_path / "tables" / "tableX.json").read_text())
    assert data["claims"][0]["verdict"] == "not reproduced" and data["tables"]["Table X"][0]["ours"] == 1.5
    assert set(written) >= {"md", "json"}
    assert not list(tmp_path.rglob(".*partial*")), "temporary files left behind"


def test_failed_write_leaves_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "t.md"
    write_text_atomic(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    import paperlib.core.media

    monkeypatch.setattr(paperlib.core.media.os, "replace", boom)
    with pytest.raises(OSError):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.md"]


def test_save_figure_png_and_pdf(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    paths = ex.save_figure(fig, "f", out_dir=tmp_path)
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert len(paths) == 2


def test_environment_has_provenance():
    env = ex.environment()
    for key in ("git", "torch", "torchvision", "torchaudio", "av", "ffmpeg", "device"):
        assert key in env
    assert "libavcodec" in env["ffmpeg"]


def test_output_folders_are_the_repository_s():
    root = ex.repo_root()
    assert (root / "paperlib" / "paper" / "report.py").is_file() and (root / "notebooks").is_dir()
    assert ex.figures_dir() == root / "figures" and ex.runs_dir() == root / "runs"


def test_reproduce_only_takes_artefact_names_and_aliases(tmp_path, monkeypatch):
    from paperlib.paper import reproduce

    ran, trained = [], []
    monkeypatch.setattr(reproduce, "runs_dir", lambda: tmp_path)
    monkeypatch.setattr(reproduce, "train_campaign", lambda profile, names, data_root: trained.append(names))
    monkeypatch.setattr(reproduce, "run_notebook",
                        lambda nb, profile, out, params, lab_copy=False: ran.append((nb.stem, params)) or
                        {"notebook": nb.name, "status": "ok", "error": None, "wall_s": 0.0})
    monkeypatch.setattr(reproduce, "write_report", lambda profile, results, since=None: tmp_path / "REPORT.md")
    reproduce.reproduce("smoke", ["table5", "fig4"], data_root="/data")
    assert ran == [("fig4", {"data_root": "/data"}), ("table3", {"data_root": "/data"})]
    assert trained == [["fig4", "table3"]]
    ran.clear()
    reproduce.reproduce("smoke", ["fig"])
    assert [n for n, _ in ran] == ["fig3", "fig4", "fig5"]
    with pytest.raises(ValueError, match="no notebook matches"):
        reproduce.reproduce("smoke", ["table5_ablation"])
