"""The admin's "Search by face" page: an image in, the company's most alike subjects out, as
cards. The same search as `POST /api/v1/faces/search` (`subjects.face_lookup`), for admins
and owners of a company; rendered on the server, so the page needs no script of its own
(the Content-Security-Policy allows none inline)."""

from __future__ import annotations

import base64

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from PIL import Image

from kangaroo.admin import admin_company
from kangaroo.errors import KangarooError
from kangaroo.images import THUMBNAIL_SIDE, jpeg_of
from subjects import face_lookup
from subjects.models import Subject


class FaceSearchForm(forms.Form):
    image = forms.FileField(
        label=_("Photo"),
        help_text=_("A photo or camera frame with one face (JPEG or PNG)."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )


def face_crop_data_url(search: face_lookup.FaceSearch) -> str:
    """The face searched for, cut out with a margin, as a data: address: it is shown back
    to the admin who sent it and stored nowhere."""
    left, top, right, bottom = search.face.box
    margin = (right - left) // 2
    picture = search.picture
    width, height = picture.size
    crop = picture.crop(
        (max(left - margin, 0), max(top - margin, 0), min(right + margin, width), min(bottom + margin, height))
    )
    crop.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_of(crop, quality=82)).decode()


def _cards(search: face_lookup.FaceSearch) -> list[dict]:
    types = dict(Subject._meta.get_field("subject_type").choices)
    return [
        {
            "subject": hit.subject,
            "type_label": types.get(hit.subject.subject_type, hit.subject.subject_type),
            "distance": hit.distance,
            "match": hit.match,
            "thumbnail_url": reverse("photo-thumbnail", args=[hit.photo_id]),
            "change_url": reverse("admin:subjects_subject_change", args=[hit.subject.pk]),
        }
        for hit in search.hits
    ]


@never_cache
def face_search_page(request):
    """Wrapped in `admin.site.admin_view` (kangaroo.urls): signed-in staff only."""
    company = admin_company(request)
    if company is not None and not request.user.can_write:
        raise PermissionDenied  # viewers see subjects, but a biometric search is for admins
    form = FaceSearchForm(request.POST or None, request.FILES or None)
    search = None
    if company is not None and request.method == "POST" and form.is_valid():
        try:
            search = face_lookup.subjects_by_face(company=company, actor=request.user, image=form.cleaned_data["image"])
        except KangarooError as exc:
            form.add_error("image", str(exc.message))
    context = {
        **admin.site.each_context(request),
        "title": gettext("Search by face"),
        "opts": Subject._meta,
        "company": company,
        "form": form,
        "search": search,
        "face_url": face_crop_data_url(search) if search is not None else None,
        "cards": _cards(search) if search is not None else [],
        "threshold": company.face_match_threshold if company is not None else None,
    }
    return TemplateResponse(request, "subjects/face_search.html", context)
