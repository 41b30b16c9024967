"""The admin's pages of unknown people and corrections, through Django's test client."""

from __future__ import annotations

import pytest

from events.models import Event, EventCorrection, EventKind, UnknownPerson
from tests.events.conftest import event
from tests.events.test_unknown_people import post_strangers, sightings
from tests.faces import portraits
from tests.factories import SubjectFactory, UnknownPersonFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_event_is_corrected_from_its_admin_page(admin_client_for, tenant_a, door_a):
    company = tenant_a.company
    wrong, right = SubjectFactory(company=company, name="Wrong"), SubjectFactory(company=company, name="Right")
    door_a.box_client().post("/api/v1/device/events", event("w1", door_a.entrance, subject=wrong), format="json")
    stored = Event.objects.for_company(company).get(uid="w1")
    client = admin_client_for(tenant_a.admin)
    page = client.get(f"/admin/events/event/{stored.pk}/change/").content.decode()
    assert f"/admin/events/event/{stored.pk}/correct/" in page
    form = client.get(f"/admin/events/event/{stored.pk}/correct/")
    assert form.status_code == 200 and "Recognised as Wrong." in form.content.decode()
    done = client.post(f"/admin/events/event/{stored.pk}/correct/", {"subject": right.pk})
    assert done.status_code == 302
    stored.refresh_from_db()
    assert stored.subject_id == right.pk and stored.corrected_at is not None
    correction = EventCorrection.objects.for_company(company).get()
    assert correction.original_subject_name == "Wrong" and correction.actor == tenant_a.admin
    # Nothing to add a photo from: the form says why, nothing changes.
    refused = client.post(f"/admin/events/event/{stored.pk}/correct/", {"subject": wrong.pk, "add_photo": "on"})
    assert refused.status_code == 400 and "no snapshot" in refused.content.decode()
    rates = client.get("/admin/events/eventcorrection/").content.decode()
    assert 'id="correction-rates"' in rates and "A entrance" in rates and "1000.0" in rates


def test_a_viewer_sees_the_correction_form_but_cannot_post_it(admin_client_for, tenant_a, door_a):
    subject = SubjectFactory(company=tenant_a.company)
    door_a.box_client().post("/api/v1/device/events", event("v1", door_a.entrance, subject=subject), format="json")
    stored = Event.objects.for_company(tenant_a.company).get(uid="v1")
    client = admin_client_for(tenant_a.viewer)
    assert 'id="correct-form"' not in client.get(f"/admin/events/event/{stored.pk}/correct/").content.decode()
    assert client.post(f"/admin/events/event/{stored.pk}/correct/", {"subject": ""}).status_code == 403
    assert Event.objects.for_company(tenant_a.company).get(pk=stored.pk).kind == EventKind.RECOGNIZED


def test_unknown_people_are_merged_and_ignored_from_the_list(admin_client_for, tenant_a):
    company = tenant_a.company
    first, second = UnknownPersonFactory(company=company), UnknownPersonFactory(company=company, sightings=2)
    client = admin_client_for(tenant_a.admin)
    url = "/admin/events/unknownperson/"
    client.post(url, {"action": "ignore_selected", "_selected_action": [first.pk]})
    assert UnknownPerson.objects.for_company(company).get(pk=first.pk).ignored
    client.post(url, {"action": "merge_selected", "_selected_action": [first.pk, second.pk]})
    assert UnknownPerson.objects.for_company(company).get().sightings == 3


def test_an_unknown_persons_page_enrols_them_and_shows_errors_in_place(admin_client_for, tenant_a, door_a):
    company = tenant_a.company
    post_strangers(door_a, sightings(portraits.astronaut())[:2], "ast")
    person = UnknownPerson.objects.for_company(company).get()
    SubjectFactory(company=company, job_number="E1")
    client = admin_client_for(tenant_a.admin)
    taken = client.post(
        f"/admin/events/unknownperson/{person.pk}/enrol/",
        {"enrol-name": "Eileen", "enrol-subject_type": "employee", "enrol-job_number": "E1"},
    )
    assert taken.status_code == 400 and 'id="enrol-form"' in taken.content.decode()
    assert UnknownPerson.objects.for_company(company).exists()
    done = client.post(
        f"/admin/events/unknownperson/{person.pk}/enrol/",
        {
            "enrol-name": "Eileen",
            "enrol-subject_type": "employee",
            "enrol-job_number": "E2",
            "enrol-consent_method": "paper",
        },
    )
    assert done.status_code == 302 and "/admin/subjects/subject/" in done["Location"]
    assert set(Event.objects.for_company(company).values_list("subject_name", flat=True)) == {"Eileen"}
