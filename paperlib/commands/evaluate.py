"""``python -m paperlib evaluate --checkpoint CKPT [--split test] [data.key=value ...]``: the Sec. 5 metrics of a
paperlib or official checkpoint on a split."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib evaluate",
                                description="Evaluate a paperlib or official checkpoint on a split (Sec. 5 metrics).")
    p.add_argument("overrides", nargs="*", help="data overrides, e.g. data.root=/data/lrs3 data.iter_times=25")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--preset", default=None, help="take the data config from this run preset (e.g. for official files)")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--json", default=None, metavar="OUT", help="write the metrics (with per-class detail) as JSON")
    args = p.parse_args(argv)
    import torch

    from paperlib.core.io import write_json_atomic
    from paperlib.core.provenance import env_info
    from paperlib.data.datasets import build_dataset
    from paperlib.engine.evaluate import checkpoint_data_config, evaluate_dataset
    from paperlib.model.checkpoints import load_model
    from paperlib.model.sparsesync import to_channels_last
    from paperlib.model.weights import CheckpointError

    path = Path(args.checkpoint)
    try:
        model, mcfg = load_model(path)
        dcfg = checkpoint_data_config(path, mcfg, args.preset, args.overrides)
        ds = build_dataset(dcfg, mcfg.geometry, args.split, seed=args.seed)
    except (CheckpointError, KeyError, ValueError, TypeError, OSError) as e:
        print(f"paperlib evaluate: {e}", file=sys.stderr)
        return 2
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    passes = dcfg.iter_times if not dcfg.fixed_offsets else 1
    model = to_channels_last(model.to(device))  # predict's fastest layout; the logits stay within 1e-4
    res = evaluate_dataset(model, ds, passes, args.batch_size, args.num_workers, device,
                           mcfg.geometry.num_classes,
                           args.precision, progress=True, desc=args.split)
    for k in ("accuracy_1", "accuracy_5", "accuracy_1_tol1", "accuracy_5_tol1", "loss"):
        std = f" +- {res[k + '_std']:.4f}" if f"{k}_std" in res else ""
        print(f"{args.split} {k}: {res[k]:.4f}{std}")
    print(f"{args.split} items: {int(res['n'])} x {passes} pass(es)")
    if args.json:
        write_json_atomic(args.json, {"checkpoint": str(path), "split": args.split,
                                      "data": json.loads(json.dumps(dataclasses.asdict(dcfg))),
                                      "geometry": dataclasses.asdict(mcfg.geometry), "metrics": res,
                                      "env": env_info(str(device))})
    return 0
