"""The check that each artefact notebook runs right after its parameters (and papermill's injected ones).

papermill passes every ``-p NAME VALUE`` to a notebook, declared or not, and only prints "Passed unknown parameter";
a misspelt name (``-p profil smoke``) therefore runs the default instead, which can be a 41-minute campaign. The
check fails at once instead, naming the unknown names and the notebook's declared parameters, and validates each
declared value's type and range (``-p seed notanumber`` is an error naming ``seed``, not a ``TypeError`` deep inside
the run).

Unknown names are the user-level names of the namespace (what IPython's ``%who`` lists: not starting with ``_``,
not set up by IPython itself; and not modules, functions or classes, which are imports, never parameters) minus the
declared parameters and the names the notebook's own cells bind (a second "Run All" in JupyterLab finds those already
set). Nothing here imports torch, so the check runs in the kernel's first second.
"""

from __future__ import annotations

import re
import types
from typing import Any, Callable, Mapping, Sequence

PROFILES = ("smoke", "mini", "full", "paper")
RECIPES = ("", "on", "off")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")

# names a plain (non-IPython) namespace may hold besides the user's; IPython's own are in ``user_ns_hidden``
_INTERPRETER_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open", "display"})


class NotebookParameterError(ValueError):
    """An undeclared parameter name or a declared parameter with a value of the wrong type or range."""


def _text(name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return None
    return f"{name} must be text, got {value!r} ({type(value).__name__})"


def _int(minimum: int | None) -> Callable[[str, Any], str | None]:
    def check(name: str, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number, got {value!r} ({type(value).__name__})"
        if minimum is not None and value < minimum:
            return f"{name} must be >= {minimum}, got {value}"
        return None
    return check


def _choice(options: Sequence[str]) -> Callable[[str, Any], str | None]:
    def check(name: str, value: Any) -> str | None:
        if value not in options:
            return f"{name} must be one of {', '.join(repr(o) for o in options)}, got {value!r}"
        return None
    return check


def _device(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not _DEVICE_RE.match(value):
        return f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}"
    return None


# every parameter an artefact notebook may declare -> the check of its value (None when valid, else the problem)
RULES: dict[str, Callable[[str, Any], str | None]] = {
    "profile": _choice(PROFILES),
    "seed": _int(0),
    "device": _device,
    "data_root": _text,
    "checkpoint": _text,
    "gpus": _int(0),
    "recipe": _choice(RECIPES),
    "overrides": _text,
    "figures_root": _text,
    "runs_root": _text,
}


def user_names(namespace: Mapping[str, Any]) -> set[str]:
    """The names a user or papermill set in ``namespace`` (an IPython kernel's globals, or a plain dict)."""
    hidden: set[str] = set(_INTERPRETER_NAMES)
    shell = namespace.get("get_ipython")
    if callable(shell):
        try:
            hidden |= set(getattr(shell(), "user_ns_hidden", ()) or ())
        except Exception:  # not inside a running shell: only the fixed names are hidden
            pass
    return {k for k, v in namespace.items()  # parameters are literals: modules, functions and classes are imports
            if not k.startswith("_") and k not in hidden and not isinstance(v, types.ModuleType) and not callable(v)}


def check_parameters(namespace: Mapping[str, Any], declared: Sequence[str], notebook_names: Sequence[str] = (),
                     notebook: str = "this notebook") -> None:
    """Raise :class:`NotebookParameterError` when ``namespace`` holds a name that is neither a ``declared``
    parameter nor one of ``notebook_names`` (bound by the notebook's own cells), or when a declared parameter is
    missing or its value breaks its rule in :data:`RULES`. One error lists every problem and the declared
    parameters with their current values."""
    unknown_rule = [d for d in declared if d not in RULES]
    if unknown_rule:
        raise NotebookParameterError(f"{notebook}: no rule for the declared parameters {unknown_rule} "
                                     f"(paperlib.paper.notebook_parameters.RULES)")
    problems = []
    unknown = sorted(user_names(namespace) - set(declared) - set(notebook_names))
    if unknown:
        problems.append(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                        f"(a misspelt name would silently run the default instead)")
    for name in declared:
        if name not in namespace:
            problems.append(f"{name} is not set (run the parameters cell first)")
            continue
        problem = RULES[name](name, namespace[name])
        if problem:
            problems.append(problem)
    if problems:
        listing = ", ".join(f"{d}={namespace.get(d)!r}" for d in declared)
        raise NotebookParameterError(f"{notebook}: " + "; ".join(problems)
                                     + f". Declared parameters: {listing}"
                                     + " (papermill: -p NAME VALUE, e.g. -p profile smoke)")
