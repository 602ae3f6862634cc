"""Command-line entry point: ``python -m paperlib <command> [args]``.

Each command lives in the module that implements it, as a function ``cli(argv: list[str]) -> int``;
modules are imported lazily so that ``--help`` is instant and a broken optional path cannot break the others.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "model-summary": ("paperlib.model.sparsesync", "cli", "parameters per component and FLOPs per clip"),
    "prepare": ("paperlib.data.prepare", "prepare_cli", "re-encode a dataset to 25 fps H.264 + AAC 16 kHz mono"),
    "datasets": ("paperlib.data.datasets", "datasets_cli", "dataset utilities (fetch-protocol, ...)"),
    "synth": ("paperlib.data.synthetic", "cli", "generate the built-in synthetic benchmark"),
    "train": ("paperlib.engine.train", "cli", "train a model (torchrun-compatible)"),
    "evaluate": ("paperlib.engine.evaluate", "cli", "evaluate a checkpoint"),
    "predict": ("paperlib.studies.predict", "cli", "predict the audio-visual offset of videos"),
    "leakage": ("paperlib.studies.leakage", "cli", "codec-leakage (start-time) probe"),
    "attention": ("paperlib.studies.attention", "cli", "selector attention maps for a video"),
    "campaign": ("paperlib.paper.campaign", "cli", "train or reuse the cached runs behind the training tables"),
    "reproduce": ("paperlib.paper.reproduce", "reproduce_cli", "regenerate the paper's tables and figures"),
}


def _usage() -> str:
    lines = ["usage: python -m paperlib <command> [args]", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"paperlib: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
        func = getattr(module, func_name)
    except (ImportError, AttributeError) as e:
        print(f"paperlib: command {name!r} is not available in this build ({e})", file=sys.stderr)
        return 2
    return int(func(rest) or 0)
