"""``python -m paperlib prepare SRC DST --dataset lrs3|vggsound|folder [--workers N]``: re-encode a dataset once."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from paperlib.data.prepare import EncodeSettings, prepare


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib prepare",
                                description="re-encode a dataset to 25 fps H.264 (short side 256, CRF 10) + AAC 16 kHz "
                                            "mono; resumable, with a failure report and a manifest")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--dataset", required=True, choices=["lrs3", "vggsound", "folder"])
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes (0: in-process)")
    p.add_argument("--side", type=int, default=256, help="short side in px (official: 256; 224 for face crops)")
    p.add_argument("--crf", type=int, default=10)
    p.add_argument("--gop", type=int, default=None, help="key-frame interval (default: the encoder's, as official)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = prepare(args.src, args.dst, args.dataset, workers=args.workers,
                     settings=EncodeSettings(side=args.side, crf=args.crf, gop=args.gop), progress=not args.no_progress)
    print(f"{report['ok']} written, {report['skipped']} already done, {report['failed']} failed; "
          f"report: {Path(args.dst) / 'prepare_report.json'}")
    return 1 if report["failed"] else 0
