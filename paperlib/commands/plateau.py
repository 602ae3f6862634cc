"""``python -m paperlib plateau --name NAME [--data ...] [levers]``: one run of the plateau study
(:mod:`paperlib.engine.plateau`), appended to ``<out>/table.jsonl``."""

from __future__ import annotations

import argparse
import os

from paperlib.engine import plateau
from paperlib.engine.plateau import DATA, INITS, VARIANTS, PlateauConfig

D = PlateauConfig  # field defaults, read as class attributes


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m paperlib plateau", description=plateau.__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--lever", default=D.lever, help="label of the table row (default: --name)")
    p.add_argument("--data", default=D.data, choices=DATA)
    p.add_argument("--variant", default=D.variant, choices=VARIANTS)
    p.add_argument("--minutes", type=float, default=D.minutes)
    p.add_argument("--max-steps", type=int, default=D.max_steps)
    p.add_argument("--classes", type=int, default=D.classes)
    p.add_argument("--max-off", type=float, default=D.max_off)
    p.add_argument("--clip-sec", type=float, default=D.clip_sec)
    p.add_argument("--size", type=int, default=D.size, help="synthetic frame side (px)")
    p.add_argument("--crop", type=int, default=D.crop)
    p.add_argument("--d-model", type=int, default=D.d_model)
    p.add_argument("--heads", type=int, default=D.heads)
    p.add_argument("--depth", type=int, default=D.depth)
    p.add_argument("--selectors", type=int, default=D.selectors)
    p.add_argument("--dropout", type=float, default=D.dropout)
    p.add_argument("--init", default=D.init, choices=INITS)
    p.add_argument("--aux", type=float, default=D.aux, help="weight of the auxiliary cross-correlation loss (0: off)")
    p.add_argument("--sync-aux", type=float, default=D.sync_aux, help="weight of the sync-attention lag loss (0: off)")
    p.add_argument("--modality-flag", type=float, default=D.modality_flag,
                   help="anchor init: cross-modal logit bonus (0: off)")
    p.add_argument("--sync-identity-qk", type=float, default=D.sync_identity_qk,
                   help="anchor init: identity q/k in sync block 0")
    p.add_argument("--sync-code-gain", type=float, default=D.sync_code_gain,
                   help="anchor init: sync input gain on code channels")
    p.add_argument("--aux-hold", type=int, default=D.aux_hold)
    p.add_argument("--aux-decay", type=int, default=D.aux_decay)
    p.add_argument("--main-after", type=int, default=D.main_after,
                   help="main loss off for the first N steps (aux pre-training)")
    p.add_argument("--curriculum-classes", type=int, default=D.curriculum_classes,
                   help="train on this many grid offsets first (0: off)")
    p.add_argument("--curriculum-steps", type=int, default=D.curriculum_steps)
    p.add_argument("--lr", type=float, default=D.lr)
    p.add_argument("--warmup", type=int, default=D.warmup)
    p.add_argument("--batch", type=int, default=D.batch)
    p.add_argument("--aligned", type=int, default=D.aligned, help="tokens: same content direction in both modalities")
    p.add_argument("--all-cells", type=int, default=D.all_cells, help="tokens: the visual signal in every spatial cell")
    p.add_argument("--train-clips", type=int, default=D.train_clips)
    p.add_argument("--test-clips", type=int, default=D.test_clips)
    p.add_argument("--test-per-clip", type=int, default=D.test_per_clip)
    p.add_argument("--test-items", type=int, default=D.test_items, help="tokens: test items")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--log-every", type=int, default=D.log_every)
    p.add_argument("--eval-every", type=int, default=D.eval_every)
    p.add_argument("--cache", default=D.cache, help="clip cache folder ('' for none)")
    p.add_argument("--out", default=D.out)
    p.add_argument("--save", action="store_true")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    plateau.run(PlateauConfig(**vars(args)))
    return 0
