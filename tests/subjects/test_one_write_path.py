"""Departments, subjects and photos are written by `subjects/services.py` only, so every
change is audited and announced (subjects/domain_signals.py). This scan fails the build
when other code writes them directly: a model save or delete, a queryset update or delete,
or a create on their managers. Tests, migrations and benchmarks (which seed rows) are exempt.
"""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SCANNED = ["kangaroo", "accounts", "subjects", "devices", "events"]
ALLOWED = {Path("subjects/services.py")}
MODELS = r"(?:Department|Subject|Photo)"
WRITES = [
    # Department.objects.create(...), Photo.objects.filter(...).delete(), Subject.objects....update(
    re.compile(
        rf"\b{MODELS}\.(?:objects|_default_manager)\b[^\n]*?\."
        r"(?:create|bulk_create|bulk_update|get_or_create|update_or_create|update|delete)\("
    ),
    # subject.save(...), photo.delete(), department.save(update_fields=...)
    re.compile(r"\b(?:department|subject|photo|host)\.(?:save|delete)\("),
]


def direct_writes(path: Path) -> list[str]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if any(pattern.search(line) for pattern in WRITES):
            found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_only_the_subject_services_write_departments_subjects_and_photos():
    problems = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or relative in ALLOWED:
                continue
            problems += direct_writes(path)
    assert not problems, "Write these through subjects/services.py:\n" + "\n".join(problems)


def test_the_scan_sees_a_direct_write(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "Department.objects.create(company=c, name='x')\n"
        "Subject.objects.for_company(c).filter(pk=1).update(name='y')\n"
        "subject.save(update_fields=['name'])\n"
        "photo.delete()\n"
        "Subject.objects.for_company(c).get(pk=1)\n",
        encoding="utf-8",
    )
    global ROOT
    root, ROOT = ROOT, tmp_path
    try:
        assert [line.split(": ", 1)[1] for line in direct_writes(sample)] == [
            "Department.objects.create(company=c, name='x')",
            "Subject.objects.for_company(c).filter(pk=1).update(name='y')",
            "subject.save(update_fields=['name'])",
            "photo.delete()",
        ]
    finally:
        ROOT = root
