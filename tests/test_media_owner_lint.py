"""Fails the build when code outside kangaroo/media.py writes, deletes or lists biometric files
itself: every photo, thumbnail, snapshot and evidence file goes through that one module, so
that none escapes its storage layout, its after-commit deletion or the company purge."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SCANNED = ["kangaroo", "accounts", "subjects", "devices", "events", "integrations", "privacy", "visits", "bench"]
OWNERS = {Path("kangaroo/media.py"), Path("kangaroo/management/commands/prepare.py")}
STORAGE_USE = re.compile(
    r"\bdefault_storage\b|\bstorages\[|\.storage\.(save|delete|open|listdir)\("
    r"|\.(image|thumbnail|snapshot)\.(save|delete)\("
)


def offending_lines(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if STORAGE_USE.search(line)]


def test_only_the_media_module_touches_the_media_storage():
    problems = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in OWNERS or "migrations" in path.parts:
                continue
            problems += [f"{relative}: {line}" for line in offending_lines(path.read_text(encoding="utf-8"))]
    assert not problems, "Store, serve and delete biometric files through kangaroo.media:\n" + "\n".join(problems)


def test_the_scanner_catches_direct_storage_use():
    assert offending_lines("from django.core.files.storage import default_storage")
    assert offending_lines("photo.image.storage.delete(name)")
    assert offending_lines("event.snapshot.save(name, content)")
    assert not offending_lines("media_save(kind=MediaKind.SNAPSHOT, company_id=1, content=data)")
