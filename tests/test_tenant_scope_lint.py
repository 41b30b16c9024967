"""Fails the build when code queries a tenant model without going through its company.

A query on a company-owned model must start from `<Model>.objects.for_company(...)`. Where a
query really must cross companies (a job looking a row up by its id, a login by its global
username), the line says so with a `# tenant: <why>` comment, which reviewers can grep.
Migrations are exempt: they run for the whole database.
"""

import re
from pathlib import Path

from django.apps import apps
from django.conf import settings

from kangaroo.tenancy import is_tenant_model

ROOT = Path(settings.BASE_DIR)
SCANNED = ["kangaroo", "accounts", "subjects", "devices", "events", "integrations", "privacy", "visits", "bench"]
MANAGERS = r"(?:objects|_default_manager|_base_manager)"


def tenant_model_names() -> set[str]:
    return {model.__name__ for model in apps.get_models() if is_tenant_model(model)}


def call_arguments(source: str, start: int) -> str:
    """The text between the parenthesis at `start` and its match."""
    depth = 0
    for index in range(start, len(source)):
        depth += {"(": 1, ")": -1}.get(source[index], 0)
        if depth == 0:
            return source[start + 1 : index]
    return source[start + 1 :]


def unscoped_queries(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line number, line) of every query on a tenant model that skips `for_company`.

    Allowed: `.for_company(...)`, `.none()`, and `.create(...)` / `.bulk_create(...)` whose
    arguments name the company (an insert carries its company; it reads nothing).
    """
    pattern = re.compile(rf"\b({'|'.join(sorted(names))})\.{MANAGERS}\.(\w+)\(")
    lines = source.splitlines()
    found = []
    for match in pattern.finditer(source):
        number = source.count("\n", 0, match.start()) + 1
        line = lines[number - 1]
        method = match.group(2)
        if "# tenant:" in line or method in ("for_company", "none"):
            continue
        if method in ("create", "bulk_create") and "company" in call_arguments(source, match.end() - 1):
            continue
        found.append((number, line.strip()))
    return found


def python_files():
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_no_tenant_model_is_queried_without_its_company():
    names = tenant_model_names()
    problems = []
    for path in python_files():
        for number, line in unscoped_queries(path.read_text(encoding="utf-8"), names):
            problems.append(f"{path.relative_to(ROOT)}:{number}: {line}")
    assert not problems, (
        "Query tenant models through .objects.for_company(company), or mark a deliberate "
        "cross-company lookup with '# tenant: <why>':\n" + "\n".join(problems)
    )


def test_the_scanner_catches_an_unscoped_query():
    names = {"Department", "User"}
    source = "\n".join(
        [
            "Department.objects.filter(name='x')",
            "Department.objects.for_company(c).filter(name='x')",
            "User.objects.get(pk=1)  # tenant: login by id",
            "User._default_manager.all()",
            "Department.objects.create(\n    company=company,\n    name='x',\n)",
            "Department.objects.create(name=f(x))",
        ]
    )
    assert unscoped_queries(source, names) == [
        (1, "Department.objects.filter(name='x')"),
        (4, "User._default_manager.all()"),
        (9, "Department.objects.create(name=f(x))"),
    ]


def test_the_scanner_knows_the_tenant_models():
    assert {"User", "Department", "AuditLog"} <= tenant_model_names()
