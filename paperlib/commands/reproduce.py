"""``python -m paperlib reproduce --profile mini [--only PREFIX ...]``: regenerate the paper's tables and figures.

    python -m paperlib reproduce --profile paper --data-root /data --gpus 8          # train on 8 GPUs per run
    python -m paperlib reproduce --profile paper --data-root /data \\
        --checkpoint sparsesync/sparse/c21=22-07-28T15-49-45.pt,sparsesync/general/c21=22-09-21T21-00-52.pt
"""

from __future__ import annotations

import argparse
import sys

from paperlib.commands import LazyChoices
from paperlib.commands.campaign import add_run_options, run_options


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib reproduce",
                                description="Regenerate the paper's artefacts: train the campaign once, execute every "
                                            "notebook, write figures/REPORT.md.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--profile", default="mini", type=LazyChoices("paperlib.paper.reproduce", "PROFILES"),
                   metavar="PROFILE", help="smoke | mini (default) | full | paper")
    p.add_argument("--only", nargs="*", help="notebook name prefixes (e.g. table1 fig4)")
    add_run_options(p)
    p.add_argument("--checkpoint", default=None, metavar="KEY=PATH[,KEY=PATH]",
                   help="evaluate these files for the runs of these campaign keys instead of training them")
    p.add_argument("--runs-root", default=None, help="folder for runs (default: runs/ of this repository)")
    p.add_argument("--figures-root", default=None, help="folder for figures, tables and REPORT.md (default: figures/)")
    p.add_argument("--restore-from", default=None, metavar="DIR",
                   help="a results folder whose committed runs are copied into the runs folder where missing, so the "
                        "campaign goes on from them (default: the profile's own, results/full at full)")
    p.add_argument("--no-restore", action="store_true", help="restore no committed runs: train what runs/ lacks")
    args = p.parse_args(argv)
    from paperlib.paper import reproduce  # the library (and torch) only once the arguments are parsed: fast --help

    opts = run_options(args)
    try:
        report, results = reproduce.reproduce(args.profile, args.only, opts.pop("data_root"),
                                              checkpoint=args.checkpoint, runs_root=args.runs_root,
                                              figures_root=args.figures_root, restore_from=args.restore_from,
                                              restore=not args.no_restore,
                                              **{k: v for k, v in opts.items() if k != "device" or v != "auto"})
    except (FileNotFoundError, ValueError) as e:  # missing data or weights, a bad option: nothing has run
        print(f"paperlib reproduce: {e}", file=sys.stderr)
        return 2
    print(f"[reproduce] report: {report}")
    return 1 if any(r["status"] != "ok" for r in results) else 0
