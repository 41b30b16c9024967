"""Create what the embedded shape keeps on the local disk: `VAR_DIR` (SQLite, collected static
files), the media folder when media live on the file system, and the secret key when
SECRET_KEY is not set.

Settings only read (importing them must not write files, so a test run or a read-only
container never changes the disk); this command is the one place that writes, and `make run`
calls it before `migrate`. Running it again changes nothing: an existing key is kept, since
replacing it would sign every user out and void every password-reset link.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create var/, the media folder and the generated secret key (embedded shape). Safe to run again."
    requires_system_checks = []  # it creates what some checks look for

    def handle(self, *args, **options):
        Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
        if isinstance(default_storage, FileSystemStorage):
            Path(default_storage.location).mkdir(parents=True, exist_ok=True)
        if settings.SECRET_KEY_PER_PROCESS:
            path = Path(settings.GENERATED_SECRET_KEY_PATH)
            # Created with owner-only permissions from the start, and never over an existing file.
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return  # written since this process read the settings (another `prepare`)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(64))
            self.stdout.write(f"Generated a secret key in {path}")
