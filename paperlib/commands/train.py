"""``python -m paperlib train``: train a model from a preset, a resolved config file, or resume a run.

    python -m paperlib train --preset NAME [key=value ...]
    python -m paperlib train --config RUN/config.json [key=value ...]   # a resolved config (what the campaign writes)
    python -m paperlib train --resume RUN_DIR|RUN_DIR/checkpoints/NAME.pt [key=value ...]

Every form runs under torchrun too (``torchrun --nproc_per_node N -m paperlib train ...``): see
:mod:`paperlib.engine.train` for multi-GPU and multi-node use.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib train",
                                description="Training engine: one training run from its configuration to results.json.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Presets: paperlib.engine.config.PRESETS (README, 'Training, evaluation, "
                                       "prediction'); an unknown --preset lists them.")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.max_steps=100 "
                                                     "model.geometry.num_classes=3")
    p.add_argument("--preset", default=None, help="named preset (see paperlib.engine.config.PRESETS)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a resolved run config (JSON, e.g. a run's config.json); overrides apply on top")
    p.add_argument("--resume", default=None,
                   help="run directory, or a checkpoint in a run directory's checkpoints/, to resume (its config "
                        "is used)")
    p.add_argument("--init-from", default=None, help="fine-tune from a paperlib or official checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    args = p.parse_args(argv)
    import torch.distributed as dist  # the library (and torch) only once the arguments are parsed: fast --help

    from paperlib.core.config import to_dict
    from paperlib.core.io import FolderBusyError
    from paperlib.engine import runs, train
    from paperlib.model.weights import CheckpointError

    try:
        cfg = train.resolve_train_config(preset=args.preset, config_file=args.config, resume=args.resume,
                                         overrides=args.overrides, init_from=args.init_from)
    except (KeyError, ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        print(f"paperlib train: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    if not cfg.train.resume and not getattr(cfg.data, "root", "x"):
        print("paperlib train: data.root is not set (e.g. data.root=/data/lrs3; `python -m paperlib synth` makes a "
              "synthetic set)", file=sys.stderr)
        return 2
    try:
        run_dir = train.fit(cfg)
    except (FileNotFoundError, FolderBusyError, CheckpointError, ValueError) as e:
        # a data root without the expected layout, a run another process trains, an unreadable or corrupt
        # checkpoint (resume, init-from), weights that do not fit: each named, and no run folder left behind
        print(f"paperlib train: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a write that failed (full disk, quota, read-only folder): the file and the cause named
        print(f"paperlib train: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        if not train.is_collective_failure(e):
            raise
        text = str(e).strip()
        first = text.splitlines()[0] if text else type(e).__name__
        print(f"paperlib train: rank {dist.get_rank()}: a distributed collective failed ({first}); another rank died "
              f"or did not answer within train.ddp_timeout_s={cfg.train.ddp_timeout_s:g} s. Resume with "
              "python -m paperlib train --resume RUN_DIR", file=sys.stderr)
        return 1
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(f"run directory: {run_dir}")
        res = run_dir / runs.RESULTS_FILE
        if res.is_file():
            r = json.loads(res.read_text())
            test = r.get("test") or {}
            print(f"stopped: {r['stop_reason']} after {r['steps']} steps; best valid {cfg.train.early_stop_metric} "
                  f"{r.get('best_valid_' + cfg.train.early_stop_metric)}; test accuracy_1 {test.get('accuracy_1')} "
                  f"accuracy_1_tol1 {test.get('accuracy_1_tol1')}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
