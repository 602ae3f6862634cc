"""``python -m paperlib report --from results/<profile>``: rebuild a committed results folder's ``REPORT.md`` and
``claims.json`` from its files alone (:mod:`paperlib.paper.results`; nothing is trained).

    python -m paperlib report --from results/full                    # rebuild the report from the committed runs
    python -m paperlib report --profile mini --export results/mini   # copy the finished campaign runs (and the
                                                                     # studies' artefacts under figures/) there first
    python -m paperlib report --summary results/mini results/full   # the README's summary of the committed results
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib report", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--from", dest="source", default=None, metavar="DIR",
                   help="a results folder (manifest.json, runs/<key>/<seed>/, tables/): rebuild its report")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="with --profile: copy the finished runs of the campaign and the studies' artefacts into DIR, "
                        "then rebuild its report")
    p.add_argument("--profile", default=None, choices=("smoke", "mini", "full", "paper"))
    p.add_argument("--runs-root", default=None, help="the campaign's runs folder (default: runs/ of this repository)")
    p.add_argument("--figures-root", default=None,
                   help="where the studies' artefacts were written (default: figures/ of this repository)")
    p.add_argument("--seed", type=int, default=0, help="the campaign seed (repeat seeds follow the plan)")
    p.add_argument("--summary", nargs="+", default=None, metavar="DIR",
                   help="print the README's summary of these results folders (verdict counts, a claim per row)")
    a = p.parse_args(argv)
    if a.summary:
        from paperlib.paper import results

        try:
            print(results.summary_block(a.summary))
        except (FileNotFoundError, ValueError) as e:
            print(f"paperlib report: {e}", file=sys.stderr)
            return 2
        return 0
    if bool(a.source) == bool(a.export):
        p.error("give either --from DIR or --profile P --export DIR")
    if a.export and not a.profile:
        p.error("--export needs --profile")
    from paperlib.paper import results

    try:
        if a.export:
            man = results.export_results(a.profile, a.export, runs_root=a.runs_root, figures_root=a.figures_root,
                                         seed=a.seed)
            print(f"[report] exported {sum(len(v) for v in man['runs'].values())} runs and "
                  f"{len(man['studies'])} studies to {a.export}")
        out = results.write_results_report(a.source or a.export)
    except (FileNotFoundError, ValueError) as e:
        print(f"paperlib report: {e}", file=sys.stderr)
        return 2
    print(f"[report] {out}")
    return 0
