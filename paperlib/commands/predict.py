"""``python -m paperlib predict VIDEO... --checkpoint CKPT``: the audio-visual offset of videos (see
:mod:`paperlib.studies.predict`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paperlib.core.media import MediaError
from paperlib.studies import predict


def _write(out: str, text: str) -> None:
    """Write ``text`` to the file ``out`` (its folder created), or to stdout when ``out`` is ``-``."""
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib predict", description=predict.__doc__.split("\n\n")[0])
    p.add_argument("videos", nargs="+", help="video files (any container/fps/size/sample rate/channels)")
    p.add_argument("--checkpoint", required=True, help="paperlib or official SparseSync checkpoint")
    p.add_argument("--window", type=float, default=None, help="window length in s (default: the model's, e.g. 5)")
    p.add_argument("--stride", type=float, default=None, help="s between window starts (default: the window length)")
    p.add_argument("--inject-offset", type=float, default=0.0,
                   help="shift the audio window X s later in the file (positive: audio leads), as the official demo")
    p.add_argument("--v-start", type=float, default=None, help="classify only the window starting here (s)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--short-side", type=int, default=None,
                   help="px of the short side before the centre crop (default: the run's data.resize_short, else "
                        "crop x 256/224 as the paper's 256 px clips; set it when the training clips had another size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="fp32 (default: logits within 1e-4 of the plain forward) or bf16 autocast (faster on CPUs "
                        "with bf16 units; logits differ by ~1e-3)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", default=None, metavar="OUT", help="write all results as JSON ('-' for stdout)")
    out.add_argument("--csv", default=None, metavar="OUT", help="write per-window and aggregate rows as CSV")
    args = p.parse_args(argv)
    try:
        pred = predict.load_predictor(args.checkpoint, args.device, args.short_side, precision=args.precision)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"paperlib predict: {e}", file=sys.stderr)
        return 2
    results, failed = [], 0
    for v in args.videos:
        try:
            r = predict.predict_video(pred, v, args.window, args.stride, args.inject_offset, args.v_start, args.top_k)
        except (MediaError, ValueError, OSError) as e:
            print(f"paperlib predict: {e}", file=sys.stderr)
            failed += 1
            continue
        results.append(r)
        if args.json != "-" and args.csv != "-":
            print(r["summary"])
            for t in r["topk"]:
                print(f"    p={t['prob']:.4f}  offset {t['offset_sec']:+.2f} s  (class {t['class']})")
    if args.json:
        _write(args.json, json.dumps(results, indent=2) + "\n")
    elif args.csv:
        _write(args.csv, predict.results_csv(results))
    return 1 if failed else 0
