"""Request ids: on every answer, in every error envelope, on every log line of the request
and of the jobs it queued; one access line per request; the JSON line shape."""

import json
import logging
import os
import re
import subprocess
import sys
import threading

import pytest
import yaml
from asgiref.testing import ApplicationCommunicator
from channels.generic.websocket import WebsocketConsumer
from django.conf import settings as django_settings
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from integrations import api_keys
from kangaroo import logs
from kangaroo.jobs import enqueue
from subjects.models import Department
from tests.conftest import redis_test_url
from tests.devices.conftest import device_client
from tests.factories import DepartmentFactory
from tests.jobs_for_tests import logged_department_job
from tests.log_capture import json_lines

pytestmark = pytest.mark.django_db

GENERATED = re.compile(r"[0-9a-f]{32}")


# --- The header ----------------------------------------------------------------------------


def test_an_answer_carries_a_new_id_when_the_request_has_none(api, tenant_a):
    first = api(tenant_a.owner).get("/api/v1/departments")
    second = api(tenant_a.owner).get("/api/v1/departments")
    assert first.status_code == 200
    assert GENERATED.fullmatch(first["X-Request-ID"]) and GENERATED.fullmatch(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize(
    "sent", ["abc-123", "0f8e2d6c4b1a49e7a3c5d7e9f1b3a5c7", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
)
def test_a_proxys_id_comes_back_unchanged(api, tenant_a, client, sent):
    assert api(tenant_a.owner).get("/api/v1/departments", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] == sent
    assert client.get("/admin/login/", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] == sent  # pages too, not only the API


@pytest.mark.parametrize(
    "sent",
    ["", "-", ".hidden", "x" * 129, "two words", "line\nbreak", "ünïcode", "<script>", '"quoted"', "a/b", "a=b;c"],
)
def test_an_id_that_is_not_a_plausible_one_is_replaced(api, tenant_a, sent):
    answered = api(tenant_a.owner).get("/api/v1/departments", HTTP_X_REQUEST_ID=sent)["X-Request-ID"]
    assert GENERATED.fullmatch(answered)


def test_the_longest_accepted_id_is_128_characters():
    assert logs.accepted_request_id("a" * 128) == "a" * 128
    assert logs.accepted_request_id("a" * 129) != "a" * 129


# --- Error envelopes -----------------------------------------------------------------------


def envelope_id(response) -> str:
    return response.json()["error"]["request_id"]


def test_every_kind_of_error_names_its_request(api, tenant_a, client):
    DepartmentFactory(company=tenant_a.company, name="Sales")
    owner, viewer = api(tenant_a.owner), api(tenant_a.viewer)
    answers = {
        400: owner.post("/api/v1/departments", {}, format="json"),
        401: client.get("/api/v1/departments", HTTP_AUTHORIZATION="Bearer nonsense"),
        403: viewer.post("/api/v1/departments", {"name": "X"}, format="json"),
        404: owner.get("/api/v1/departments/424242"),
        405: owner.delete("/api/v1/departments"),
        409: owner.post("/api/v1/departments", {"name": "Sales"}, format="json"),
    }
    for status, response in answers.items():
        assert response.status_code == status, response.content
        assert GENERATED.fullmatch(envelope_id(response)), status
        assert envelope_id(response) == response["X-Request-ID"], status


def test_an_error_names_the_proxys_id(api, tenant_a, client):
    sent = "edge-7f3a"
    assert envelope_id(api(tenant_a.owner).get("/api/v1/departments/424242", HTTP_X_REQUEST_ID=sent)) == sent
    # Outside any view: an unknown route under /api/ (Django's handler404) and a bad body
    # refused by a middleware before any view.
    assert envelope_id(client.get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID=sent)) == sent
    refused = client.get("/api/v1/departments?name=%00", HTTP_X_REQUEST_ID=sent)
    assert refused.status_code == 400 and envelope_id(refused) == sent


def test_a_server_failure_names_its_request_in_the_answer_and_in_the_log(api, tenant_a, monkeypatch):
    from subjects import api as subjects_api

    def explode(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr(subjects_api.services, "department_create", explode)
    with json_lines() as captured:
        response = api(tenant_a.owner).post(
            "/api/v1/departments", {"name": "X"}, format="json", HTTP_X_REQUEST_ID="boom-1"
        )
    assert response.status_code == 500 and envelope_id(response) == "boom-1"
    failure = next(line for line in captured.lines() if line["logger"] == "kangaroo.api.errors")
    assert failure["level"] == "ERROR" and "something broke" in failure["exception"]
    assert failure["request_id"] == "boom-1"
    assert failure["company_id"] == tenant_a.company.pk and failure["user_id"] == tenant_a.owner.pk
    assert failure["method"] == "POST" and failure["path"] == "/api/v1/departments"


def test_a_batchs_item_errors_do_not_repeat_the_id(api, tenant_a):
    answer = api(tenant_a.owner).post("/api/v1/subjects/upsert", {"subjects": [{"name": "No number"}]}, format="json")
    assert answer.status_code == 200, answer.content
    assert set(answer.json()["results"][0]["error"]) == {"code", "message", "fields"}


# --- The access line and the requester on every line --------------------------------------


def test_one_access_line_per_request_with_the_requester(api, tenant_a):
    with json_lines(logging.INFO) as captured:
        response = api(tenant_a.admin).get("/api/v1/departments?page=1", HTTP_X_REQUEST_ID="list-1")
    assert response.status_code == 200
    [line] = captured.access()
    assert line["request_id"] == "list-1"
    assert (line["company_id"], line["user_id"]) == (tenant_a.company.pk, tenant_a.admin.pk)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/departments", 200)
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["message"].startswith("GET /api/v1/departments 200 ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "device" not in line and "api_key_id" not in line


def test_a_device_request_names_the_device(tenant_a):
    from devices import services as device_services

    box, key = device_services.box_create(company=tenant_a.company, actor=tenant_a.owner, name="Lobby")
    with json_lines(logging.INFO) as captured:
        response = device_client(key).post("/api/v1/device/heartbeat", {}, format="json")
    assert response.status_code == 200, response.content
    [line] = captured.access()
    assert line["device"] == f"box:{box.pk}" and line["company_id"] == tenant_a.company.pk
    assert "user_id" not in line


def test_an_api_key_request_names_the_key(tenant_a):
    api_key, text = api_keys.api_key_create(
        company=tenant_a.company, actor=tenant_a.owner, name="HR", scopes=["subjects:read"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    with json_lines(logging.INFO) as captured:
        assert client.get("/api/v1/subjects").status_code == 200
    [line] = captured.access()
    assert line["api_key_id"] == api_key.pk and line["company_id"] == tenant_a.company.pk
    assert "user_id" not in line


def test_an_admin_page_names_the_signed_in_user_and_an_anonymous_one_nobody(client, tenant_a):
    client.force_login(tenant_a.admin)
    with json_lines(logging.INFO) as captured:
        client.get("/admin/")
        client.logout()
        client.get("/admin/login/")
    signed_in, anonymous = captured.access()
    assert signed_in["user_id"] == tenant_a.admin.pk and signed_in["company_id"] == tenant_a.company.pk
    assert "user_id" not in anonymous and "company_id" not in anonymous


def test_djangos_not_found_line_carries_the_id_and_no_secret_from_the_path(client):
    token = "visit-token-that-is-a-secret-0123456789"
    with json_lines(logging.INFO) as captured:
        response = client.get(f"/visit/{token}/", HTTP_X_REQUEST_ID="nf-1")
    assert response.status_code == 404
    assert token not in captured.text
    warning = next(line for line in captured.lines() if line["logger"] == "django.request")
    assert warning["request_id"] == "nf-1" and warning["status"] == 404
    assert warning["message"] == "Not Found: /visit/***/"
    [access] = captured.access()
    assert access["path"] == "/visit/***/"


def test_djangos_csrf_refusal_line_names_no_secret_from_the_path(caplog):
    token = "visit-token-that-is-a-secret-9876543210"
    with json_lines(logging.INFO) as captured:
        response = Client(enforce_csrf_checks=True).post(f"/visit/{token}/", {"action": "consent"})
    assert response.status_code == 403
    assert token not in captured.text and token not in caplog.text
    warning = next(line for line in captured.lines() if line["logger"] == "django.security.csrf")
    assert warning["message"].endswith(": /visit/***/") and warning["status"] == 403


def test_only_redis_failures_on_the_live_loggers_become_warnings(caplog):
    # A broadcast failing while Redis restarts is recovered by design (a warning line); a
    # socket failure to anything else (a mail server, a webhook) keeps its ERROR and traceback.
    from redis.exceptions import BusyLoadingError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    problems = [
        RedisConnectionError("Error 111 connecting"),
        RedisTimeoutError("Timeout reading"),
        BusyLoadingError("loading the dataset"),  # one of redis' ConnectionError kinds
        ConnectionRefusedError(111, "SMTP server refused"),
        TimeoutError("the webhook did not answer"),
    ]
    for problem in problems:
        try:
            raise problem
        except Exception:
            logging.getLogger("events.live").exception("Broadcasting failed")
    records = [r for r in caplog.records if r.name == "events.live"]
    assert [r.levelname for r in records] == ["WARNING"] * 3 + ["ERROR"] * 2
    assert all("Redis cannot be reached" in r.getMessage() and not r.exc_info for r in records[:3])
    assert all(r.getMessage() == "Broadcasting failed" and r.exc_info for r in records[3:])


def test_the_schema_documents_the_request_id_of_the_error_envelope(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    body = yaml.safe_load(out.read_text())["components"]["schemas"]["ErrorBody"]
    assert body["properties"]["request_id"]["type"] == "string"
    assert "request_id" in body["required"] and "X-Request-ID" in body["properties"]["request_id"]["description"]


# --- Jobs ----------------------------------------------------------------------------------


def queue_from_a_request(request_id: str, func, *args, **kwargs):
    """What a view does: enqueue during a request (that sent `request_id`)."""

    def view(request):
        enqueue(func, *args, **kwargs)
        return HttpResponse()

    return logs.RequestIdMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID=request_id))


def job_lines(captured) -> list[dict]:
    return captured.of("tests.jobs")


@pytest.mark.django_db(transaction=True)
def test_an_inline_job_logs_under_its_requests_id(tenant_a, settings):
    settings.JOBS_INLINE = True
    with json_lines() as captured:
        response = queue_from_a_request("job-inline-1", logged_department_job, tenant_a.company.pk, "Inline")
    assert response["X-Request-ID"] == "job-inline-1"
    [line] = job_lines(captured)
    assert line["request_id"] == "job-inline-1" and line["message"] == "creating department Inline"


@pytest.mark.django_db(transaction=True)
def test_a_detached_job_in_its_own_thread_logs_under_its_requests_id(tenant_a, settings):
    settings.JOBS_INLINE = True
    settings.JOBS_INLINE_DETACH = True
    before = set(threading.enumerate())
    with json_lines() as captured:
        queue_from_a_request("job-detached-1", logged_department_job, tenant_a.company.pk, "Detached", detach=True)
        for thread in set(threading.enumerate()) - before:
            thread.join(timeout=30)
    assert Department.objects.for_company(tenant_a.company).filter(name="Detached").exists()
    [line] = job_lines(captured)
    assert line["request_id"] == "job-detached-1"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_workers_job_logs_under_its_requests_id_and_its_description_shows_no_arguments(tenant_a, settings):
    import django_rq

    from kangaroo.worker import SimpleWorker, Worker

    settings.JOBS_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": redis_test_url(), "DEFAULT_TIMEOUT": 60}}
    queue = django_rq.get_queue("default")
    queue.empty()
    assert isinstance(django_rq.get_worker("default"), Worker)  # what `manage.py rqworker` runs
    try:
        queue_from_a_request("job-worker-1", logged_department_job, tenant_a.company.pk, "Queued secret name")
        [job] = queue.jobs
        assert job.meta["request_id"] == "job-worker-1"
        assert job.description == "tests.jobs_for_tests.logged_department_job"
        with json_lines() as captured:
            SimpleWorker([queue], connection=queue.connection).work(burst=True)
        # A job queued outside any request runs under no id, not the previous job's.
        enqueue(logged_department_job, tenant_a.company.pk, "Periodic")
        with json_lines() as later:
            SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        queue.empty()
    assert Department.objects.for_company(tenant_a.company).filter(name="Queued secret name").exists()
    [line] = job_lines(captured)
    assert line["request_id"] == "job-worker-1"
    # The worker's own line about the job's success is the request's too.
    assert any(line["logger"] == "rq.worker" and line.get("request_id") == "job-worker-1" for line in captured.lines())
    assert "Queued secret name" not in "".join(line["message"] for line in captured.of("rq.worker"))
    [line] = job_lines(later)
    assert "request_id" not in line


# --- Websockets ----------------------------------------------------------------------------


class LoggingConsumer(WebsocketConsumer):
    """A synchronous consumer: its handlers run in a thread, as the project's do."""

    def connect(self):
        logging.getLogger("tests.sockets").info("connected")
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        logging.getLogger("tests.sockets").info("heard %s", text_data)


async def talk(headers):
    scope = {"type": "websocket", "path": "/ws/test/", "headers": headers, "query_string": b"", "subprotocols": []}
    communicator = ApplicationCommunicator(logs.WebsocketRequestId(LoggingConsumer.as_asgi()), scope)
    await communicator.send_input({"type": "websocket.connect"})
    assert (await communicator.receive_output(5))["type"] == "websocket.accept"
    await communicator.send_input({"type": "websocket.receive", "text": "hello"})
    await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
    await communicator.wait(5)


async def test_a_websocket_connection_logs_under_an_id_of_its_own():
    with json_lines(logging.INFO) as captured:
        await talk([(b"x-request-id", b"socket-1")])
        await talk([])
        await talk([(b"x-request-id", b"bad id")])
    lines = captured.of("tests.sockets")
    assert [line["message"] for line in lines] == ["connected", "heard hello"] * 3
    assert {lines[0]["request_id"], lines[1]["request_id"]} == {"socket-1"}
    assert lines[0]["path"] == "/ws/test/"
    second, third = lines[2]["request_id"], lines[4]["request_id"]
    assert GENERATED.fullmatch(second) and GENERATED.fullmatch(third) and second != third
    assert lines[3]["request_id"] == second and lines[5]["request_id"] == third


def test_the_served_websockets_are_named():
    from kangaroo.asgi import application

    assert isinstance(application.application_mapping["websocket"], logs.WebsocketRequestId)


# --- Settings: the line shapes ----------------------------------------------------------------


def run_logging(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('kangaroo.example').warning('disk %s full', 'nearly'); "
        "logging.getLogger('uvicorn.access').warning('uvicorn would log the request here'); "
        "logging.getLogger('uvicorn.error').info('Started server process')"
    )
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "kangaroo.settings", "VAR_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=clean | env,
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
    )


def test_log_format_json_writes_one_object_per_line(tmp_path):
    result = run_logging(tmp_path, {"LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
        ("kangaroo.example", "WARNING", "disk nearly full"),
        # uvicorn's own lines in the same shape; its access log is off
        ("uvicorn.error", "INFO", "Started server process"),
    ]
    assert lines[0]["time"].endswith("+00:00") and "request_id" not in lines[0]


def test_the_default_shape_is_plain_text_with_the_request_id(tmp_path):
    result = run_logging(tmp_path, {})
    assert result.returncode == 0, result.stderr
    [line, _uvicorn] = result.stderr.splitlines()
    assert re.fullmatch(r"\S+ \S+ WARNING kangaroo\.example \[-\] disk nearly full", line)


def test_an_unknown_log_format_stops_start_up_with_its_name(tmp_path):
    result = run_logging(tmp_path, {"LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert "LOG_FORMAT must be one of plain, json" in result.stderr


@pytest.mark.parametrize(
    "path",
    ["/visit/SeCrEtToKeN123", "/visit/SeCrEtToKeN123/extra", "/host-settings/SeCrEtToKeN123",
     "/live/image/SeCrEtToKeN123.x", "/reset/MQ/SeCrEtToKeN123"],
)  # fmt: skip
def test_a_secret_in_a_path_that_matches_no_route_is_masked_too(client, caplog, path):
    with caplog.at_level(logging.INFO):
        client.get(path)
    assert "SeCrEtToKeN123" not in caplog.text
    assert "***" in caplog.text
