"""Generate API clients from the served OpenAPI schema, as an integrator would, and use them.

Serves the app on a throw-away PostgreSQL database (tests/served.py), downloads
`/api/schema/`, and then:

- Python: generates a client with openapi-python-client into a temporary folder, imports it
  and runs a smoke flow through it against the server: log in, create and list subjects;
  invite, list and cancel a visit; create and list boxes, screens (with camera URLs), pads
  and TV boxes; as a box, post one event, a batch and a heartbeat; list events and
  attendance. Every answer must be the documented status and be parsed by the generated
  models with nothing left over: a field the schema does not list, or a value the model
  cannot hold, fails the run.
- TypeScript: generates the types with openapi-typescript (tests/clients/package.json, locked)
  and type-checks them with tsc.

The generator may skip only operations whose answers are files: images (`image/jpeg`) and
the access export (`application/zip`), fetched as bytes (see the README); any other warning
fails the run.

    CLIENTS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python tests/clients/run_clients.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.served import PYTHON, ROOT, app_on_postgres, postgres_server, run_django, serving

HERE = Path(__file__).resolve().parent
BIN = Path(PYTHON).parent
PACKAGE = "kangaroo_api_client"
LOGIN = "client-owner@clients"
PASSWORD = "Kestrel-Harbour-5521"
ZONE = "Asia/Taipei"  # the company's; a visit's day is its day there

SEED = f"""
import django
django.setup()
from accounts.models import Role
from accounts.services import company_create, user_create

company = company_create(name="Client Company", slug="clients", time_zone="{ZONE}")
user_create(company=company, actor=None, username="client-owner", password="{PASSWORD}", role=Role.OWNER)
print("ok")
"""


def step(message: str) -> None:
    print(f"clients: {message}", flush=True)


# --- generation ---------------------------------------------------------------------------------


FILE_TYPES = ("image/", "application/zip")


def file_only_operations(schema: dict) -> set[tuple[str, str]]:
    """(METHOD, path) of the operations whose successful answers are all files."""
    found = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = [r for status, r in operation.get("responses", {}).items() if status.startswith("2")]
            types = {media for r in ok for media in r.get("content", {})}
            if types and all(media.startswith(FILE_TYPES) for media in types):
                found.add((method.upper(), path))
    return found


def generate_python(schema_file: Path, schema: dict, out: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff hooks
    command = [str(BIN / "openapi-python-client"), "generate", "--path", str(schema_file), "--meta", "none",
               "--output-path", str(out / PACKAGE)]  # fmt: skip
    done = subprocess.run(command, cwd=out, env=env, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        sys.exit(f"clients: openapi-python-client failed:\n{output}")
    skipped = {(m, p) for m, p in re.findall(r"WARNING parsing (\w+) (\S+)", output)}
    unexpected = skipped - file_only_operations(schema)
    if unexpected or output.count("WARNING") != len(skipped):
        sys.exit(f"clients: openapi-python-client warned about more than file answers:\n{output}")
    step(f"Python client generated ({len(skipped)} file answers left out, as documented)")


def generate_typescript(schema_file: Path, out: Path) -> None:
    bin_dir = HERE / "node_modules" / ".bin"
    if not (bin_dir / "openapi-typescript").exists() or not (bin_dir / "tsc").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)
    types = out / "kangaroo-api.d.ts"
    done = subprocess.run([str(bin_dir / "openapi-typescript"), str(schema_file), "--output", str(types)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0 or "error" in done.stderr.lower():
        sys.exit(f"clients: openapi-typescript failed:\n{done.stdout}{done.stderr}")
    checked = subprocess.run([str(bin_dir / "tsc"), "--noEmit", "--strict", str(types)], capture_output=True, text=True)
    if checked.returncode != 0:
        sys.exit(f"clients: the generated TypeScript does not type-check:\n{checked.stdout}{checked.stderr}")
    step(f"TypeScript types generated and type-checked ({types.stat().st_size // 1024} KiB)")


# --- checking answers ---------------------------------------------------------------------------


class Mismatch(AssertionError):
    pass


def leftovers(value, path: str = "") -> list[str]:
    """Paths of the answer's fields that the generated models kept as unknown extras."""
    found = []
    if hasattr(value, "__attrs_attrs__"):
        declared = [a.name for a in value.__attrs_attrs__ if a.name != "additional_properties"]
        extra = getattr(value, "additional_properties", None)
        if extra and declared:  # a model without declared fields is a map (an error's `fields`)
            found += [f"{path}.{key}" for key in extra]
        for name in declared:
            found += leftovers(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += leftovers(item, f"{path}.{index}")
    return found


def normalised(value):
    """JSON with dates and times as values, so "…Z" and "…+00:00" compare equal."""
    if isinstance(value, dict):
        return {key: normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def checked(response, status: int, model):
    """The parsed answer, after checking it is the documented one, parsed whole."""
    label = f"{response.status_code} answer"
    if response.status_code != status:
        raise Mismatch(f"expected {status}, got {label}: {response.content[:500]!r}")
    parsed = response.parsed
    if not isinstance(parsed, model):
        raise Mismatch(f"{label} parsed as {type(parsed).__name__}, not {model.__name__}")
    extra = leftovers(parsed)
    if extra:
        raise Mismatch(f"{label} has fields the schema does not list: {extra}")
    raw = json.loads(response.content)
    if normalised(parsed.to_dict()) != normalised(raw):
        raise Mismatch(f"{label} does not survive the models: {raw} != {parsed.to_dict()}")
    return parsed


# --- the smoke flow -----------------------------------------------------------------------------


def smoke(base: str) -> int:
    client_module = importlib.import_module(PACKAGE)
    api = importlib.import_module(f"{PACKAGE}.api")
    m = importlib.import_module(f"{PACKAGE}.models")

    def call(module: str, **kwargs):
        package, name = module.split(".")
        return importlib.import_module(f"{api.__name__}.{package}.{name}").sync_detailed(**kwargs)

    calls = 0

    def run(module: str, status: int, model, **kwargs):
        nonlocal calls
        calls += 1
        try:
            return checked(call(module, **kwargs), status, model)
        except Mismatch as error:
            raise Mismatch(f"{module}: {error}") from None

    anonymous = client_module.Client(base_url=base, raise_on_unexpected_status=True)
    tokens = run("auth.v1_auth_token_create", 200, m.TokenPair, client=anonymous,
                 body=m.LoginRequest(username=LOGIN, password=PASSWORD))  # fmt: skip
    owner = client_module.AuthenticatedClient(base_url=base, token=tokens.access, raise_on_unexpected_status=True)
    me = run("me.v1_me_retrieve", 200, m.Me, client=owner)
    assert me.login == LOGIN

    department = run("departments.v1_departments_create", 201, m.Department, client=owner,
                     body=m.DepartmentRequest(name="Engineering"))  # fmt: skip
    employee = run("subjects.v1_subjects_create", 201, m.Subject, client=owner,
                   body=m.SubjectRequest(name="陳美玲", job_number="E1024", department=department.id,
                                         email="meiling.chen@example.com", title="Engineer"))  # fmt: skip
    visitor = run("subjects.v1_subjects_create", 201, m.Subject, client=owner,
                  body=m.SubjectRequest(name="Lin", subject_type=m.SubjectTypeEnum.VISITOR, host=employee.id,
                                        visit_start=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
                                        visit_end=dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)))  # fmt: skip
    subjects = run("subjects.v1_subjects_list", 200, m.PaginatedSubjectList, client=owner)
    assert {s.id for s in subjects.results} == {employee.id, visitor.id}

    # Tomorrow at 10:00 in the company's zone: the list's ?date= is a day there, not in UTC.
    tomorrow = dt.datetime.now(ZoneInfo(ZONE)).date() + dt.timedelta(days=1)
    starts = dt.datetime.combine(tomorrow, dt.time(10), tzinfo=ZoneInfo(ZONE))
    visit = run("visits.v1_visits_create", 201, m.Visit, client=owner,
                body=m.VisitCreateRequest(visitor_name="林怡君", visitor_email="yijun.lin@example.com",
                                          host=employee.id, starts_at=starts, ends_at=starts + dt.timedelta(hours=2),
                                          language=m.LanguageEnum.ZH_HANT, send_invitation=False))  # fmt: skip
    assert visit.state == m.VisitStateEnum.INVITED
    visits = run("visits.v1_visits_list", 200, m.PaginatedVisitList, client=owner, date=tomorrow)
    assert [v.id for v in visits.results] == [visit.id]
    cancelled = run("visits.v1_visits_cancel_create", 200, m.Visit, client=owner, id=visit.id)
    assert cancelled.status == m.VisitStatusEnum.CANCELLED

    box = run("devices_boxes.v1_boxes_create", 201, m.BoxCreated, client=owner,
              body=m.BoxRequest(name="Lobby box", max_screens=2))  # fmt: skip
    run("devices_boxes.v1_boxes_list", 200, m.PaginatedBoxList, client=owner)
    entrance = run("devices_screens.v1_screens_create", 201, m.ScreenCreated, client=owner,
                   body=m.ScreenRequest(name="Front door in", camera_url="rtsp://cam:secret@10.0.0.5/stream1",
                                        direction=m.DirectionEnum.IN, box=box.id))  # fmt: skip
    exit_ = run("devices_screens.v1_screens_create", 201, m.ScreenCreated, client=owner,
                body=m.ScreenRequest(name="Front door out", camera_url="http://10.0.0.6/mjpeg",
                                     direction=m.DirectionEnum.OUT, box=box.id))  # fmt: skip
    screens = run("devices_screens.v1_screens_list", 200, m.PaginatedScreenList, client=owner)
    assert "secret" not in json.dumps([s.to_dict() for s in screens.results])  # shown as ***
    run("devices_pads.v1_pads_create", 201, m.PadCreated, client=owner,
        body=m.PadRequest(name="Reception pad", screen=entrance.id))  # fmt: skip
    run("devices_pads.v1_pads_list", 200, m.PaginatedPadList, client=owner)
    run("devices_tv_boxes.v1_tv_boxes_create", 201, m.TVBoxCreated, client=owner,
        body=m.TVBoxRequest(name="Lobby TV", screens=[entrance.id, exit_.id]))  # fmt: skip
    run("devices_tv_boxes.v1_tv_boxes_list", 200, m.PaginatedTVBoxList, client=owner)

    device = client_module.AuthenticatedClient(base_url=base, token=box.api_key, prefix="Device",
                                               raise_on_unexpected_status=True)  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    one = m.EventItemRequest(uid="smoke-1", happened_at=now - dt.timedelta(minutes=3), subject_id=employee.id,
                             screen_id=entrance.id, confidence=0.93)  # fmt: skip
    result = run("device_api.v1_device_events_create", 201, m.ItemResult, client=device, body=one)
    assert result.status == m.ItemResultStatusEnum.CREATED
    batch = m.EventBatchRequest(events=[
        m.EventItemRequest(uid="smoke-2", happened_at=now - dt.timedelta(minutes=2), subject_id=visitor.id,
                           screen_id=entrance.id, confidence=0.88),
        m.EventItemRequest(uid="smoke-3", happened_at=now - dt.timedelta(minutes=1), subject_id=None,
                           screen_id=exit_.id),
        one,  # a retry: `duplicate`
    ])  # fmt: skip
    answer = run("device_api.v1_device_events_create", 200, m.BatchAnswer, client=device, body=batch)
    assert (answer.created, answer.duplicates, answer.errors) == (2, 1, 0), answer.to_dict()
    heartbeat = m.HeartbeatRequest(sent_at=now, version="2.4.1", address="10.0.0.20", uptime=86400,
                                   cameras=[m.CameraReportRequest(screen_id=entrance.id, status=m.CameraStatusEnum.OK),
                                            m.CameraReportRequest(screen_id=exit_.id, status=m.CameraStatusEnum.OK)],
                                   gallery_cursor=0)  # fmt: skip
    run("device_api.v1_device_heartbeat_create", 200, m.HeartbeatAnswer, client=device, body=heartbeat)

    events = run("events.v1_events_list", 200, m.PaginatedEventList, client=owner)
    assert len(events.results) >= 3, events.to_dict()
    today = dt.datetime.now(dt.UTC).date()
    run("attendance.v1_attendance_list", 200, m.PaginatedAttendanceDayList, client=owner,
        from_=today - dt.timedelta(days=1), to=today + dt.timedelta(days=1))  # fmt: skip
    error = call("subjects.v1_subjects_create", client=owner, body=m.SubjectRequest(name="Dup", job_number="E1024"))
    checked(error, 409, m.ErrorEnvelope)  # an error parses too, with its code
    return calls + 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    args = parser.parse_args()
    started = time.monotonic()
    out = args.keep or Path(tempfile.mkdtemp(prefix="kangaroo-clients-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        with app_on_postgres(postgres_server("CLIENTS_DATABASE_URL"), "kangaroo_clients") as (env, _):
            run_django(env, SEED)
            with serving(env) as base:
                schema_file = out / "schema.json"
                with urllib.request.urlopen(f"{base}/api/schema/?format=json", timeout=30) as answer:
                    schema_file.write_bytes(answer.read())
                schema = json.loads(schema_file.read_text())
                generate_python(schema_file, schema, out)
                generate_typescript(schema_file, out)
                sys.path.insert(0, str(out))
                calls = smoke(base)
                step(f"smoke flow: {calls} calls, every answer parsed by the generated models")
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    step(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
