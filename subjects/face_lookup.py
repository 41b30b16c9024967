"""Looking a face up in a company's gallery: the face in an image someone sent, who it is
(`face_identify`, for recognition), whether it is a given subject (`subject_verify`, 1:1) and
who it looks like (`subjects_by_face`, search for admins).

Every lookup takes the company and asks `subjects.face_index` for that company's faces only:
another company's faces are never candidates, whoever calls. The image is read like an
upload (`kangaroo.images.open_photo`: decoded by content, bombs refused, upright, RGB),
bounded by FACE_SNAPSHOT_MAX_BYTES, and never stored here; the caller decides whether a
snapshot is kept (a stranger's event keeps it).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image

import faces
from accounts.models import Company
from accounts.services import audit_record
from kangaroo import errors
from kangaroo.errors import KangarooError
from kangaroo.images import base64_max_chars, open_photo, photo_invalid
from subjects import face_index
from subjects.models import Subject


def read_image(image: Any) -> Image.Image:
    """The picture in `image`: an uploaded file, bytes, or base64 text (a JSON body), or
    `photo_invalid` with its reason (`missing`, `too_large`, `not_base64`, and those of
    `open_photo`)."""
    limit = settings.FACE_SNAPSHOT_MAX_BYTES
    if image is None or image == "":
        raise photo_invalid("missing", _("Send an image (a JPEG or PNG camera frame)."))
    if isinstance(image, str):
        if len(image) > base64_max_chars(limit):
            raise photo_invalid("too_large", _("The photo is larger than %(kb)d KB.") % {"kb": limit // 2**10})
        try:
            image = base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            raise photo_invalid("not_base64", _("The image must be base64-encoded.")) from None
    elif not isinstance(image, bytes) and not hasattr(image, "read"):
        raise photo_invalid("not_base64", _("The image must be base64-encoded."))
    return open_photo(image, max_bytes=limit)


def face_in(picture: Image.Image) -> faces.Face:
    """The best face of `picture` with its embedding, or `no_face`."""
    face = faces.snapshot_face(np.asarray(picture), face_index.face_rules())
    if face is None:
        raise KangarooError(errors.NO_FACE, fields={"image": [str(errors.NO_FACE.message)]})
    return face


def face_identify(*, company: Company, embedding: np.ndarray) -> faces.Match | None:
    """The company's subject this face is, if closer than the company's threshold."""
    return face_index.identify(company, embedding)


@dataclass(frozen=True)
class Verification:
    subject: Subject
    match: bool
    distance: float | None  # None: the subject has no usable photo to compare with
    threshold: float


def subject_verify(*, company: Company, actor, job_number: str, image: Any) -> Verification:
    """Is the face in `image` the company's subject with `job_number`? (1:1, a pad's "check
    in as ..."). An unknown job number, or another company's, answers `not_found`. Audited,
    with the answer and the distance, whatever it is."""
    subject = Subject.objects.for_company(company).filter(job_number=job_number).first()
    if subject is None:
        raise KangarooError(errors.NOT_FOUND, fields={"job_number": [str(errors.NOT_FOUND.message)]})
    face = face_in(read_image(image))
    nearest = face_index.verify(company, subject.pk, face.embedding)
    threshold = company.face_match_threshold
    distance = round(nearest.distance, 4) if nearest is not None else None
    verification = Verification(
        subject=subject, match=distance is not None and distance < threshold, distance=distance, threshold=threshold
    )
    audit_record(
        company=company,
        actor=actor,
        action="subject.verify_face",
        obj=subject,
        changes={"match": verification.match, "distance": distance, "threshold": threshold},
    )
    return verification


SEARCH_MAX = 10


@dataclass(frozen=True)
class FaceHit:
    subject: Subject
    photo_id: int
    distance: float
    match: bool  # under the company's threshold: recognition would take it for this subject


@dataclass(frozen=True)
class FaceSearch:
    hits: list[FaceHit]
    picture: Image.Image  # the image searched with, upright (to show the face searched for)
    face: faces.Face


def subjects_by_face(*, company: Company, actor, image: Any, k: int = SEARCH_MAX) -> FaceSearch:
    """Up to `k` (at most SEARCH_MAX) of the company's subjects whose faces are closest to the
    face in `image`, closest first, each with its closest photo. Audited (the subjects found,
    never the image)."""
    picture = read_image(image)
    face = face_in(picture)
    matches = face_index.search(company, face.embedding, min(k, SEARCH_MAX))
    subjects = (
        Subject.objects.for_company(company)
        .select_related("department")
        .in_bulk([match.subject_id for match in matches])
    )
    threshold = company.face_match_threshold
    hits = [
        FaceHit(
            subject=subjects[match.subject_id],
            photo_id=match.photo_id,
            distance=round(match.distance, 4),
            match=match.distance < threshold,
        )
        for match in matches
        if match.subject_id in subjects  # deleted since the index was built
    ]
    audit_record(
        company=company,
        actor=actor,
        action="subject.search_by_face",
        changes={"found": [[hit.subject.pk, hit.distance] for hit in hits]},
    )
    return FaceSearch(hits=hits, picture=picture, face=face)
