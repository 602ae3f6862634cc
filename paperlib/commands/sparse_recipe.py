"""``python -m paperlib sparse-recipe data|eval ...``: the data sets of the plateau recipe's sparse step, and the
scoring of a checkpoint on a sparse root with the cue oracle (:mod:`paperlib.paper.sparse_recipe`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib sparse-recipe", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="generate the dense-crop, sparse-train and sparse-test sets")
    d.add_argument("--out", type=Path, default=Path("runs/sparse_recipe"))
    d.add_argument("--workers", type=int, default=1)
    d.add_argument("--smoke", action="store_true", help="8 clips of 32 px per set")
    e = sub.add_parser("eval", help="score a checkpoint on a sparse root's test split, append to table.jsonl")
    e.add_argument("checkpoint")
    e.add_argument("--root", type=Path, required=True, help="a synthetic sparse root (e.g. <out>/data/sparse-test)")
    e.add_argument("--name", required=True, help="row name")
    e.add_argument("--out", type=Path, default=Path("runs/sparse_recipe"))
    e.add_argument("--passes", type=int, default=2, help="random-offset passes over the test clips")
    e.add_argument("--probes", action="store_true", help="also score with swapped audio and with swapped video")
    e.add_argument("--decoded-cache-dir", default="", help="data.decoded_cache_dir for the test clips")
    a = p.parse_args(argv)
    import torch

    from paperlib.model.checkpoints import load_model
    from paperlib.model.weights import CheckpointError
    from paperlib.paper import sparse_recipe

    torch.set_num_threads(1)
    if a.cmd == "data":
        for name, root in sparse_recipe.make_data(a.out, smoke=a.smoke, workers=a.workers).items():
            print(f"{name}: {root}")
        return 0
    try:
        model, mcfg = load_model(a.checkpoint)
    except (CheckpointError, OSError, ValueError) as err:
        print(f"error: {err}" if str(a.checkpoint) in str(err) else f"error: {a.checkpoint}: {err}", file=sys.stderr)
        return 2
    try:
        res = sparse_recipe.evaluate(model, mcfg, a.root, passes=a.passes, decoded_cache_dir=a.decoded_cache_dir,
                                     probes=a.probes)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sparse_recipe.record(res, a.out, a.name, a.checkpoint, a.root, a.passes)
    for key in ("model", "swapped_audio", "swapped_video"):
        if key in res:
            print(sparse_recipe.row_text(f"{a.name} [{key}]", res[key]))
    return 0
