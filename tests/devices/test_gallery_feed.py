"""GET /api/v1/device/gallery: a box pulls its company's gallery changes by cursor."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from subjects import services
from subjects.domain_signals import announce_photos_enrolled
from subjects.gallery import gallery_compact
from subjects.models import PhotoStatus, SubjectType
from subjects.selectors import gallery_sequence
from tests.devices.conftest import device_client
from tests.factories import PhotoFactory

pytestmark = pytest.mark.django_db

MODEL = "dlib-resnet-v1"


@pytest.fixture
def box_a(register, tenant_a):
    _, key = register("box", tenant_a)
    return device_client(key)


@pytest.fixture
def box_b(register, tenant_b):
    _, key = register("box", tenant_b)
    return device_client(key)


def subject(tenant, name="Mei", job="E1", **fields):
    return services.subject_create(company=tenant.company, actor=None, name=name, job_number=job, **fields)


def enrol(tenant, person, seed=0):
    """A photo of `person` the face engine enrolled: ok, with an embedding, announced."""
    vector = np.random.default_rng(seed).random(128, dtype=np.float32)
    photo = PhotoFactory(
        company=tenant.company,
        subject=person,
        status=PhotoStatus.OK,
        embedding=vector.astype("<f4").tobytes(),
        embedding_model=MODEL,
    )
    with transaction.atomic():
        announce_photos_enrolled(company=tenant.company, photos=[(photo.pk, person.pk)])
    return photo, vector


def pull(client, after=0, limit=None, **headers):
    params = {"after": after} if limit is None else {"after": after, "limit": limit}
    return client.get("/api/v1/device/gallery", params, **headers)


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def sync(client, after=0, limit=1000) -> tuple[dict[int, dict], int, list[int]]:
    """What a box holds after pulling every page from `after`: {subject id: change}, cursor, seqs."""
    held, seqs = {}, []
    while True:
        page = body(pull(client, after, limit))
        for change in page["changes"]:
            seqs.append(change["seq"])
            if change["op"] == "upsert":
                held[change["id"]] = change
            else:
                held.pop(change["id"], None)
        after = page["next"]
        if not page["more"]:
            return held, after, seqs


def test_from_0_a_box_gets_the_current_gallery_not_its_history(box_a, tenant_a):
    mei = subject(tenant_a, "Mei", "E1")
    services.subject_update(company=tenant_a.company, actor=None, subject=mei, name="Mei Lin")
    photo, vector = enrol(tenant_a, mei)
    start = timezone.now().replace(microsecond=0)
    guest = subject(
        tenant_a, "Guest", "", subject_type=SubjectType.VISITOR, visit_start=start, visit_end=start + timedelta(hours=1)
    )
    gone = subject(tenant_a, "Gone", "E2")
    services.subject_delete(company=tenant_a.company, actor=None, subject=gone)
    resting = subject(tenant_a, "Resting", "E3")
    services.subject_archive(company=tenant_a.company, actor=None, subject=resting)

    page = body(pull(box_a))
    assert page["after"] == 0 and page["more"] is False
    assert page["next"] == page["sequence"] == gallery_sequence(tenant_a.company.pk)
    # Each known subject once, at its latest change; no deletions, no archived subject.
    assert [(c["op"], c["id"]) for c in page["changes"]] == [("upsert", mei.pk), ("upsert", guest.pk)]
    first = page["changes"][0]
    assert first == {
        "seq": first["seq"],
        "op": "upsert",
        "id": mei.pk,
        "name": "Mei Lin",
        "type": "employee",
        "job_number": "E1",
        "visit_start": None,
        "visit_end": None,
        "faces": [{"photo_id": photo.pk, "model": MODEL, "embedding": first["faces"][0]["embedding"]}],
    }
    embedding = np.frombuffer(base64.b64decode(first["faces"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(embedding, vector)
    second = page["changes"][1]
    assert (second["type"], second["job_number"][:2]) == ("visitor", "V-")
    assert second["visit_start"] == start.isoformat().replace("+00:00", "Z")
    assert second["faces"] == []


@pytest.mark.parametrize(
    "name",
    ['Anne "Nan" O\'Brien', "back\\slash", "王小明 😀", "tab\there", "e\u0301", "line\u2028sep"],
)
def test_names_reach_the_box_exactly_as_written(box_a, tenant_a, name):
    """The answer is written as text, not through json.dumps: quotes, backslashes, control
    characters and non-ASCII must still come back as the same string."""
    person = subject(tenant_a, name, 'E-"1"')
    enrol(tenant_a, person)
    change = body(pull(box_a))["changes"][0]
    assert (change["name"], change["job_number"]) == (name, 'E-"1"')


def test_pending_and_rejected_photos_are_not_sent(box_a, tenant_a):
    person = subject(tenant_a)
    PhotoFactory(company=tenant_a.company, subject=person)  # pending
    PhotoFactory(company=tenant_a.company, subject=person, status=PhotoStatus.REJECTED, reason="no_face")
    assert body(pull(box_a))["changes"][0]["faces"] == []


def test_pages_follow_next_until_more_is_false_and_add_up_to_the_gallery(box_a, tenant_a):
    people = [subject(tenant_a, f"P{i}", f"E{i}") for i in range(7)]
    for person in people[:3]:  # changed again: their first rows are superseded
        services.subject_update(company=tenant_a.company, actor=None, subject=person, name=person.name + "!")
    held, cursor, seqs = sync(box_a, limit=2)
    assert set(held) == {p.pk for p in people}
    assert {held[p.pk]["name"] for p in people[:3]} == {"P0!", "P1!", "P2!"}
    assert seqs == sorted(seqs) and len(seqs) == 7  # each subject once, in order
    assert cursor == gallery_sequence(tenant_a.company.pk)
    first = body(pull(box_a, 0, 2))
    assert (len(first["changes"]), first["more"], first["next"]) == (2, True, first["changes"][-1]["seq"])


def test_after_a_cursor_come_the_changes_in_order_with_tombstones(box_a, tenant_a):
    stays, leaves, rests = (
        subject(tenant_a, "Stays", "E1"),
        subject(tenant_a, "Leaves", "E2"),
        subject(tenant_a, "Rests", "E3"),
    )
    held, cursor, _ = sync(box_a)
    assert set(held) == {stays.pk, leaves.pk, rests.pk}

    services.subject_update(company=tenant_a.company, actor=None, subject=stays, subject_type=SubjectType.VIP)
    services.subject_delete(company=tenant_a.company, actor=None, subject=leaves)
    services.subject_archive(company=tenant_a.company, actor=None, subject=rests)
    page = body(pull(box_a, cursor))
    assert [(c["op"], c["id"]) for c in page["changes"]] == [
        ("upsert", stays.pk),
        ("delete", leaves.pk),
        ("delete", rests.pk),  # archived: the box must stop recognising them
    ]
    assert page["changes"][0]["type"] == "vip"
    assert page["changes"][1] == {"seq": page["changes"][1]["seq"], "op": "delete", "id": leaves.pk}

    services.subject_archive(company=tenant_a.company, actor=None, subject=rests, archived=False)
    back = body(pull(box_a, page["next"]))
    assert [(c["op"], c["id"], c["name"]) for c in back["changes"]] == [("upsert", rests.pk, "Rests")]
    assert body(pull(box_a, back["next"]))["changes"] == []


def test_a_removed_photo_sends_the_subject_without_it(box_a, tenant_a):
    person = subject(tenant_a)
    photo, _ = enrol(tenant_a, person)
    _, cursor, _ = sync(box_a)
    services.photo_delete(company=tenant_a.company, actor=None, photo=photo)
    page = body(pull(box_a, cursor))
    assert [(c["id"], c["faces"]) for c in page["changes"]] == [(person.pk, [])]


def test_an_unchanged_gallery_answers_304_to_its_etag(box_a, tenant_a):
    subject(tenant_a)
    first = pull(box_a, 0)
    etag = first["ETag"]
    assert etag.startswith('W/"') and first["Cache-Control"] == "private, no-cache"
    again = pull(box_a, 0, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    subject(tenant_a, "Other", "E2")
    moved = pull(box_a, 0, HTTP_IF_NONE_MATCH=etag)
    assert moved.status_code == 200 and moved["ETag"] != etag
    # Another cursor or page size is another answer.
    assert pull(box_a, 1, HTTP_IF_NONE_MATCH=moved["ETag"]).status_code == 200
    assert pull(box_a, 0, 5, HTTP_IF_NONE_MATCH=moved["ETag"]).status_code == 200


def test_the_answer_is_gzipped_for_a_client_that_accepts_it(box_a, tenant_a):
    for i in range(20):
        enrol(tenant_a, subject(tenant_a, f"P{i}", f"E{i}"), seed=i)
    plain = pull(box_a)
    zipped = pull(box_a, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped["Vary"]
    assert int(zipped["Content-Length"]) == len(zipped.content) < len(plain.content)
    assert json.loads(gzip.decompress(zipped.content)) == json.loads(plain.content)


def test_a_box_never_sees_another_companys_gallery(box_a, box_b, tenants):
    a, b = tenants
    enrol(a, subject(a, "A person", "E1"))
    own = subject(b, "B person", "E1")
    page = body(pull(box_b))
    assert [c["id"] for c in page["changes"]] == [own.pk]
    assert page["sequence"] == 1
    etag = pull(box_b)["ETag"]
    subject(a, "Another A", "E2")  # a change in A moves nothing of B's
    assert pull(box_b, 0, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_a_cursor_below_the_compacted_history_must_resync_from_0(box_a, tenant_a):
    keep = subject(tenant_a, "Keep", "E1")
    gone = subject(tenant_a, "Gone", "E2")
    _, cursor, _ = sync(box_a)  # 2
    services.subject_delete(company=tenant_a.company, actor=None, subject=gone)  # 3, a tombstone
    subject(tenant_a, "New", "E3")  # 4
    gallery_compact(company_id=tenant_a.company.pk, oldest_cursor=None, now=timezone.now() + timedelta(days=31))
    stale = pull(box_a, cursor)
    assert stale.status_code == 410
    error = stale.json()["error"]
    assert error["code"] == "gallery_resync_required"
    held, cursor, _ = sync(box_a, 0)
    assert set(held) == {keep.pk} | {c for c in held if held[c]["name"] == "New"} and len(held) == 2
    assert body(pull(box_a, cursor))["changes"] == []


def test_a_cursor_ahead_of_the_log_must_resync(box_a, tenant_a):
    subject(tenant_a)
    response = pull(box_a, 99)
    assert (response.status_code, response.json()["error"]["code"]) == (410, "gallery_resync_required")


@pytest.mark.parametrize(
    "params", [{"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "5001"}, {"after": ""}, {"limit": "1.5"}]
)
def test_a_bad_cursor_or_limit_answers_400(box_a, params):
    response = box_a.get("/api/v1/device/gallery", params)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "validation_error")


def test_only_boxes_read_the_gallery(register, tenant_a):
    _, pad_key = register("pad", tenant_a)
    assert device_client(pad_key).get("/api/v1/device/gallery").json()["error"]["code"] == "device_wrong_kind"
    assert device_client(None).get("/api/v1/device/gallery").status_code == 401


def test_a_page_costs_the_same_queries_however_many_subjects_it_holds(box_a, tenant_a):
    for i in range(30):
        enrol(tenant_a, subject(tenant_a, f"P{i}", f"E{i}"), seed=i)
    with CaptureQueriesContext(connection) as queries:
        body(pull(box_a))
    # 1 the box by its key (with its company), 2 the counter, 3 the latest rows after the
    # cursor, 4 the subjects, 5 their usable faces.
    assert len(queries) == 5, [q["sql"] for q in queries.captured_queries]
    cursor = body(pull(box_a))["next"]
    enrol(tenant_a, subject(tenant_a, "Late", "E99"))
    with CaptureQueriesContext(connection) as queries:
        assert len(body(pull(box_a, cursor))["changes"]) == 1
    # After a cursor, one more: the counter again, in case a compaction ran meanwhile.
    assert len(queries) == 6
    etag = pull(box_a)["ETag"]
    with CaptureQueriesContext(connection) as queries:
        assert pull(box_a, 0, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert len(queries) == 2  # the box, the counter
