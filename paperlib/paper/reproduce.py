"""Regenerate the paper's artefacts: train the campaign once, execute every notebook, write ``figures/REPORT.md``.

``make reproduce`` (``python -m paperlib reproduce``) first trains (or reuses) every run the training notebooks need
in one campaign (:func:`train_campaign`, :mod:`paperlib.paper.campaign`), then executes each notebook under
``notebooks/`` with papermill in the project's kernel (executed copies under ``runs/notebooks/<profile>-<time>/`` and,
for JupyterLab, ``notebooks/executed/``), and ends with
:func:`paperlib.paper.report.write_report` (``figures/REPORT.md``: claims, verdicts and provenance: commit, profile,
device, library and codec versions, wall time). Each notebook is thin: a markdown cell with the paper's numbers, a
``parameters`` cell, a call to its artefact function (:data:`paperlib.paper.artefacts.ARTEFACTS`), display and
:func:`paperlib.paper.report.save_artefact`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from paperlib.core.io import unique_folder, write_bytes_atomic, write_text_atomic
from paperlib.paper import campaign
from paperlib.paper.artefacts import ALIASES, TRAINING_ARTEFACTS, all_keys, checkpoint_fills
from paperlib.paper.profiles import profile as profile_of
from paperlib.paper.report import PROFILES, repo_root, runs_dir, write_report

__all__ = ["PROFILES", "notebooks", "run_notebook", "train_campaign", "reproduce", "progress_report"]


def notebooks() -> list[Path]:
    """The artefact notebooks, ``notebooks/<artefact>.ipynb`` (table1 ... table7, fig3 ... fig5)."""
    return sorted((repo_root() / "notebooks").glob("*.ipynb"))


KERNEL_NAME = "paperlib"  # the kernel the notebooks name (scripts/build_notebooks.py); `make venv` registers it
KERNEL_DISPLAY_NAME = "Python (paperlib)"


def ensure_kernel() -> str:
    """The name of a kernel that runs this interpreter: ``paperlib`` (registered inside this environment,
    ``sys.prefix``, when it is missing or names another interpreter, as ``make venv`` and ``make lab`` do), or
    ``python3`` (ipykernel's own, which is this interpreter) when a ``paperlib`` kernel of another environment shadows
    it from the user's Jupyter folder or this environment is read-only."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    def ours() -> bool:
        try:
            argv = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv
        except NoSuchKernel:
            return False
        return bool(argv) and os.path.abspath(argv[0]) == os.path.abspath(sys.executable)

    if ours():
        return KERNEL_NAME
    from ipykernel.kernelspec import install

    try:
        install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME, prefix=sys.prefix)
    except OSError:  # an environment this user cannot write to: ipykernel's own kernel is this interpreter too
        return "python3"
    return KERNEL_NAME if ours() else "python3"


def executed_dir() -> Path:
    """Where JupyterLab (``make lab``, opened on ``notebooks/``) finds the executed copies: ``notebooks/executed/``
    (git-ignored)."""
    return repo_root() / "notebooks" / "executed"


def run_notebook(nb: Path, profile: str, out_dir: Path, parameters: dict[str, Any] | None = None,
                 lab_copy: bool = False) -> dict[str, Any]:
    """Execute one notebook with papermill; the executed copy goes to ``out_dir`` (and, with ``lab_copy``, to
    :func:`executed_dir` too). Returns status and wall time.

    ``parameters`` the notebook does not declare in its parameters cell are not passed to it."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    declared = pm.inspect_notebook(str(nb))
    params = {"profile": profile, **{k: v for k, v in (parameters or {}).items() if k in declared}}
    t0 = time.time()
    status, error = "ok", None
    try:
        pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters=params, cwd=str(repo_root()),
                            progress_bar=False, kernel_name=ensure_kernel())
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
        status, error = "failed", f"{type(e).__name__}: {str(e)[-2000:]}"
    if lab_copy and (out_dir / nb.name).exists():  # a failed run's copy too: it shows where it failed
        write_bytes_atomic(executed_dir() / nb.name, (out_dir / nb.name).read_bytes())
    return {"notebook": nb.name, "status": status, "error": error, "wall_s": round(time.time() - t0, 1)}


def restore_committed(profile: str, restore_from: str | os.PathLike | None, runs_root: str | None) -> int:
    """Copy the finished runs committed under ``restore_from`` (default: the profile's ``committed_results``; none
    where it has none or the folder holds no manifest) into ``runs_root`` where missing
    (:func:`paperlib.paper.results.restore_runs`). Returns how many were restored."""
    from paperlib.paper.results import MANIFEST, restore_runs

    if restore_from is None:
        default = profile_of(profile).committed_results
        if default is None or not (repo_root() / default / MANIFEST).is_file():
            return 0
        restore_from = repo_root() / default
    got = restore_runs(restore_from, runs_root)
    print(f"[reproduce] restored {len(got)} finished runs committed under {restore_from} (no checkpoints: a run "
          "that a run still to train fine-tunes from is trained again)", flush=True)
    return len(got)


def train_campaign(profile: str, names: list[str], data_root: str | None = None, *, checkpoint: str | None = None,
                   runs_root: str | None = None, **run: Any) -> dict[str, Any] | None:
    """Train (or reuse) every run the training notebooks ``names`` need, once, before they execute: the campaign
    schedules all of them together (dependencies first, in parallel where the profile allows), and each notebook then
    finds its runs cached. Returns a result row like :func:`run_notebook`'s (None when no training notebook is run).

    ``run``: ``device``, ``gpus``, ``recipe``, ``overrides``, ``launcher`` of :func:`campaign.ensure_runs`. With
    ``checkpoint`` the runs it fills are not trained (unless another run needs them as its parent), nor are runs
    whose inputs are missing (the notebooks name those cells). Without it, at ``paper``, a missing data folder or
    weights file raises one FileNotFoundError naming them before anything is trained."""
    names = [n for n in names if n in TRAINING_ARTEFACTS]
    if not names:
        return None
    keys = all_keys(profile, names)
    inputs = {"data_root": data_root or None, "runs_root": runs_root or None,
              "recipe": run.get("recipe"), "overrides": run.get("overrides") or (),
              "regenerate_protocol": bool(run.get("regenerate_protocol")),
              "allow_missing_clips": bool(run.get("allow_missing_clips"))}
    if checkpoint:
        filled = checkpoint_fills(keys, profile, checkpoint)
        keys = [k for k in keys if k not in filled]
        blocked = campaign.missing_inputs(keys, profile, **inputs)
        keys = [k for k in keys if k not in blocked]
    else:
        campaign.check_inputs(keys, profile, **inputs)
    t0 = time.time()
    status, error = "ok", None
    print(f"[reproduce] campaign: {len(keys)} runs for {names} (profile={profile}) ...", flush=True)
    try:
        if keys:
            opts = {"data_root": data_root or None, "progress": True,
                    **({"runs_root": runs_root} if runs_root else {}), **run}
            campaign.with_repeats(campaign.ensure_runs(keys, profile, **opts), profile, **opts)
    except Exception as e:  # the notebooks then fail on the same run and report it; keep going for the others
        status, error = "failed", f"{type(e).__name__}: {str(e)[-2000:]}"
    return {"notebook": "(training campaign)", "status": status, "error": error, "wall_s": round(time.time() - t0, 1)}


def reproduce(profile: str = "mini", only: list[str] | None = None, data_root: str | None = None, *,
              device: str | None = None, gpus: int | None = None, recipe: str | None = None,
              overrides: list[str] | None = None, checkpoint: str | None = None, launcher: list[str] | None = None,
              runs_root: str | None = None, figures_root: str | None = None, regenerate_protocol: bool = False,
              allow_missing_clips: bool = False, restore_from: str | None = None,
              restore: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    """Run the campaign and the notebooks ``only`` names (artefact names or prefixes, e.g. ``table2``, ``table5``,
    ``fig``; default: all) at ``profile``, then write the report. Returns the report's path and a row per step.

    The options, each passed on only when given (else the notebooks' own defaults hold): ``data_root`` (paper: the
    datasets and ``weights/``), ``device`` (auto | cpu | cuda), ``gpus`` (processes per training run: torchrun at
    paper or when > 1), ``recipe`` (on | off), ``overrides`` (``key=value`` for every run), ``checkpoint``
    (``key=path[,key=path]``: cells filled from files instead of training), ``launcher`` (a command prefix that
    starts a run's ranks, for the campaign only), ``runs_root`` / ``figures_root`` (output folders; default runs/
    and figures/ of the repository), ``regenerate_protocol`` / ``allow_missing_clips`` (paper: make missing split
    lists and fixed-offset CSVs, drop absent valid/test clips, instead of stopping; campaign only). Before the
    campaign, the finished runs committed under ``restore_from`` (default: the profile's ``committed_results``,
    ``results/full`` at full) are restored into the runs folder where missing (:func:`restore_committed`), unless
    ``restore`` is False."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    nbs = notebooks()
    if only:
        wanted = [ALIASES.get(o, o) for o in only]
        nbs = [nb for nb in nbs if any(nb.stem.startswith(o) for o in wanted)]
        if not nbs:
            raise ValueError(f"no notebook matches {only}; have {[p.stem for p in notebooks()]} "
                             f"(and the aliases {ALIASES})")
    # one folder per invocation (two started in the same second get <time> and <time>-1): executed notebooks and
    # results.json of one invocation are never overwritten by another's
    out_dir = unique_folder((Path(runs_root) if runs_root else runs_dir()) / "notebooks",
                            f"{profile}-{time.strftime('%Y%m%d-%H%M%S')}")
    started = time.time()
    results = []
    run = {k: v for k, v in {"device": device, "gpus": gpus, "recipe": recipe, "overrides": overrides,
                             "launcher": launcher, "regenerate_protocol": regenerate_protocol,
                             "allow_missing_clips": allow_missing_clips}.items() if v}
    shared = {k: v for k, v in {"checkpoint": checkpoint, "runs_root": runs_root}.items() if v}
    if restore:
        restore_committed(profile, restore_from, runs_root)
    if not only and not checkpoint and profile_of(profile).budget_target_min is not None:
        from paperlib.data.provision import runs_root_path
        from paperlib.paper.budget import budget

        b = budget(profile, runs_root=runs_root_path(runs_root))
        print(f"[reproduce] {profile}: {b['n_runs'] - b['left_runs']} of {b['n_runs']} runs finished; left about "
              f"{b['left_wall_minutes']:.0f} min of wall time with 2 workers, every run at its cap (an upper bound, "
              "paperlib.paper.budget)", flush=True)
    camp = train_campaign(profile, [nb.stem for nb in nbs], data_root, **shared, **run)
    if camp is not None:
        print(f"[reproduce] campaign: {camp['status']} in {camp['wall_s']} s", flush=True)
        results.append(camp)
    params = {k: v for k, v in {"data_root": data_root, "device": device, "gpus": gpus, "recipe": recipe,
                                "overrides": " ".join(overrides or ()), "checkpoint": checkpoint,
                                "runs_root": runs_root, "figures_root": figures_root}.items() if v}
    for nb in nbs:
        print(f"[reproduce] {nb.name} (profile={profile}) ...", flush=True)
        r = run_notebook(nb, profile, out_dir, params or None, lab_copy=not runs_root)
        print(f"[reproduce] {nb.name}: {r['status']} in {r['wall_s']} s", flush=True)
        results.append(r)
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2))
    if figures_root:
        report = write_report(profile, results, out=Path(figures_root) / "REPORT.md", since=started)
    else:
        report = write_report(profile, results, since=started)
    return report, results


def progress_report(profile: str, out: str | Path, *, runs_root: str | None = None, seed: int = 0,
                    **run: Any) -> Path:
    """What a long campaign (``full`` over several sittings) has found so far, without training anything: the
    finished runs' files are copied into ``out`` (:func:`paperlib.paper.results.export_results`) and ``out/REPORT.md``
    and ``out/claims.json`` are rebuilt from them (:func:`paperlib.paper.results.write_results_report`; the
    unfinished runs listed, the claims resting on them "not testable at this profile" or provisional). Returns the
    report's path. The runs are found by the key and seed their folders name (one campaign per runs folder); ``run``
    (the campaign's ``data_root``, ``recipe``, ``overrides``, ``gpus``) is accepted for the command line's sake and
    does not select among them."""
    from paperlib.paper.results import export_results, write_results_report

    export_results(profile, out, runs_root=runs_root, seed=seed)
    return write_results_report(out)
