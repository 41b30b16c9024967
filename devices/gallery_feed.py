"""The gallery feed: `GET /api/v1/device/gallery?after=<cursor>&limit=<n>`, for boxes.

A box keeps a copy of its company's gallery and a cursor, the number of the last change it
applied. It asks for the changes after its cursor, applies them in order, moves its cursor
to `next` and asks again while `more` is true; it reports its cursor in its heartbeats,
which is how the portal shows its lag. A new box (or one told `gallery_resync_required`)
starts from 0, which returns the current gallery rather than its history.

Each change is the subject's current state, not a diff: `upsert` (replace everything the
box holds of that subject, faces included) or `delete` (forget it: it was deleted or
archived). Applying a change twice, or a deletion of a subject the box never had, is
harmless, so a box that crashes between applying and saving its cursor simply reads the
page again.

The answer is built as JSON bytes here rather than by DRF's renderer: a full sync of
100,000 faces is dozens of megabytes, and the renderer's per-value hooks would double its
cost (bench/gallery_bench.py). It is gzipped for clients that accept it, and carries an
ETag that changes whenever the answer could, so a box polling an unchanged gallery gets a
304 for the price of one small query.
"""

from __future__ import annotations

import base64
import re
from json.encoder import encode_basestring as encode_string

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from isal import igzip
from rest_framework import serializers

from devices.device_api import DeviceView
from devices.models import DeviceKind
from kangaroo import errors
from kangaroo.api.errors import ErrorEnvelopeSerializer
from kangaroo.errors import KangarooError
from subjects.selectors import GalleryPage, GalleryState, gallery_page, gallery_state

DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000
MAX_CURSOR = 2**63 - 1
FORMAT = 1  # bumped when the shape of a change changes: old ETags must not match
# Intel's ISA-L (the `isal` package) writes the same gzip format about ten times faster
# than zlib at its fastest level, and smaller: a full sync of 100,000 faces spent more time
# compressing than reading the database. Level 1: base64 of float32 hardly compresses
# better at higher levels.
GZIP_LEVEL = 1
ACCEPTS_GZIP = re.compile(r"\bgzip\b")


class GalleryQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, max_value=MAX_CURSOR, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)


# --- the answer, for the schema (the view writes the same shape itself) ------------------------


class GalleryFaceSerializer(serializers.Serializer):
    photo_id = serializers.IntegerField()
    model = serializers.CharField(help_text="The face model that computed the embedding, e.g. `dlib-resnet-v1`.")
    embedding = serializers.CharField(
        help_text="Base64 of the embedding: little-endian float32 values (128 for `dlib-resnet-v1`)."
    )


class GalleryChangeSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The change's number in the company's log.")
    op = serializers.ChoiceField(
        choices=[("upsert", "upsert"), ("delete", "delete")],
        help_text="`upsert`: replace what you hold of this subject with this. `delete`: forget it "
        "(deleted or archived; a subject you never had may be deleted too).",
    )
    id = serializers.IntegerField(help_text="The subject's id.")
    name = serializers.CharField(required=False, help_text="`upsert` only, as every field below.")
    type = serializers.ChoiceField(choices=["employee", "visitor", "vip"], required=False)
    job_number = serializers.CharField(required=False)
    visit_start = serializers.DateTimeField(
        required=False, allow_null=True, help_text="A visitor's window (UTC); null when open."
    )
    visit_end = serializers.DateTimeField(required=False, allow_null=True)
    faces = GalleryFaceSerializer(
        many=True, required=False, help_text="Every usable face of the subject (possibly none)."
    )


class GalleryAnswerSerializer(serializers.Serializer):
    after = serializers.IntegerField(help_text="The cursor asked for.")
    next = serializers.IntegerField(help_text="Your new cursor once these changes are applied: ask `after=next`.")
    more = serializers.BooleanField(help_text="More changes follow `next`: ask again at once.")
    sequence = serializers.IntegerField(help_text="The company's latest change number when answered.")
    changes = GalleryChangeSerializer(many=True)


# --- building the answer ------------------------------------------------------------------------


def _when(value) -> str:
    return '"' + value.isoformat().replace("+00:00", "Z") + '"' if value is not None else "null"


def gallery_answer(page: GalleryPage, *, after: int, state: GalleryState) -> bytes:
    """The answer as JSON bytes (the shape of `GalleryAnswerSerializer`), written directly.

    A full sync is 100,000 subjects: building a dict per subject and per face and then
    encoding them cost more than reading the database. Here each change is one formatted
    string; every value that is not a number, a constant or base64 goes through the JSON
    module's own string encoder, so the text is exactly what `json.dumps` would write.
    """
    models: dict[str, str] = {}  # model name -> its encoded JSON string, a handful per gallery
    changes = []
    for sequence, subject_id in page.changes:
        subject = page.subjects.get(subject_id)
        if subject is None:
            changes.append(f'{{"seq":{sequence},"op":"delete","id":{subject_id}}}')
            continue
        _, name, subject_type, job_number, visit_start, visit_end = subject  # GALLERY_SUBJECT_VALUES
        faces = ",".join(
            f'{{"photo_id":{photo},"model":{models.get(model) or models.setdefault(model, encode_string(model))},'
            f'"embedding":"{base64.b64encode(embedding).decode("ascii")}"}}'
            for photo, model, embedding in page.faces.get(subject_id, ())
        )
        changes.append(
            f'{{"seq":{sequence},"op":"upsert","id":{subject_id},"name":{encode_string(name)},'
            f'"type":{encode_string(subject_type)},"job_number":{encode_string(job_number)},'
            f'"visit_start":{_when(visit_start)},"visit_end":{_when(visit_end)},"faces":[{faces}]}}'
        )
    more = "true" if page.more else "false"
    head = f'{{"after":{after},"next":{page.next},"more":{more},"sequence":{max(state.sequence, page.next)},"changes":['
    return b"".join((head.encode(), ",".join(changes).encode(), b"]}"))


def gallery_etag(*, company_id: int, state: GalleryState, after: int, limit: int) -> str:
    """Weak: the gzipped and the plain answer are the same answer. It names everything the
    answer depends on; every change to the gallery moves `sequence`, compaction moves
    `compacted_through`."""
    return f'W/"gallery-{FORMAT}-{company_id}-{state.sequence}-{state.compacted_through}-{after}-{limit}"'


def _matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag.removeprefix("W/") for tag in header.split(","))


def _check_cursor(after: int, state: GalleryState) -> None:
    if after > state.sequence or 0 < after < state.compacted_through:
        raise KangarooError(
            errors.GALLERY_RESYNC_REQUIRED,
            extra={"sequence": state.sequence, "compacted_through": state.compacted_through},
        )


class GalleryFeedView(DeviceView):
    device_kinds = (DeviceKind.BOX,)

    @extend_schema(
        tags=["device API"],
        summary="The company's gallery: the changes after a cursor (boxes)",
        description=(
            "A recognition box keeps the company's gallery and a cursor (0 at first). Ask "
            "`after=<cursor>`, apply the `changes` in order (`upsert`: replace the subject and all "
            "its faces; `delete`: forget the subject), set your cursor to `next`, and ask again "
            "while `more` is true; report the cursor as `gallery_cursor` in heartbeats. Each "
            "subject appears at most once per answer, in its current state. `after=0` returns "
            "the current gallery, without deletions. The answer is gzipped when the request "
            "accepts it, and carries an ETag: send it back as `If-None-Match` to get 304 when "
            "nothing changed. 410 `gallery_resync_required`: your cursor is older than the "
            "compacted history (or ahead of it): drop your gallery and start again from 0."
        ),
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "integer", "minimum": 0, "maximum": MAX_CURSOR},
                description="Your cursor: the `next` of the last answer you applied; 0 for everything.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                description=f"At most this many changes (default {DEFAULT_LIMIT}).",
            ),
            OpenApiParameter(
                "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, description="A previous ETag."
            ),
            OpenApiParameter(
                "Gallery-Next",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=[200],
                description="The answer's `next`, as a header: ask for the next page before parsing this one.",
            ),
            OpenApiParameter(
                "Gallery-More",
                {"type": "string", "enum": ["true", "false"]},
                OpenApiParameter.HEADER,
                response=[200],
                description="The answer's `more`, as a header.",
            ),
            OpenApiParameter(
                "ETag",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description="Send it back as If-None-Match.",
            ),
        ],
        responses={
            200: GalleryAnswerSerializer,
            304: OpenApiResponse(description="Nothing changed since the ETag you sent."),
            410: OpenApiResponse(ErrorEnvelopeSerializer, description="gallery_resync_required: start again from 0"),
        },
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "after": 1500,
                    "next": 1532,
                    "more": False,
                    "sequence": 1532,
                    "changes": [
                        {
                            "seq": 1517,
                            "op": "upsert",
                            "id": 42,
                            "name": "王小明",
                            "type": "employee",
                            "job_number": "E-0042",
                            "visit_start": None,
                            "visit_end": None,
                            "faces": [{"photo_id": 7, "model": "dlib-resnet-v1", "embedding": "AAAAAA…"}],
                        },
                        {"seq": 1532, "op": "delete", "id": 43},
                    ],
                },
            )
        ],
    )
    def get(self, request):
        # A plain dict, not the QueryDict: DRF would read a blank `after=` as "not given".
        query = GalleryQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        company_id = self.device.company_id
        state = gallery_state(company_id)
        _check_cursor(after, state)
        etag = gallery_etag(company_id=company_id, state=state, after=after, limit=limit)
        if _matches(request.headers.get("If-None-Match", ""), etag):
            response = HttpResponse(status=304)
        else:
            page = gallery_page(company_id=company_id, after=after, limit=limit, state=state)
            if after:
                # A compaction committed between the two reads may have taken a deletion this
                # page should carry: its counter moved with it, so look again.
                _check_cursor(after, gallery_state(company_id))
            body = gallery_answer(page, after=after, state=state)
            response = HttpResponse(body, content_type="application/json")
            if ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", "")):
                response.content = igzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
                response["Content-Encoding"] = "gzip"
            response["Content-Length"] = str(len(response.content))
            # The cursor and "more" in headers too: a box may ask for the next page as soon
            # as the headers arrive and parse this one meanwhile.
            response["Gallery-Next"] = str(page.next)
            response["Gallery-More"] = "true" if page.more else "false"
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        patch_vary_headers(response, ["Accept-Encoding", "Authorization"])
        return response
