"""Regenerate the paper's artefacts: train the campaign once, execute every notebook, write ``figures/REPORT.md``.

``make reproduce`` (``python -m paperlib reproduce``) first trains (or reuses) every run the training notebooks need
in one campaign (:func:`train_campaign`, :mod:`paperlib.paper.campaign`), then executes each notebook under
``notebooks/`` with papermill (executed copies under ``runs/notebooks/<profile>-<time>/``), and ends with
:func:`paperlib.paper.report.write_report` (``figures/REPORT.md``: claims, verdicts and provenance: commit, profile,
device, library and codec versions, wall time). Each notebook is thin: a markdown cell with the paper's numbers, a
``parameters`` cell, a call to its artefact function (:data:`paperlib.paper.artefacts.ARTEFACTS`), display and
:func:`paperlib.paper.report.save_artefact`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from paperlib.core.io import write_text_atomic
from paperlib.paper import campaign
from paperlib.paper.artefacts import ALIASES, TRAINING_ARTEFACTS, all_keys
from paperlib.paper.report import PROFILES, repo_root, runs_dir, write_report

__all__ = ["PROFILES", "notebooks", "run_notebook", "train_campaign", "reproduce"]


def notebooks() -> list[Path]:
    """The artefact notebooks, ``notebooks/<artefact>.ipynb`` (table1 ... table7, fig3 ... fig5)."""
    return sorted((repo_root() / "notebooks").glob("*.ipynb"))


def run_notebook(nb: Path, profile: str, out_dir: Path, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute one notebook with papermill; the executed copy goes to ``out_dir``. Returns status and wall time.

    ``parameters`` the notebook does not declare in its parameters cell are not passed to it."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    declared = pm.inspect_notebook(str(nb))
    params = {"profile": profile, **{k: v for k, v in (parameters or {}).items() if k in declared}}
    t0 = time.time()
    status, error = "ok", None
    try:
        pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters=params, cwd=str(repo_root()),
                            progress_bar=False, kernel_name="python3")
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
        status, error = "failed", f"{type(e).__name__}: {str(e)[-2000:]}"
    return {"notebook": nb.name, "status": status, "error": error, "wall_s": round(time.time() - t0, 1)}


def train_campaign(profile: str, names: list[str], data_root: str | None = None) -> dict[str, Any] | None:
    """Train (or reuse) every run the training notebooks ``names`` need, once, before they execute: the campaign
    schedules all of them together (dependencies first, in parallel where the profile allows), and each notebook then
    finds its runs cached. Returns a result row like :func:`run_notebook`'s (None when no training notebook is run)."""
    names = [n for n in names if n in TRAINING_ARTEFACTS]
    if not names:
        return None
    t0 = time.time()
    status, error = "ok", None
    keys = all_keys(profile, names)
    print(f"[reproduce] campaign: {len(keys)} runs for {names} (profile={profile}) ...", flush=True)
    try:
        campaign.ensure_runs(keys, profile, data_root=data_root or None, progress=True)
    except Exception as e:  # the notebooks then fail on the same run and report it; keep going for the others
        status, error = "failed", f"{type(e).__name__}: {str(e)[-2000:]}"
    return {"notebook": "(training campaign)", "status": status, "error": error, "wall_s": round(time.time() - t0, 1)}


def reproduce(profile: str = "mini", only: list[str] | None = None,
              data_root: str | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """Run the campaign and the notebooks ``only`` names (artefact names or prefixes, e.g. ``table2``, ``table5``,
    ``fig``; default: all) at ``profile``, then write the report. Returns the report's path and a row per step."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    nbs = notebooks()
    if only:
        wanted = [ALIASES.get(o, o) for o in only]
        nbs = [nb for nb in nbs if any(nb.stem.startswith(o) for o in wanted)]
        if not nbs:
            raise ValueError(f"no notebook matches {only}; have {[p.stem for p in notebooks()]} "
                             f"(and the aliases {ALIASES})")
    out_dir = runs_dir() / "notebooks" / f"{profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    started = time.time()
    results = []
    camp = train_campaign(profile, [nb.stem for nb in nbs], data_root)
    if camp is not None:
        print(f"[reproduce] campaign: {camp['status']} in {camp['wall_s']} s", flush=True)
        results.append(camp)
    params = {"data_root": data_root} if data_root else None
    for nb in nbs:
        print(f"[reproduce] {nb.name} (profile={profile}) ...", flush=True)
        r = run_notebook(nb, profile, out_dir, params)
        print(f"[reproduce] {nb.name}: {r['status']} in {r['wall_s']} s", flush=True)
        results.append(r)
    write_text_atomic(out_dir / "results.json", json.dumps(results, indent=2))
    report = write_report(profile, results, since=started)
    return report, results
