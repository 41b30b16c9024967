"""Events at speed: batched ingest, single posts and post-to-websocket latency, against
PostgreSQL and Redis, each next to a baseline measured in the same run.

    .venv/bin/python bench/events_bench.py             # the whole run, about 3 minutes
    .venv/bin/python bench/events_bench.py --rounds 1  # one round per throughput item

Runs on its own PostgreSQL database (BENCH_EVENTS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/kangaroo_bench_events), created and migrated if missing,
and on Redis database 12 (BENCH_EVENTS_REDIS_URL). Seeds one company with a box, 4 screens,
2,000 subjects (some with photos) and a staff admin, plus two other companies.

The server is the real ASGI app served like production, `uvicorn kangaroo.asgi:application
--workers 2`, as a subprocess on a free 127.0.0.1 port, with DJANGO_SETTINGS_MODULE=
bench.events_settings: kangaroo.settings plus baseline-only URLs (bench/events_urls.py) and
BENCH_CHANNEL_LAYER=pubsub|core. This process drives it with httpx at bounded concurrency;
the 20 dashboards run in a child process (`--dashboards`) so their work does not skew the
sender's clock. Every request loop is bounded in count and in time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_EVENTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kangaroo_bench_events")
REDIS_URL = os.environ.get("BENCH_EVENTS_REDIS_URL", "redis://127.0.0.1:6379/12")
INGEST_PATH = "/api/v1/device/events"
BATCH = 500
DASHBOARDS = 20
LATENCY_RATE = 500  # events/s
LATENCY_SECONDS = 10
LATENCY_BATCH = 10  # events per post: 50 posts/s of 10 events, as boxes post
SUBJECTS = 2_000
SCREENS = 4
HISTORY = 100_000  # past events of the box in the table before each run

GOALS = {"batched": 20_000.0, "single": 800.0, "p99_ms": 50.0}


# --- the dashboards: a child process, before any Django import ------------------------------------
async def _dashboards(url: str, origin: str, cookie: str, count: int) -> None:
    """Connect `count` dashboards, print "ready", record each event's latency (now - its
    happened_at, which the sender set to the time it sent the post) until "stop" arrives
    on stdin, then print the latencies as JSON."""
    import websockets

    latencies: list[float] = []
    received = [0] * count

    async def one(index: int, ready: asyncio.Event, stop: asyncio.Event, sockets: list) -> None:
        socket_ = await websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": origin}, open_timeout=20, max_size=None
        )
        sockets.append(socket_)
        hello = json.loads(await socket_.recv())
        assert hello["type"] == "hello", hello
        ready.set()
        try:
            async for raw in socket_:
                now = time.time()
                message = json.loads(raw)
                if message.get("type") != "events":
                    continue
                for event in message["events"]:
                    sent = datetime.fromisoformat(event["happened_at"]).timestamp()
                    latencies.append(now - sent)
                    received[index] += 1
        except websockets.ConnectionClosed:
            pass

    sockets: list = []
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(one(i, readies[i], stop, sockets)) for i in range(count)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
    for socket_ in sockets:
        await socket_.close()
    await asyncio.wait(tasks, timeout=10)
    print(json.dumps({"latencies": latencies, "received": received}), flush=True)


if len(sys.argv) > 1 and sys.argv[1] == "--dashboards":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_dashboards(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
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
from psycopg import sql  # noqa: E402


def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


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
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, s: Seed, layer: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.events_settings",
            "BENCH_CHANNEL_LAYER": layer,
            "BENCH_COMPANY_ID": str(s.company.pk),
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "DEBUG": "false",
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "WARNING",  # channels_redis logs each over-capacity group_send at INFO
        }
        command = [
            sys.executable, "-m", "uvicorn", "kangaroo.asgi:application", "--workers", "2",
            "--host", "127.0.0.1", "--port", str(self.port), "--lifespan", "off",
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env=env)
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

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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


# --- latency ------------------------------------------------------------------------------------
def latency(s: Seed, server: Server, layer: str) -> dict:
    ws_url = server.base.replace("http://", "ws://") + "/ws/events/"
    dashboards = subprocess.Popen(
        [sys.executable, __file__, "--dashboards", ws_url, server.base, s.cookie, str(DASHBOARDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = dashboards.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"dashboards did not connect: {line!r}")
        sent = asyncio.run(_paced_posts(s, server, layer))
        time.sleep(2)  # let the last events arrive
        dashboards.stdin.write("stop\n")
        dashboards.stdin.flush()
        result = json.loads(dashboards.stdout.readline())
    finally:
        try:
            dashboards.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dashboards.kill()
            dashboards.wait()
    values = sorted(result["latencies"])
    if not values:
        raise RuntimeError("no event reached the dashboards")

    def pct(p: float) -> float:
        return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000

    return {
        "sent": sent,
        "expected": sent * DASHBOARDS,
        "delivered": len(values),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": values[-1] * 1000,
    }


async def _paced_posts(s: Seed, server: Server, layer: str) -> int:
    """LATENCY_RATE events/s for LATENCY_SECONDS, in posts of LATENCY_BATCH events (open loop:
    each post starts at its scheduled time, at most 32 in flight); happened_at is the time
    the post is sent. Returns the events the server answered created."""
    rng = random.Random(layer)
    posts = LATENCY_RATE * LATENCY_SECONDS // LATENCY_BATCH
    interval = LATENCY_BATCH / LATENCY_RATE
    headers = {**JSON, "Authorization": f"Device {s.key}"}
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    in_flight = asyncio.Semaphore(32)
    ok = 0

    async with httpx.AsyncClient(base_url=server.base, limits=limits, timeout=30) as client:

        async def post(n: int):
            nonlocal ok
            async with in_flight:
                sent = datetime.now(UTC).isoformat()
                batch = [item(s, f"lat-{layer}-{n}-{i}", rng, happened_at=sent) for i in range(LATENCY_BATCH)]
                response = await client.post(
                    INGEST_PATH, content=json.dumps({"events": batch}).encode(), headers=headers
                )
                ok += check_batch(response)

        start = time.perf_counter()
        tasks = []
        for n in range(posts):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(n)))
        _done, pending = await asyncio.wait(tasks, timeout=LATENCY_SECONDS * 3)
        for task in pending:
            task.cancel()
        if pending:
            print(f"  {len(pending)} posts still pending after {LATENCY_SECONDS * 3} s: cancelled")
    return ok


# --- the run ------------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    global LATENCY_RATE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per throughput item (median reported)")
    parser.add_argument("--batches", type=int, default=60, help="batches of 500 per batched-ingest round")
    parser.add_argument("--singles", type=int, default=3000, help="posts per single-post round")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--latency-rate", type=int, default=LATENCY_RATE, help="events/s in the latency run")
    args = parser.parse_args()
    LATENCY_RATE = args.latency_rate

    started = time.perf_counter()
    s = seed()
    print(f"company {s.company.pk}: box {s.box.pk}, screens {s.screens}, {len(s.subjects)} subjects")
    figures: dict[str, list[float]] = {k: [] for k in ("batched", "copy", "drf", "single", "bare")}
    latencies: dict[str, dict] = {}

    server = Server(s, "pubsub")
    try:
        # Warm up both workers (imports, pools, the channel layer's connection).
        single_posts(s, server, "warm-ingest", 200, INGEST_PATH)
        single_posts(s, server, "warm-bare", 100, "/bench/bare/event", "bare")
        single_posts(s, server, "warm-drf", 100, "/bench/drf/events/", "drf")
        batched_ingest(s, server, "warm-batch", 4)
        for r in range(max(args.rounds, 0)):
            figures["batched"].append(batched_ingest(s, server, f"batch{r}", args.batches))
            figures["copy"].append(copy_rows(s, f"copy{r}", args.batches * BATCH))
            figures["drf"].append(single_posts(s, server, f"drf{r}", args.singles, "/bench/drf/events/", "drf"))
            figures["single"].append(single_posts(s, server, f"single{r}", args.singles, INGEST_PATH))
            figures["bare"].append(single_posts(s, server, f"bare{r}", args.singles, "/bench/bare/event", "bare"))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in figures.items()), flush=True)
        if not args.skip_latency:
            latencies["pubsub"] = latency(s, server, "pubsub")
            print(f"latency pubsub: {latencies['pubsub']}", flush=True)
    finally:
        server.stop()
    if not args.skip_latency:
        server = Server(s, "core")
        try:
            single_posts(s, server, "warm-core", 200, INGEST_PATH)
            latencies["core"] = latency(s, server, "core")
            print(f"latency core: {latencies['core']}", flush=True)
        finally:
            server.stop()

    m = {k: median(v) if v else float("nan") for k, v in figures.items()}
    rows = [
        ("batched ingest (API, 500/batch)", m["batched"], "COPY", m["copy"], GOALS["batched"], "events/s"),
        ("batched ingest (API, 500/batch)", m["batched"], "DRF ModelViewSet", m["drf"], GOALS["batched"], "events/s"),
        ("single-event posts (API)", m["single"], "bare view + ORM insert", m["bare"], GOALS["single"], "events/s"),
    ]
    print()
    print(f"{'item':<34} {'figure':>12} {'baseline':>30} {'ratio':>7} {'goal':>12}  result")
    for name, figure, base_name, base, goal, _unit in rows:
        ok = "pass" if figure >= goal else "FAIL"
        print(f"{name:<34} {figure:>10,.0f}/s {base_name + f' {base:,.0f}/s':>30} {figure / base:>7.2f} "
              f"{f'>= {goal:,.0f}/s':>12}  {ok}")  # fmt: skip
    if latencies:
        pub = latencies.get("pubsub")
        core = latencies.get("core")
        for p in ("p50", "p95", "p99"):
            figure = pub[p]
            base = core[p] if core else float("nan")
            goal = f"<= {GOALS['p99_ms']:.0f} ms" if p == "p99" else "-"
            ok = ("pass" if figure <= GOALS["p99_ms"] else "FAIL") if p == "p99" else ""
            label = f"ws latency {p} (pubsub layer)"
            print(f"{label:<34} {figure:>9.1f} ms {f'RedisChannelLayer {base:.1f} ms':>30} "
                  f"{figure / base:>7.2f} {goal:>12}  {ok}")  # fmt: skip
        for layer, lat in latencies.items():
            print(f"  {layer}: {lat['sent']} events at {LATENCY_RATE}/s in posts of {LATENCY_BATCH}, "
                  f"{DASHBOARDS} dashboards, delivered {lat['delivered']}/{lat['expected']}, "
                  f"max {lat['max']:.0f} ms")  # fmt: skip
    print(f"\nrounds {args.rounds} (medians), total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
