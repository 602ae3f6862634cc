"""``python -m paperlib plateau-study [--profile full] [--seeds 0,1,2] [--arms ...] [--export DIR]``: steps to leave
the chance plateau per arm, with and without the upstream extractor weights (:mod:`paperlib.paper.plateau_study`)."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib plateau-study",
                                description="Steps each arm needs to leave the chance plateau on dense-crop, 21 "
                                            "classes, with and without the upstream extractor weights, at several "
                                            "seeds (campaign runs: cached, resumable).")
    p.add_argument("--profile", default="full", help="the campaign profile whose base run each arm is (mini, full)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (every arm at one seed before the next)")
    p.add_argument("--arms", default="", help="comma-separated arm names (default: all; --list prints them)")
    p.add_argument("--cap", type=int, default=None, help="steps a run may train at most (default: the study's CAP)")
    p.add_argument("--parallel", type=int, default=None, help="runs at once (default: 2 at mini/full)")
    p.add_argument("--runs-root", default=None, help="the campaign's root folder (default: runs/)")
    p.add_argument("--export", default=None, help="write study.json and STUDY.md there after each seed")
    p.add_argument("--summary-only", action="store_true", help="train nothing; write what has finished")
    p.add_argument("--list", action="store_true", help="print the arms and exit")
    args = p.parse_args(argv)

    from paperlib.paper import plateau_study as ps

    if args.list:
        for a in ps.ARMS:
            print(a.name)
        return 0
    names = [s.strip() for s in args.arms.split(",") if s.strip()]
    known = {a.name: a for a in ps.ARMS}
    unknown = [n for n in names if n not in known]
    if unknown:
        p.error(f"unknown arms {unknown}; choose from {list(known)}")
    arms = [known[n] for n in names] if names else list(ps.ARMS)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    cap = args.cap if args.cap is not None else ps.CAP
    if args.summary_only:
        rows = ps.study_rows(args.profile, arms, seeds, cap, runs_root=args.runs_root)
        if args.export:
            ps.write_study(rows, args.export, args.profile, cap)
    else:
        rows = ps.run_study(args.profile, arms, seeds, cap, runs_root=args.runs_root, parallel=args.parallel,
                            export=args.export)
    print(ps.render(rows, args.profile, cap, ps.AFTER))
    return 0
