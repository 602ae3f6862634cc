"""Command-line entry point: ``python -m paperlib <command> [args]``.

Each command is a module of this package (``paperlib.commands.<module>``) with ``main(argv: list[str]) -> int``: it
parses the command line (argparse lives here only), calls the typed library functions and prints. Modules are imported
lazily so that ``--help`` is instant and a broken optional path cannot break the others; a command module imports the
library (and so torch, ~5-10 s) only after its arguments are parsed, and checks option values listed in the library
through :class:`LazyChoices`, so that ``--help`` never imports torch (each ``--help`` returns in well under 2 s).
"""

from __future__ import annotations

import importlib
import sys

# command -> (module under paperlib.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "model-summary": ("model_summary", "parameters per component and FLOPs per clip"),
    "prepare": ("prepare", "re-encode a dataset to 25 fps H.264 + AAC 16 kHz mono"),
    "datasets": ("datasets", "dataset utilities (fetch-protocol, ...)"),
    "synth": ("synth", "generate the built-in synthetic benchmark"),
    "train": ("train", "train a model (torchrun-compatible)"),
    "evaluate": ("evaluate", "evaluate a checkpoint"),
    "plateau": ("plateau", "one run of the plateau study (levers off the chance loss)"),
    "plateau-study": ("plateau_study", "steps each arm needs to leave chance, with and without upstream weights"),
    "predict": ("predict", "predict the audio-visual offset of videos"),
    "weights": ("weights", "list or download (explicitly) the authors' released checkpoints"),
    "leakage": ("leakage", "codec-leakage (start-time) probe"),
    "attention": ("attention", "selector attention maps for a video"),
    "campaign": ("campaign", "train or reuse the cached runs behind the training tables"),
    "sparse-recipe": ("sparse_recipe", "data and scoring of the plateau recipe's sparse step"),
    "reproduce": ("reproduce", "regenerate the paper's tables and figures"),
    "report": ("report", "rebuild a committed results folder's report from its run files"),
}


class LazyChoices:
    """An argparse ``type`` that accepts only the values of a library module's attribute, read when a value is
    checked, not when help is printed (argparse iterates ``choices`` to print help, which would import the module and
    torch). An invalid value is refused with the full list; give the argument a ``metavar`` and a help text."""

    def __init__(self, module: str, attribute: str):
        self.module, self.attribute = module, attribute
        self.__name__ = attribute.lower()  # argparse names the type in some messages

    def __call__(self, value: str) -> str:
        import argparse

        allowed = tuple(getattr(importlib.import_module(self.module), self.attribute))
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from "
                                             f"{', '.join(repr(a) for a in allowed)})")
        return value


def _usage() -> str:
    lines = ["usage: python -m paperlib <command> [args]", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()]
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
    try:
        module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    except ImportError as e:
        print(f"paperlib: command {name!r} is not available in this build ({e})", file=sys.stderr)
        return 2
    return int(module.main(rest) or 0)
