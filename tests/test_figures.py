"""Figures readable at a glance: the paper-vs-ours bars sized to their rows with horizontal labels, the metric on the
value axis (per row when rows mix metrics), chance markers clear of the error bars; Fig. 5's attention maps with a
colour bar and a legend for the source box and the event times."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from paperlib.paper import plots  # noqa: E402
from paperlib.studies import attention  # noqa: E402


def _rows(n, metrics):
    return pd.DataFrame({"model": [f"m{i}" for i in range(n)], "metric": [metrics[i % len(metrics)] for i in range(n)],
                         "paper": np.linspace(10, 90, n), "ours": np.linspace(20, 60, n), "2se": 4.0,
                         "chance": [33.3 if metrics[i % len(metrics)] == "Acc@1" else 14.3 for i in range(n)]})


def test_bars_are_sized_to_their_rows_and_name_the_metric():
    small = plots.plot_paper_vs_ours(_rows(4, ["Acc@1 +-1 cls"]), ("model",), "t")
    large = plots.plot_paper_vs_ours(_rows(18, ["Acc@1 +-1 cls"]), ("model", "metric"), "t")
    assert large.get_size_inches()[1] > small.get_size_inches()[1] + 5  # ~0.4 in per row, not a fixed strip
    ax = large.axes[0]
    assert all(t.get_rotation() == 0 for t in ax.get_yticklabels())  # labels read horizontally
    assert ax.get_xlabel() == "Acc@1 +-1 cls (%)"
    mixed = plots.plot_paper_vs_ours(_rows(4, ["Acc@1", "Acc@1 +-1 cls"]), ("model",), "t").axes[0]
    assert "Acc@1 (%)" not in mixed.get_xlabel() and "Acc@1 or Acc@1 +-1 cls" in mixed.get_xlabel()
    assert [t.get_text() for t in mixed.get_yticklabels()][:2] == ["m0 [Acc@1]", "m1 [Acc@1 +-1 cls]"]
    plt.close("all")


def test_chance_markers_sit_clear_of_the_error_bars():
    ax = plots.plot_paper_vs_ours(_rows(5, ["Acc@1"]), ("model",), "t").axes[0]
    chance_y = ax.collections[-1].get_offsets()[:, 1]  # the chance scatter
    ours = ax.containers[-1]  # ours' bars, whose centres carry the error bars
    centres = np.array([b.get_y() + b.get_height() / 2 for b in ours.patches])
    bar_edges = np.array([b.get_y() for b in ours.patches])
    assert np.all(np.abs(chance_y - centres) > 0.4) and np.all(chance_y < bar_edges)
    plt.close("all")


def test_attention_figure_has_a_colour_bar_and_a_legend(tmp_path, monkeypatch):
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (16, 48, 48, 3), dtype=np.uint8)
    boxes = np.tile(np.array([10.0, 12.0, 30.0, 34.0]), (16, 1))
    paths = attention.plot_attention(frames, rng.random((64, 100)), rng.random((4, 3, 3)), rng.random((8, 10)),
                                     tmp_path / "fig5", n_show=4, boxes=boxes, events=[0.5, 1.5], clip_sec=2.0)
    assert all(p.stat().st_size > 1000 for p in paths)
    fig = kept[0]
    labels = [a.get_ylabel() for a in fig.axes]
    assert "attention (min-max scaled)" in labels
    legends = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert legends == ["sound source (ground-truth box)", "event times"]
