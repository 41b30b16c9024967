"""HR's actions on unknown people and corrections of events, on real faces, through the API."""

from __future__ import annotations

import pytest

import faces
from accounts.models import AuditLog
from events.attendance import attendance_days, company_today
from events.models import Event, EventCorrection, EventKind, UnknownPerson, UnknownSnapshot
from subjects.models import Photo, Subject
from tests.events.conftest import event
from tests.events.test_unknown_people import drain, media_files, post_strangers, shot, sightings
from tests.faces import portraits
from tests.factories import SubjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def the_person(company) -> UnknownPerson:
    return UnknownPerson.objects.for_company(company).get()


def test_enrolling_an_unknown_person_links_their_past_events_and_photos(api, tenant_a, door_a, media_root):
    company = tenant_a.company
    ids = post_strangers(door_a, sightings(portraits.astronaut())[:3], "ast")
    person = the_person(company)
    chosen = list(UnknownSnapshot.objects.for_company(company).filter(person=person).values_list("pk", flat=True)[:2])
    response = api(tenant_a.admin).post(
        f"/api/v1/unknown-people/{person.pk}/enrol",
        {
            "name": "Eileen Collins",
            "subject_type": "employee",
            "job_number": "E777",
            "snapshots": chosen,
            "consent_method": "paper",
            "consent_policy_version": 1,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    subject = Subject.objects.for_company(company).get(pk=response.json()["id"])
    assert subject.name == "Eileen Collins" and subject.job_number == "E777"
    assert Photo.objects.for_company(company).filter(subject=subject).count() == 2
    events = Event.objects.for_company(company).filter(pk__in=ids)
    assert {(e.kind, e.subject_id, e.subject_name) for e in events} == {
        (EventKind.RECOGNIZED, subject.pk, "Eileen Collins")
    }
    assert not UnknownPerson.objects.for_company(company).exists()
    # Their attendance today counts the linked sightings.
    today = company_today(company)
    rows = list(attendance_days(company=company, date_from=today, date_to=today))
    assert [(r.subject_id, r.passes) for r in rows] == [(subject.pk, 3)]
    # The unknown person's snapshot copies are gone; the events' snapshots and the photos stay.
    expected = set(events.values_list("snapshot", flat=True))
    for photo in Photo.objects.for_company(company).filter(subject=subject):
        expected |= {photo.image.name, photo.thumbnail.name}
    assert media_files(media_root) == expected
    assert AuditLog.objects.for_company(company).filter(action="unknown_person.enrol").count() == 1


def test_the_next_sighting_of_an_enrolled_person_is_recognised(api, tenant_a, door_a):
    """The enrolled photos go through enrolment: the company's face index knows the face."""
    from subjects import face_index

    company = tenant_a.company
    post_strangers(door_a, sightings(portraits.grace_hopper())[:2], "gh")
    person = the_person(company)
    response = api(tenant_a.admin).post(
        f"/api/v1/unknown-people/{person.pk}/enrol",
        {"name": "Grace Hopper", "job_number": "E1906", "consent_method": "web", "consent_policy_version": 1},
        format="json",
    )
    assert response.status_code == 201, response.content
    drain()  # the enrolment job
    subject_id = response.json()["id"]
    assert list(Photo.objects.for_company(company).filter(subject_id=subject_id).values_list("status", flat=True)) == [
        "ok"
    ]
    later = faces.snapshot_face(portraits.rescaled(portraits.grace_hopper(), 0.8))
    match = face_index.identify(company, later.embedding)
    assert match is not None and match.subject_id == subject_id


def test_adding_an_unknown_person_to_an_existing_subject(api, tenant_a, door_a):
    company = tenant_a.company
    subject = SubjectFactory(company=company, name="Eileen")
    ids = post_strangers(door_a, sightings(portraits.astronaut())[:2], "ast")
    person = the_person(company)
    response = api(tenant_a.admin).post(
        f"/api/v1/unknown-people/{person.pk}/add-to-subject", {"subject": subject.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Photo.objects.for_company(company).filter(subject=subject).count() == 1
    assert set(Event.objects.for_company(company).filter(pk__in=ids).values_list("subject_id", flat=True)) == {
        subject.pk
    }


def test_merge_ignore_and_delete(api, tenant_a, door_a, media_root):
    company = tenant_a.company
    post_strangers(door_a, sightings(portraits.astronaut())[:2], "ast")
    post_strangers(door_a, sightings(portraits.grace_hopper())[:2], "gh")
    first, second = UnknownPerson.objects.for_company(company).order_by("id")
    client = api(tenant_a.admin)
    assert (
        client.post(f"/api/v1/unknown-people/{first.pk}/merge", {"into": first.pk}, format="json").json()["error"][
            "code"
        ]
        == "unknown_person_merge_self"
    )
    merged = client.post(f"/api/v1/unknown-people/{first.pk}/merge", {"into": second.pk}, format="json")
    assert merged.status_code == 200 and merged.json()["sightings"] == 4
    person = the_person(company)
    assert person.events.count() == 4 and len(merged.json()["snapshots"]) == 4
    ignored = client.post(f"/api/v1/unknown-people/{person.pk}/ignore", {"ignored": True}, format="json")
    assert ignored.json()["ignored"] is True
    assert client.delete(f"/api/v1/unknown-people/{person.pk}").status_code == 204
    assert not UnknownPerson.objects.for_company(company).exists()
    assert media_files(media_root) == set()  # their snapshots and their events' snapshots
    assert Event.objects.for_company(company).count() == 4  # the events stay


def test_a_viewer_reads_but_does_not_act(api, tenant_a, door_a):
    post_strangers(door_a, sightings(portraits.astronaut())[:1], "ast")
    person = the_person(tenant_a.company)
    client = api(tenant_a.viewer)
    listed = client.get("/api/v1/unknown-people").json()["results"]
    assert [p["id"] for p in listed] == [person.pk] and listed[0]["screens"] == ["A entrance"]
    # The face itself is for owners and admins ("view biometrics").
    assert listed[0]["snapshots"][0]["image_url"] is None
    refused = client.get("/api/v1/unknown-people?include=images")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "biometrics_not_permitted")
    image = client.get(f"/api/v1/unknown-snapshots/{listed[0]['snapshots'][0]['id']}/image")
    assert (image.status_code, image.json()["error"]["code"]) == (403, "biometrics_not_permitted")
    shown = api(tenant_a.admin).get("/api/v1/unknown-people?include=images").json()["results"]
    assert api(tenant_a.admin).get(shown[0]["snapshots"][0]["image_url"])["Content-Type"] == "image/jpeg"
    assert client.post(f"/api/v1/unknown-people/{person.pk}/ignore", {}, format="json").status_code == 403


def test_a_wrong_match_corrected_to_the_right_subject_moves_the_attendance(api, tenant_a, door_a):
    company = tenant_a.company
    wrong, right = SubjectFactory(company=company, name="Wrong"), SubjectFactory(company=company, name="Right")
    item = event("w1", door_a.entrance, subject=wrong, snapshot=shot(portraits.astronaut()), confidence=0.62)
    assert door_a.box_client().post("/api/v1/device/events", item, format="json").status_code == 201
    stored = Event.objects.for_company(company).get(uid="w1")
    today = company_today(company)

    def attendance():
        return {(r.subject_id, r.passes) for r in attendance_days(company=company, date_from=today, date_to=today)}

    assert attendance() == {(wrong.pk, 1)}
    response = api(tenant_a.admin).post(
        f"/api/v1/events/{stored.pk}/correct", {"subject": right.pk, "add_photo": True}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "reassigned" and body["original_subject"] == wrong.pk
    assert body["original_subject_name"] == "Wrong" and body["original_confidence"] == 0.62
    assert attendance() == {(right.pk, 1)}
    assert Photo.objects.for_company(company).filter(subject=right).count() == 1
    shown = api(tenant_a.viewer).get(f"/api/v1/events/{stored.pk}").json()
    assert shown["subject"]["name"] == "Right" and shown["corrected"] is True
    # Corrected again (it was a stranger after all): both originals are kept.
    again = api(tenant_a.admin).post(f"/api/v1/events/{stored.pk}/correct", {"subject": None}, format="json")
    drain()
    assert again.status_code == 201 and attendance() == set()
    assert EventCorrection.objects.for_company(company).filter(event=stored).count() == 2
    assert AuditLog.objects.for_company(company).filter(action="event.correct").count() == 2
    # Marked a stranger, its face joins the unknown people.
    assert Event.objects.for_company(company).get(pk=stored.pk).unknown_person is not None
    unchanged = api(tenant_a.admin).post(f"/api/v1/events/{stored.pk}/correct", {"subject": None}, format="json")
    assert unchanged.json()["error"]["code"] == "event_correction_unchanged"


def test_a_correction_stays_in_its_company(api, tenants, door_a):
    a, b = tenants
    subject = SubjectFactory(company=a.company)
    theirs = SubjectFactory(company=b.company)
    item = event("x1", door_a.entrance, subject=subject)
    door_a.box_client().post("/api/v1/device/events", item, format="json")
    stored = Event.objects.for_company(a.company).get(uid="x1")
    refused = api(a.admin).post(f"/api/v1/events/{stored.pk}/correct", {"subject": theirs.pk}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["fields"]["subject"]
    assert api(b.owner).post(f"/api/v1/events/{stored.pk}/correct", {"subject": None}, format="json").status_code == 404
    assert not EventCorrection.objects.for_company(a.company).exists()


def test_correction_rates_by_screen(tenant_a, door_a):
    from events.corrections import event_correct
    from events.selectors import correction_rates

    company = tenant_a.company
    subject = SubjectFactory(company=company)
    items = [event(f"r{n}", door_a.entrance, subject=subject) for n in range(4)] + [
        event("x", door_a.exit, subject=subject)
    ]
    door_a.box_client().post("/api/v1/device/events", {"events": items}, format="json")
    event_correct(
        company=company, actor=tenant_a.admin, event=Event.objects.for_company(company).get(uid="r0"), subject=None
    )
    rates = {r.screen_name: (r.events, r.corrected, r.per_thousand) for r in correction_rates(company=company)}
    assert rates == {"A entrance": (4, 1, 250.0), "A exit": (1, 0, 0.0)}
