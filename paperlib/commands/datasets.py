"""``python -m paperlib datasets {fetch-protocol,make-offsets,summary,check} ...``: dataset utilities."""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperlib datasets", description="dataset utilities")
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch-protocol", help="download the authors' split lists, class list, filters, fixed offsets")
    f.add_argument("--root", required=True)
    f.add_argument("--dataset", default="lrs3", choices=["lrs3", "vggsound", "vggsound_sparse"])
    f.add_argument("--list", action="store_true", help="print the URLs and exit")
    for name, helptext in (("make-offsets", "generate a fixed-offset CSV for a split"),
                           ("summary", "count clips (and classes) per split"),
                           ("check", "what the folder holds for a run, as the paper profile checks it before it "
                                     "trains: split lists, annotation, filter and fixed-offset CSVs, clips on disk")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--root", required=True)
        p.add_argument("--dataset", default="lrs3", choices=["lrs3", "vggsound", "vggsound_sparse", "folder"])
        p.add_argument("--num-classes", type=int, default=21)
        p.add_argument("--max-off-sec", type=float, default=2.0)
        p.add_argument("--clip-sec", type=float, default=5.0)
        p.add_argument("--min-clip-sec", type=float, default=9.0)
        p.add_argument("--splits", nargs="+", default=["valid", "test"])
        p.add_argument("--seed", type=int, default=None,
                       help="seed of the offsets (default: paperlib.data.datasets.FIXED_OFFSET_SEED)")
    args = parser.parse_args(argv)
    from paperlib.core.geometry import Geometry
    from paperlib.data.datasets import (FIXED_OFFSET_SEED, DataConfig, fetch_protocol, make_fixed_offsets,
                                        protocol_files, records_for)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "fetch-protocol":
        if args.list:
            for url, rel in protocol_files(args.dataset):
                print(f"{url} -> {rel}")
            return 0
        status = fetch_protocol(args.root, args.dataset)
        failed = {k: v for k, v in status.items() if v.startswith("failed")}
        for k, v in status.items():
            print(f"{v:<12.60} {k}")
        if failed:
            print(f"{len(failed)} of {len(status)} files could not be downloaded (no internet?)")
            return 1
        return 0
    geo = Geometry(num_classes=args.num_classes, max_off_sec=args.max_off_sec, clip_sec=args.clip_sec)
    cfg = DataConfig(dataset=args.dataset, root=args.root, min_clip_sec=args.min_clip_sec).validate(geo)
    if args.cmd == "check":
        from paperlib.data.protocol import check_data_inputs
        from paperlib.paper.inputs import input_table

        splits = ("train", *[s for s in args.splits if s != "train"])
        rows = check_data_inputs(cfg, geo, splits, eval_splits=[s for s in splits if s != "train"])
        print(input_table(rows))
        for r in rows:
            if r.problem:
                print(f"problem: {r.problem}")
        return 1 if any(r.problem for r in rows) else 0
    if args.cmd == "make-offsets":
        for s in args.splits:
            print(make_fixed_offsets(cfg, geo, s, seed=FIXED_OFFSET_SEED if args.seed is None else args.seed))
        return 0
    for s in args.splits:
        recs = records_for(cfg, s)
        print(f"{cfg.dataset}/{s}: {len(recs)} clips" + (f", {len(set(r.label for r in recs))} classes"
                                                          if recs and recs[0].label >= 0 else ""))
    return 0
