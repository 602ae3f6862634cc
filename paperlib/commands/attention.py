"""``python -m paperlib attention VIDEO --checkpoint CKPT --out DIR``: selector attention maps of one window of a
real video (:func:`paperlib.studies.attention.video_attention`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paperlib attention",
        description="Selector attention maps of one window of a real video: overlays (png/pdf) and the raw maps (npz).")
    parser.add_argument("video", help="a video with sound (any container, fps, size, sample rate)")
    parser.add_argument("--checkpoint", required=True, help="paperlib or official SparseSync checkpoint")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--layer", type=int, default=None, help="selector layer of the figure (default: last)")
    parser.add_argument("--head", type=int, default=None, help="head of the figure (default: the most peaked)")
    parser.add_argument("--selector", type=int, default=None, help="one selector (default: mean over selectors)")
    parser.add_argument("--v-start", type=float, default=0.0, help="window start in the video (s)")
    parser.add_argument("--inject-offset", type=float, default=0.0, help="audio starts this much later (s)")
    parser.add_argument("--frames", type=int, default=8, help="frames shown in the figure")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    from paperlib.core.media import MediaError
    from paperlib.studies.attention import video_attention

    path = Path(args.video)
    if not path.is_file():
        print(f"paperlib attention: {path}: no such file", file=sys.stderr)
        return 2
    try:
        npz, *figures = video_attention(args.checkpoint, path, args.out, layer=args.layer, head=args.head,
                                        selector=args.selector, v_start=args.v_start,
                                        inject_offset=args.inject_offset, n_frames=args.frames, device=args.device)
    except MediaError as e:
        print(f"paperlib attention: {e}", file=sys.stderr)
        return 1
    print(f"wrote {npz} and {', '.join(str(p) for p in figures)}")
    return 0
