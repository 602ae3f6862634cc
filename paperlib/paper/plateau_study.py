"""The plateau study: how many optimiser steps each arm needs before its training loss leaves chance, on dense-crop at
21 classes, with and without the upstream extractor weights, at several seeds. The campaign's caps and patience are
chosen from it (:mod:`paperlib.paper.profiles`).

Paper: none directly (the paper reports a long warm-up plateau, Sec. 7.3, and trains every arm to early stopping on
GPUs). On this benchmark, budgets fixed on SparseSync's plateau exit decided the verdicts (the baselines leave theirs
later), so the study measures each arm's exit before the campaign's budgets are fixed.

Arms (:data:`ARMS`): the three variants at the profile's depth and length; SparseSync at depth 1 and 6 and with 2-s
inputs; each with the upstream extractor weights (:mod:`paperlib.engine.upstream`, as the campaign's chains start)
and from random extractors. A study run is the campaign's from-scratch base run of that arm (``{variant}/dense-crop/
c21`` at the profile: the same preset, recipe, data and code path, :func:`paperlib.paper.campaign.ensure_runs`), under
its own key ``{variant}/dense-crop/c21/plateau[/depthD][/lenL][/random-extractors]`` and with two changes: its cap
(``train.max_steps``, :data:`CAP`) and ``train.stop_after_plateau_steps`` (:data:`AFTER`): it stops that many steps
after its training loss left chance (the engine's plateau detector: the mean logged loss below 0.95 ln 21), since the
exit is what is measured, not the convergence after it. The test evaluation of each run (400 held-out items) says
whether it also left its test set's null.

Runs are cached and resumed as campaign runs (``<runs_root>/campaign/<profile>/``), so the study continues where it
stopped; :func:`study_rows` reads whatever has finished. ``python -m paperlib plateau-study`` runs it; ``--export``
writes ``study.json`` and ``STUDY.md`` (``results/plateau_study/``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from paperlib.core.io import write_json_atomic, write_text_atomic
from paperlib.paper import profiles
from paperlib.paper.plan import RunSpec

CAP = 4000  # steps; at least 3x the ~950 steps SparseSync needed from random extractors in earlier mini runs
AFTER = 200  # steps trained after the exit (a few evaluations' worth, so the exit is not a one-window dip)
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Arm:
    variant: str
    depth: int | None = None  # None: the profile's
    clip_sec: float | None = None  # None: the profile's
    upstream: bool = True  # the upstream extractor weights (False: random extractors)
    classes: int = 21  # offset classes (3: the grid a 2-s input trains on, paperlib.paper.plan)

    @property
    def _geometry(self) -> str:
        """The depth and length tags that differ from the profile's (``/depth1``, ``/len2``)."""
        return (("" if self.depth is None else f"/depth{self.depth}")
                + ("" if self.clip_sec is None else f"/len{self.clip_sec:g}"))

    @property
    def _extractors(self) -> str:
        return "" if self.upstream else "/random-extractors"

    @property
    def suffix(self) -> str:
        return f"/plateau{self._geometry}{self._extractors}"

    @property
    def key(self) -> str:
        return f"{self.variant}/dense-crop/c{self.classes}{self.suffix}"

    @property
    def name(self) -> str:
        """The arm as ``--arms`` names it, e.g. ``sparsesync/len2/c3/random-extractors``."""
        grid = "" if self.classes == 21 else f"/c{self.classes}"
        return f"{self.variant}{self._geometry}{grid}{self._extractors}"


ARMS: tuple[Arm, ...] = tuple(
    Arm(v, d, L, up, c) for (v, d, L, c) in (("sparsesync", None, None, 21), ("transformer", None, None, 21),
                                             ("avst_dec", None, None, 21), ("sparsesync", 1, None, 21),
                                             ("sparsesync", 6, None, 21), ("sparsesync", None, 2.0, 21),
                                             ("sparsesync", None, 2.0, 3))
    for up in (True, False))


def study_specs(profile: str, arms: Sequence[Arm] = ARMS, cap: int = CAP) -> dict[str, RunSpec]:
    """The study's runs as campaign specs (hidden keys; no parents)."""
    prof = profiles.profile(profile)
    return {a.key: RunSpec(a.key, a.variant, "dense-crop", a.classes, a.clip_sec or prof.default_clip_sec, a.depth,
                           steps=cap, pretrained_extractors=a.upstream, hidden=True) for a in arms}


def study_overrides(after: int = AFTER) -> list[str]:
    return [f"train.stop_after_plateau_steps={after}"]


def run_study(profile: str = "full", arms: Sequence[Arm] = ARMS, seeds: Sequence[int] = SEEDS, cap: int = CAP,
              after: int = AFTER, runs_root: str | os.PathLike | None = None, parallel: int | None = None,
              progress: bool = True, export: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Train the study's missing runs, seed by seed (every arm at the first seed before any arm at the next), writing
    the study's files to ``export`` after each seed when given; returns the rows of :func:`study_rows`."""
    from paperlib.paper.campaign import ensure_runs

    specs = study_specs(profile, arms, cap)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        ensure_runs(list(specs), profile, runs_root=runs_root, seed=seed, parallel=parallel, progress=progress,
                    overrides=study_overrides(after), specs=specs)
        rows = study_rows(profile, arms, seeds, cap, after, runs_root)
        if export is not None:
            write_study(rows, export, profile, cap, after)
    return rows


def study_rows(profile: str, arms: Sequence[Arm] = ARMS, seeds: Sequence[int] = SEEDS, cap: int = CAP,
               after: int = AFTER, runs_root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per finished (arm, seed) run: steps to leave chance (None: it did not within its cap), why it
    stopped, steps, wall time, test accuracy against the test set's null."""
    from paperlib.paper.campaign import ensure_runs
    from paperlib.paper.tables import test_null

    specs = study_specs(profile, arms, cap)
    rows = []
    for seed in seeds:
        records = ensure_runs(list(specs), profile, runs_root=runs_root, seed=seed, progress=False,
                              overrides=study_overrides(after), specs=specs, train=False)
        for arm in arms:
            r = records.get(arm.key)
            if r is None:
                continue
            results = json.loads((r.run_dir / "results.json").read_text())
            config = json.loads((r.run_dir / "config.json").read_text())
            rows.append({"arm": arm.name, "key": arm.key, "variant": arm.variant, "upstream": arm.upstream,
                         **_upstream_used(config), "depth": arm.depth, "clip_sec": arm.clip_sec, "classes": arm.classes,
                         "seed": seed,
                         "left_chance_at_step": r.left_plateau_at_step, "stop_reason": r.stopped_on,
                         "steps": r.steps, "cap": cap, "wall_s": round(r.wall_s, 1),
                         "s_per_step": round(results.get("elapsed_s", 0.0) / max(1, r.steps), 3),
                         "test_accuracy_1": r.test.get("accuracy_1"), "test_accuracy_pm1": r.test.get("accuracy_pm1"),
                         "test_null": test_null(r.test, arm.classes, 0), "n": r.test.get("n"),
                         "run": r.run_dir.parent.name})
    return rows


def _upstream_used(config: Mapping[str, Any]) -> dict[str, Any]:
    """The upstream training whose visual weights a run loaded: its file stem, task and held-out results (per task,
    or per backbone for the content task; from the training's report beside the weights); None for a run from random
    extractors."""
    from paperlib.engine.upstream import report_task  # torch: not needed to list or render the study

    path = config.get("model", {}).get("visual_weights")
    if not path:
        return {"upstream_file": None, "upstream_task": None, "upstream_clip_sec": None, "upstream_test": None}
    stem = Path(path).name.removesuffix("-visual.pt")
    report = Path(path).with_name(f"{stem}.json")
    got = json.loads(report.read_text()) if report.is_file() else {}
    test = {k: {"accuracy": v.get("accuracy"), "null": v.get("null"), "n": v.get("n")}
            for k, v in got.get("test", {}).items()}
    return {"upstream_file": stem, "upstream_task": report_task(got) if got else None,
            "upstream_clip_sec": got.get("config", {}).get("clip_sec"), "upstream_test": test or None}


def _median(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return statistics.median(xs) if xs else None


def summary(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per arm: the seeds finished, the steps to leave chance per seed (None: capped at chance), their median over the
    seeds that left, and how many never left."""
    by_arm: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_arm.setdefault(r["arm"], []).append(r)
    out = []
    for arm, rs in by_arm.items():
        left = [r["left_chance_at_step"] for r in rs if r["left_chance_at_step"] is not None]
        out.append({"arm": arm, "upstream": rs[0]["upstream"], "seeds": [r["seed"] for r in rs],
                    "left_at": [r["left_chance_at_step"] for r in rs], "median_left_at": _median(left),
                    "never_left": len(rs) - len(left), "cap": rs[0]["cap"]})
    return out


def render(rows: Sequence[Mapping[str, Any]], profile: str, cap: int, after: int) -> str:
    lines = [f"# Plateau study ({profile})", "",
             "Steps until the training loss left chance (the mean logged loss below 0.95 ln C) on dense-crop, "
             "21 classes (C = 21; arms named c3: the 3-class grid a 2-s input trains on), from scratch, with the "
             f"upstream extractor weights or random extractors; cap {cap} steps, "
             f"each run stopped {after} steps after its exit. Made by `python -m paperlib plateau-study --profile "
             f"{profile} --export results/plateau_study` (resumable; the runs are campaign runs).", ""]
    used = {r["upstream_file"]: r for r in rows if r.get("upstream_file")}
    for stem, r in sorted(used.items()):
        held_out = "; ".join(f"{k} {100 * t['accuracy']:.1f} % on {t['n']} held-out items against a null of "
                             f"{100 * t['null']:.1f} %" for k, t in (r["upstream_test"] or {}).items())
        windows = "" if r.get("upstream_clip_sec") is None else f"{r['upstream_clip_sec']:g}-s windows, "
        lines += [f"Upstream weights `{stem}` ({windows}{r['upstream_task']} task: "
                  f"{held_out or 'report not found'}; `runs/upstream/{stem}.json`).", ""]
    lines += ["| arm | extractors | seeds | left chance at step (per seed) | median | never left (cap) |",
             "|---|---|---|---|---|---|"]
    for s in summary(rows):
        per_seed = ", ".join("-" if x is None else str(x) for x in s["left_at"])
        med = "-" if s["median_left_at"] is None else f"{s['median_left_at']:g}"
        lines.append(f"| {s['arm'].replace('/random-extractors', '')} | "
                     f"{'upstream' if s['upstream'] else 'random'} | {len(s['seeds'])} | {per_seed} | {med} | "
                     f"{s['never_left']} |")
    lines += ["", "Per run (test: the held-out dense-crop test set, top-1 against the test set's empirical null; "
              "s/step counts training and validation):",
              "", "| arm | seed | left at | stopped on | steps | s/step | test top-1 | null | n | run |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    def pct(x: float | None) -> str:
        return "" if x is None else f"{100 * x:.1f}"

    for r in rows:
        lines.append(f"| {r['arm']} | {r['seed']} | {r['left_chance_at_step'] or '-'} | {r['stop_reason']} | "
                     f"{r['steps']} | {r['s_per_step']} | {pct(r['test_accuracy_1'])} | {pct(r['test_null'])} | "
                     f"{r['n']} | {r['run']} |")
    return "\n".join(lines) + "\n"


def write_study(rows: Sequence[Mapping[str, Any]], out: str | os.PathLike, profile: str, cap: int = CAP,
                after: int = AFTER) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "study.json", {"profile": profile, "cap": cap, "after": after,
                                           "arms": [dataclasses.asdict(a) | {"key": a.key} for a in ARMS],
                                           "rows": list(rows), "summary": summary(rows)})
    write_text_atomic(out / "STUDY.md", render(rows, profile, cap, after))
    return out
