"""``python -m paperlib campaign --profile mini [--keys K ...] [--plan] [--budget]``: train (or reuse) the campaign's
runs (:mod:`paperlib.paper.campaign`). ``--worker FOLDER ...`` is the campaign's own worker process.

    python -m paperlib campaign --profile paper --data-root /data --gpus 8          # each run: torchrun, 8 processes
    python -m paperlib campaign --profile paper --data-root /data --gpus 16 \
        --launcher "srun --nodes 2 --ntasks-per-node 8"                             # each run: srun, 16 ranks
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from paperlib.commands import LazyChoices


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of how campaign runs train, shared with ``python -m paperlib reproduce``."""
    p.add_argument("--data-root", default=None,
                   help="paper profile: the folder holding lrs3/, lrs3_no_face_crop/, vggsound_sparse/, vggsound/ "
                        "and weights/ (README, 'The paper profile')")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda; not part of the run cache")
    p.add_argument("--gpus", type=int, default=0,
                   help="processes per training run (0: one per CUDA GPU at paper, 1 elsewhere); at paper, or when "
                        "> 1, each run is launched through torchrun with that many processes")
    p.add_argument("--recipe", default=None, choices=("on", "off"),
                   help="the plateau recipe (default: the profile preset's; on with cpu-recipe, off at smoke, paper)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config overrides applied to every run (part of the run cache key), e.g. train.max_steps=10")
    p.add_argument("--launcher", default=None,
                   help="a command prefix that starts all ranks of a run itself, instead of torchrun --standalone "
                        "(e.g. 'srun --nodes 2 --ntasks-per-node 8'); --gpus must then be the total of ranks")
    p.add_argument("--regenerate-protocol", action="store_true",
                   help="paper: make missing split lists and fixed-offset CSVs here instead of stopping (the test is "
                        "then not at the official windows; test_detail.json says so)")
    p.add_argument("--allow-missing-clips", action="store_true",
                   help="paper: drop listed valid/test clips that are absent on disk instead of stopping (counted: "
                        "'n of N listed test clips')")


def run_options(a: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`paperlib.paper.campaign.ensure_runs` that :func:`add_run_options` defines."""
    return {"data_root": a.data_root, "device": a.device, "gpus": a.gpus, "recipe": a.recipe,
            "overrides": list(a.overrides), "launcher": shlex.split(a.launcher) if a.launcher else None,
            "regenerate_protocol": a.regenerate_protocol, "allow_missing_clips": a.allow_missing_clips}


def _restore(a: argparse.Namespace) -> None:
    """``--restore-from DIR``: its committed runs copied into the runs folder where missing
    (:func:`paperlib.paper.results.restore_runs`)."""
    if a.restore_from:
        from paperlib.paper.results import restore_runs

        print(f"restored {len(restore_runs(a.restore_from, a.runs_root))} finished runs from {a.restore_from}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib campaign",
                                description="The cached training runs behind the paper's training tables (Tables 2, "
                                            "3/5, 4, 6, 7 and Fig. 3), per profile.")
    p.add_argument("--profile", default="mini", type=LazyChoices("paperlib.paper.profiles", "PROFILES"),
                   metavar="PROFILE", help="smoke | mini (default) | full | paper")
    p.add_argument("--keys", nargs="*", default=None, help="keys to ensure (default: every key the artefacts use)")
    p.add_argument("--runs-root", default=None)
    p.add_argument("--restore-from", default=None, metavar="DIR",
                   help="first copy the committed runs of this results folder (e.g. results/full) into the runs "
                        "folder where missing, so the campaign goes on from them")
    add_run_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="train (or reuse) the keys once per seed and print their mean and spread over the seeds")
    p.add_argument("--json", default=None, help="with --seeds: also write the per-key table here (JSON records)")
    p.add_argument("--parallel", type=int, default=None)
    p.add_argument("--plan", action="store_true", help="print the plan (key, parent, steps) and exit")
    p.add_argument("--budget", action="store_true",
                   help="print the plan's estimated wall time on a quiet 2-core machine (mini, full), and what is left "
                        "of it under --runs-root (after --restore-from), and exit")
    p.add_argument("--progress-report", default=None, metavar="OUT",
                   help="train nothing: write OUT/REPORT.md with the tables and claims of the runs finished so far")
    p.add_argument("--worker", nargs="+", default=None, metavar="FOLDER", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    from paperlib.paper import campaign  # the library (and torch) only once the arguments are parsed: fast --help
    from paperlib.paper.budget import budget
    from paperlib.paper.plan import contract_keys, plan

    if a.worker:
        return campaign.run_jobs(a.worker)
    if a.budget:
        from paperlib.data.provision import runs_root_path

        _restore(a)
        root = runs_root_path(a.runs_root)
        b = budget(a.profile, parallel=a.parallel or 2, runs_root=root)
        print(json.dumps(b, indent=1))
        print(f"{a.profile}: {b['n_runs']} runs, {b['process_minutes']} process-minutes, {b['data_clips']} synthetic "
              f"clips ({b['data_minutes']} min), {b['wall_minutes']} min of wall time with {b['parallel']} workers; "
              f"target {b['target_wall_minutes']} min: {'fits' if b['fits'] else 'does NOT fit'}")
        print(f"left under {root}: {b['left_runs']} runs, about {b['left_wall_minutes']} min "
              "of wall time, every run at its cap")
        return 0
    if a.plan:
        for k, s in plan(a.profile).items():
            print(f"{k:55s} parent={s.init_from} steps={s.steps}")
        return 0
    if a.progress_report:
        from paperlib.paper.reproduce import progress_report

        opts = {k: v for k, v in run_options(a).items() if k in ("data_root", "recipe", "overrides", "gpus")}
        print(progress_report(a.profile, a.progress_report, runs_root=a.runs_root, seed=a.seed, **opts))
        return 0
    keys = a.keys or contract_keys(a.profile)
    try:
        _restore(a)
        by_seed = {s: campaign.ensure_runs(keys, a.profile, runs_root=a.runs_root, seed=s, parallel=a.parallel,
                                           **run_options(a)) for s in (a.seeds or [a.seed])}
    except (FileNotFoundError, ValueError) as e:  # missing data or weights, a bad option
        print(f"paperlib campaign: {e}", file=sys.stderr)
        return 2
    if a.seeds:
        from paperlib.paper.tables import seed_table

        df = seed_table(by_seed)
        cols = ["run", "seeds", "acc1 per seed", "acc1 mean", "acc1 sd", "acc1_tol1 per seed", "acc1_tol1 mean",
                "acc1_tol1 sd", "acc1_tol1 2se one run", "acc1_tol1 chance", "n", "steps", "seeds above chance"]
        print(df[cols].to_string(index=False))
        if a.json:
            from paperlib.core.io import write_text_atomic

            write_text_atomic(a.json, df.to_json(orient="records", indent=1))
        return 0
    # the keys this profile judges on repeated seeds are trained at those seeds too (its Profile.repeat_seeds)
    try:
        recs = campaign.with_repeats(by_seed[a.seed], a.profile, seed=a.seed, runs_root=a.runs_root,
                                     parallel=a.parallel, **run_options(a))
    except (FileNotFoundError, ValueError) as e:
        print(f"paperlib campaign: {e}", file=sys.stderr)
        return 2
    from paperlib.paper.tables import seed_runs

    for k, rep in recs.items():
        for seed, r in seed_runs(rep, a.seed).items():
            t = r.test
            cue = t.get("cue_accuracy_1_tol1")
            print(f"{k:55s} seed {seed} acc1 {t['accuracy_1']:.3f} tol1 {t['accuracy_1_tol1']:.3f} cue_tol1 "
                  f"{'-' if cue is None else f'{cue:.3f}'} steps {r.steps} {'reused' if r.reused else 'trained'} "
                  f"{r.run_dir}")
    return 0
