"""Docstring examples in lib/ccmct parse, and the names they import exist (without importing heavy modules).

Examples are found with :class:`doctest.DocTestParser` in every module, class and function docstring.
A ``from ccmct.x import name`` must name something defined at the top level of ``ccmct/x.py`` (or of the
package's ``__init__.py``); other imports must be importable modules.
"""

from __future__ import annotations

import ast
import doctest
import importlib.util
from functools import lru_cache
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"
MODULES = sorted(p.relative_to(LIB) for p in (LIB / "ccmct").rglob("*.py"))


def _docstrings(tree: ast.Module):
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                  ast.ClassDef))]
    for node in nodes:
        text = ast.get_docstring(node, clean=True)
        if text:
            yield getattr(node, "name", "<module>"), getattr(node, "lineno", 1), text


def _module_file(module: str) -> Path | None:
    base = LIB.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@lru_cache(maxsize=None)
def _top_level_names(path: Path) -> frozenset[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def _import_problems(tree: ast.AST) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"no module {a.name}" for a in node.names if not _module_exists(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if not _module_exists(node.module):
                problems.append(f"no module {node.module}")
                continue
            path = _module_file(node.module) if node.module.split(".")[0] == "ccmct" else None
            if path is not None:
                for alias in node.names:
                    if alias.name not in _top_level_names(path) and not _module_file(f"{node.module}.{alias.name}"):
                        problems.append(f"{node.module} defines no {alias.name}")
    return problems


def _module_exists(name: str) -> bool:
    if name.split(".")[0] == "ccmct":
        return _module_file(name) is not None
    return importlib.util.find_spec(name.split(".")[0]) is not None


def _problems(source: str, relative: str) -> list[str]:
    tree = ast.parse(source, filename=relative)
    parser = doctest.DocTestParser()
    problems = []
    for name, lineno, text in _docstrings(tree):
        for example in parser.get_examples(text):
            where = f"{relative}:{lineno} {name}: {example.source.strip().splitlines()[0]!r}"
            try:
                parsed = ast.parse(example.source)
            except SyntaxError as err:
                problems.append(f"{where}: does not parse ({err.msg})")
                continue
            problems += [f"{where}: {p}" for p in _import_problems(parsed)]
    return problems


@pytest.mark.parametrize("relative", MODULES, ids=[str(m) for m in MODULES])
def test_docstring_examples_parse_and_imports_resolve(relative):
    problems = _problems((LIB / relative).read_text(encoding="utf-8"), str(relative))
    assert not problems, "\n".join(problems)


def test_the_checker_finds_bad_examples():
    """The check itself can fail: a broken example and imports of missing names or modules are reported."""
    source = ('''"""Example:\n    >>> from ccmct.data.stats import no_such_function\n'''
              '''    >>> import no_such_module_xyz\n"""\n'''
              '''def f():\n    """Example:\n        >>> f(1,\n    """\n''')
    problems = _problems(source, "fake.py")
    assert len(problems) == 3
    assert problems[0].endswith("ccmct.data.stats defines no no_such_function")
    assert problems[1].endswith("no module no_such_module_xyz")
    assert "fake.py:5 f: 'f(1,': does not parse" in problems[2]
    assert _problems('"""\n>>> from ccmct.data.stats import table1\n"""', "ok.py") == []
