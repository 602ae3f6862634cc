"""Paper artefacts: one function per table/figure, the files they write, and the run-all report.

Each artefact function (defined in the module that owns its science and registered in ``ARTEFACTS``) returns an
:class:`Artefact`: tables as DataFrames (paper | ours | delta), figures already written, and the paper's claims with a verdict
(``reproduced`` / ``not reproduced`` / ``not testable at this profile``) and the measured numbers behind each. Notebooks are thin:
a markdown cell with the paper's numbers, a ``parameters`` cell, a call to the artefact function, :func:`save_artefact`.

Writing is atomic (temp name, then rename): a notebook that fails mid-way leaves earlier figures and tables as they were.
``make reproduce`` executes every notebook with papermill (executed copies under ``runs/notebooks/<profile>/``) and ends with
:func:`write_report` (``figures/REPORT.md``) with provenance (commit, profile, device, library and codec versions, wall time).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

PROFILES = ("smoke", "mini", "paper")
VERDICTS = ("reproduced", "not reproduced", "not testable at this profile")


def repo_root() -> Path:
    """The repository root (the folder holding ``paperlib/``), independent of the working directory."""
    return Path(__file__).resolve().parents[1]


def figures_dir() -> Path:
    return repo_root() / "figures"


def runs_dir() -> Path:
    return repo_root() / "runs"


@dataclasses.dataclass
class Claim:
    """One of the paper's claims, tested at some profile."""

    text: str  # the claim, in the paper's words or close
    verdict: str  # one of VERDICTS
    evidence: str  # the measured numbers behind the verdict

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclasses.dataclass
class Artefact:
    """What an artefact function returns."""

    name: str  # e.g. "table1_codec_leakage"
    profile: str
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)  # title -> pandas.DataFrame
    figures: list[str] = dataclasses.field(default_factory=list)  # paths written (relative to the repo root)
    claims: list[Claim] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # deviations, budgets, caveats
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)  # run dirs, configs, wall time


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    _atomic_write_bytes(Path(path), text.encode())


def save_figure(fig, name: str, out_dir: str | os.PathLike | None = None) -> list[str]:
    """Write ``fig`` (matplotlib) as ``<name>.png`` and ``<name>.pdf`` atomically; return the paths."""
    import io

    out = Path(out_dir) if out_dir else figures_dir()
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight")
        p = out / f"{name}.{ext}"
        _atomic_write_bytes(p, buf.getvalue())
        paths.append(str(p))
    return paths


def _df_to_markdown(df) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("" if v != v else f"{v:.4g}")  # NaN -> empty
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_artefact(art: Artefact, out_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Write the artefact's tables (csv + md) and claims (json) under ``figures/``; return the paths written."""
    out = Path(out_dir) if out_dir else figures_dir()
    written = {}
    md_parts = [f"## {art.name} (profile: {art.profile})", ""]
    for i, (title, df) in enumerate(art.tables.items()):
        suffix = "" if i == 0 else f"_{i}"
        csv_path = out / "tables" / f"{art.name}{suffix}.csv"
        atomic_write_text(csv_path, df.to_csv(index=False))
        written[f"csv:{title}"] = str(csv_path)
        md_parts += [f"### {title}", "", _df_to_markdown(df), ""]
    if art.claims:
        md_parts += ["### Claims", "", "| claim | verdict | evidence |", "|---|---|---|"]
        md_parts += [f"| {c.text} | {c.verdict} | {c.evidence} |" for c in art.claims]
        md_parts.append("")
    if art.notes:
        md_parts += ["### Notes", ""] + [f"- {n}" for n in art.notes] + [""]
    if art.figures:
        md_parts += ["### Figures", ""] + [f"![{Path(f).stem}]({_rel_to(f, out)})" for f in art.figures if f.endswith(".png")]
        md_parts.append("")
    md_path = out / "tables" / f"{art.name}.md"
    atomic_write_text(md_path, "\n".join(md_parts))
    written["md"] = str(md_path)
    claims_path = out / "tables" / f"{art.name}.json"
    payload = {
        "name": art.name,
        "profile": art.profile,
        "claims": [dataclasses.asdict(c) for c in art.claims],
        "notes": art.notes,
        "figures": art.figures,
        "tables": {t: json.loads(df.to_json(orient="records")) for t, df in art.tables.items()},
        "provenance": art.provenance,
    }
    atomic_write_text(claims_path, json.dumps(payload, indent=2, default=str))
    written["json"] = str(claims_path)
    return written


def _rel_to(path: str, base: Path) -> str:
    try:
        return os.path.relpath(Path(path).resolve(), base.resolve())
    except ValueError:
        return path


def environment() -> dict[str, Any]:
    """Provenance: commit, dirty flag, library and codec versions, device."""
    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    root = repo_root()
    try:
        info["git_sha"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                         check=True).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                                capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        info["git_sha"], info["git_dirty"] = None, None
    try:
        import torch

        info["torch"] = torch.__version__
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        info["cpu_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    for mod in ("torchvision", "torchaudio", "numpy", "av"):
        try:
            info[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            info[mod] = None
    try:
        import av

        info["ffmpeg"] = {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}
    except (ImportError, AttributeError):
        pass
    return info


# --------------------------------------------------------------------------------------------------------------------
# Run-all: execute every notebook with papermill, then write the report.

def notebooks() -> list[Path]:
    return sorted((repo_root() / "notebooks").glob("*.ipynb"))


def run_notebook(nb: Path, profile: str, out_dir: Path, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute one notebook with papermill; the executed copy goes to ``out_dir``. Returns status and wall time."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, **(parameters or {})}
    t0 = time.time()
    status, error = "ok", None
    try:
        pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters=params, cwd=str(repo_root()),
                            progress_bar=False, kernel_name="python3")
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
        status, error = "failed", f"{type(e).__name__}: {str(e)[-2000:]}"
    return {"notebook": nb.name, "status": status, "error": error, "wall_s": round(time.time() - t0, 1)}


def write_report(profile: str, results: list[dict[str, Any]], out: Path | None = None) -> Path:
    """Compose ``figures/REPORT.md`` from the artefacts' markdown tables and claims, with provenance."""
    out = out or figures_dir() / "REPORT.md"
    env = environment()
    lines = [
        "# paperlib: the paper's artefacts, reproduced",
        "",
        f"Profile `{profile}`; commit `{env.get('git_sha')}`{' (dirty)' if env.get('git_dirty') else ''}; "
        f"device {env.get('device')}; torch {env.get('torch')}, torchvision {env.get('torchvision')}, "
        f"torchaudio {env.get('torchaudio')}, PyAV {env.get('av')}, FFmpeg {env.get('ffmpeg', {}).get('libavcodec')} "
        f"(libavcodec); generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
        "",
        "## Notebooks",
        "",
        "| notebook | status | wall time (s) |",
        "|---|---|---|",
    ]
    lines += [f"| {r['notebook']} | {r['status']} | {r['wall_s']} |" for r in results]
    lines.append(f"| **total** | | {sum(r['wall_s'] for r in results):.1f} |")
    lines.append("")
    verdict_rows = []
    for md in sorted((figures_dir() / "tables").glob("*.md")):
        js = md.with_suffix(".json")
        if js.exists():
            data = json.loads(js.read_text())
            if data.get("profile") != profile:
                continue
            verdict_rows += [(data["name"], c["text"], c["verdict"], c["evidence"]) for c in data.get("claims", [])]
        lines += [md.read_text(), ""]
    if verdict_rows:
        lines[lines.index("## Notebooks"):lines.index("## Notebooks")] = [
            "## Claims at a glance", "", "| artefact | claim | verdict | evidence |", "|---|---|---|---|",
            *[f"| {a} | {t} | {v} | {e} |" for a, t, v, e in verdict_rows], "",
        ]
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        lines += ["## Failures", ""] + [f"- {r['notebook']}: {r['error']}" for r in failed] + [""]
    atomic_write_text(out, "\n".join(lines))
    return out


def reproduce(profile: str = "mini", only: list[str] | None = None) -> tuple[Path, list[dict[str, Any]]]:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    nbs = notebooks()
    if only:
        nbs = [nb for nb in nbs if any(nb.stem.startswith(o) for o in only)]
        if not nbs:
            raise ValueError(f"no notebook matches {only}; have {[p.stem for p in notebooks()]}")
    out_dir = runs_dir() / "notebooks" / f"{profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    results = []
    for nb in nbs:
        print(f"[reproduce] {nb.name} (profile={profile}) ...", flush=True)
        r = run_notebook(nb, profile, out_dir)
        print(f"[reproduce] {nb.name}: {r['status']} in {r['wall_s']} s", flush=True)
        results.append(r)
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2))
    report = write_report(profile, results)
    return report, results


def reproduce_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib reproduce", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="mini", choices=PROFILES)
    p.add_argument("--only", nargs="*", help="notebook name prefixes (e.g. table1 fig4)")
    args = p.parse_args(argv)
    report, results = reproduce(args.profile, args.only)
    print(f"[reproduce] report: {report}")
    return 1 if any(r["status"] != "ok" for r in results) else 0
