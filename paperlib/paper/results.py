"""The committed results of a profile, ``results/<profile>/``: the files of every run its report judges, and the
report rebuilt from those files alone (no training, no data).

    results/<profile>/
      manifest.json                       profile, campaign seed, where each run key's files are, notes on the folder
      runs/<key>/<seed>/                  config.json, results.json, env.json, test_detail.json of each finished run
                                          (canonical keys of the plan; aliases such as .../len5 resolve through it)
      tables/<study>.json, .md            the studies' artefacts (Table 1, Fig. 4, Figs 5/8) as their notebooks wrote
      REPORT.md, claims.json              written by ``python -m paperlib report --from results/<profile>``

:func:`export_results` copies the finished runs of a campaign (and the studies' artefact files) into such a folder;
:func:`write_results_report` rebuilds ``REPORT.md`` and ``claims.json`` from it. The report is a pure function of the
folder's files except for one line, the date it was written (:data:`DATE_PREFIX`), so a test can check that the
committed report is what its files say.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paperlib.core import paper_numbers as numbers
from paperlib.core.io import write_text_atomic
from paperlib.data.provision import runs_root_path
from paperlib.engine import runs
from paperlib.engine.upstream import report_task, upstream_paths
from paperlib.paper import plan as plan_mod
from paperlib.paper.artefacts import all_keys, paper_size_params
from paperlib.paper.campaign import RepeatedRecord, RunRecord, improving_at_stop
from paperlib.paper.campaign_runner import RESTORED_FILE, SPEC_FILE, finished, hash_root, slug
from paperlib.paper.profiles import PROFILES
from paperlib.paper.report import Claim, Verdict, claim_from_json, df_to_markdown, repo_root
from paperlib.paper.run_config import TRAIN_SEED_BASE, UPSTREAM_DIR, upstream_configs
from paperlib.paper.tables import (fig3_from_records, measure, measured_on, metric_name, seed_runs,
                                   table2_from_records, table3_from_records, table4_from_records,
                                   table6_from_records, table7_from_records)
from paperlib.paper.verdicts import headline_tol

MANIFEST = "manifest.json"
RUN_FILES = ("config.json", "results.json", "env.json", "test_detail.json")
STUDIES = ("table1_codec_leakage", "fig4_memory", "fig5_attention")  # artefacts without training runs
DATE_PREFIX = "Written "  # the report's one line that changes when it is rebuilt from the same files

SYNTHETIC_INTRO = (
    "**What this profile can say.** Every training table below was measured on paperlib's synthetic audio-visual "
    "benchmark, not on LRS3 or VGGSound: procedurally drawn talkers and sound sources whose events are known exactly "
    "(dense-crop, dense-wide, sparse and general stand in for LRS3 face crop, LRS3 no face crop, VGGSound-Sparse and "
    "VGGSound), with a small CPU model of the paper's architecture. It can say whether the paper's mechanisms behave "
    "as the paper says under controlled conditions: whether selectors find sparse cues a transformer without them "
    "misses, whether dense pre-training is needed, how accuracy moves with depth and input length, each between "
    "models that learned. It cannot say how large the paper's numbers are on real video: the synthetic cues, the "
    "model size and the training budgets differ, so 'ours' is never comparable to 'paper' in level, only in "
    "direction. Table 1 (codec leakage) and Fig. 4 (memory) use real codecs and the paper-size model.")

RERUN_NOTE = (
    "**Re-running.** On one machine, at a fixed thread count, training is bit-reproducible (a killed run resumes to "
    "the same weights). Across machines, measured: `make reproduce` at `mini` from a fresh clone on another machine "
    "and again here on 2026-12-07 (AMD EPYC, AVX2) gave the same accuracies wherever both were recorded "
    "(sparsesync/dense-crop/c21 52.8 % within +-1 class, dense-wide/c21 44.5, dense-wide/c3 80.0, dense-crop/c3 "
    "94.8), while the runs committed on 2026-12-05 under the same run hashes had 45.5, 33.2, 71.2 and 95.2: those "
    "were trained by earlier code, and the change that moved them is not covered by the run hash (it was not "
    "identified). CPUs of another vector width round differently: a `full` sitting on AVX-512 after one on AVX2 "
    "trained the same upstream configuration to other weights (its loss differed from step 20; both reports are "
    "committed under `results/full/upstream/`). A run hash names a configuration, not the code or the machine that "
    "trained it: each run's `env.json` names the commit, the CPU and the float settings, and "
    "`results/mini/rerun_comparison.json` sets all 26 `mini` runs of both dates side by side. Seeds move results "
    "more: three training seeds of one `mini` run spread 41.0 / 56.0 / 25.3 % within +-1 "
    "(`results/mini/dense_crop_variants/`), so the verdicts rest on seeds and standard errors, not on one run.")


# ---------------------------------------------------------------------------------------------------------------------
# Records from a results folder

def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (a committed run needs {', '.join(RUN_FILES)})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def read_run(folder: Path, spec: Any) -> RunRecord:
    """The :class:`~paperlib.paper.campaign.RunRecord` of a committed run folder holding :data:`RUN_FILES` (found in
    the cache: ``reused``); a missing or unreadable file is an error naming it."""
    for name in RUN_FILES:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: missing (a committed run needs {', '.join(RUN_FILES)})")
    detail, results = _read_json(folder / "test_detail.json"), _read_json(folder / "results.json")
    return RunRecord(spec=spec, run_dir=folder, test=detail["test"], params=detail.get("params") or {},
                     wall_s=float(detail.get("wall_s") or 0.0), steps=int(results["steps"]),
                     left_plateau_at_step=results.get("plateau_left_at_step"), reused=True,
                     stop_reason=results.get("stop_reason"), still_improving=improving_at_stop(results))


def run_folder(out: Path, key: str, seed: int) -> Path:
    """Where the files of run ``key`` at ``seed`` live under a results folder ``out``."""
    return out / "runs" / key / str(seed)


def read_manifest(out: Path) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a results folder is made by `python -m paperlib report "
                                "--profile P --export DIR`")
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("profile") not in PROFILES:
        raise ValueError(f"{path}: needs a 'profile' among {tuple(PROFILES)}")
    return data


def load_records(out: str | Path) -> tuple[str, dict[str, Any]]:
    """(profile, records) of a results folder: a record per key of the profile's plan whose run files are committed
    (aliases resolve to their canonical key's folder), a :class:`~paperlib.paper.campaign.RepeatedRecord` for the
    keys planned at several seeds."""
    out = Path(out)
    man = read_manifest(out)
    profile, seed = man["profile"], int(man.get("seed", 0))
    specs = plan_mod.plan(profile)
    records: dict[str, Any] = {}
    for key, spec in specs.items():
        canon = plan_mod.canonical_key(spec, specs)
        planned = plan_mod.planned_seeds(profile, key, seed)
        found = {s: read_run(run_folder(out, canon, s), spec) for s in planned
                 if run_folder(out, canon, s).is_dir()}
        if len(planned) > 1 and found:
            records[key] = RepeatedRecord(found, planned)
        elif seed in found:
            records[key] = found[seed]
    return profile, records


# ---------------------------------------------------------------------------------------------------------------------
# Export: a campaign's finished runs and the studies' artefact files into a results folder

def finished_runs(profile: str, runs_root: str | Path | None = None) -> dict[tuple[str, int], Path]:
    """The finished campaign runs of ``profile`` under ``runs_root`` (default ``runs/``), by (plan key, seed): each
    hash folder's ``campaign.json`` names its key and its ``config.json`` its seed (``train.seed`` minus
    ``TRAIN_SEED_BASE``). Two finished runs for one key and seed (campaigns of different code or overrides in one
    folder) are an error naming both: export from the runs folder of one campaign."""
    root = Path(runs_root) if runs_root else repo_root() / "runs"
    found: dict[tuple[str, int], Path] = {}
    base = root / "campaign" / profile
    for hroot in sorted(p for p in base.iterdir() if (p / SPEC_FILE).is_file()) if base.is_dir() else []:
        run = finished(hroot)
        if run is None:
            continue
        key = _read_json(hroot / SPEC_FILE)["key"]
        seed = int(_read_json(run / "config.json")["train"]["seed"]) - TRAIN_SEED_BASE
        if (key, seed) in found:
            raise ValueError(f"{key} seed {seed}: two finished runs, {found[(key, seed)]} and {run}; export from "
                             "the runs folder of one campaign")
        found[(key, seed)] = run
    return found


def export_results(profile: str, out: str | Path, *, runs_root: str | Path | None = None,
                   figures_root: str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Copy the finished runs of ``profile``'s campaign under ``runs_root`` (:func:`finished_runs`; nothing is
    trained) at the seeds the plan asks for, and the studies' artefact files of ``figures_root/tables`` (default
    ``figures/``), into ``out``; write ``out/manifest.json``. Returns the manifest.

    What ``out`` already holds stays: its committed runs the plan still asks for (a campaign spread over sittings,
    or machines, exports what each one finished; a run found again is overwritten), its studies whose files are
    there, and its notes."""
    out = Path(out)
    specs = plan_mod.plan(profile)
    wanted = {(plan_mod.canonical_key(specs[k], specs), s) for k in all_keys(profile)
              for s in plan_mod.planned_seeds(profile, k, seed)}
    before = _read_json(out / MANIFEST) if (out / MANIFEST).is_file() else {}
    if before and (before.get("profile"), before.get("seed", 0)) != (profile, seed):
        raise ValueError(f"{out / MANIFEST}: holds profile {before.get('profile')!r} seed {before.get('seed', 0)}, "
                         f"not {profile!r} seed {seed}; export into another folder")
    copied: dict[str, dict[str, str]] = {}
    for key, by_seed in (before.get("runs") or {}).items():
        for s, rel in by_seed.items():
            if (key, int(s)) in wanted and all((out / rel / name).is_file() for name in RUN_FILES):
                copied.setdefault(key, {})[s] = rel
    for (key, s), run in sorted(finished_runs(profile, runs_root).items()):
        if (key, s) not in wanted:
            continue
        dst = run_folder(out, key, s)
        for name in RUN_FILES:
            if not (run / name).is_file():
                raise FileNotFoundError(f"{run / name}: missing in a finished run of {key}")
        dst.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            write_text_atomic(dst / name, (run / name).read_text())
        copied.setdefault(key, {})[str(s)] = run_folder(Path("."), key, s).as_posix()
    tables = Path(figures_root) if figures_root else repo_root() / "figures"
    studies = []
    for name in STUDIES:
        src = tables / "tables" / f"{name}.json"
        if src.is_file() and _read_json(src).get("profile") == profile:
            (out / "tables").mkdir(parents=True, exist_ok=True)
            for f in sorted((tables / "tables").glob(f"{name}*")):
                shutil.copyfile(f, out / "tables" / f.name)
            for fig in _read_json(src).get("figures") or []:  # paths relative to the repository (or absolute)
                p = Path(fig) if Path(fig).is_absolute() else tables / Path(fig).name
                if not p.is_file():
                    p = repo_root() / fig
                if p.suffix == ".png" and p.is_file():
                    (out / "figures").mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, out / "figures" / p.name)
            studies.append(name)
    studies += [n for n in before.get("studies") or [] if n not in studies and (out / "tables" / f"{n}.json").is_file()]
    upstream = []
    for report in _upstream_reports(profile, runs_root):
        (out / UPSTREAM_DIR).mkdir(parents=True, exist_ok=True)
        text, dst = report.read_text(), out / UPSTREAM_DIR / report.name
        if dst.is_file() and dst.read_text() != text:
            # the same configuration trained again (a sitting on a machine that did not keep runs/, on another CPU
            # whose float rounding differs): the runs trained since load these weights, the committed runs before
            # them the earlier ones, so both reports stay, this one named by when it was written
            stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(report.stat().st_mtime))
            dst = dst.with_name(f"{report.stem}-{stamp}{report.suffix}")
        write_text_atomic(dst, text)
        upstream.append(f"{UPSTREAM_DIR}/{dst.name}")
    upstream += [u for u in before.get("upstream") or [] if u not in upstream and (out / u).is_file()]
    man = {"profile": profile, "seed": seed, "runs": {k: dict(sorted(v.items())) for k, v in sorted(copied.items())},
           "studies": studies}
    if upstream:
        man["upstream"] = upstream
    if before.get("notes"):
        man["notes"] = before["notes"]
    write_text_atomic(out / MANIFEST, json.dumps(man, indent=1, sort_keys=True))
    return man


def restore_runs(out: str | Path, runs_root: str | Path | None = None) -> list[Path]:
    """Copy the committed runs of results folder ``out`` back into the campaign folders of ``runs_root`` (default
    ``runs/``) where their campaign hash has no finished run, so that a campaign spread over sittings on machines
    that do not keep ``runs/`` goes on where the committed results stopped instead of training them again.

    Each becomes ``<hash folder>/<name>-restored/`` (:mod:`paperlib.paper.campaign_runner`): its :data:`RUN_FILES`
    and ``restored.json`` naming the folder they came from. Checkpoints are not committed, so a restored run that a
    run still to train fine-tunes from is trained again by :func:`paperlib.paper.campaign.ensure_runs` (on one
    machine at a fixed thread count the same weights: :data:`RERUN_NOTE`). A restored run whose configuration no
    longer hashes to the plan's is never found (its folder name is its old hash). Returns the run directories
    written."""
    out = Path(out)
    man = read_manifest(out)
    root = runs_root_path(runs_root)
    written = []
    for key, by_seed in sorted((man.get("runs") or {}).items()):
        for s, rel in sorted(by_seed.items()):
            src = out / rel
            for name in RUN_FILES:
                if not (src / name).is_file():
                    raise FileNotFoundError(f"{src / name}: missing (a committed run needs {', '.join(RUN_FILES)})")
            detail = _read_json(src / "test_detail.json")
            if detail.get("key") != key or not detail.get("hash"):
                raise ValueError(f"{src / 'test_detail.json'}: names key {detail.get('key')!r} and hash "
                                 f"{detail.get('hash')!r}; the manifest of {out} lists it as {key!r}")
            hroot = hash_root(root, man["profile"], key, detail["hash"])
            if finished(hroot) is not None:
                continue
            run = hroot / f"{slug(key)}-restored"
            # whole or absent: a half-copied run could look trained but untested. A run directory is one once it
            # holds config.json (paperlib.engine.runs.list_runs), so that comes last, and the folder is renamed last
            tmp = hroot / f".{run.name}.partial"
            for d in (tmp, run):
                if d.exists():
                    shutil.rmtree(d)
            tmp.mkdir(parents=True)
            write_text_atomic(tmp / RESTORED_FILE, json.dumps({"from": str(src.resolve()), "key": key,
                                                               "seed": int(s)}, indent=1))
            for name in sorted(RUN_FILES, key=lambda n: n == runs.CONFIG_FILE):
                write_text_atomic(tmp / name, (src / name).read_text())
            os.replace(tmp, run)
            if not (hroot / SPEC_FILE).is_file():  # the key export_results finds the folder by
                write_text_atomic(hroot / SPEC_FILE, json.dumps({"key": key, "hash": detail["hash"],
                                                                 "restored_from": str(src.resolve())}, indent=1))
            written.append(run)
    return written


def _upstream_reports(profile: str, runs_root: str | Path | None) -> list[Path]:
    """The reports of the upstream extractor trainings the profile's runs load that exist under ``runs_root``."""
    root = runs_root_path(runs_root) / UPSTREAM_DIR
    found = [upstream_paths(c, root).report for c in upstream_configs(profile)]
    return [p for p in found if p.is_file()]


def upstream_rows(out: Path, names: Sequence[str]) -> list[str]:
    """The report's table of the upstream extractor trainings committed under ``out`` (their own test accuracy
    against their test sets' majority-class null: per backbone for the content task, per kind of pair for the
    correspondence task)."""
    lines = ["| file | task | input (s) | steps | test top-1 / null (%) | test items | minutes |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        d = _read_json(out / name)
        t = d["test"]
        task = report_task(d)
        if task == "content":
            score = (f"visual {100 * t['video']['accuracy']:.1f} / {100 * t['video']['null']:.1f}, "
                     f"audio {100 * t['audio']['accuracy']:.1f} / {100 * t['audio']['null']:.1f}")
            n = t["video"]["n"]
        else:
            c = t["correspondence"]
            kinds = ", ".join(f"{k} {100 * v['accuracy']:.0f}" for k, v in c["by_kind"].items())
            score = f"{100 * c['accuracy']:.1f} / {100 * c['null']:.1f} ({kinds})"
            n = c["n"]
        lines.append(f"| `{name}` | {task} | {d['config']['clip_sec']:g} | {d['steps']} | {score} | {n} | "
                     f"{d['seconds'] / 60:.1f} |")
    return lines


# ---------------------------------------------------------------------------------------------------------------------
# The report

def training_parts(records: Mapping[str, Any], profile: str) -> list[tuple[str, tuple[dict[str, Any], list[Claim]]]]:
    """The training artefacts' (tables, claims) from records, in report order."""
    params = paper_size_params(sorted(numbers.TABLE6))
    return [("table2_main_results", table2_from_records(records, profile)),
            ("table3_ablation", table3_from_records(records, profile)),
            ("table4_input_length", table4_from_records(records, profile)),
            ("table6_depth", table6_from_records(records, profile, params)),
            ("table7_finetune", table7_from_records(records, profile)),
            ("fig3_per_class", fig3_from_records(records, profile))]


def summary_counts(claims: Sequence[Claim]) -> dict[str, dict[str, int]]:
    """Final and provisional verdict counts: ``{"final": {verdict: n}, "provisional": {verdict: n}}``."""
    out: dict[str, dict[str, int]] = {kind: {v.value: 0 for v in Verdict} for kind in ("final", "provisional")}
    for c in claims:
        out["provisional" if c.provisional else "final"][str(c.verdict)] += 1
    return out


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none"


def _run_rows(records: Mapping[str, Any], profile: str, out: Path, seed: int) -> list[str]:
    """The runs table: every planned key and seed, with steps, plateau exit, stop reason, accuracy beside its null."""
    specs = plan_mod.plan(profile)
    lines = ["| run | seed | steps | stopped on | left the plateau at step | metric | ours | null | learned | "
             "wall (min) | n | files |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in all_keys(profile):
        rec = records.get(key)
        by_seed = seed_runs(rec, seed) if rec is not None else {}
        canon = plan_mod.canonical_key(specs[key], specs)
        for s in plan_mod.planned_seeds(profile, key, seed):
            r = by_seed.get(s)
            if r is None:
                lines.append(f"| {key} | {s} | not finished | | | | | | | | | |")
                continue
            m = measure({key: r}, key)
            tol_name = metric_name(headline_tol(int(r.spec.num_classes)))
            files = run_folder(Path("."), canon, s).as_posix()
            lines.append(f"| {key} | {s} | {r.steps} | {r.stopped_on} | "
                         f"{'' if r.left_plateau_at_step is None else r.left_plateau_at_step} | {tol_name} | "
                         f"{100 * m.acc:.1f} | {100 * m.floor:.1f} | "
                         f"{'yes' if m.learned else 'no: at chance'} | {r.wall_s / 60:.1f} | {m.n} | `{files}` |")
    return lines


def _study_figures(md: str, out: Path) -> str:
    """A study's markdown with its figure links pointing at ``out/figures/`` (the figures exported beside it); a
    figure that was not exported is named instead of linked."""
    lines = []
    for line in md.splitlines():
        hit = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip())
        if hit:
            name = Path(hit[2]).name
            line = (f"![{hit[1]}](figures/{name})" if (out / "figures" / name).is_file()
                    else f"({hit[1]}: figure not in this folder)")
        lines.append(line)
    return "\n".join(lines)


def write_results_report(out: str | Path) -> Path:
    """Rebuild ``out/REPORT.md`` and ``out/claims.json`` from the files of a results folder (no training)."""
    out = Path(out)
    profile, records = load_records(out)
    man = read_manifest(out)
    seed = int(man.get("seed", 0))
    keys = all_keys(profile)
    parts = training_parts(records, profile)
    claims: list[tuple[str, Claim]] = [(name, c) for name, (_, cl) in parts for c in cl]
    studies = {}
    for name in man.get("studies") or []:
        data = _read_json(out / "tables" / f"{name}.json")
        studies[name] = data
        claims += [(name, claim_from_json(c)) for c in data.get("claims", [])]
    counts = summary_counts([c for _, c in claims])
    envs = [_read_json(Path(r.run_dir) / "env.json") for rec in records.values() for r in seed_runs(rec).values()]
    shas = sorted({(e.get("git") or {}).get("sha") or "unknown" for e in envs})
    cpus = sorted({e.get("cpu") or "not recorded" for e in envs})
    planned = sum(len(plan_mod.planned_seeds(profile, k, seed)) for k in keys)
    finished = sum(len(seed_runs(records[k], seed)) for k in keys if k in records)
    lines = [f"# paperlib at `{profile}`: the committed results", ""]
    if profile != "paper":
        lines += [SYNTHETIC_INTRO, ""]
    lines += [
        f"Rebuilt from the files under `results/{profile}/` by `python -m paperlib report --from results/{profile}` "
        f"(nothing trained): {finished} of {planned} planned runs (keys x seeds) finished and committed under "
        f"`runs/<key>/<seed>/`; trained at commit(s) {', '.join(f'`{s[:12]}`' for s in shas) or 'none'} on "
        f"{'; '.join(cpus) or 'no recorded CPU'}.",
        f"{DATE_PREFIX}{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.", ""]
    lines += [f"**Note.** {n}" for n in man.get("notes") or []] + ([""] if man.get("notes") else [])
    lines += [
        RERUN_NOTE, "",
        "## Summary", "",
        f"- final verdicts ({sum(counts['final'].values())}): {_counts_text(counts['final'])}",
        f"- provisional verdicts, planned seeds not all finished ({sum(counts['provisional'].values())}): "
        f"{_counts_text(counts['provisional'])}", "",
        "## Claims", "", "| artefact | claim | verdict | can mini test it | evidence |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {c.text} | {c.verdict_text} | {c.mini} | {c.evidence} |" for a, c in claims] + [""]
    lines += ["## Runs", "", f"Every run the claims rest on ({measured_on(profile)}; files under this folder); "
              "\"null\" is the stricter of uniform chance and the run's own test-set null (best constant guess; its "
              "predictions with shuffled targets), and a run learned when it beats that null by 2 s.e.", ""]
    lines += _run_rows(records, profile, out, seed) + [""]
    if man.get("upstream"):
        lines += ["## Upstream pre-training of the feature extractors", "",
                  "The synthetic counterpart of the paper's Kinetics-400 / VGGSound weights "
                  "(`paperlib.engine.upstream`): each backbone classifies the content of windows of a synthetic set "
                  "of its own; every chain's first run starts from these weights (AVST_dec's audio extractor from "
                  "scratch), the \"not pre-trained\" chain from random extractors. Accuracy on held-out clips:", ""]
        lines += upstream_rows(out, man["upstream"]) + [""]
    for _, (tabs, _) in parts:
        for title, df in tabs.items():
            lines += [f"## {title}", "", df_to_markdown(df), ""]
    for name in studies:
        md = out / "tables" / f"{name}.md"
        if md.is_file():
            text = md.read_text().replace(f"## {name} (profile: {profile})",
                                          f"## {name} (as its notebook judged it)", 1)
            lines += [_study_figures(text, out), ""]
    specs = plan_mod.plan(profile)
    claims_json = {"profile": profile, "seed": seed, "summary": counts, "keys": keys, "finished": sorted(records),
                   "paths": "relative to this folder",
                   "claims": [{"artefact": a, "claim": c.text, "verdict": str(c.verdict),
                               "provisional": c.provisional, "evidence": c.evidence} for a, c in claims],
                   "runs": {k: {str(s): run_folder(Path("."), plan_mod.canonical_key(specs[k], specs), s).as_posix()
                                for s in seed_runs(records[k], seed)} for k in keys if k in records}}
    write_text_atomic(out / "claims.json", json.dumps(claims_json, indent=1))
    return write_text_atomic(out / "REPORT.md", "\n".join(lines))


__all__ = ["MANIFEST", "RUN_FILES", "STUDIES", "DATE_PREFIX", "read_run", "load_records", "run_folder",
           "export_results", "restore_runs", "finished_runs", "write_results_report", "summary_counts", "summary_block"]


def summary_block(folders: Sequence[str | Path]) -> str:
    """The README's summary of committed results folders: a line of final and provisional verdict counts per
    folder, and a table of every claim's verdict in each (from their ``claims.json``; rebuild those first)."""
    data = []
    for f in folders:
        path = Path(f) / "claims.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run `python -m paperlib report --from {f}` first")
        data.append((Path(f), _read_json(path)))
    lines = []
    for f, d in data:
        s = d["summary"]
        lines.append(f"- `{d['profile']}` ([`{f.as_posix()}/REPORT.md`]({f.as_posix()}/REPORT.md)): "
                     f"{sum(s['final'].values())} final verdicts: {_counts_text(s['final'])}; "
                     f"{sum(s['provisional'].values())} provisional: {_counts_text(s['provisional'])}")
    lines += ["", "| artefact | claim | " + " | ".join(f"at `{d['profile']}`" for _, d in data) + " |",
              "|---|---|" + "---|" * len(data)]
    order = list(dict.fromkeys((c["artefact"], c["claim"]) for _, d in data for c in d["claims"]))
    for art, text in order:
        cells = []
        for _, d in data:
            c = next((c for c in d["claims"] if (c["artefact"], c["claim"]) == (art, text)), None)
            cells.append("" if c is None else claim_from_json({"text": text, "verdict": c["verdict"],
                                                                "evidence": "", "provisional":
                                                                c.get("provisional", "")}).verdict_text)
        lines.append(f"| {art} | {text} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
