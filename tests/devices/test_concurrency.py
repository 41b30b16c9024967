"""The box's screen limit holds when requests race for its last place (PostgreSQL row locks)."""

import pytest

from devices import services
from devices.models import Screen
from kangaroo.errors import KangarooError
from tests.factories import BoxFactory, ScreenFactory
from tests.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_attaches_racing_for_the_last_place_leave_exactly_one_winner(tenant_a):
    company = tenant_a.company
    for _ in range(5):  # repeated: a race that is won by luck once must not pass
        box = BoxFactory(company=company, max_screens=2)
        ScreenFactory(company=company, box=box)
        contenders = ScreenFactory.create_batch(3, company=company)

        def attach(screen, box=box):
            return lambda: services.screen_attach(company=company, actor=tenant_a.admin, screen=screen, box=box)

        results = run_together(*(attach(screen) for screen in contenders))
        winners = [r for r in results if isinstance(r, Screen)]
        losers = [r for r in results if isinstance(r, KangarooError)]
        assert len(winners) == 1, results
        assert [(e.code, e.extra) for e in losers] == [("box_screen_limit", {"count": 2, "limit": 2})] * 2
        assert Screen.objects.for_company(company).filter(box=box).count() == 2


def test_two_new_screens_racing_for_the_last_place_leave_exactly_one(tenant_a):
    company = tenant_a.company
    box = BoxFactory(company=company, max_screens=1)

    def create(name):
        return lambda: services.screen_create(
            company=company, actor=tenant_a.admin, name=name, camera_url="rtsp://10.0.0.1/s", box=box
        )

    results = run_together(create("One"), create("Two"))
    assert sorted(type(r).__name__ for r in results) == ["KangarooError", "tuple"]
    assert Screen.objects.for_company(company).filter(box=box).count() == 1


def test_two_creates_racing_for_one_name_give_one_device_and_a_coded_error(tenant_a):
    company = tenant_a.company

    def create():
        return services.box_create(company=company, actor=tenant_a.admin, name="Same name")

    results = run_together(create, create)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], KangarooError)
    assert errors[0].code == "device_name_taken"
