"""Events at speed: batched ingest, single posts and the live-latency curve, against
PostgreSQL and Redis, each next to a baseline measured in the same run.

    .venv/bin/python bench/events_bench.py             # the whole run, about 12 minutes
    .venv/bin/python bench/events_bench.py --rounds 0 --points 1000x20 --modes product,relay
    .venv/bin/python bench/events_bench.py --cpu-per-post 800    # one worker's CPU per post of 10

Runs on its own PostgreSQL database (BENCH_EVENTS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/kangaroo_bench_events), created and migrated if missing,
and on Redis database 12 (BENCH_EVENTS_REDIS_URL). Seeds one company with a box, 4 screens,
2,000 subjects (some with photos) and a staff admin, plus two other companies.

The server is the real ASGI app served like production, `uvicorn --workers 2`, as a
subprocess on a free 127.0.0.1 port, with DJANGO_SETTINGS_MODULE=bench.events_settings:
kangaroo.settings plus baseline-only URLs (bench/events_urls.py) and BENCH_CHANNEL_LAYER=
pubsub|core; its ASGI entry (bench/events_asgi.py) adds the relay baseline of the live
curve, and bench/events_echo.py is the echo server that calibrates it. This process drives
it at bounded concurrency, with httpx for the ingest rounds and a lean client
(bench/lean_http.py) for the live curve; the dashboards run in child processes
(`--dashboards`) so their work does not skew the sender's clock. Every request loop is
bounded in count and in time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dashboards as pages  # noqa: E402  (imports nothing of the project)

DATABASE_URL = os.environ.get("BENCH_EVENTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kangaroo_bench_events")
REDIS_URL = os.environ.get("BENCH_EVENTS_REDIS_URL", "redis://127.0.0.1:6379/12")
INGEST_PATH = "/api/v1/device/events"
BATCH = 500
DASHBOARDS = 20
LATENCY_RATE = 500  # events/s
LATENCY_SECONDS = 10
WARMUP_SECONDS = 3  # at each point's rate before it is measured
LATENCY_BATCH = 10  # events per post: 50 posts/s of 10 events, as boxes post
SENDING_BOXES = 8  # the live curve's posts go round these clients, each with its own connections
SUBJECTS = 2_000
SCREENS = 4
HISTORY = 100_000  # past events of the box in the table before each run

GOALS = {"batched": 20_000.0, "single": 800.0, "p99_ms": 50.0}
# The goals bench/run_all.py's table judges, as ratios to this run's baselines (a shared
# machine moves the absolute figures above 3 to 7 times): batched ingest at least 0.35 x COPY
# of as many rows, single posts at least 0.75 x the bare view, the live p99 at most 10 x the
# relay's (and at most 50 ms, the one absolute goal left).
RATIO_GOALS = {"batched": 0.35, "single": 0.75, "p99_to_relay": 10.0}


# --- the dashboards: child processes, before any Django import ------------------------------------
async def _dashboards(config: dict) -> None:
    """Connect `count` dashboards to `url`, print "ready", then read commands on stdin:
    "go" starts the CPU clock; "stop <file> <seconds>" waits until every dashboard has
    received every event id listed in <file> (a JSON list) or <seconds> have passed, closes
    the sockets and prints, as JSON: per dashboard the number of deliveries, of distinct
    ids, of duplicates, of expected ids never received (gaps) and of ids not expected
    (other); the latency of each first delivery (arrival - its happened_at, which the
    sender set to the time it sent the post); and this process's CPU seconds from "go"."""
    import websockets

    count = config["count"]
    seen: list[dict[int, int]] = [{} for _ in range(count)]
    latencies: list[float] = []
    headers = pages.headers(config)

    async def one(index: int, ready: asyncio.Event, sockets: list) -> None:
        socket_ = await websockets.connect(config["url"], additional_headers=headers, open_timeout=30, max_size=None)
        sockets.append(socket_)
        hello = json.loads(await socket_.recv())
        assert hello["type"] == "hello", hello
        ready.set()
        mine = seen[index]
        try:
            async for raw in socket_:
                now = time.time()
                message = json.loads(raw)
                if message.get("type") != "events":
                    continue
                for event in message["events"]:
                    pk = event["id"]
                    if pk in mine:
                        mine[pk] += 1
                        continue
                    mine[pk] = 1
                    latencies.append(now - datetime.fromisoformat(event["happened_at"]).timestamp())
        except websockets.ConnectionClosed:
            pass

    sockets: list = []
    tasks = await pages.open_in_steps([lambda ready, i=i: one(i, ready, sockets) for i in range(count)], step=10)
    await pages.command()  # "go"
    cpu_start = time.process_time()
    path, seconds = await pages.stop_command()
    expected = set(json.loads(path.read_text()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(expected <= mine.keys() for mine in seen):
        await asyncio.sleep(0.1)
    cpu = time.process_time() - cpu_start
    for socket_ in sockets:
        await socket_.close()
    await asyncio.wait(tasks, timeout=10)
    report = [
        {
            "deliveries": sum(mine.values()),
            "distinct": len(mine),
            "duplicates": sum(mine.values()) - len(mine),
            "gaps": len(expected - mine.keys()),
            "other": len(mine.keys() - expected),
        }
        for mine in seen
    ]
    print(json.dumps({"dashboards": report, "latencies": latencies, "cpu": cpu}), flush=True)


if len(sys.argv) > 1 and sys.argv[1] == "--dashboards":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_dashboards(json.loads(sys.argv[2])))
    sys.exit(0)


# --- Django, on the benchmark's own database --------------------------------------------------------
os.environ["DATABASE_URL"] = DATABASE_URL  # never the developer's own database
os.environ["REDIS_URL"] = REDIS_URL
os.environ["DJANGO_SETTINGS_MODULE"] = "kangaroo.settings"
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# One key for this process and the server it starts: the dashboards log in with a session
# this process signs (without it, each process would make up a key of its own).
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))

import django  # noqa: E402
import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.database import ensure_database  # noqa: E402
from bench.lean_http import LeanClient, LeanHTTPError  # noqa: E402
from bench.report import ABSOLUTE, HIGHER, LOWER, record  # noqa: E402
from tests.served import free_port  # noqa: E402

ensure_database(DATABASE_URL)
django.setup()
for _name in ("httpx", "httpcore"):  # one INFO line per request would cost more than the request
    logging.getLogger(_name).setLevel(logging.WARNING)

import redis  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.models import Company, Role, User  # noqa: E402
from devices import services as device_services  # noqa: E402
from devices.models import Box, Screen  # noqa: E402
from subjects.models import Photo, PhotoStatus, Subject, SubjectType  # noqa: E402


# --- seed ---------------------------------------------------------------------------------------
class Seed:
    company: Company
    box: Box
    key: str
    screens: list[int]
    subjects: list[int]
    cookie: str


def _seed_company(slug: str, subjects: int) -> Company:
    company = Company.objects.filter(slug=slug).first()
    if company is not None:
        return company
    with transaction.atomic():
        company = Company.objects.create(name=f"Bench {slug}", slug=slug, time_zone="Asia/Taipei")
        box, _key = device_services.box_create(company=company, actor=None, name="Lobby box", max_screens=SCREENS)
        for n in range(SCREENS):
            device_services.screen_create(
                company=company, actor=None, name=f"Door {n}", camera_url=f"rtsp://10.0.0.{n + 1}/s", box=box
            )
        now = datetime.now(UTC)
        people = [
            Subject(
                company=company,
                name=f"Person {n}",
                job_number=f"J{n:06d}",
                subject_type=SubjectType.VISITOR if n % 10 == 0 else SubjectType.EMPLOYEE,
                visit_start=now - timedelta(days=1) if n % 10 == 0 else None,
                visit_end=now + timedelta(days=365) if n % 10 == 0 else None,
            )
            for n in range(subjects)
        ]
        Subject.objects.bulk_create(people, batch_size=1000)  # tenant: each subject built with company
        Photo.objects.bulk_create(  # tenant: each photo built with company
            [
                Photo(
                    company=company,
                    subject=subject,
                    image=f"photos/bench/{subject.pk}.jpg",
                    thumbnail=f"photos/bench/{subject.pk}-t.jpg",
                    width=480,
                    height=640,
                    sha256="0" * 64,
                    status=PhotoStatus.OK,
                )
                for subject in people[::2]
            ],
            batch_size=1000,
        )
    print(f"seeded company {slug}")
    return company


def seed() -> Seed:
    call_command("migrate", verbosity=0)
    for slug in ("bench-other-1", "bench-other-2"):
        _seed_company(slug, 500)
    company = _seed_company("bench-main", SUBJECTS)
    out = Seed()
    out.company = company
    out.box = Box.objects.for_company(company).get(name="Lobby box")
    out.box, out.key = device_services.device_key_rotate(company=company, actor=None, device=out.box)
    out.screens = sorted(Screen.objects.for_company(company).filter(box=out.box).values_list("pk", flat=True))
    out.subjects = sorted(Subject.objects.for_company(company).values_list("pk", flat=True))
    admin = User.objects.filter(username="bench-events-admin").first()  # tenant: a login by its global username
    if admin is None:
        admin = User.objects.create_user(  # tenant: the bench company's admin
            "bench-events-admin", "admin@bench.example", "bench-pass-2026", company=company, role=Role.ADMIN
        )
        admin.is_staff = True
        admin.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(admin)
    out.cookie = f"sessionid={client.cookies['sessionid'].value}"
    # Every run starts from the same events table: HISTORY past events of the box (so the uid
    # lookups run against an index of realistic size), with fresh planner statistics, as
    # autovacuum keeps them in production.
    with connection.cursor() as cursor:
        # CASCADE: rows that refer to events (corrections, unknown people's snapshots) go too.
        cursor.execute("TRUNCATE events_event CASCADE")
    copy_rows(out, "history", HISTORY, days_ago=3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    redis.Redis.from_url(REDIS_URL).flushdb()
    return out


# --- rows ---------------------------------------------------------------------------------------
def item(s: Seed, uid: str, rng: random.Random, happened_at: str | None = None) -> dict:
    subject = rng.choice(s.subjects) if rng.random() < 0.9 else None  # one in ten a stranger
    return {
        "uid": uid,
        "happened_at": happened_at or datetime.now(UTC).isoformat(),
        "subject_id": subject,
        "screen_id": rng.choice(s.screens),
        "confidence": round(rng.uniform(0.6, 0.99), 3),
    }


# --- the server ---------------------------------------------------------------------------------
# Where the server's code comes from: this checkout, or another one (`--server-root`, to
# measure two versions of the code against the same seed, one after the other).
SERVER_ROOT: list[Path] = []

# How the server runs its websockets: as README's "Running in production" serves them,
# without per-message compression (`--ws-deflate` and `--ws` change them, to compare).
WS_OPTIONS: list[str] = []


class Server:
    """uvicorn serving `app` (the product plus the relay baseline, or the echo server) with
    `workers` processes, on a free loopback port."""

    def __init__(self, s: Seed | None, layer: str = "pubsub", app: str = "bench.events_asgi:application", workers=2):
        self.port = free_port()
        root = SERVER_ROOT[0] if SERVER_ROOT else ROOT
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.events_settings",
            "BENCH_CHANNEL_LAYER": layer,
            "BENCH_COMPANY_ID": str(s.company.pk if s else 0),
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "DEBUG": "false",
            "PYTHONPATH": str(root),
            "LOG_LEVEL": "WARNING",  # channels_redis logs each over-capacity group_send at INFO
        }
        command = [
            sys.executable, "-m", "uvicorn", app, "--workers", str(workers),
            "--host", "127.0.0.1", "--port", str(self.port), "--lifespan", "off",
            "--log-level", "warning", "--no-access-log", *WS_OPTIONS,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=root, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("uvicorn exited")
            try:
                if httpx.get(f"{self.base}/api/v1/device/events", timeout=2).status_code in (401, 403, 405):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.2)

    def workers(self) -> list[int]:
        """The worker processes' ids (the server's own, when it runs a single process)."""
        found = [pid for pid in child_pids(self.process.pid) if b"resource_tracker" not in _cmdline(pid)]
        return sorted(found) or [self.process.pid]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- CPU per process, from /proc ------------------------------------------------------------------
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == parent:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return found


def postgres_backends() -> list[int]:
    """The PostgreSQL backends connected to the benchmark's own database (the server's pool)."""
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    with psycopg.connect(urlunsplit(urlsplit(DATABASE_URL)), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
        ).fetchall()
    return [pid for (pid,) in rows]


def redis_pid() -> int:
    return int(redis.Redis.from_url(REDIS_URL).info("server")["process_id"])


class CpuClock:
    """CPU seconds each process spent between `start()` and `stop()`."""

    def __init__(self, server: Server, clients: list[subprocess.Popen]):
        self.server, self.clients = server, clients

    def _sample(self) -> dict[str, dict[int, float]]:
        return {
            "workers": {pid: cpu_seconds(pid) or 0.0 for pid in self.server.workers()},
            "postgres": {pid: cpu_seconds(pid) or 0.0 for pid in postgres_backends()},
            "redis": {pid: cpu_seconds(pid) or 0.0 for pid in [redis_pid()]},
        }

    def start(self) -> None:
        self.begin = self._sample()
        self.sender_begin = time.process_time()

    def stop(self) -> dict:
        end = self._sample()
        spent = {
            kind: {pid: value - self.begin[kind].get(pid, 0.0) for pid, value in end[kind].items()} for kind in end
        }
        return {
            "workers": [round(v, 2) for v in spent["workers"].values()],
            "postgres": round(sum(spent["postgres"].values()), 2),
            "redis": round(sum(spent["redis"].values()), 2),
            "sender": round(time.process_time() - self.sender_begin, 2),
        }


# --- load generators ----------------------------------------------------------------------------
async def post_all(
    base: str, path: str, bodies: list[bytes], headers: dict, concurrency: int, time_limit: float, check
) -> tuple[int, float]:
    """POST every body (at most `concurrency` at once, stopping at `time_limit` seconds);
    returns (events counted by `check` on each answer, elapsed seconds)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counted = 0
    next_index = 0
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        start = time.perf_counter()
        deadline = start + time_limit

        async def worker():
            nonlocal counted, next_index
            while next_index < len(bodies) and time.perf_counter() < deadline:
                body = bodies[next_index]
                next_index += 1
                response = await client.post(path, content=body, headers=headers)
                counted += check(response)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return counted, elapsed


def check_batch(response) -> int:
    if response.status_code != 200:
        raise RuntimeError(f"batch answered {response.status_code}: {response.text[:300]}")
    answer = response.json()
    if answer["errors"]:
        raise RuntimeError(f"batch had errors: {answer['results'][:3]}")
    return answer["created"]


def batch_results(status: int, body: bytes) -> list[dict]:
    """A batch's answer as the lean sender reads it: its results, or RuntimeError as check_batch."""
    if status != 200:
        raise RuntimeError(f"batch answered {status}: {body[:300]!r}")
    answer = json.loads(body)
    if answer["errors"]:
        raise RuntimeError(f"batch had errors: {answer['results'][:3]}")
    return answer["results"]


def check_created(response) -> int:
    if response.status_code != 201:
        raise RuntimeError(f"post answered {response.status_code}: {response.text[:300]}")
    return 1


JSON = {"Content-Type": "application/json"}


def batched_ingest(s: Seed, server: Server, tag: str, batches: int) -> float:
    rng = random.Random(tag)
    bodies = [
        json.dumps({"events": [item(s, f"{tag}-{b}-{i}", rng) for i in range(BATCH)]}).encode() for b in range(batches)
    ]
    headers = {**JSON, "Authorization": f"Device {s.key}"}
    count, elapsed = asyncio.run(post_all(server.base, INGEST_PATH, bodies, headers, 4, 60, check_batch))
    return count / elapsed


def single_posts(s: Seed, server: Server, tag: str, count: int, path: str, baseline: str | None = None) -> float:
    """Single-event posts to the ingest API (baseline None), the bare view ("bare") or the
    plain DRF ModelViewSet ("drf")."""
    rng = random.Random(tag)
    bodies = []
    for n in range(count):
        body = item(s, f"{tag}-{n}", rng)
        if baseline is not None:
            body["kind"] = "recognized"
            body["received_at"] = body["happened_at"]
            if baseline == "drf":
                body["subject"] = body.pop("subject_id")
                body["screen"] = body.pop("screen_id")
        bodies.append(json.dumps(body).encode())
    headers = {**JSON, "Authorization": f"Device {s.key}"} if baseline is None else JSON
    done, elapsed = asyncio.run(post_all(server.base, path, bodies, headers, 16, 30, check_created))
    return done / elapsed


def copy_rows(s: Seed, tag: str, rows: int, days_ago: float = 0) -> float:
    """PostgreSQL COPY of the rows batched ingest stores (every column it fills), one COPY
    per 500 rows, each in its own transaction like an ingest batch."""
    rng = random.Random(tag)
    subjects = {
        pk: (name, kind, job)
        for pk, name, kind, job in Subject.objects.for_company(s.company).values_list(
            "pk", "name", "subject_type", "job_number"
        )
    }
    now = datetime.now(UTC)
    data = []
    for n in range(rows):
        raw = item(s, f"{tag}-{n}", rng)
        name, kind, job = subjects.get(raw["subject_id"], ("", "", ""))
        data.append(
            (s.company.pk, "recognized" if raw["subject_id"] else "stranger", raw["subject_id"], name, kind, job,
             "box", s.box.pk, s.box.name, raw["screen_id"], "both", raw["confidence"],
             datetime.fromisoformat(raw["happened_at"]) - timedelta(days=days_ago), now, "", raw["uid"])
        )  # fmt: skip
    columns = (
        "company_id, kind, subject_id, subject_name, subject_type, subject_job_number, device_kind, device_id,"
        " device_name, screen_id, direction, confidence, happened_at, received_at, snapshot, uid"
    )
    dsn = urlunsplit(urlsplit(DATABASE_URL))
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        for offset in range(0, rows, BATCH):
            with conn.cursor() as cursor, cursor.copy(f"COPY events_event ({columns}) FROM STDIN") as copy:
                for row in data[offset : offset + BATCH]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - start
    return rows / elapsed


# --- the live-latency curve -----------------------------------------------------------------------
# (mode, what the dashboards open, where the sender posts)
MODES = {
    "product": ("/ws/events/", INGEST_PATH),  # the product, pub/sub layer (the production choice)
    "core": ("/ws/events/", INGEST_PATH),  # the product on channels-redis' default RedisChannelLayer
    "relay": ("/bench/relay/", "/bench/relay/post"),  # a bare Channels consumer through the same Redis
    # the product's dashboards fed through the same Redis as the product's broadcast feeds
    # them, without ingest (bench/events_asgi.py): the fan-out side alone, beside the relay
    "fanout": ("/ws/events/", "/bench/fanout/post"),
    "echo": ("/ws/", INGEST_PATH),  # the echo server (bench/events_echo.py): the clients' own floor
}
PROFILE: dict[str, str] = {}  # "dir" and "py_spy", with --profile: each worker's samples while posting
DASHBOARDS_PER_CLIENT = 50  # per dashboards' process, so that they are not what is measured
# the product's catch-up is a tick; the fan-out's pushes are all live
DRAIN_SECONDS = {"product": 12.0, "core": 12.0, "relay": 3.0, "echo": 3.0, "fanout": 3.0}


def live_point(s: Seed, server: Server, mode: str, rate: int, dashboards: int, seconds: int) -> dict:
    """`rate` events/s for `seconds` in posts of LATENCY_BATCH to `dashboards` dashboards of
    `mode`; latency of every first delivery, deliveries counted by event id per dashboard,
    CPU seconds per process over the posting and the drain."""
    ws_path, post_path = MODES[mode]
    ws_url = server.base.replace("http://", "ws://") + ws_path
    cookie = s.cookie if mode in ("product", "core", "fanout") else ""
    configs = [
        {
            "url": ws_url,
            "origin": server.base,
            "cookie": cookie,
            "count": min(DASHBOARDS_PER_CLIENT, dashboards - start),
        }
        for start in range(0, dashboards, DASHBOARDS_PER_CLIENT)
    ]
    # The server first runs WARMUP_SECONDS at this point's rate, unmeasured, so the point is
    # measured in its steady state: going from the previous point's rate to this one's, the
    # workers start request threads and pooled database connections (each preparing its
    # statements afresh), and those first seconds had made a point's p99 (bench/README.md,
    # "Balanced workers and a lighter insert").
    run_sender(_paced_posts(s, server, mode, post_path, rate, WARMUP_SECONDS))
    clients = pages.start(__file__, "--dashboards", configs)
    ids_file = Path(f"/tmp/kangaroo-events-bench-{os.getpid()}.json")
    try:
        pages.wait_ready(clients)
        time.sleep(1)  # every socket's hello and group joins are done
        clock = CpuClock(server, clients)
        clock.start()
        profilers = [
            subprocess.Popen(
                [
                    PROFILE["py_spy"],
                    "record",
                    "--gil",
                    "-p",
                    str(pid),
                    "-f",
                    "raw",
                    "-r",
                    "200",
                    "--nonblocking",
                    "-d",
                    str(seconds),
                    "-o",
                    str(Path(PROFILE["dir"]) / f"{mode}-{rate}x{dashboards}-{pid}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in (server.workers() if PROFILE else [])
        ]
        pages.tell(clients, "go")
        ids, elapsed = run_sender(_paced_posts(s, server, mode, post_path, rate, seconds))
        ids_file.write_text(json.dumps(ids))
        results = pages.stop(clients, ids_file, DRAIN_SECONDS[mode])
        cpu = clock.stop()
        for profiler in profilers:
            profiler.wait(timeout=60)
        cpu["clients"] = round(sum(r["cpu"] for r in results), 2)
    finally:
        ids_file.unlink(missing_ok=True)
        for client in clients:
            try:
                client.stdin.close()
                client.wait(timeout=30)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                client.kill()
                client.wait()
    per_dashboard = [d for r in results for d in r["dashboards"]]
    values = sorted(v for r in results for v in r["latencies"])
    if not values:
        raise RuntimeError(f"no event reached the {mode} dashboards")

    def pct(p: float) -> float:
        return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000

    delivered = sum(d["distinct"] - d["other"] for d in per_dashboard)
    return {
        "mode": mode,
        "rate": rate,
        "dashboards": dashboards,
        "sent": len(ids),
        "achieved": len(ids) / elapsed,
        "expected": len(ids) * dashboards,
        "delivered": delivered,
        "duplicates": sum(d["duplicates"] for d in per_dashboard),
        "dashboards_with_duplicates": sum(1 for d in per_dashboard if d["duplicates"]),
        "gaps": sum(d["gaps"] for d in per_dashboard),
        "other": sum(d["other"] for d in per_dashboard),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": values[-1] * 1000,
        "cpu": cpu,
        "server_us_per_delivery": sum(cpu["workers"]) / max(delivered, 1) * 1e6,
    }


def run_sender(coroutine):
    """The sender's loop: uvloop's, as the server's and the dashboards' (less CPU per post)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def _paced_posts(s: Seed, server: Server, mode: str, path: str, rate: int, seconds: int) -> tuple[list, float]:
    """`rate` events/s for `seconds`, in posts of LATENCY_BATCH events (open loop: each post
    starts at its scheduled time, at most 64 in flight); happened_at is the time the post is
    sent. Returns the ids of the events created (the product's answers; the relay and the
    echo carry the ids the sender gives them) and the seconds until the last answer."""
    rng = random.Random(f"{mode}-{rate}")
    posts = rate * seconds // LATENCY_BATCH
    interval = LATENCY_BATCH / rate
    own_ids = mode in ("relay", "echo", "fanout")
    headers = {**JSON, "Authorization": f"Device {s.key}"}
    # Several boxes, each with its own connections, as at a lobby's doors. One client would
    # send nearly every post over its first connection (it reuses an idle one first), so
    # one uvicorn worker served almost all of them while the other idled: the workers share
    # one listening socket, and a connection stays with the worker that accepted it.
    # The boxes are lean clients (bench/lean_http.py): httpx's CPU per post was the server's
    # loss on these two cores.
    in_flight = asyncio.Semaphore(64)
    ids: list[int] = []
    failed: list[str] = []
    tag = f"lat-{mode}-{rate}-{time.time_ns()}"
    boxes = [LeanClient(server.base, 64 // SENDING_BOXES) for _ in range(SENDING_BOXES)]
    try:

        async def post(n: int):
            client = boxes[n % SENDING_BOXES]
            async with in_flight:
                sent = datetime.now(UTC).isoformat()
                batch = [item(s, f"{tag}-{n}-{i}", rng, happened_at=sent) for i in range(LATENCY_BATCH)]
                if own_ids:
                    for i, one in enumerate(batch):
                        one["id"] = n * LATENCY_BATCH + i + 1
                try:
                    body = {"events": batch} if mode != "fanout" else {"company": s.company.pk, "events": batch}
                    answer = await client.post(path, json.dumps(body).encode(), headers)
                    results = batch_results(answer.status, answer.body)
                except (LeanHTTPError, RuntimeError) as error:  # counted, and the run goes on
                    failed.append(repr(error))
                    return
                if own_ids:
                    ids.extend(one["id"] for one in batch)
                else:
                    ids.extend(r["id"] for r in results if r["status"] == "created")

        start = time.perf_counter()
        tasks = []
        for n in range(posts):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(n)))
        _done, pending = await asyncio.wait(tasks, timeout=seconds * 3)
        elapsed = time.perf_counter() - start
        for task in pending:
            task.cancel()
        if pending:
            print(f"  {len(pending)} posts still pending after {seconds * 3} s: cancelled")
        if failed:
            print(f"  {len(failed)} posts failed, the first: {failed[0]}")
    finally:
        for box in boxes:
            await box.close()
    return ids, elapsed


def cpu_per_post(s: Seed, posts: int, repeats: int) -> list[float]:
    """Worker CPU per post of LATENCY_BATCH events: one uvicorn worker, no dashboards, `posts`
    posts SENDING_BOXES at a time, `repeats` times after a warm-up; the worker's CPU time
    (from /proc, so other load on the machine does not count) divided by the posts. With
    `--profile`, each measurement is also recorded with py-spy `--gil` (only the samples that
    hold the interpreter: CPU, not waiting)."""
    server = Server(s, "pubsub", workers=1)
    headers = {**JSON, "Authorization": f"Device {s.key}"}
    figures = []
    try:
        [worker] = server.workers()

        def bodies(tag: str, count: int) -> list[bytes]:
            rng = random.Random(tag)
            sent = datetime.now(UTC).isoformat()
            return [
                json.dumps({"events": [item(s, f"{tag}-{n}-{i}", rng, sent) for i in range(LATENCY_BATCH)]}).encode()
                for n in range(count)
            ]

        asyncio.run(post_all(server.base, INGEST_PATH, bodies(f"cpu-warm-{time.time_ns()}", 100), headers,
                             SENDING_BOXES, 60, check_batch))  # fmt: skip
        for r in range(repeats):
            batch = bodies(f"cpu-{r}-{time.time_ns()}", posts)
            profiler = None
            if PROFILE:
                out = Path(PROFILE["dir"]) / f"cpu-per-post-{r}-{worker}.txt"
                profiler = subprocess.Popen(
                    [PROFILE["py_spy"], "record", "--gil", "-p", str(worker), "-f", "raw", "-r", "200",
                     "--nonblocking", "-o", str(out)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(1)  # py-spy attached
            before = cpu_seconds(worker)
            created, _elapsed = asyncio.run(
                post_all(server.base, INGEST_PATH, batch, headers, SENDING_BOXES, 300, check_batch)
            )
            spent = cpu_seconds(worker) - before
            if profiler is not None:
                profiler.send_signal(2)  # SIGINT: py-spy writes what it has
                profiler.wait(timeout=60)
            if created != posts * LATENCY_BATCH:
                raise RuntimeError(f"{created} events created of {posts * LATENCY_BATCH}")
            figures.append(spent / posts * 1000)
            print(f"cpu per post of {LATENCY_BATCH}: {figures[-1]:.2f} ms ({posts} posts, {spent:.2f} s)", flush=True)
    finally:
        server.stop()
    return figures


CURVE = [(100, 20), (250, 20), (500, 20), (1000, 20), (500, 100)]


def parse_points(text: str) -> list[tuple[int, int]]:
    """ "500x20,1000x20": events/s x dashboards."""
    points = []
    for part in text.split(","):
        rate, _, dashboards = part.strip().partition("x")
        points.append((int(rate), int(dashboards or DASHBOARDS)))
    return points


def print_point(p: dict) -> None:
    cpu = p["cpu"]
    workers = "+".join(f"{w:.1f}" for w in cpu["workers"])
    print(
        f"{p['mode']:<8} {p['rate']:>5}/s x{p['dashboards']:<4} sent {p['achieved']:>6,.0f}/s  "
        f"p50 {p['p50']:>8.1f}  p99 {p['p99']:>8.1f}  max {p['max']:>8.0f} ms  "
        f"delivered {p['delivered']:,}/{p['expected']:,} dup {p['duplicates']} gaps {p['gaps']}  "
        f"CPU s: workers {workers}, clients {cpu['clients']:.1f}, sender {cpu['sender']:.1f}, "
        f"pg {cpu['postgres']:.1f}, redis {cpu['redis']:.1f}; "
        f"{p['server_us_per_delivery']:.0f} us/delivery",
        flush=True,
    )


def curve(s: Seed, points: list[tuple[int, int]], modes: list[str], seconds: int) -> list[dict]:
    """Every point in every mode. The product and the relay run on the same server (same
    workers, same Redis); the echo server and the default layer on their own."""
    results: list[dict] = []
    groups = [
        ("pubsub", [m for m in modes if m in ("product", "fanout", "relay")]),
        ("core", ["core"] if "core" in modes else []),
    ]
    for layer, layer_modes in groups:
        if not layer_modes:
            continue
        server = Server(s, layer)
        try:
            single_posts(s, server, f"warm-live-{layer}", 200, INGEST_PATH)
            for rate, dashboards in points:
                for mode in layer_modes:
                    results.append(live_point(s, server, mode, rate, dashboards, seconds))
                    print_point(results[-1])
        finally:
            server.stop()
    if "echo" in modes:
        server = Server(None, app="bench.events_echo:app", workers=1)
        try:
            for rate, dashboards in points:
                results.append(live_point(s, server, "echo", rate, dashboards, seconds))
                print_point(results[-1])
        finally:
            server.stop()
    return results


def print_curve(results: list[dict], seconds: int) -> None:
    print(f"\nlive latency, {seconds} s per point, posts of {LATENCY_BATCH}, ms:")
    print(f"{'events/s':>8} {'dash':>4} {'mode':<8} {'p50':>8} {'p99':>8} {'delivered':>17} {'dup':>5} {'gaps':>6} "
          f"{'workers s':>11} {'clients s':>9} {'sender s':>8} {'pg s':>5} {'redis s':>7} {'us/deliv':>8}")  # fmt: skip
    for p in results:
        cpu = p["cpu"]
        print(f"{p['rate']:>8} {p['dashboards']:>4} {p['mode']:<8} {p['p50']:>8.1f} {p['p99']:>8.1f} "
              f"{p['delivered']:>8,}/{p['expected']:<8,} {p['duplicates']:>5} {p['gaps']:>6} "
              f"{'+'.join(f'{w:.1f}' for w in cpu['workers']):>11} {cpu['clients']:>9.1f} {cpu['sender']:>8.1f} "
              f"{cpu['postgres']:>5.1f} {cpu['redis']:>7.1f} {p['server_us_per_delivery']:>8.0f}")  # fmt: skip
    by = {(p["mode"], p["rate"], p["dashboards"]): p for p in results}
    print()
    for rate, dashboards in sorted({(p["rate"], p["dashboards"]) for p in results}):
        product = by.get(("product", rate, dashboards))
        if product is None:
            fanout, relay = by.get(("fanout", rate, dashboards)), by.get(("relay", rate, dashboards))
            if fanout is not None:
                line = f"{rate:>5}/s x{dashboards:<4} fan-out alone p99 {fanout['p99']:.1f} ms, "
                line += f"{fanout['server_us_per_delivery']:.0f} us/delivery"
                if relay is not None:
                    line += f"; relay p99 {relay['p99']:.1f} ms, {relay['server_us_per_delivery']:.0f} us/delivery"
                print(line)
            continue
        complete = product["delivered"] == product["expected"] and not product["duplicates"]
        verdict = "pass" if product["p99"] <= GOALS["p99_ms"] and complete else "FAIL"
        point = f"live {rate}/s x {dashboards} dashboards"
        echo = by.get(("echo", rate, dashboards))
        machine = echo is not None and echo["p99"] > GOALS["p99_ms"]
        record(f"{point}, p99", product["p99"], "ms", better=LOWER, goal=GOALS["p99_ms"], goal_on=ABSOLUTE,
               note=f"echo p99 {echo['p99']:.0f} ms: the machine sets this point" if machine else "")  # fmt: skip
        record(f"{point}, deliveries missed or repeated", product["expected"] - product["delivered"]
               + product["duplicates"], "events", better=LOWER, goal=0, goal_on=ABSOLUTE)  # fmt: skip
        relay = by.get(("relay", rate, dashboards))
        if relay is not None:
            kept_up = relay["delivered"] >= relay["expected"]
            record(f"{point}, p99", product["p99"], "ms", better=LOWER, goal=RATIO_GOALS["p99_to_relay"],
                   baseline="relay p99", baseline_value=relay["p99"] if kept_up else None,
                   note="" if kept_up else "the relay fell behind: no baseline")  # fmt: skip
        line = f"{rate:>5}/s x{dashboards:<4} product p99 {product['p99']:.1f} ms (goal <= {GOALS['p99_ms']:.0f}, "
        line += f"every event once: {'yes' if complete else 'no'}) {verdict}"
        relay = by.get(("relay", rate, dashboards))
        if relay is not None:
            ratio = product["p99"] / relay["p99"]
            line += (
                f"; relay p99 {relay['p99']:.1f} ms, ratio {ratio:.1f} (goal <= 10) {'pass' if ratio <= 10 else 'FAIL'}"
            )
            if relay["delivered"] < relay["expected"]:
                line += " (but the relay itself fell behind: no baseline)"
        fanout = by.get(("fanout", rate, dashboards))
        if fanout is not None:
            line += f"; fan-out alone p99 {fanout['p99']:.1f} ms, {fanout['server_us_per_delivery']:.0f} us/delivery"
            if relay is not None:
                line += f" (relay {relay['server_us_per_delivery']:.0f})"
        echo = by.get(("echo", rate, dashboards))
        if echo is not None:
            line += f"; echo p99 {echo['p99']:.1f} ms"
            if echo["p99"] > GOALS["p99_ms"]:
                line += " (over the goal with a server that does nothing: the machine sets this point)"
        print(line)
    ok_rates = [
        p["rate"]
        for p in results
        if p["mode"] == "product" and p["dashboards"] == DASHBOARDS and p["p99"] <= GOALS["p99_ms"]
        if p["delivered"] == p["expected"] and not p["duplicates"]
    ]
    print(f"highest rate with p99 <= {GOALS['p99_ms']:.0f} ms at {DASHBOARDS} dashboards: "
          f"{max(ok_rates) if ok_rates else 'none'} events/s (of those measured)")  # fmt: skip


# --- the run ------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per throughput item (median reported)")
    parser.add_argument("--batches", type=int, default=60, help="batches of 500 per batched-ingest round")
    parser.add_argument("--singles", type=int, default=3000, help="posts per single-post round")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--points",
        default=",".join(f"{r}x{d}" for r, d in CURVE),
        help="live-latency points, events/s x dashboards (default: %(default)s)",
    )
    parser.add_argument(
        "--modes", default="product,relay,echo", help="of product, relay, echo, core (default: %(default)s)"
    )
    parser.add_argument("--seconds", type=int, default=LATENCY_SECONDS, help="posting time per point")
    parser.add_argument("--json", help="also write every live point's figures to this file")
    parser.add_argument(
        "--ws-deflate", choices=["true", "false"], default="false", help="per-message compression (default: off)"
    )
    parser.add_argument("--ws", default="auto", help="uvicorn's websocket implementation (default: %(default)s)")
    parser.add_argument("--profile", metavar="DIR", help="record each worker with py-spy while posting, into DIR")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy to record with (default: %(default)s)")
    parser.add_argument(
        "--cpu-per-post",
        type=int,
        metavar="POSTS",
        help="only measure one worker's CPU per post of 10 events, over POSTS posts (see --repeats)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="measurements with --cpu-per-post")
    parser.add_argument("--server-root", help="serve the code of this checkout instead of this one's")
    args = parser.parse_args()
    if args.server_root:
        SERVER_ROOT[:] = [Path(args.server_root).resolve()]
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        PROFILE.update(dir=args.profile, py_spy=args.py_spy)
    WS_OPTIONS[:] = ["--ws", args.ws, "--ws-per-message-deflate", args.ws_deflate]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}")

    started = time.perf_counter()
    load = os.getloadavg()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    s = seed()
    print(f"company {s.company.pk}: box {s.box.pk}, screens {s.screens}, {len(s.subjects)} subjects")
    if args.cpu_per_post:
        figures_ms = cpu_per_post(s, args.cpu_per_post, args.repeats)
        print(f"median {median(figures_ms):.2f} ms of worker CPU per post of {LATENCY_BATCH} "
              f"({SERVER_ROOT[0] if SERVER_ROOT else ROOT})")  # fmt: skip
        return
    figures: dict[str, list[float]] = {k: [] for k in ("batched", "copy", "drf", "single", "bare")}

    if args.rounds > 0:
        server = Server(s, "pubsub")
        try:
            # Warm up both workers (imports, pools, the channel layer's connection).
            single_posts(s, server, "warm-ingest", 200, INGEST_PATH)
            single_posts(s, server, "warm-bare", 100, "/bench/bare/event", "bare")
            single_posts(s, server, "warm-drf", 100, "/bench/drf/events/", "drf")
            batched_ingest(s, server, "warm-batch", 4)
            for r in range(args.rounds):
                figures["batched"].append(batched_ingest(s, server, f"batch{r}", args.batches))
                figures["copy"].append(copy_rows(s, f"copy{r}", args.batches * BATCH))
                figures["drf"].append(single_posts(s, server, f"drf{r}", args.singles, "/bench/drf/events/", "drf"))
                figures["single"].append(single_posts(s, server, f"single{r}", args.singles, INGEST_PATH))
                figures["bare"].append(single_posts(s, server, f"bare{r}", args.singles, "/bench/bare/event", "bare"))
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in figures.items()), flush=True)
        finally:
            server.stop()
    results = [] if args.skip_latency else curve(s, parse_points(args.points), modes, args.seconds)

    if args.rounds > 0:
        m = {k: median(v) for k, v in figures.items()}
        rows = [
            ("batched ingest (API, 500/batch)", m["batched"], "COPY", m["copy"], GOALS["batched"]),
            ("batched ingest (API, 500/batch)", m["batched"], "DRF ModelViewSet", m["drf"], GOALS["batched"]),
            ("single-event posts (API)", m["single"], "bare view + ORM insert", m["bare"], GOALS["single"]),
        ]
        print()
        print(f"{'item':<34} {'figure':>12} {'baseline':>30} {'ratio':>7} {'goal':>12}  result")
        for name, figure, base_name, base, goal in rows:
            ok = "pass" if figure >= goal else "FAIL"
            print(f"{name:<34} {figure:>10,.0f}/s {base_name + f' {base:,.0f}/s':>30} {figure / base:>7.2f} "
                  f"{f'>= {goal:,.0f}/s':>12}  {ok}")  # fmt: skip
        for name, key, base_name, base_key, goal in (
            ("batched ingest (API, 500/batch)", "batched", "PostgreSQL COPY", "copy", RATIO_GOALS["batched"]),
            ("batched ingest (API, 500/batch)", "batched", "DRF ModelViewSet", "drf", None),
            ("single-event posts (API)", "single", "bare view + ORM insert", "bare", RATIO_GOALS["single"]),
        ):
            record(name, m[key], "events/s", better=HIGHER, goal=goal, baseline=base_name, baseline_value=m[base_key])
    if results:
        print_curve(results, args.seconds)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    load = os.getloadavg()
    print(f"\nrounds {args.rounds} (medians), total {time.perf_counter() - started:.0f} s, "
          f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
