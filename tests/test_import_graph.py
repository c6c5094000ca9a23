"""No import circles inside journeylib: the module-level imports form a graph without cycles.

Data flows one way (sources → store → metrics → charts/tables → notebooks →
reports); a circle between two modules means one of them reaches back, and
it makes a module impossible to import on its own. Imports inside functions
(deferred, for start-up time) are not part of the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import journeylib

PACKAGE = Path(journeylib.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, target] if target else base)


def import_graph() -> dict[str, set[str]]:
    """Module → the journeylib modules it imports at module level (including ``from pkg import submodule``)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("journeylib")}
            elif isinstance(node, ast.ImportFrom):
                src = _resolve(name, is_package, node.level, node.module) if node.level else (node.module or "")
                if not src.startswith("journeylib"):
                    continue
                subs = {f"{src}.{a.name}" for a in node.names if f"{src}.{a.name}" in files}
                # ``from . import engine`` needs the submodule only, not the package's own __init__ to have run
                deps |= subs if node.module is None and subs else {src} | subs
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None.

    >>> find_cycle({"a": {"b"}, "b": {"a"}})
    ['a', 'b', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_imports():
    g = import_graph()
    assert "journeylib.formats" in g["journeylib.canvas"] and "journeylib.formats" in g["journeylib.tables"]


def test_no_import_circles():
    """No module reaches back to one that imports it (a package's ``__init__`` importing its submodules included)."""
    g = import_graph()
    cycle = find_cycle(g)
    assert cycle is None, "import circle: " + " → ".join(cycle)
