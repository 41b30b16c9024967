"""Company B must never see, change or learn of company A's objects.

These tests walk every URL pattern of the admin and the API, so a view added later is
covered without anyone remembering to write a test for it.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from websockets.exceptions import ConnectionClosed

from accounts.models import AuditLog, Company, User
from devices import services as device_services
from events.live import live_image_url
from kangaroo.admin import TenantAdminMixin
from kangaroo.routing import websocket_urlpatterns
from kangaroo.tenancy import is_tenant_model
from tests.conftest import answer_without_request_id, api_client_for
from tests.events.conftest import event
from tests.events.live_client import as_admin, as_tv, post_events, receive
from tests.factories import FACTORIES, EventFactory, PhotoFactory
from tests.images import jpeg_bytes

MISSING_ID = 987654321


def walk(patterns, prefix=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def tenant_models():
    return [m for m in apps.get_models() if is_tenant_model(m)]


def object_of(model, tenant):
    """One object of `model` that belongs to `tenant`'s company."""
    if model is Company:
        return tenant.company
    if model is User:
        return tenant.admin
    return FACTORIES[model](company=tenant.company)


def fill(route: str, object_id) -> str:
    """The path of `route` (path() or regex style) with its object id filled in."""
    url = re.sub(r"<(?:\w+:)?(?:pk|object_id)>", str(object_id), route)
    url = re.sub(r"\(\?P<(?:pk|object_id)>[^)]*\)", str(object_id), url)
    return "/" + url.replace("^", "").replace("$", "").replace("\\Z", "")


def names_an_object(route: str) -> bool:
    return bool(re.search(r"<(?:\w+:)?(?:pk|object_id)>", route))


def test_every_tenant_model_has_a_factory():
    missing = [m.__name__ for m in tenant_models() if m not in FACTORIES]
    assert not missing, f"add factories in tests/factories.py for: {missing}"


def test_every_tenant_model_is_scoped_in_its_admin():
    for model, model_admin in admin.site._registry.items():
        if is_tenant_model(model):
            assert isinstance(model_admin, TenantAdminMixin), f"{model.__name__} admin must use TenantAdminMixin"


# --- admin --------------------------------------------------------------------------------

ADMIN_OBJECT_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/<path:object_id>/")


def admin_object_routes():
    """(model, route) for every admin URL that names one object."""
    found = []
    for route, pattern in walk(get_resolver().url_patterns):
        if "object_id" not in route:
            continue
        match = ADMIN_OBJECT_ROUTE.match(route)
        if match:
            found.append((apps.get_model(match["app"], match["model"]), route))
        elif pattern.name != "view_on_site":
            pytest.fail(f"admin route {route} names an object but is not understood by this test")
    return found


def test_the_admin_route_walk_finds_every_registered_model():
    models = {model for model, _ in admin_object_routes()}
    # A report-only admin (attendance) exposes no object URLs, so it has nothing to walk.
    with_objects = {model for model, model_admin in admin.site._registry.items()
                    if any("object_id" in str(url.pattern) for url in model_admin.get_urls())}  # fmt: skip
    assert models == with_objects


@pytest.mark.django_db
def test_another_companys_objects_are_404_in_every_admin_view(tenants, client):
    a, b = tenants
    routes = admin_object_routes()
    objects = {model: object_of(model, a) for model in {m for m, _ in routes}}
    counts = {model: model._default_manager.count() for model in objects}
    for user in b.users():
        client.force_login(user)
        for model, route in routes:
            obj = objects[model]
            url = fill(route, obj.pk)
            missing = fill(route, MISSING_ID)
            for method in ("get", "post"):
                # follow: admin/<app>/<model>/<id>/ is a redirect to .../<id>/change/
                response = getattr(client, method)(url, follow=True)
                assert response.status_code == 404, f"{user.role} {method.upper()} {url}: {response.status_code}"
                assert getattr(client, method)(missing, follow=True).status_code == 404
    for model, obj in objects.items():
        assert model._default_manager.count() == counts[model], f"{model.__name__} rows changed"
        assert model._default_manager.filter(pk=obj.pk).exists()


@pytest.mark.django_db
def test_another_companys_objects_are_not_listed_in_any_admin_changelist(tenants, client):
    a, b = tenants
    client.force_login(b.owner)
    for model in admin.site._registry:
        if not (is_tenant_model(model) or model is Company):
            continue
        obj = object_of(model, a)
        info = model._meta.app_label, model._meta.model_name
        page = client.get(f"/admin/{info[0]}/{info[1]}/").content.decode()
        assert f"/admin/{info[0]}/{info[1]}/{obj.pk}/change/" not in page, model.__name__


# --- API ----------------------------------------------------------------------------------


def api_routes():
    """(view class, route) for every API URL; detail routes contain <pk>."""
    for route, pattern in walk(get_resolver().url_patterns):
        if route.startswith("api/v1/"):
            yield getattr(pattern.callback, "cls", None), route


def test_every_api_detail_route_names_its_model():
    for cls, route in api_routes():
        if names_an_object(route):
            assert is_tenant_model(cls.model), f"{route}: {cls.__name__}.model must be a tenant model"


@pytest.mark.django_db
def test_another_companys_objects_are_404_in_every_api_detail_route(tenants):
    a, b = tenants
    detail_routes = [(cls, route) for cls, route in api_routes() if names_an_object(route)]
    assert detail_routes, "the API has detail routes; the walk must find them"
    for cls, route in detail_routes:
        obj = object_of(cls.model, a)
        before = cls.model._default_manager.filter(pk=obj.pk).count()
        for user in (b.owner, b.viewer):
            client = api_client_for(user)
            # A route closed to viewers (webhooks) refuses them even their own company's objects.
            viewer_refused = user is b.viewer and client.get(fill(route, object_of(cls.model, b).pk)).status_code == 403
            for method in ("get", "put", "patch", "delete"):
                if method.upper() not in [m.upper() for m in cls.http_method_names]:
                    continue
                theirs = getattr(client, method)(fill(route, obj.pk), {}, format="json")
                missing = getattr(client, method)(fill(route, MISSING_ID), {}, format="json")
                if user is b.viewer and (method != "get" or viewer_refused):
                    assert theirs.status_code in (403, 404, 405)
                else:
                    assert theirs.status_code in (404, 405), f"{method.upper()} {route}: {theirs.status_code}"
                # The answer must not tell "theirs" from "missing".
                assert theirs.status_code == missing.status_code
                assert answer_without_request_id(theirs) == answer_without_request_id(missing)
        assert cls.model._default_manager.filter(pk=obj.pk).count() == before


@pytest.mark.django_db
def test_another_companys_objects_are_not_in_any_api_list(tenants):
    a, b = tenants
    client = api_client_for(b.owner)
    for cls, route in api_routes():
        if (
            names_an_object(route)
            or cls is None
            or not hasattr(cls, "model")
            or "list" not in getattr(cls, "actions", {"list": 1})
        ):
            continue
        obj = object_of(cls.model, a)
        response = client.get(fill(route, ""))
        if response.status_code == 405:
            continue
        assert response.status_code == 200, route
        ids = [row["id"] for row in response.json()["results"]]
        assert obj.pk not in ids, route


@pytest.mark.django_db
def test_audit_entries_of_another_company_are_invisible(tenants):
    a, b = tenants
    entry = AuditLog.objects.create(company=a.company, actor=a.owner, actor_repr="a-owner", action="x.y")
    response = api_client_for(b.owner).get(f"/api/v1/audit-log/{entry.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- websockets and live image links --------------------------------------------------------


def test_every_websocket_route_is_probed_below():
    # A new socket route must get its own cross-company probe here.
    assert sorted(str(p.pattern) for p in websocket_urlpatterns) == ["ws/events/", "ws/ping/"]


def _events_heard(socket, wait: float = 1.0) -> list[dict]:
    """Every event the socket is sent within `wait` seconds (ticks and hellos aside)."""
    heard, deadline = [], time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            break
        if message["type"] == "events":
            heard += message["events"]
        if message["type"] == "hello":
            heard += message["recent"]
    return heard


def test_another_companys_tv_box_hears_none_of_our_events(asgi_server, tenants, door_a, door_b):
    _, b = tenants
    ours = post_events(asgi_server, door_a.box_key, [event("before", door_a.entrance)])
    query = f"?screen={door_a.entrance.pk}"  # asking for our screen changes nothing for a key
    with as_tv(asgi_server, door_b.tv_key, query) as theirs:
        hello = receive(theirs, "hello")
        assert (hello["company"], hello["screens"], hello["recent"]) == (b.company.name, [door_b.entrance.pk], [])
        theirs.send(json.dumps({"type": "resume", "after": 0}))
        post_events(asgi_server, door_a.box_key, [event("live", door_a.entrance)])
        assert _events_heard(theirs) == []
    assert ours["created"] == 1


def test_another_companys_session_hears_none_of_our_events(asgi_server, tenants, door_a):
    _, b = tenants
    post_events(asgi_server, door_a.box_key, [event("before", door_a.entrance)])
    with as_admin(Client(), asgi_server, b.admin, f"?screen={door_a.entrance.pk}") as socket:
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
        assert closed.value.rcvd.code == 4403
    with as_admin(Client(), asgi_server, b.admin) as theirs:
        assert receive(theirs, "hello")["recent"] == []
        theirs.send(json.dumps({"type": "resume", "after": 0}))
        post_events(asgi_server, door_a.box_key, [event("live", door_a.entrance)])
        assert _events_heard(theirs) == []


def test_a_revoked_principal_gets_nothing(asgi_server, tenants, door_a):
    a, _ = tenants
    device_services.device_key_revoke(company=a.company, actor=a.admin, device=door_a.tv)
    post_events(asgi_server, door_a.box_key, [event("after", door_a.entrance)])
    with as_tv(asgi_server, door_a.tv_key) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                assert json.loads(socket.recv(timeout=10))["type"] not in ("hello", "events")
        assert closed.value.rcvd.code == 4401


@pytest.mark.django_db
def test_another_company_cannot_fetch_our_live_images(tenants, client, monkeypatch):
    a, b = tenants
    photo = PhotoFactory(company=a.company)
    snapshot = EventFactory(company=a.company)
    snapshot.snapshot.save("s.jpg", ContentFile(jpeg_bytes()), save=True)
    client.force_login(b.admin)  # signed in elsewhere changes nothing: the link alone decides
    for kind, pk in (("photo", photo.pk), ("snapshot", snapshot.pk)):
        ours = live_image_url(kind, pk, a.company.pk)
        assert client.get(ours).status_code == 200  # the link the stream issued to company A
        # A link signed for company B does not reach company A's image; a forged one is 404.
        assert client.get(live_image_url(kind, pk, b.company.pk)).status_code == 404
        assert client.get(ours[:-3] + "abc").status_code == 404
    monkeypatch.setattr("events.views.LIVE_IMAGE_MAX_AGE", -1)
    assert client.get(live_image_url("photo", photo.pk, a.company.pk)).status_code == 404  # expired
