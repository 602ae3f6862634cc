"""``python -m paperlib model-summary``: parameters per component and FLOPs per clip."""

from __future__ import annotations

import argparse
import json

from paperlib.commands import LazyChoices


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperlib model-summary", description=__doc__)
    parser.add_argument("--variant", type=LazyChoices("paperlib.model.sparsesync", "VARIANTS"), default="sparsesync",
                        metavar="VARIANT", help="sparsesync (default) | transformer (no selectors) | avst_dec")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--backbone", type=LazyChoices("paperlib.model.backbones", "BACKBONES"), default="paper",
                        metavar="BACKBONE",
                        help="paper (S3D + ResNet18, default) | small (the CPU profiles' extractors)")
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="other ModelConfig fields, e.g. d_model=128 geometry.clip_sec=2 geometry.crop=240")
    parser.add_argument("--no-flops", action="store_true", help="parameters only")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    from paperlib.core.config import apply_overrides
    from paperlib.core.geometry import Geometry
    from paperlib.model.sparsesync import ModelConfig, model_summary

    cfg = ModelConfig(geometry=Geometry.for_classes(args.classes), variant=args.variant, depth=args.depth,
                      backbone=args.backbone)
    cfg = apply_overrides(cfg, args.set)
    summary = model_summary(cfg, flops=not args.no_flops)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"{cfg.variant} depth={cfg.depth} backbone={cfg.backbone} classes={cfg.geometry.num_classes} D={cfg.d_model}")
    print(f"inputs {summary['input_shapes']}  token grid {summary['token_grid']}")
    print("parameters:")
    for k, v in summary["params"].items():
        print(f"  {k:<18}{v:>14,}")
    if "flops_forward" in summary:
        print("GFLOPs per clip (forward):")
        for k, v in summary["flops_forward"].items():
            print(f"  {k:<18}{v / 1e9:>14.2f}")
        print(f"  {'train step':<18}{summary['flops_train_step']['total'] / 1e9:>14.2f}  (forward + backward)")
    return 0
