"""``python -m paperlib leakage {probe,table1,fig6}``: the codec-leakage (start-time) probe and Table 1 / Fig. 6."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from paperlib.commands import LazyChoices


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paperlib leakage",
        description="Codec leakage: predicting where a trim starts from compression artefacts (paper Sec. 4.1, 7.1; "
                    "Table 1, Figs 6-7).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe", help="start-time probe on a folder of videos or audios")
    p.add_argument("dir", type=Path, help="folder searched recursively; one clip per file, from its start")
    p.add_argument("--modality", choices=("audio", "video"), required=True)
    p.add_argument("--budget", type=LazyChoices("paperlib.studies.leakage", "PROBE_BUDGETS"), default="mini",
                   metavar="BUDGET",
                   help="smoke (seconds), mini (CPU minutes, position-aware classifier), paper (ResNet18, GPU)")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("--max-files", type=int, default=None, help="use the first N files (sorted by path)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="ProbeConfig override, repeatable (e.g. --set epochs=10 --set period=25)")
    t = sub.add_parser("table1", help="reproduce Table 1 (and Fig. 7's curves) at a size")
    t.add_argument("--profile", type=LazyChoices("paperlib.studies.leakage", "PROFILES"), default="mini",
                   metavar="PROFILE", help="smoke | mini (default) | full | paper")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Table1Config override, repeatable (e.g. --set audio.epochs=10)")
    f = sub.add_parser("fig6", help="first differences and their periodogram (Fig. 6)")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)
    import pandas as pd

    from paperlib.core.media import MediaError
    from paperlib.studies import leakage

    def kv(items: Sequence[str]) -> dict[str, str]:
        bad = [s for s in items if "=" not in s]
        if bad:
            parser.error(f"overrides must be key=value, got {bad}")
        return dict(s.split("=", 1) for s in items)

    try:
        if args.cmd == "probe":
            report = leakage.probe(args.dir, args.modality, args.budget, args.json, overrides=kv(args.overrides),
                                   max_files=args.max_files)
            print(leakage.format_report(report))
            if args.json:
                print(f"report: {args.json}")
        elif args.cmd == "table1":
            df = leakage.table1(args.profile, args.out, overrides=kv(args.overrides))
            with pd.option_context("display.width", 200, "display.max_columns", 30):
                print(df.drop(columns=["classifier"]).to_string(index=False))
            print(f"classifier: {df['classifier'].iloc[0]}; files under {args.out}")
        else:
            res = leakage.fig6_first_differences(args.out, size=args.size)
            leakage.plot_fig6(res, args.out / "fig6.png")
            print(f"dominant period per codec: {res['dominant_period']} (peak score {res['peak_score']})")
    except (FileNotFoundError, ValueError, KeyError, MediaError) as e:
        print(f"leakage: {e}", file=sys.stderr)
        return 2
    return 0
