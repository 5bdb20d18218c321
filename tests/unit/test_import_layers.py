"""No import cycle among the packages of the server seam: each imports only the layers below it.

Layers, lowest first: the spec and what reads it (spec, labels, workspace, deps), then mlflow (reads
an MLflow model, writes its scoring code), then servers (one module per server type), then resolve
(which chooses the server type). Every import counts: at the top, inside a function, or under
TYPE_CHECKING."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "compiler"
LOWER = ("compiler.spec", "compiler.labels", "compiler.workspace", "compiler.deps")
LAYERS = ("compiler.mlflow", "compiler.servers", "compiler.resolve")  # each may import those before it


@cache
def imports() -> dict[str, frozenset[str]]:
    """Module name -> every compiler module it imports."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {m: frozenset(t for t in targets if t.split(".")[0] == "compiler") for m, targets in graph.items()}


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_lower_layer_imports_a_higher_one():
    upward = []
    for module, targets in imports().items():
        mine = package(module)
        if mine in LOWER:
            higher = set(LAYERS)
        elif mine in LAYERS:
            higher = set(LAYERS[LAYERS.index(mine) + 1 :])
        else:
            continue
        upward += [f"{module} imports {t}" for t in sorted(targets) if package(t) in higher]
    assert upward == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_package_or_module_cycle_through_mlflow_servers_or_resolve():
    graph = imports()
    seam = set(LOWER) | set(LAYERS)
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if package(module) in seam:
            packages.setdefault(package(module), set()).update(
                package(t) for t in targets if package(t) in seam and package(t) != package(module))
    assert [c for c in cycles(packages) if set(c) & set(LAYERS)] == []
    modules = {m: {t for t in targets if package(t) in LAYERS} for m, targets in graph.items() if package(m) in LAYERS}
    assert cycles(modules) == []
