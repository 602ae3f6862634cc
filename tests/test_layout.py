"""The package's architecture, checked from its source: layers only import downwards, no import cycles (imports inside
functions included), argparse only in the commands layer, and no module too long to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "paperlib"
# bottom to top; a module may import from its own layer (acyclically) and the layers below it
LAYERS = ("core", "data", "model", "engine", "studies", "paper", "commands")
TOP_LEVEL = {"paperlib": 0, "paperlib.__main__": len(LAYERS) - 1, "paperlib.testing": len(LAYERS) - 1}
MAX_LINES = 850


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """paperlib modules imported anywhere in the file (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            if not name.startswith("paperlib"):
                continue
            while name and name not in MODULES:  # `from paperlib.x import f`: the module is paperlib.x
                name = name.rpartition(".")[0]
            if name and not (isinstance(node, ast.ImportFrom) and name == "paperlib"
                             and f"{node.module}" != "paperlib"):
                found.add(name)
    return found


GRAPH = {mod: _imports(path) - {mod} for mod, path in MODULES.items()}


def _layer(mod: str) -> int:
    if mod in TOP_LEVEL:
        return TOP_LEVEL[mod]
    return LAYERS.index(mod.split(".")[1])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_belongs_to_a_layer():
    for mod in MODULES:
        if mod not in TOP_LEVEL:
            assert mod.split(".")[1] in LAYERS, f"{mod}: not in a layer package {LAYERS}"


def test_no_import_cycles_counting_function_local_imports():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_imports_only_point_down_the_layers():
    upward = [f"{a} ({LAYERS[_layer(a)] if a not in TOP_LEVEL else a}) imports {b} ({LAYERS[_layer(b)]})"
              for a, deps in GRAPH.items() for b in sorted(deps) if _layer(b) > _layer(a)]
    assert upward == []


def test_argparse_lives_only_in_the_commands_layer():
    offenders = [mod for mod, path in MODULES.items()
                 if not mod.startswith("paperlib.commands") and "argparse" in _third_party_imports(path)]
    assert offenders == []


def _third_party_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_module_is_short_enough_to_read(mod):
    n = len(MODULES[mod].read_text().splitlines())
    assert n <= MAX_LINES, f"{mod}: {n} lines (split it by concept)"


def test_readme_layout_table_names_every_module():
    """The README's layout table has a row per layer folder, and that row names each module of the folder (the commands
    folder: one module per registered command)."""
    readme = (PKG.parent / "README.md").read_text()
    rows = {line.split("|")[2].strip(" `"): line for line in readme.splitlines()
            if line.startswith("| ") and "`paperlib/" in line.split("|")[2]}
    missing = []
    for layer in LAYERS:
        row = rows.get(f"paperlib/{layer}/")
        if row is None:
            missing.append(f"paperlib/{layer}/ (no row)")
            continue
        for path in sorted((PKG / layer).iterdir()):
            name = path.stem if path.suffix == ".py" else path.name
            if name.startswith("__") or (path.is_dir() and not (path / "__init__.py").exists()):
                continue
            if layer == "commands":
                from paperlib.commands import COMMANDS

                if not any(str(entry[0]).endswith(f".{name}") or entry[0] == name for entry in COMMANDS.values()):
                    missing.append(f"paperlib/commands/{name} (not a registered command)")
                continue
            stem = name.split("_")[0] if layer == "paper" and name.startswith("campaign") else name
            if f"`{stem}" not in row:
                missing.append(f"paperlib/{layer}/{name}")
    assert missing == []
