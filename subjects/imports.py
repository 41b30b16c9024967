"""The admin's subject import, from upload to confirm, for files of any size.

An uploaded file waits in the cache (`ImportUploadStorage`) under a random name, with a
`PendingImport` beside it that says whose it is. The dry run (`import_preview`) keeps an
`ImportReport` of every row for the preview pages; the confirm (`import_confirm`) imports
for real through `SubjectResource`, which writes with `services.subject_import_apply` or
not at all. A small file is previewed and imported in the request; a larger one
(`settings.SUBJECT_IMPORT_INLINE_MAX_BYTES`) in a job (`subjects.jobs`) whose progress the
page shows, so no request runs for minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import tablib
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export.formats import base_formats
from import_export.results import RowResult

from accounts.models import Company, User, job_kind_register
from kangaroo.spreadsheets import ImportReport, ImportUploadStorage, SmartCSV, report_load, report_save
from subjects.resources import SubjectResource

IMPORT_FORMATS = [SmartCSV, base_formats.XLSX]
IMPORT_PREVIEW_KIND = job_kind_register("subjects.import_preview", gettext_lazy("Check of a subject import file"))
IMPORT_CONFIRM_KIND = job_kind_register("subjects.import", gettext_lazy("Import of subjects"))


@dataclass
class PendingImport:
    name: str  # the uploaded file's name in ImportUploadStorage
    company_id: int
    user_id: int
    format: int  # index in IMPORT_FORMATS
    original: str  # the file's name on the user's computer
    size: int
    preview_job: int | None = None
    confirm_job: int | None = None
    # Set when a confirm job ends: {"ok": bool, "totals": {...}} or {"ok": False, "error": "..."}
    outcome: dict | None = None

    def belongs_to(self, user) -> bool:
        return self.company_id == user.company_id and self.user_id == user.pk


def _pending_key(name: str) -> str:
    return f"{ImportUploadStorage.CACHE_PREFIX}pending-{name}"


def pending_save(pending: PendingImport) -> None:
    cache.set(_pending_key(pending.name), asdict(pending), ImportUploadStorage.CACHE_LIFETIME)


def pending_load(name: str) -> PendingImport | None:
    data = cache.get(_pending_key(name))
    return PendingImport(**data) if data else None


def _storage(pending: PendingImport) -> ImportUploadStorage:
    input_format = IMPORT_FORMATS[pending.format]()
    return ImportUploadStorage(name=pending.name, read_mode=input_format.get_read_mode())


def import_read(pending: PendingImport) -> tablib.Dataset:
    """The waiting file as a dataset; ValidationError saying why it cannot be read."""
    data = _storage(pending).read()
    if data is None:
        raise ValidationError(_("The uploaded file has expired; upload it again."))
    try:
        return IMPORT_FORMATS[pending.format]().create_dataset(data)
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(
            _("This file cannot be read as %(format)s: %(error)s")
            % {"format": IMPORT_FORMATS[pending.format]().get_title(), "error": type(exc).__name__}
        ) from exc


def import_preview(*, company: Company, actor: User, pending: PendingImport, progress=None) -> ImportReport:
    """Dry-run the file and keep its report for the preview pages; writes nothing."""
    try:
        dataset = import_read(pending)
    except ValidationError as exc:
        report = ImportReport(columns=[], file_errors=list(exc.messages))
    else:
        resource = SubjectResource(company=company, actor=actor, progress=progress)
        resource.import_data(dataset, dry_run=True, raise_errors=False, file_name=pending.original)
        report = resource.report
    report_save(pending.name, report)
    return report


def import_confirm(*, company: Company, actor: User, pending: PendingImport, progress=None) -> dict:
    """Import the file for real, all or nothing; returns and records the outcome."""
    try:
        dataset = import_read(pending)
    except ValidationError as exc:
        outcome = {"ok": False, "error": " ".join(exc.messages)}
    else:
        resource = SubjectResource(company=company, actor=actor, progress=progress)
        result = resource.import_data(dataset, dry_run=False, raise_errors=False, file_name=pending.original)
        if result.has_errors() or result.has_validation_errors():
            outcome = {"ok": False, "error": ""}
            report_save(pending.name, resource.report)  # the preview shows what changed meanwhile
        else:
            totals = result.totals
            outcome = {
                "ok": True,
                "totals": {
                    "new": totals.get(RowResult.IMPORT_TYPE_NEW, 0),
                    "update": totals.get(RowResult.IMPORT_TYPE_UPDATE, 0),
                    "skip": totals.get(RowResult.IMPORT_TYPE_SKIP, 0),
                },
            }
            _storage(pending).remove()
    pending.outcome = outcome
    pending_save(pending)
    return outcome


def pending_report(pending: PendingImport) -> ImportReport | None:
    return report_load(pending.name)
