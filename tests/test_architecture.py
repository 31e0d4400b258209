"""The import rules of docs/architecture.md §2, read from the source (every import statement,
at module level and inside functions, TYPE_CHECKING blocks included)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "functions", "compat")
GATEWAY = "functions.gateway"  # development only: mounts every group, imported by nobody


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py") if (ROOT / package).is_dir() else ():
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The project module an imported name lives in (a package's __init__ counts)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            owner = _owner(name)
            if owner is not None and owner != module:
                yield owner


GRAPH: dict[str, set[str]] = {m: set(_imported(m, p)) for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_source_tree_is_read() -> None:
    assert "shared.settings" in MODULES and "functions.predict.main" in MODULES
    assert "shared.settings" in GRAPH["shared.runtime"]


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _edges(source: str, target: str) -> list[tuple[str, str]]:
    return [
        (module, imported)
        for module, imports in GRAPH.items()
        if module == source or module.startswith(source + ".")
        for imported in imports
        if imported == target or imported.startswith(target + ".")
    ]


@pytest.mark.parametrize("upper", ["functions", "compat"])
def test_shared_never_imports_functions_or_compat(upper: str) -> None:
    assert _edges("shared", upper) == []


def test_no_function_imports_another() -> None:
    crossing = [
        (module, imported)
        for module, imports in GRAPH.items()
        if module.startswith("functions.") and module != GATEWAY
        for imported in imports
        if imported.startswith("functions.")
        and imported.split(".")[1] != module.split(".")[1]
        and imported != "functions"
    ]
    assert crossing == []


def test_nobody_imports_the_gateway() -> None:
    assert [m for m, imports in GRAPH.items() if GATEWAY in imports] == []
