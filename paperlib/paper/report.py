"""What a paper artefact is and the files it leaves: the artefact and claim types, where figures and runs go, the
atomic figure/table writers, and the run-all report ``figures/REPORT.md``.

This is the bottom module of the paper layer: it imports no other ``paperlib.paper`` module, so the statistics
(:mod:`paperlib.paper.verdicts`), the tables (:mod:`paperlib.paper.tables`), the training campaign
(:mod:`paperlib.paper.campaign`) and the artefact functions (:mod:`paperlib.paper.artefacts`) can all build on it.

An artefact function returns an :class:`Artefact`: tables as DataFrames (paper | ours | delta), figures already
written, and the paper's claims, each with a verdict (one of :data:`VERDICTS`) and the measured numbers behind it.
Writing is atomic (temporary name, then rename): a notebook that fails mid-way leaves earlier figures and tables as
they were.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from paperlib.core.io import write_bytes_atomic, write_text_atomic
from paperlib.core.paths import repo_root, runs_dir
from paperlib.core.provenance import env_info

PROFILES = ("smoke", "mini", "full", "paper")


class Verdict(enum.StrEnum):
    """The verdict on a claim of the paper (or on one part of it): the one vocabulary of reports and tables."""

    REPRODUCED = "reproduced"
    IN_PART = "reproduced in part"
    NOT_REPRODUCED = "not reproduced"
    NOT_TESTABLE = "not testable at this profile"


VERDICTS = tuple(v.value for v in Verdict)


def figures_dir() -> Path:
    return repo_root() / "figures"


def output_roots(figures_root: str | None, runs_root: str | None) -> tuple[str | None, Path]:
    """Output folders of an artefact: figures/ and runs/ of the repository unless given (tests pass temp dirs)."""
    return (figures_root or None), Path(runs_root) if runs_root else runs_dir()


def rel_to(path: str, base: Path) -> str:
    """``path`` relative to ``base`` where it can be (else unchanged), for paths shown in tables and reports."""
    try:
        return os.path.relpath(Path(path).resolve(), base.resolve())
    except ValueError:
        return path


@dataclasses.dataclass
class Claim:
    """One of the paper's claims, tested at some profile."""

    text: str  # the claim, in the paper's words or close
    verdict: str  # one of VERDICTS
    evidence: str  # the measured numbers behind the verdict
    mini: str = "yes"  # whether the mini profile can test it ("yes", or "no: why" / "in part: why")
    # "k of m seeds" when the claim rests on runs whose planned seeds have not all finished: the verdict is what the
    # finished seeds say so far, and is counted apart from the final verdicts until the other seeds are in
    provisional: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        self.verdict = Verdict(self.verdict)

    @property
    def verdict_text(self) -> str:
        """The verdict as a report shows it: ``provisional: 1 of 3 seeds (reproduced so far)`` for a provisional one."""
        if self.provisional:
            return f"provisional: {self.provisional} ({self.verdict} so far)"
        return str(self.verdict)


def claim_from_json(data: dict[str, Any]) -> Claim:
    """A :class:`Claim` from its JSON form (``dataclasses.asdict``; files written before ``provisional`` existed
    included)."""
    return Claim(data["text"], data["verdict"], data["evidence"], data.get("mini", "yes"), data.get("provisional", ""))


@dataclasses.dataclass
class Artefact:
    """What an artefact function returns."""

    name: str  # e.g. "table1_codec_leakage": the stem of its files under figures/
    profile: str
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)  # title -> pandas.DataFrame
    figures: list[str] = dataclasses.field(default_factory=list)  # paths written (relative to the repo root)
    claims: list[Claim] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # deviations, budgets, caveats
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)  # run dirs, configs, wall time


def save_figure(fig, name: str, out_dir: str | os.PathLike | None = None) -> list[str]:
    """Write ``fig`` (matplotlib) as ``<name>.png`` and ``<name>.pdf`` atomically; return the paths."""
    out = Path(out_dir) if out_dir else figures_dir()
    paths = []
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight")
        p = out / f"{name}.{ext}"
        write_bytes_atomic(p, buf.getvalue())
        paths.append(str(p))
    return paths


def publish(src: Path, name: str, figures_root: str | None = None) -> list[str]:
    """Copy a figure written under runs/ to figures/<name>.<ext> atomically (png and pdf when both exist)."""
    out = []
    for ext in (".png", ".pdf"):
        s = src.with_suffix(ext)
        if s.exists():
            dst = Path(figures_root or figures_dir()) / f"{name}{ext}"
            write_bytes_atomic(dst, s.read_bytes())
            out.append(rel_to(str(dst), repo_root()))
    return out


def df_to_markdown(df) -> str:
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
    """Write the artefact's tables (csv + md) and claims (json) under ``figures/``; return the paths written. The
    files are written as one set (:func:`paperlib.core.io.write_texts_atomic`): a failure while writing any of them
    leaves every previous file as it was."""
    from paperlib.core.io import write_texts_atomic

    out = Path(out_dir) if out_dir else figures_dir()
    written: dict[str, str] = {}
    files: dict[Path, str] = {}
    md_parts = [f"## {art.name} (profile: {art.profile})", ""]
    for i, (title, df) in enumerate(art.tables.items()):
        suffix = "" if i == 0 else f"_{i}"
        csv_path = out / "tables" / f"{art.name}{suffix}.csv"
        files[csv_path] = df.to_csv(index=False)
        written[f"csv:{title}"] = str(csv_path)
        md_parts += [f"### {title}", "", df_to_markdown(df), ""]
    if art.claims:
        md_parts += ["### Claims", "", "| claim | verdict | evidence |", "|---|---|---|"]
        md_parts += [f"| {c.text} | {c.verdict_text} | {c.evidence} |" for c in art.claims]
        md_parts.append("")
    if art.notes:
        md_parts += ["### Notes", ""] + [f"- {n}" for n in art.notes] + [""]
    if art.figures:
        md_parts += ["### Figures", ""] + [f"![{Path(f).stem}]({rel_to(f, out)})" for f in art.figures
                                           if f.endswith(".png")]
        md_parts.append("")
    md_path = out / "tables" / f"{art.name}.md"
    files[md_path] = "\n".join(md_parts)
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
    files[claims_path] = json.dumps(payload, indent=2, default=str)
    write_texts_atomic(files)
    written["json"] = str(claims_path)
    return written


def environment() -> dict[str, Any]:
    """Provenance of an artefact (:func:`paperlib.core.provenance.env_info`)."""
    import torch

    return env_info("cuda" if torch.cuda.is_available() else "cpu")


def write_report(profile: str, results: list[dict[str, Any]], out: Path | None = None,
                 since: float | None = None) -> Path:
    """Compose ``figures/REPORT.md`` (or ``out``) from the artefacts' markdown tables and claims next to it
    (``tables/``), with provenance (commit, profile, device, library and codec versions, wall time per notebook).

    ``since`` (a time stamp: when this run started): only artefacts written since then are shown, so a notebook that
    failed is listed as failed without the numbers an earlier run left in ``tables/``.
    """
    out = Path(out) if out is not None else figures_dir() / "REPORT.md"
    env = environment()
    lines = [
        "# paperlib: the paper's artefacts, reproduced",
        "",
        f"Profile `{profile}`; commit `{env['git'].get('sha')}`{' (dirty)' if env['git'].get('dirty') else ''}; "
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
    for md in sorted((out.parent / "tables").glob("*.md")):
        js = md.with_suffix(".json")
        if since is not None and (not js.exists() or js.stat().st_mtime < since):
            continue  # not produced by this run
        if js.exists():
            data = json.loads(js.read_text())
            if data.get("profile") != profile:
                continue
            verdict_rows += [(data["name"], c["text"], claim_from_json(c).verdict_text, c.get("mini", "yes"),
                              c["evidence"]) for c in data.get("claims", [])]
        lines += [md.read_text(), ""]
    if verdict_rows:
        lines[lines.index("## Notebooks"):lines.index("## Notebooks")] = [
            "## Claims at a glance", "", "| artefact | claim | verdict | can mini test it | evidence |",
            "|---|---|---|---|---|", *[f"| {a} | {t} | {v} | {m} | {e} |" for a, t, v, m, e in verdict_rows], "",
        ]
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        lines += ["## Failures", ""] + [f"- {r['notebook']}: {r['error']}" for r in failed] + [""]
    write_text_atomic(out, "\n".join(lines))
    return out
