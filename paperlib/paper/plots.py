"""The figures of the training-based artefacts: the paper's value beside ours per table row, and Fig. 3's per-class
bars. Each function returns a matplotlib figure; :func:`paperlib.paper.report.save_figure` writes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paperlib.paper.tables import metric_name
from paperlib.paper.verdicts import chance_level


def plot_paper_vs_ours(df: Any, label_cols: Sequence[str], title: str):
    """Grouped bars: the paper's value and ours (+- 2 s.e.) per table row, chance as a tick. Returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [" | ".join(str(r[c]) for c in label_cols) for _, r in df.iterrows()]
    x = np.arange(len(df))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(df) + 2), 4.2))
    paper = df["paper"].astype(float).to_numpy()
    ours = df["ours"].astype(float).to_numpy()
    err = df["2se"].astype(float).to_numpy() if "2se" in df else None
    ax.bar(x - 0.2, np.nan_to_num(paper), 0.4, color="0.75", label="paper")
    ax.bar(x + 0.2, np.nan_to_num(ours), 0.4, yerr=None if err is None else np.nan_to_num(err), capsize=2,
           color="tab:blue", label="ours (+-2 s.e.)")
    if "chance" in df:
        ax.scatter(x + 0.2, df["chance"].astype(float), marker="_", s=200, color="k", zorder=3, label="chance")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
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

