"""What a Python file imports, read from its source without running it: for the tests that
keep a library (the box agent, `faces`) free of Django and of the portal's apps."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_modules(path: Path) -> set[str]:
    """The top-level names of the modules `path` imports absolutely, at any depth: an import
    inside a function still needs its module once it runs."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names
