"""The layering of ARCHITECTURE.md, enforced: dependencies point down.

Bottom to top: the `kangaroo` base → accounts → subjects → devices → events → integrations,
privacy, visits. A module may import its own layer and the layers below it; a lower layer
that needs to tell a higher one something sends a signal or calls a hook. The project's root modules (settings, URL
configuration, routing, ASGI/WSGI entry points, the demo seed) wire the apps together and
may import all of them. Imports only for type checking (`if TYPE_CHECKING:`) do not run and
do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ["kangaroo", "accounts", "subjects", "devices", "events", "integrations", "privacy", "visits"]
RANK = {name: rank for rank, name in enumerate(LAYERS)}
ROOT_MODULES = {
    "kangaroo/settings.py",
    "kangaroo/urls.py",
    "kangaroo/api/urls.py",
    "kangaroo/routing.py",
    "kangaroo/asgi.py",
    "kangaroo/wsgi.py",
    "kangaroo/management/commands/seed_demo.py",
}


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """(line, imported module) for every import that runs, at any depth."""
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        yield from _imports(node)


def _modules(layer: str):
    for path in sorted((REPO / layer).rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if "/migrations/" in relative or relative in ROOT_MODULES:
            continue
        yield relative, path


def upward_imports(layer: str) -> list[str]:
    found = []
    for relative, path in _modules(layer):
        for line, module in _imports(ast.parse(path.read_text(), filename=relative)):
            target = module.split(".")[0]
            if RANK.get(target, -1) > RANK[layer]:
                found.append(f"{relative}:{line} imports {module}")
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_a_layer_above_it(layer):
    assert upward_imports(layer) == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    # The scanner must not pass by seeing nothing: a base module importing events fails it,
    # a type-checking-only import does not.
    base = tmp_path / "kangaroo"
    base.mkdir()
    (base / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from accounts.models import Company\n"
        "def f():\n    from events.models import Event\n"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["REPO"]), "REPO", tmp_path)
    assert upward_imports("kangaroo") == ["kangaroo/bad.py:5 imports events.models"]
