"""``python -m paperlib campaign --profile mini [--keys K ...] [--plan] [--budget]``: train (or reuse) the campaign's
runs (:mod:`paperlib.paper.campaign`). ``--worker FOLDER ...`` is the campaign's own worker process."""

from __future__ import annotations

import argparse
import json

from paperlib.paper import campaign


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib campaign", description=campaign.__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="mini", choices=campaign.PROFILES)
    p.add_argument("--keys", nargs="*", default=None, help="keys to ensure (default: every key the artefacts use)")
    p.add_argument("--runs-root", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", type=int, default=None)
    p.add_argument("--plan", action="store_true", help="print the plan (key, parent, steps) and exit")
    p.add_argument("--budget", action="store_true", help="print the estimated mini budget and exit")
    p.add_argument("--worker", nargs="+", default=None, metavar="FOLDER", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return campaign.run_jobs(a.worker)
    if a.budget:
        print(json.dumps(campaign.mini_budget(parallel=a.parallel or 2), indent=1))
        return 0
    if a.plan:
        for k, s in campaign.plan(a.profile).items():
            print(f"{k:55s} parent={s.init_from} steps={s.steps}")
        return 0
    keys = a.keys or campaign.contract_keys(a.profile)
    recs = campaign.ensure_runs(keys, a.profile, runs_root=a.runs_root, data_root=a.data_root, device=a.device,
                                seed=a.seed, parallel=a.parallel)
    for k, r in recs.items():
        t = r.test
        cue = t.get("cue_accuracy_1_tol1")
        print(f"{k:55s} acc1 {t['accuracy_1']:.3f} tol1 {t['accuracy_1_tol1']:.3f} cue_tol1 "
              f"{'-' if cue is None else f'{cue:.3f}'} steps {r.steps} {'reused' if r.reused else 'trained'} "
              f"{r.run_dir}")
    return 0
