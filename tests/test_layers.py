"""The package layers of docs/design.md hold in the code: every import between ``ccmct`` packages points down the
layer order, no two packages import each other (directly or round a longer circle), and no two modules import
each other at import time (in particular ``models.io`` and ``models.classifier``).

Every module under ``lib/ccmct`` is parsed with ``ast`` (nothing is imported); module-level and function-level
imports both count for the package direction, since a function-level import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"
ROOT = LIB / "ccmct"

LAYERS: list[set[str]] = [
    # shared utilities at the bottom; "ccmct" is the package itself (``from ccmct import __version__``)
    {"ccmct", "errors", "types", "atomicio", "jsonable", "outputs", "precision", "distributed"},
    {"config"},
    {"data", "geometry"},
    {"synthetic", "sampling", "models"},
    {"training", "inference"},
    {"evaluation"},
    {"pipeline", "viewer"},
    {"demo", "notebooks"},
    {"cli"},
]
"""docs/design.md, "Layers": a package imports only from packages of lower rows. Within the bottom row
(shared utilities) imports are allowed as long as they make no circle."""

FORBIDDEN = {
    "evaluation": {"training", "inference"},  # evaluation reads result files; it never trains (design.md)
}
"""Imports the row order alone would allow but the design rules out."""

RANK = {name: rank for rank, row in enumerate(LAYERS) for name in row}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(name: str) -> bool:
    """Whether ``ccmct.a.b`` names a module or package on disk (else it is an attribute of one)."""
    base = LIB.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported ccmct module, line, at import time)`` for every import of a ccmct module in ``path``.

    ``at import time``: the import runs when the module is imported (not inside a function or a
    ``if TYPE_CHECKING:`` block).
    """
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
                continue
            if isinstance(child, ast.If) and _type_checking_only(child):
                visit(child, False)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, top) for alias in child.names
                             if alias.name.split(".")[0] == "ccmct")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - (child.level - 1)]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                if source.split(".")[0] != "ccmct":
                    continue
                for alias in child.names:  # ``from ccmct.x import y`` imports ccmct.x.y when y is a module
                    sub = f"{source}.{alias.name}"
                    found.append((sub if _is_module(sub) else source, child.lineno, top))
            visit(child, top)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), True)
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ccmct"


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def test_parser_sees_the_imports():
    """Guard against a test that passes because it found nothing: known imports of each kind are seen."""
    assert len(MODULES) > 50
    io = {target for target, _, _ in IMPORTS["ccmct.models.io"]}
    assert {"ccmct.models.registry", "ccmct.errors", "ccmct.jsonable", "ccmct"} <= io
    synth = IMPORTS["ccmct.synthetic"]
    assert ("ccmct.synthetic.dataset", True) in {(t, top) for t, _, top in synth}
    assert ("ccmct.synthetic.gallery", False) in {(t, top) for t, _, top in synth}  # function-level


def test_every_package_has_a_layer():
    packages = {_package(name) for name in MODULES}
    missing = sorted(packages - set(RANK))
    assert not missing, f"packages not in LAYERS (add them to docs/design.md and here): {missing}"


def test_imports_point_down_the_layers():
    bad = []
    for name, imports in IMPORTS.items():
        source = _package(name)
        for target, line, _ in imports:
            dest = _package(target)
            if dest == source:
                continue
            shared = RANK[source] == 0 and RANK[dest] == 0
            if not shared and RANK[dest] >= RANK[source] or dest in FORBIDDEN.get(source, ()):
                bad.append(f"{MODULES[name].relative_to(LIB)}:{line} imports {target} "
                           f"({source} may not import {dest})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_circle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for name, imports in IMPORTS.items():
        for target, _, _ in imports:
            if _package(target) != _package(name):
                graph[_package(name)].add(_package(target))
    cycles = _cycles(graph)
    assert not cycles, f"packages importing each other: {cycles}"


def test_no_circle_between_modules_at_import_time():
    """No two modules import each other (directly or round a circle) when they are imported: such a circle
    works or fails depending on which module is imported first. Imports inside functions are the usual way
    out and are not counted here (the package direction above still counts them)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, imports in IMPORTS.items():
        for target, _, top in imports:
            if top and target != name and not name.startswith(target + "."):  # a package's own __init__ is
                graph[name].add(target)  # already being imported when its submodule runs
    cycles = _cycles(graph)
    assert not cycles, f"modules importing each other at import time: {cycles}"


@pytest.mark.parametrize(("a", "b"), [("ccmct.models.io", "ccmct.models.classifier")])
def test_no_circle_between_model_io_and_models(a, b):
    """``models.io`` reads the registry table and imports no model module, not even inside a function
    (docs/design.md, "Model registry"): no circle with the model modules at all."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, imports in IMPORTS.items():
        for target, _, _ in imports:
            graph[name].add(target)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    assert not (reaches(a, b) and reaches(b, a)), f"{a} and {b} import each other"
