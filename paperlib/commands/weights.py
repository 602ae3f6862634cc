"""``python -m paperlib weights list|fetch NAME``: the authors' released SparseSync checkpoints, and their explicit
download into the torch cache with the published checksum verified (:mod:`paperlib.model.released`). Nothing else in
paperlib downloads them."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib weights",
                                description="The authors' released SparseSync checkpoints: list them, or download one "
                                            "into the torch cache (its published md5 prefix verified).")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="name, id, what it was trained on, classes, reported accuracy, md5 prefix, URL")
    f = sub.add_parser("fetch", help="download one by name (or the authors' id); a bad checksum is refused")
    f.add_argument("name", help="e.g. vggsound-sparse-21cls or 22-07-28T15-49-45 (see: weights list)")
    f.add_argument("--dest", default=None,
                   help="folder (default: <torch cache>/checkpoints/sparsesync, i.e. $TORCH_HOME or ~/.cache/torch)")
    f.add_argument("--base-url", default=None,
                   help="a mirror of the authors' sync_models/ folder (default: $PAPERLIB_WEIGHTS_URL, else theirs)")
    f.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from paperlib.model import released

    if args.cmd == "list":
        print(f"{'name':<22} {'id':<18} {'classes':>7}  {'md5 prefix':<10}  trained on; reported test accuracy")
        for r in released.RELEASED.values():
            print(f"{r.name:<22} {r.id:<18} {r.classes:>7}  {r.md5_prefix:<10}  {r.trained_on}; {r.reported}")
        print(f"\nfiles of ~{released.RELEASED_FILE_MB} MB each at {released.BASE_URL}/<id>/<id>.pt")
        return 0
    from tqdm.auto import tqdm

    try:
        entry = released.lookup(args.name)
    except KeyError as e:
        print(f"paperlib weights: {e.args[0]}", file=sys.stderr)
        return 2
    bar = tqdm(desc=entry.name, unit="B", unit_scale=True, unit_divisor=1024, disable=args.no_progress,
               file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        path = released.fetch(entry.name, args.dest, args.base_url, progress=progress)
    except (OSError, released.ChecksumError) as e:
        bar.close()
        print(f"paperlib weights: {e}", file=sys.stderr)
        return 1
    bar.close()
    print(path)
    return 0
