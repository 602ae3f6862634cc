"""The figures of the training-based artefacts: the paper's value beside ours per table row, and Fig. 3's per-class
bars. Each function returns a matplotlib figure; :func:`paperlib.paper.report.save_figure` writes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paperlib.paper.tables import metric_name
from paperlib.paper.verdicts import chance_level


def axis_label(metrics: Sequence[str]) -> str:
    """The value axis' name: the one metric of the rows (e.g. "Acc@1 +-1 cls (%)"), or, when rows mix metrics (Table 2:
    Acc@1 on 3 classes, Acc@1 +-1 cls on 21), both, each row naming its own in brackets."""
    names = list(dict.fromkeys(str(m) for m in metrics))
    if len(names) == 1:
        return f"{names[0]} (%)"
    return " or ".join(names) + " (%), as each row's [metric] says"


def plot_paper_vs_ours(df: Any, label_cols: Sequence[str], title: str):
    """Horizontal grouped bars, one row per table row: the paper's value and ours (+- 2 s.e.), chance as a triangle
    at the row's edge (clear of the error bars). The figure's height follows the number of rows and the labels read
    horizontally; the value axis names the metric (per row when rows mix metrics). Returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = [str(m) for m in df["metric"]] if "metric" in df else []
    mixed = len(set(metrics)) > 1
    labels = []
    for i, (_, r) in enumerate(df.iterrows()):
        label = " | ".join(str(r[c]) for c in label_cols)
        if mixed and "metric" not in label_cols:
            label += f" [{metrics[i]}]"
        labels.append(label)
    n = len(df)
    y = np.arange(n)
    fig, ax = plt.subplots(figsize=(8.0, 1.4 + 0.42 * max(n, 1)))
    paper = df["paper"].astype(float).to_numpy()
    ours = df["ours"].astype(float).to_numpy()
    err = df["2se"].astype(float).to_numpy() if "2se" in df else None
    ax.barh(y - 0.19, np.nan_to_num(paper), 0.38, color="0.75", label="paper")
    ax.barh(y + 0.19, np.nan_to_num(ours), 0.38, xerr=None if err is None else np.nan_to_num(err), capsize=2,
            color="tab:blue", label="ours (+-2 s.e.)", error_kw={"lw": 0.9})
    if "chance" in df:  # at the top edge of each row's pair of bars, where no error bar is
        ax.scatter(df["chance"].astype(float), y - 0.46, marker="v", s=28, color="k", zorder=3, clip_on=False,
                   label="chance")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(n - 0.5, -0.6)  # first row on top
    ax.set_xlim(0, 100)
    ax.set_xlabel(axis_label(metrics) if metrics else "accuracy (%)", fontsize=9)
    ax.xaxis.grid(True, color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_fig3(df: Any, title: str):
    """Fig. 3: bars per content class (top) and per offset class (bottom), SparseSync vs AVST_dec, per grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grids = sorted(df["classes"].unique(), reverse=True) if len(df) else [21]
    fig, axes = plt.subplots(2, len(grids), figsize=(6.5 * len(grids), 7), squeeze=False)
    for j, c in enumerate(grids):
        for i, kind in enumerate(("content class", "offset class")):
            ax = axes[i][j]
            sub = df[(df["kind"] == kind) & (df["classes"] == c)] if len(df) else df
            classes = list(dict.fromkeys(sub["class"])) if len(sub) else []
            x = np.arange(len(classes))
            models = list(dict.fromkeys(sub["model"])) if len(sub) else []
            w = 0.8 / max(1, len(models))
            for k, model in enumerate(models):
                g = sub[sub["model"] == model].set_index("class").reindex(classes)
                ax.bar(x + (k - (len(models) - 1) / 2) * w, np.nan_to_num(g["ours"].astype(float)), w, label=model)
            metric = sub["metric"].iloc[0] if len(sub) else metric_name(0)
            ax.axhline(100 * chance_level(int(c), 1 if "+-1" in metric else 0), color="k", lw=0.8, ls="--",
                       label="chance")
            ax.set_xticks(x, classes, rotation=60, ha="right", fontsize=7)
            ax.set_ylim(0, 100)
            ax.set_ylabel(f"{metric} (%)")
            ax.set_title(f"per {kind}, {c} classes", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

