"""Measure Table 1, Fig. 6 and Fig. 7 at a size: ``python bench/leakage_table1.py [profile] [out_dir]``.

Writes everything under ``out_dir`` (default ``runs/leakage/table1-<profile>``) and prints the table with the wall time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from paperlib.studies import leakage as lk


def main(argv: list[str]) -> int:
    profile = argv[0] if argv else "mini"
    root = Path(__file__).resolve().parents[1]
    out = Path(argv[1]) if len(argv) > 1 else root / "runs" / "leakage" / f"table1-{profile}"
    t0, c0 = time.time(), time.process_time()
    df = lk.table1(profile, out)
    t_table = time.time() - t0
    fig6 = lk.fig6_first_differences(out / "fig6", size=lk.table1_config(profile).render_size)
    lk.plot_fig6(fig6, out / "fig6" / "fig6.png")
    lk.plot_fig7(lk.fig7_curves(out), out / "fig7.png")
    wall = time.time() - t0
    summary = {"profile": profile, "table1_wall_seconds": t_table, "total_wall_seconds": wall,
               "process_cpu_seconds": time.process_time() - c0, "load_average": list(os.getloadavg()),
               "orderings": lk.table1_orderings(df), "fig6_dominant_period": fig6["dominant_period"],
               "fig6_peak_F": fig6["peak_score"]}
    (out / "bench_summary.json").write_text(json.dumps(summary, indent=1))
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.drop(columns=["classifier"]).to_string(index=False))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
