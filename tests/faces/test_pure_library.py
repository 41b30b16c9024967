"""`faces` is a leaf library: the box agent imports it without Django, so it imports neither
Django nor any of Kangaroo's apps."""

from pathlib import Path

from tests.imports import imported_modules

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"django", "rest_framework", "kangaroo", "accounts", "subjects", "devices", "events", "face_recognition"}


def test_faces_imports_no_django_and_no_app():
    found = {str(path.relative_to(REPO)): imported_modules(path) & FORBIDDEN for path in (REPO / "faces").glob("*.py")}
    assert found and not any(found.values()), found
