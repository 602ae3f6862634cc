"""The paper profile's input check: everything the runs to train will read, checked once before the first step.

For each resolved run config (and the data config of the split it is tested on) the check reads what the run will
read: its data folder's split lists, annotation CSV, filter lists, the clips they name and the fixed-offset CSVs of
its valid/test splits (:func:`paperlib.data.protocol.check_data_inputs`), and its pretrained extractor weights files
(:func:`paperlib.model.weights.weights_file_problem`). :func:`input_table` formats the rows (present / missing /
incomplete / unreadable, with counts); :func:`check_paper_inputs` prints the table and raises one FileNotFoundError
naming each problem and where to get what is missing.

``regenerate_protocol`` lets missing split lists and fixed-offset CSVs be made here (the test is then not at the
official windows, and the worker's test_detail.json says so); ``allow_missing_clips`` drops listed valid/test clips
that are absent on disk (counted: "n of N official test clips").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable, Sequence

from paperlib.data.protocol import InputRow, check_data_inputs
from paperlib.engine.config import RunConfig
from paperlib.model.weights import check_backbone_weights, weights_file_problem

# the data folders a paper campaign reads, as named in the README's layout (error messages point there)
README_HINT = "README, 'The paper profile'"


def _weight_rows(cfg: RunConfig) -> list[InputRow]:
    rows = []
    for which in ("visual", "audio"):
        path = getattr(cfg.model, f"{which}_weights")
        if not path:
            continue
        problem = weights_file_problem(path)
        if problem is None:
            rows.append(InputRow("weights", str(path), "present", f"{Path(path).stat().st_size / 2 ** 20:.1f} MiB"))
            continue
        try:
            check_backbone_weights({which: path})
            where = ""
        except FileNotFoundError as e:
            where = str(e)
        status = "missing" if not Path(path).is_file() else "unreadable"
        rows.append(InputRow("weights", str(path), status, problem,
                             where if status == "missing" else f"{problem}; {where or 'get it again'}"))
    return rows


def input_rows(configs: Iterable[RunConfig], tests: Iterable[Any] = (), *, regenerate_protocol: bool = False,
               allow_missing_clips: bool = False) -> list[InputRow]:
    """The rows of everything ``configs`` (their train and valid splits) and ``tests`` (the data configs of the
    splits they are tested on, paired with ``configs`` in order) read, each file or split once."""
    configs = list(configs)
    tests = list(tests)
    seen: dict[tuple[str, str], InputRow] = {}
    opts = {"official": not regenerate_protocol, "allow_missing_clips": allow_missing_clips}
    done: dict[tuple, list[InputRow]] = {}  # runs share data folders: each folder, split and grid is read once

    def rows_of(data: Any, geo: Any, splits: tuple[str, ...]) -> list[InputRow]:
        key = (data.dataset, data.root, data.fixed_offsets, data.fixed_offsets_dir, tuple(data.filter_lists),
               data.default_filters, splits, (geo.num_classes, geo.clip_sec, geo.max_off_sec))
        if key not in done:
            evals = tuple(s for s in splits if s != "train")
            done[key] = check_data_inputs(data, geo, splits, eval_splits=evals, **opts)
        return done[key]

    for i, cfg in enumerate(configs):
        rows = list(rows_of(cfg.data, cfg.geometry, ("train", "valid")))
        if i < len(tests):
            test = tests[i] if not isinstance(tests[i], (str, Path)) else \
                dataclasses.replace(cfg.data, root=str(tests[i]))
            rows += rows_of(test, cfg.geometry, ("test",))
        for r in rows + _weight_rows(cfg):
            if r.what == "data folder" and r.problem:
                r = dataclasses.replace(r, problem=f"{r.problem}; {README_HINT}")
            seen.setdefault((r.what, r.path), r)
    return list(seen.values())


def paper_input_problems(configs: Iterable[RunConfig], tests: Iterable[Any] = (), **opts: Any) -> list[str]:
    """The problems of :func:`input_rows` (empty when the runs can start)."""
    return list(dict.fromkeys(r.problem for r in input_rows(configs, tests, **opts) if r.problem))


def input_table(rows: Sequence[InputRow]) -> str:
    """The rows as an aligned text table (what, status, path, detail), problems marked with ``!``."""
    head = ("what", "status", "path", "detail")
    body = [(r.what, ("! " if r.problem else "") + r.status, r.path, r.detail) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line[:3], widths)) + "  " + line[3] for line in [head, *body]]
    n_bad = sum(1 for r in rows if r.problem)
    lines.append(f"{len(rows)} inputs checked; {n_bad} problem(s)")
    return "\n".join(x.rstrip() for x in lines)


def check_paper_inputs(configs: Iterable[RunConfig], tests: Iterable[Any] = (), *, show: bool = True,
                       **opts: Any) -> list[InputRow]:
    """Print the input table (``show``; always when something is wrong) and raise one FileNotFoundError naming each
    problem; returns the rows. ``opts``: ``regenerate_protocol``, ``allow_missing_clips`` (module docstring)."""
    rows = input_rows(configs, tests, **opts)
    problems = list(dict.fromkeys(r.problem for r in rows if r.problem))
    if show or problems:
        print("[inputs] what the runs will read:\n" + input_table(rows), flush=True)
    if problems:
        raise FileNotFoundError("the paper profile cannot start: " + "; ".join(problems))
    return rows
