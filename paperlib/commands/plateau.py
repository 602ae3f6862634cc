"""``python -m paperlib plateau --name NAME [--data ...] [levers]``: one run of the plateau study
(:mod:`paperlib.engine.plateau`), appended to ``<out>/table.jsonl``."""

from __future__ import annotations

import argparse
import os

from paperlib.commands import LazyChoices


def main(argv: list[str]) -> int:
    # options not given are left out (SUPPRESS), so that PlateauConfig's own defaults apply: --help needs no torch
    p = argparse.ArgumentParser(prog="python -m paperlib plateau", argument_default=argparse.SUPPRESS,
                                description="Plateau study: one run per lever, the paper's architecture at the small "
                                            "CPU size, minutes each (defaults: paperlib.engine.plateau.PlateauConfig).")
    DATA = LazyChoices("paperlib.engine.plateau", "DATA")
    VARIANTS = LazyChoices("paperlib.engine.plateau", "VARIANTS")
    INITS = LazyChoices("paperlib.engine.plateau", "INITS")
    p.add_argument("--name", required=True)
    p.add_argument("--lever", help="label of the table row (default: --name)")
    p.add_argument("--data", type=DATA, metavar="DATA", help="tokens | dense-crop (default) | dense-wide | sparse")
    p.add_argument("--variant", type=VARIANTS, metavar="VARIANT",
                   help="sparsesync (default) | transformer | avst_dec")
    p.add_argument("--minutes", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--classes", type=int)
    p.add_argument("--max-off", type=float)
    p.add_argument("--clip-sec", type=float)
    p.add_argument("--size", type=int, help="synthetic frame side (px)")
    p.add_argument("--crop", type=int)
    p.add_argument("--d-model", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--depth", type=int)
    p.add_argument("--selectors", type=int)
    p.add_argument("--dropout", type=float)
    p.add_argument("--init", type=INITS, metavar="INIT", help="official (default) | anchor | anchor-sel")
    p.add_argument("--aux", type=float, help="weight of the auxiliary cross-correlation loss (0: off)")
    p.add_argument("--sync-aux", type=float, help="weight of the sync-attention lag loss (0: off)")
    p.add_argument("--modality-flag", type=float,
                   help="anchor init: cross-modal logit bonus (0: off)")
    p.add_argument("--sync-identity-qk", type=float,
                   help="anchor init: identity q/k in sync block 0")
    p.add_argument("--sync-code-gain", type=float,
                   help="anchor init: sync input gain on code channels")
    p.add_argument("--aux-hold", type=int)
    p.add_argument("--aux-decay", type=int)
    p.add_argument("--main-after", type=int,
                   help="main loss off for the first N steps (aux pre-training)")
    p.add_argument("--curriculum-classes", type=int,
                   help="train on this many grid offsets first (0: off)")
    p.add_argument("--curriculum-steps", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--aligned", type=int, help="tokens: same content direction in both modalities")
    p.add_argument("--all-cells", type=int, help="tokens: the visual signal in every spatial cell")
    p.add_argument("--train-clips", type=int)
    p.add_argument("--test-clips", type=int)
    p.add_argument("--test-per-clip", type=int)
    p.add_argument("--test-items", type=int, help="tokens: test items")
    p.add_argument("--seed", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--cache", help="clip cache folder ('' for none)")
    p.add_argument("--out")
    p.add_argument("--save", action="store_true")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from paperlib.engine import plateau

    plateau.run(plateau.PlateauConfig(**vars(args)))
    return 0
