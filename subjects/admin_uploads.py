"""The admin's "Bulk photo upload" pages, reached from the subjects list.

Upload a ZIP → the preview (one row per file: matched with the subject, or why not) →
"Store the photos" starts the job → the same page shows a progress bar, fed by a small JSON
view that a script file polls (no inline script: kangaroo/csp.py), until every stored photo
is enrolled. The work is `subjects.photo_uploads`'; these views only show it.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.models import ACTIVE_JOB_STATES, JobState
from kangaroo.admin import admin_company
from kangaroo.errors import KangarooError, reason_message
from subjects import photo_uploads, selectors
from subjects.models import FILE_MATCHED, FILE_STORED, PhotoStatus, PhotoUpload, PhotoUploadState

RECENT = 10


class ArchiveForm(forms.Form):
    archive = forms.FileField(
        label=_("ZIP archive of photos"),
        help_text=_(
            "Name each photo by its job number: E-0042.jpg, a second photo E-0042_2.jpg. Folders are fine. "
            "Nothing is stored until you confirm the preview."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )


def urls(model_admin) -> list:
    def page(route: str, function, name: str, *, post_only: bool = False):
        view = _view(model_admin, function)
        view = require_POST(view) if post_only else view
        return path(f"bulk-upload/{route}", model_admin.admin_site.admin_view(view), name=f"subjects_subject_{name}")

    return [
        page("", upload_page, "bulk_upload"),
        page("<int:pk>/", preview_page, "bulk_preview"),
        page("<int:pk>/confirm/", confirm, "bulk_confirm", post_only=True),
        page("<int:pk>/delete/", delete, "bulk_delete", post_only=True),
        page("<int:pk>/progress/", progress, "bulk_progress"),
    ]


def _view(model_admin, function):
    def view(request, **kwargs):
        if admin_company(request) is None or not model_admin.has_view_permission(request):
            raise PermissionDenied  # platform staff upload nothing: an upload belongs to a company
        return function(model_admin, request, **kwargs)

    view.__name__ = function.__name__
    return view


def _can_write(model_admin, request) -> bool:
    return model_admin.has_change_permission(request)


def _upload(request, pk: int) -> PhotoUpload:
    upload = selectors.photo_upload_list(company=admin_company(request)).filter(pk=pk).first()
    if upload is None:
        raise Http404
    return upload


def _context(model_admin, request, title, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "can_write": _can_write(model_admin, request),
        **extra,
    }


def upload_page(model_admin, request):
    form = ArchiveForm()
    if request.method == "POST":
        if not _can_write(model_admin, request):
            raise PermissionDenied
        form = ArchiveForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                upload = photo_uploads.photo_upload_preview(
                    company=admin_company(request), actor=request.user, upload=form.cleaned_data["archive"]
                )
            except KangarooError as exc:
                form.add_error("archive", _archive_error(exc))
            else:
                return HttpResponseRedirect(reverse("admin:subjects_subject_bulk_preview", args=[upload.pk]))
    recent = selectors.photo_upload_list(company=admin_company(request))[:RECENT]
    context = _context(model_admin, request, gettext("Bulk photo upload"), form=form, recent=recent)
    return TemplateResponse(request, "admin/subjects/subject/bulk_upload.html", context)


# The archive's refusals whose `limit` the form can say in words.
LIMIT_MESSAGES = {
    "zip_too_many_files": (_("The archive holds more than %(limit)d files."), 1),
    "zip_too_large": (_("The archive is larger than %(limit)d MB."), 2**20),
    "zip_unpacks_too_large": (_("The archive unpacks to more than %(limit)d MB."), 2**20),
}


def _archive_error(exc: KangarooError) -> str:
    limit = exc.extra.get("limit")
    if limit is None or exc.code not in LIMIT_MESSAGES:
        return str(exc.message)
    message, unit = LIMIT_MESSAGES[exc.code]
    return str(message) % {"limit": limit // unit}


def _rows(upload: PhotoUpload) -> list[dict]:
    statuses = selectors.photo_statuses(upload)
    rows = []
    for entry in upload.entries:
        photo_status, photo_reason = statuses.get(entry.get("photo"), ("", ""))
        rows.append(
            {
                **entry,
                "message": photo_uploads.file_status_message(entry),
                "ok": entry["status"] in (FILE_MATCHED, FILE_STORED),
                "photo_status": photo_status,
                "photo_status_text": _photo_status_text(photo_status, photo_reason),
            }
        )
    return rows


def _photo_status_text(status: str, reason: str) -> str:
    if not status:
        return ""
    text = str(PhotoStatus(status).label)
    if reason:
        text = f"{text}: {reason_message(reason, prefixes=('photo_', ''))}"
    return text


def preview_page(model_admin, request, pk: int):
    upload = _upload(request, pk)
    rows = _rows(upload)
    counts = selectors.photo_upload_progress(upload)
    context = _context(
        model_admin,
        request,
        gettext("Bulk photo upload: %(file)s") % {"file": upload.file_name},
        upload=upload,
        rows=rows,
        counts=counts,
        working=_working(upload, counts),
        is_preview=upload.state == PhotoUploadState.PREVIEW,
        progress_url=reverse("admin:subjects_subject_bulk_progress", args=[upload.pk]),
    )
    return TemplateResponse(request, "admin/subjects/subject/bulk_preview.html", context)


def _working(upload: PhotoUpload, counts: dict) -> bool:
    """Whether the page should keep following the upload: its job is running, or the
    stored photos are still waiting for the face engine."""
    if upload.state == PhotoUploadState.STORING:
        return upload.job is None or upload.job.state in ACTIVE_JOB_STATES
    return upload.state == PhotoUploadState.STORED and counts["pending"] > 0


def _upload_button(service, *, success=None, then: str | None = None):
    """A button of the preview page (a POST): `service` on the upload, its refusal shown as
    a message back on the preview page; on success `success` is said and the admin goes
    to `then` (a URL name), or back to the preview."""

    def button(model_admin, request, pk: int):
        if not _can_write(model_admin, request):
            raise PermissionDenied
        upload = _upload(request, pk)
        preview = reverse("admin:subjects_subject_bulk_preview", args=[upload.pk])
        try:
            service(company=admin_company(request), actor=request.user, upload=upload)
        except KangarooError as exc:
            messages.error(request, str(exc.message))
            return HttpResponseRedirect(preview)
        if success is not None:
            messages.success(request, str(success))
        return HttpResponseRedirect(reverse(then) if then else preview)

    button.__name__ = service.__name__
    return button


confirm = _upload_button(photo_uploads.photo_upload_confirm)
delete = _upload_button(
    photo_uploads.photo_upload_delete,
    success=_("The upload was cancelled and its archive deleted."),
    then="admin:subjects_subject_bulk_upload",
)


def progress(model_admin, request, pk: int):
    """What the preview page's script shows while the photos are stored and enrolled."""
    upload = _upload(request, pk)
    counts = selectors.photo_upload_progress(upload)
    job = upload.job
    working = _working(upload, counts)
    if upload.state == PhotoUploadState.FAILED or (job is not None and job.state == JobState.FAILED):
        done, total = counts["stored"], counts["matched"]
        if not counts["stored"]:
            phase = gettext("Storing the photos failed; nothing was stored. Upload the archive again.")
        else:  # each batch is stored whole or not at all: those stored before the failure stay
            phase = ngettext(
                "Storing the photos failed after %(stored)d photo; upload the archive again to store the rest.",
                "Storing the photos failed after %(stored)d photos; upload the archive again to store the rest.",
                counts["stored"],
            ) % {"stored": counts["stored"]}
    elif upload.state == PhotoUploadState.STORING and job is not None:
        done, total = job.done, job.total or counts["matched"]
        phase = gettext("Reading and storing the photos: %(done)d of %(total)d") % {"done": done, "total": total}
    elif working:
        done, total = counts["done"], counts["stored"]
        phase = gettext("Enrolling faces: %(done)d of %(total)d (%(ok)d usable, %(rejected)d rejected)") % {
            "done": done,
            "total": total,
            "ok": counts["ok"],
            "rejected": counts["rejected"],
        }
    else:
        done = total = counts["stored"]
        phase = ngettext(
            "Done: %(stored)d photo stored, %(refused)d left out (faces: %(ok)d usable, %(rejected)d rejected)",
            "Done: %(stored)d photos stored, %(refused)d left out (faces: %(ok)d usable, %(rejected)d rejected)",
            counts["stored"],
        ) % {key: counts[key] for key in ("stored", "refused", "ok", "rejected")}
    rows = _rows(upload)
    return JsonResponse(
        {
            "state": upload.state,
            "state_text": str(upload.get_state_display()),
            "working": working,
            "done": done,
            "total": total,
            "phase": phase,
            "counts": counts,
            "files": [
                {"status": row["status"], "message": row["message"], "photo_status": row["photo_status_text"]}
                for row in rows
            ],
        }
    )
