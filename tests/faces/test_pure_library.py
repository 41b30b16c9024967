"""`faces` is a leaf library: the box agent imports it without Django, so it imports neither
Django nor any of Kangaroo's apps."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"django", "rest_framework", "kangaroo", "accounts", "subjects", "devices", "events", "face_recognition"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_faces_imports_no_django_and_no_app():
    found = {str(path.relative_to(REPO)): imported_modules(path) & FORBIDDEN for path in (REPO / "faces").glob("*.py")}
    assert found and not any(found.values()), found
