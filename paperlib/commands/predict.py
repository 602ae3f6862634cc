"""``python -m paperlib predict VIDEO... --checkpoint CKPT``: the audio-visual offset of videos (see
:mod:`paperlib.studies.predict`). torch is imported only once the arguments are parsed, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """Offset prediction for arbitrary videos: sliding windows, per-window and aggregated offsets, how much
the model knows (certainty and margin against a model at chance; "uncertain" instead of a verdict below
--min-certainty), and how to fix the file. No model is shipped: train one (README) or fetch the authors' with
`python -m paperlib weights fetch NAME` (README, "Models")."""

MIN_CERTAINTY = 0.10  # paperlib.studies.predict.MIN_CERTAINTY (kept here so that --help does not import torch)


def _write(out: str, text: str) -> None:
    """Write ``text`` to the file ``out`` atomically (the old file stays until the new one is complete), or to stdout
    when ``out`` is ``-``."""
    from paperlib.core.io import write_text_atomic

    if out == "-":
        sys.stdout.write(text)
    else:
        write_text_atomic(out, text)


def released_path(checkpoint: str) -> str | None:
    """``checkpoint`` itself when it is a file (or not a released name), else the fetched file of the released
    checkpoint it names; None, with the fetch command printed, when that file has not been fetched (nothing is
    downloaded here)."""
    from pathlib import Path

    from paperlib.model import released

    if Path(checkpoint).exists():
        return checkpoint
    try:
        entry = released.lookup(checkpoint)
    except KeyError:
        return checkpoint  # not a released name: load_predictor names the missing file
    path = released.cache_dir() / f"{entry.id}.pt"
    if not path.is_file():
        print(f"paperlib predict: the released checkpoint {entry.name} ({entry.id}) is not in {path.parent}; "
              f"download it first: python -m paperlib weights fetch {entry.name}", file=sys.stderr)
        return None
    return str(path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m paperlib predict", description=DESCRIPTION)
    p.add_argument("videos", nargs="+", help="video files (any container/fps/size/sample rate/channels)")
    p.add_argument("--checkpoint", required=True,
                   help="a paperlib or official SparseSync checkpoint file, or the name of one of the authors' "
                        "released checkpoints once fetched (python -m paperlib weights list | fetch NAME)")
    p.add_argument("--window", type=float, default=None, help="window length in s (default: the model's, e.g. 5)")
    p.add_argument("--stride", type=float, default=None, help="s between window starts (default: the window length)")
    p.add_argument("--inject-offset", type=float, default=0.0,
                   help="shift the audio window X s later in the file (positive: audio leads), as the official demo")
    p.add_argument("--v-start", type=float, default=None, help="classify only the window starting here (s)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--min-certainty", type=float, default=MIN_CERTAINTY,
                   help="below this certainty (1 - entropy / ln C of the clip's offset distribution: 0 = a model at "
                        f"chance, 1 = all probability on one offset) a clip is 'uncertain' (default {MIN_CERTAINTY})")
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar over the files")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from tqdm.auto import tqdm

    from paperlib.core.media import MediaError
    from paperlib.studies import predict

    checkpoint = released_path(args.checkpoint)
    if checkpoint is None:
        return 2
    try:
        pred = predict.load_predictor(checkpoint, args.device, args.short_side, precision=args.precision)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"paperlib predict: {e}", file=sys.stderr)
        return 2
    if pred.warning:
        print(f"paperlib predict: warning: {pred.warning}", file=sys.stderr)
    quiet = args.json == "-" or args.csv == "-"
    results, failed = [], 0
    bar = tqdm(args.videos, desc="predict", unit="file", disable=args.no_progress or len(args.videos) < 2,
               file=sys.stderr, dynamic_ncols=True)
    for v in bar:
        try:
            r = predict.predict_video(pred, v, args.window, args.stride, args.inject_offset, args.v_start, args.top_k,
                                      min_certainty=args.min_certainty)
        except predict.ModelOutputError as e:  # every further file would fail alike
            bar.close()
            print(f"paperlib predict: {e}", file=sys.stderr)
            return 2
        except (MediaError, ValueError, OSError) as e:
            bar.write(f"paperlib predict: {predict.display_path(str(e))}", file=sys.stderr)
            failed += 1
            continue
        results.append(r)
        if not quiet:
            lines = [r["summary"]] + [f"    p={t['prob']:.4f}  offset {t['offset_sec']:+.2f} s  (class {t['class']})"
                                      for t in r["topk"]]
            bar.write("\n".join(lines), file=sys.stdout)
    bar.close()
    try:
        if args.json:
            _write(args.json, json.dumps(results, indent=2) + "\n")
        elif args.csv:
            _write(args.csv, predict.results_csv(results))
    except OSError as e:
        print(f"paperlib predict: could not write {args.json or args.csv} (the previous file, if any, is kept): {e}",
              file=sys.stderr)
        return 2
    return 1 if failed else 0
