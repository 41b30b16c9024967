"""Unknown people on real faces: stranger sightings posted by a box, embedded by the job
(inline here), grouped into people per company."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import pytest
from django.utils import timezone
from PIL import Image

from events.models import Event, EventKind, UnknownPerson, UnknownSnapshot
from tests.events.conftest import event
from tests.faces import portraits

pytestmark = pytest.mark.django_db(transaction=True)


def shot(image: Image.Image, quality: int = 85) -> str:
    """A camera snapshot as a box sends it: a JPEG, base64 (under the 64 KiB limit)."""
    if max(image.size) > 400:
        image = portraits.rescaled(image, 400 / max(image.size))
    return base64.b64encode(portraits.jpeg(image, quality)).decode()


def sightings(image: Image.Image) -> list[str]:
    """The same face as a door camera sees it on different passes."""
    return [
        shot(image),
        shot(portraits.rescaled(image, 0.7)),
        shot(image, quality=40),
        shot(portraits.flipped(image)),
    ]


def drain() -> None:
    """Run the queued jobs, as a worker would, when jobs go to Redis (inline, they ran
    already). In a thread of its own: a browser test's thread holds Playwright's event loop."""
    from django.conf import settings

    if settings.JOBS_INLINE:
        return
    import threading

    import django_rq

    def work():
        from django.db import connections

        queue = django_rq.get_queue("default")
        try:
            while (job := queue.dequeue_any([queue], timeout=None, connection=queue.connection)) is not None:
                job[0].func(*job[0].args, **job[0].kwargs)
        finally:
            connections.close_all()  # back to the pool

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=300)


def post_strangers(door, shots: list[str], prefix: str, when=None) -> list[int]:
    items = [
        event(
            f"{prefix}{n}", door.entrance, when=when or timezone.now() - datetime.timedelta(minutes=10 - n), snapshot=s
        )
        for n, s in enumerate(shots)
    ]
    response = door.box_client().post("/api/v1/device/events", {"events": items}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created"] * len(shots)
    drain()
    return [r["id"] for r in results]


def media_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.jpg")}


def test_several_sightings_of_one_person_form_one_unknown_person(tenant_a, door_a):
    ids = post_strangers(door_a, sightings(portraits.astronaut()), "ast")
    people = list(UnknownPerson.objects.for_company(tenant_a.company))
    assert len(people) == 1
    person = people[0]
    assert person.sightings == 4
    assert set(
        Event.objects.for_company(tenant_a.company).filter(pk__in=ids).values_list("unknown_person", flat=True)
    ) == {person.pk}
    stored = Event.objects.for_company(tenant_a.company).filter(pk__in=ids).order_by("happened_at")
    assert person.first_seen_at == stored.first().happened_at
    assert person.last_seen_at == stored.last().happened_at
    assert UnknownSnapshot.objects.for_company(tenant_a.company).filter(person=person).count() == 4


def test_two_people_form_two_unknown_people(tenant_a, door_a):
    post_strangers(door_a, sightings(portraits.astronaut())[:2] + sightings(portraits.grace_hopper())[:2], "mix")
    people = UnknownPerson.objects.for_company(tenant_a.company).order_by("id")
    assert [p.sightings for p in people] == [2, 2]
    first, second = people
    assert set(first.events.values_list("uid", flat=True)) == {"mix0", "mix1"}
    assert set(second.events.values_list("uid", flat=True)) == {"mix2", "mix3"}


def test_the_same_stranger_seen_by_two_companies_is_two_unknown_people(tenants, door_a, door_b):
    a, b = tenants
    post_strangers(door_a, sightings(portraits.grace_hopper())[:2], "a")
    post_strangers(door_b, sightings(portraits.grace_hopper())[:2], "b")
    mine = UnknownPerson.objects.for_company(a.company).get()
    theirs = UnknownPerson.objects.for_company(b.company).get()
    assert mine.pk != theirs.pk and mine.sightings == theirs.sightings == 2
    assert set(mine.events.values_list("company", flat=True)) == {a.company.pk}
    assert set(UnknownSnapshot.objects.for_company(b.company).values_list("person", flat=True)) == {theirs.pk}


def test_a_snapshot_without_a_face_joins_nobody(tenant_a, door_a):
    post_strangers(door_a, [shot(portraits.landscape())], "land")
    assert not UnknownPerson.objects.for_company(tenant_a.company).exists()
    assert Event.objects.for_company(tenant_a.company).get(uid="land0").unknown_person is None


def test_only_the_best_snapshots_are_kept(settings, tenant_a, door_a, media_root):
    settings.UNKNOWN_BEST_SNAPSHOTS = 2
    post_strangers(door_a, sightings(portraits.astronaut()), "best")
    person = UnknownPerson.objects.for_company(tenant_a.company).get()
    kept = list(UnknownSnapshot.objects.for_company(tenant_a.company).filter(person=person))
    assert person.sightings == 4 and len(kept) == 2
    # Kept: the copies of the two best; the other two copies are deleted, the events' own stay.
    events = Event.objects.for_company(tenant_a.company)
    expected = {s.image.name for s in kept} | set(events.values_list("snapshot", flat=True))
    assert media_files(media_root) == expected


def test_a_retried_job_clusters_nothing_twice(tenant_a, door_a):
    from events.jobs import unknown_sightings_job

    ids = post_strangers(door_a, sightings(portraits.astronaut())[:2], "again")
    unknown_sightings_job(tenant_a.company.pk, ids)
    assert UnknownPerson.objects.for_company(tenant_a.company).get().sightings == 2


def test_recognitions_are_not_clustered(tenant_a, door_a):
    from tests.factories import SubjectFactory

    subject = SubjectFactory(company=tenant_a.company)
    item = event("known", door_a.entrance, subject=subject, snapshot=shot(portraits.astronaut()))
    assert door_a.box_client().post("/api/v1/device/events", item, format="json").status_code == 201
    drain()
    assert not UnknownPerson.objects.for_company(tenant_a.company).exists()
    assert Event.objects.for_company(tenant_a.company).get(uid="known").kind == EventKind.RECOGNIZED
