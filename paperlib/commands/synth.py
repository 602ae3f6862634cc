"""``python -m paperlib synth``: generate the built-in synthetic benchmark, render examples, print oracle/baselines."""

from __future__ import annotations

import argparse
import json

from paperlib.core.config import apply_overrides
from paperlib.data import synthetic
from paperlib.data.synthetic import SETTINGS, SynthConfig


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib synth", description=synthetic.__doc__.split("\n\n")[0])
    p.add_argument("dst", nargs="?", help="output folder (the dataset root)")
    p.add_argument("--setting", choices=SETTINGS, default="dense-crop")
    p.add_argument("--clips", type=int, default=400, help="number of clips")
    p.add_argument("--size", type=int, default=64, help="frame side in px (256 = paper geometry)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    p.add_argument("--crf", type=int, default=SynthConfig.crf, help="libx264 CRF")
    p.add_argument("--clips-per-video", type=int, default=SynthConfig.clips_per_video)
    p.add_argument("--examples", metavar="OUT.png", help="render sample frames + spectrograms of each setting")
    p.add_argument("--oracle", action="store_true", help="print the oracle fraction of random test items of DST")
    p.add_argument("--xcorr", action="store_true",
                   help="print the non-learned cross-correlation baseline on random test items of DST (21 classes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a SynthConfig field, e.g. --set event_count_probs=[0,0.15,0.35,0.5]")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.examples:
        print(synthetic.render_examples(a.examples, size=a.size, seed=a.seed))
    if a.dst is None:
        if not a.examples:
            p.error("DST is required unless --examples is given")
        return 0
    cfg = SynthConfig(setting=a.setting, size=a.size, seed=a.seed, crf=a.crf, clips_per_video=a.clips_per_video)
    try:
        cfg = apply_overrides(cfg, a.overrides).validate()
    except (KeyError, TypeError, ValueError) as e:
        p.error(str(e))
    root = synthetic.generate(cfg, a.dst, a.clips, workers=a.workers, progress=not a.no_progress)
    last = json.loads((root / "synth.json").read_text())["last_run"]
    print(f"{root}: {a.clips} clips ({last['generated']} new, {last['seconds']} s, {last['clips_per_sec']} clips/s)")
    ids = (root / ("vggsound_sparse_test.txt" if a.setting == "sparse" else "lrs3_test.txt")).read_text().split()
    if a.oracle:
        for nc, mo in ((21, 2.0), (3, 1.0)):
            items = synthetic.sample_items(ids, per_clip=8, max_off_sec=mo, num_classes=nc)
            r = synthetic.oracle_fraction(root, items)
            print(f"oracle {a.setting} {nc} classes, 5-s windows: {r['fraction']:.3f} with a cue over {r['n']} items "
                  f"(top-1 ceiling {r['ceiling_top1']:.3f})")
    if a.xcorr:
        items = synthetic.sample_items(ids, per_clip=8)
        for use_box in (True, False):
            r = synthetic.xcorr_baseline(root, items, use_box=use_box, progress=not a.no_progress)
            print(f"xcorr {a.setting} ({'source box' if use_box else 'whole frame'}), 21 classes over {r['n']} items: "
                  f"top-1 {r['top1']:.3f}, +-1 {r['top1_tol1']:.3f}; with a cue {r['top1_with_cue']:.3f}, "
                  f"without {r['top1_without_cue']:.3f} (cue share {r['cue_fraction']:.3f})")
    return 0
