"""Soak: the product served as in production, under a steady mixed load for `--minutes`,
with one Redis restart in the middle, then checked for lost or doubled events, dashboards
that missed one, memory growth and errors in the logs.

    .venv/bin/python bench/soak.py                  # 10 minutes, about 12 with seeding and drain
    .venv/bin/python bench/soak.py --minutes 2      # a short run

Loopback only, bounded in time, outside CI. Needs PostgreSQL (BENCH_SOAK_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/kg_soak, created and migrated if missing) and
`redis-server`: the soak starts a Redis of its own on a free loopback port, since it
restarts it. The seed is bench/events_bench.py's (one company of 2,000 subjects, a box of
4 screens, an admin, two other companies, 100,000 past events), plus the soak's boxes, pads,
an API key and one subject enrolled with a real portrait.

What runs, all on 127.0.0.1: `uvicorn kangaroo.asgi:application --workers 2`, `manage.py
rqworker --with-scheduler default` and `manage.py periodic`, DEBUG off, MALLOC_ARENA_MAX=2
as in production, each writing its log
to a file under the run's folder. Against them, for `--minutes`:

- `--boxes` real box agents (`python -m kangaroo_box --watch`), each fed a real portrait
  every `--box-every` seconds (a face it knows, or a stranger): they recognise, post events
  and heartbeats and pull the gallery as a box does;
- `--pads` pads posting `--rate` events/s between them (one event per post, each retried
  with the same uid on a failure, as a device does), a heartbeat every 15 s and a
  recognition of a real portrait (`POST /api/v1/device/recognize`) every `--recognize-every`
  seconds each;
- `--dashboards` live pages on /ws/events/ (four of them on one screen each, the others on
  the whole company) that reconnect and resume after the last id they saw, as live.js does;
- an admin exporting the subjects (the admin's CSV export) and an HR sync upserting 100
  subjects through the API, in turns every 10 s;
- the private Redis stopped halfway through, and started again on the same port 5 s later.

Checks: every event posted is stored exactly once (by uid); every dashboard received every
stored event of its scope (by id); the resident memory of each server process (both uvicorn
workers, the RQ worker, the periodic runner) at the end is at most 10 % above what it was at
minute 2; no ERROR, CRITICAL or traceback in the server logs. Prints a table and exits 1 if
a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dashboards as live_pages  # noqa: E402  (imports nothing of the project)

WATCHDOG_SECONDS = 16  # live.js: a page that hears nothing for three 5 s ticks reconnects
RSS_GROWTH_LIMIT = 0.10


# --- the dashboards: child processes, before any Django import ------------------------------------
async def _dashboards(config: dict) -> None:
    """Connect one live page per entry of config["screens"] (a screen id, or None for the
    whole company), print "ready" once each has its hello, then on "stop <file> <seconds>"
    wait until each has received every id of its scope listed in <file> ({"company": [...],
    "<screen id>": [...]}) or <seconds> have passed, and print per page, as JSON, the ids
    missing, those received twice on one connection, and its reconnections."""
    import websockets

    headers = live_pages.headers(config)
    pages = [
        {"screen": screen, "seen": set(), "last": 0, "complete": 0, "twice": [], "reconnects": 0, "history": []}
        for screen in config["screens"]
    ]
    stopping = asyncio.Event()

    async def live(page: dict, ready: asyncio.Event) -> None:
        url = config["url"] + (f"?screen={page['screen']}" if page["screen"] else "")
        delay = 0.5
        while not stopping.is_set():
            try:
                async with websockets.connect(url, additional_headers=headers, open_timeout=30, max_size=None) as ws:
                    hello = json.loads(await asyncio.wait_for(ws.recv(), WATCHDOG_SECONDS))
                    if hello.get("type") != "hello":
                        raise RuntimeError(f"no hello: {hello}")
                    ready.set()
                    delay = 0.5
                    page["history"].append(f"{time.time():.1f} hello, complete {page['complete']} last {page['last']}")
                    # As live.js: resume after the last id the server said was complete.
                    if page["complete"]:
                        await ws.send(json.dumps({"type": "resume", "after": page["complete"]}))
                    else:
                        page["complete"] = hello.get("complete") or 0
                    this_connection: set[int] = set()
                    while not stopping.is_set():
                        if page.get("drop_at") and time.monotonic() > page["drop_at"]:
                            page["drop_at"] = None
                            page["history"].append(f"{time.time():.1f} dropped on purpose, last {page['last']}")
                            break
                        message = json.loads(await asyncio.wait_for(ws.recv(), WATCHDOG_SECONDS))
                        if message.get("type") == "tick" and message.get("complete"):
                            page["complete"] = message["complete"]
                        if message.get("type") != "events":
                            continue
                        for event in message["events"]:
                            pk = event["id"]
                            if pk in this_connection:
                                page["twice"].append(pk)
                            this_connection.add(pk)
                            page["seen"].add(pk)
                            page["last"] = max(page["last"], pk)
            except (OSError, TimeoutError, RuntimeError, websockets.WebSocketException) as problem:
                page["history"].append(f"{time.time():.1f} closed: {problem!r} last {page['last']}")
            if stopping.is_set():
                return
            page["reconnects"] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    tasks = await live_pages.open_in_steps([lambda ready, page=page: live(page, ready) for page in pages], step=5)
    # Each page also drops its connection once, at a moment of its own, and resumes: a
    # laptop's Wi-Fi, a reload, a proxy's idle timeout.
    begin, end = config["drop_between"]
    rng = random.Random(config["seed"])
    for page in pages:
        page["drop_at"] = time.monotonic() + rng.uniform(begin, end)
    path, seconds = await live_pages.stop_command()
    expected = {scope: set(ids) for scope, ids in json.loads(path.read_text()).items()}

    def wanted(page: dict) -> set[int]:
        return expected[str(page["screen"]) if page["screen"] else "company"]

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(wanted(p) <= p["seen"] for p in pages):
        await asyncio.sleep(0.2)
    stopping.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    report = [
        {
            "screen": p["screen"],
            "expected": len(wanted(p)),
            "missing": len(wanted(p) - p["seen"]),
            "missing_ids": sorted(wanted(p) - p["seen"])[:20],
            "twice": len(p["twice"]),
            "twice_ids": p["twice"][:20],
            "reconnects": p["reconnects"],
            "history": p["history"],
        }
        for p in pages
    ]
    print(json.dumps(report), flush=True)


def _box(config: dict) -> int:
    """The real box agent, noting each event's uid as it enters the outbox (the outbox
    forgets a row once the portal has answered for it)."""
    from kangaroo_box import cli
    from kangaroo_box.store import Store

    uids = open(config["uids"], "a", buffering=1)  # noqa: SIM115 - open for the agent's life
    enqueue = Store.enqueue

    def noting(self, item, *, file=None):
        enqueue(self, item, file=file)
        uids.write(item["uid"] + "\n")

    Store.enqueue = noting
    return cli.main(config["argv"])


if len(sys.argv) > 2 and sys.argv[1] == "--dashboard-process":
    asyncio.run(_dashboards(json.loads(sys.argv[2])))
    sys.exit(0)
if len(sys.argv) > 2 and sys.argv[1] == "--box-process":
    sys.exit(_box(json.loads(sys.argv[2])))


# --- a Redis of the soak's own, on a loopback port (it is restarted mid-run) ----------------------
from tests.served import free_port  # noqa: E402

REDIS_PORT = free_port()
RUN_DIR = Path(tempfile.mkdtemp(prefix="kangaroo-soak-"))
os.environ["BENCH_EVENTS_DATABASE_URL"] = os.environ.get(
    "BENCH_SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kg_soak"
)
os.environ["BENCH_EVENTS_REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
os.environ["VAR_DIR"] = str(RUN_DIR / "var")
os.environ["MEDIA_ROOT"] = str(RUN_DIR / "media")
os.environ["SECURE_COOKIES"] = "false"


class PrivateRedis:
    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the soak's redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


REDIS = PrivateRedis(REDIS_PORT)
REDIS.start()

# Sets Django up on the soak's database, before the imports below.
eb = importlib.import_module("bench.events_bench")

import httpx  # noqa: E402
from django.test import override_settings  # noqa: E402

from accounts.models import User  # noqa: E402
from devices import services as device_services  # noqa: E402
from devices.models import Box, Pad, Screen  # noqa: E402
from events.models import Event  # noqa: E402
from integrations.api_keys import api_key_create  # noqa: E402
from subjects.models import Subject  # noqa: E402
from tests.faces import portraits  # noqa: E402
from tests.faces.enrolled import enrol, snapshot_of  # noqa: E402


# --- seed: the soak's devices on top of the events benchmark's company ------------------------------
def seed(boxes: int, pads: int) -> dict:
    s = eb.seed()
    company = s.company
    admin = User.objects.get(username="bench-events-admin")  # tenant: the bench company's admin by login
    if not Subject.objects.for_company(company).filter(job_number="SOAK-GRACE").exists():
        with override_settings(JOBS_INLINE=True):
            enrol(_Tenant(company, admin), "Grace Hopper", portraits.grace_hopper(), job_number="SOAK-GRACE")
    box_keys = []
    for n in range(boxes):
        box = Box.objects.for_company(company).filter(name=f"Soak box {n}").first()
        if box is None:
            box, _key = device_services.box_create(company=company, actor=None, name=f"Soak box {n}", max_screens=1)
            device_services.screen_create(
                company=company, actor=None, name=f"Soak door {n}", camera_url=f"rtsp://10.0.1.{n}/s", box=box
            )
        box, key = device_services.device_key_rotate(company=company, actor=None, device=box)
        box_keys.append((key, Screen.objects.for_company(company).get(box=box).pk))
    pad_keys = []
    for n in range(pads):
        screen = Screen.objects.for_company(company).get(pk=s.screens[n % len(s.screens)])
        pad = Pad.objects.for_company(company).filter(name=f"Soak pad {n}").first()
        if pad is None:
            pad, _key = device_services.pad_create(company=company, actor=None, name=f"Soak pad {n}", screen=screen)
        pad, key = device_services.device_key_rotate(company=company, actor=None, device=pad)
        pad_keys.append((key, screen.pk))
    _api_key, api_secret = api_key_create(
        company=company, actor=admin, name=f"Soak HR sync {time.time_ns()}", scopes=["subjects:read", "subjects:write"]
    )
    return {
        "bench": s,
        "boxes": box_keys,
        "pads": pad_keys,
        "api_key": api_secret,
        "door_screens": s.screens,
    }


class _Tenant:
    def __init__(self, company, admin):
        self.company, self.admin = company, admin


# --- the server, as production runs it ----------------------------------------------------------------
class Servers:
    def __init__(self, logs: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kangaroo.settings",
            "DEBUG": "false",
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "INFO",
            # As README's "Running in production" sets it: without it, each thread's malloc
            # arena kept its peak and the workers grew for minutes (447 MiB against 250).
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
        }
        self.logs = logs
        python = sys.executable
        self.commands = {
            "uvicorn": [
                python, "-m", "uvicorn", "kangaroo.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "2", "--ws-per-message-deflate", "false",
            ],
            "rqworker": [python, "manage.py", "rqworker", "--with-scheduler", "default"],
            "periodic": [python, "manage.py", "periodic"],
        }  # fmt: skip
        self.processes: dict[str, subprocess.Popen] = {}
        for name, command in self.commands.items():
            log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - the process's for its life
            self.processes[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: see {logs / f'{name}.log'}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.3)

    def pids(self) -> dict[str, int]:
        """The processes whose memory is watched: each uvicorn worker, the RQ worker (not
        the work horse it forks per job) and the periodic runner."""
        workers = [
            pid
            for pid in eb.child_pids(self.processes["uvicorn"].pid)
            if b"uvicorn" in eb._cmdline(pid) or b"spawn_main" in eb._cmdline(pid)
        ]
        found = {f"uvicorn worker {n + 1}": pid for n, pid in enumerate(sorted(workers))}
        found["rq worker"] = self.processes["rqworker"].pid
        found["periodic"] = self.processes["periodic"].pid
        return found

    def stop(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def log_problems(path: Path) -> list[str]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if " ERROR " in line or " CRITICAL " in line or "Traceback" in line or '"level": "ERROR"' in line:
            found.append(line)
    return found


# --- the load -----------------------------------------------------------------------------------
class Load:
    def __init__(self, seeded: dict, servers: Servers, args):
        self.seeded, self.servers, self.args = seeded, servers, args
        self.tag = f"soak{time.time_ns()}"
        self.posted: list[str] = []  # the uids of every event a pad posted or recognised
        self.failed: list[str] = []
        self.retried: list[str] = []  # why a device tried again (it then succeeded, or is in failed)
        self.counts = {"event posts": 0, "retries": 0, "heartbeats": 0, "recognitions": 0, "exports": 0, "upserts": 0}
        self.stop_at = 0.0
        grace, astronaut = snapshot_of(portraits.grace_hopper()), snapshot_of(portraits.astronaut())
        self.pictures = [grace, astronaut]
        self.recognize_bodies = [base64.b64encode(p).decode() for p in self.pictures]

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict, ok: tuple[int, ...], what: str):
        """A device's post: retried with the same body on a failure, as a device does."""
        for attempt in range(8):
            try:
                response = await client.post(path, json=body)
                if response.status_code in ok:
                    return response
                problem = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                problem = repr(error)
            self.counts["retries"] += 1
            self.retried.append(f"{what}: {problem}")
            await asyncio.sleep(min(2**attempt, 10))
        self.failed.append(f"{what}: {problem}")
        return None

    async def pad(self, n: int, key: str, screen: int) -> None:
        rng = random.Random(f"{self.tag}-{n}")
        headers = {"Authorization": f"Device {key}"}
        interval = self.args.pads / self.args.rate
        async with httpx.AsyncClient(base_url=self.servers.base, headers=headers, timeout=30) as client:
            in_flight: set[asyncio.Task] = set()
            start, sent = time.monotonic(), 0
            next_heartbeat, next_recognition = start, start + rng.uniform(0, self.args.recognize_every)
            while self.running():
                now = time.monotonic()
                if now >= next_heartbeat:
                    next_heartbeat = now + 15
                    in_flight.add(asyncio.create_task(self.heartbeat(client)))
                if now >= next_recognition:
                    next_recognition = now + self.args.recognize_every
                    in_flight.add(asyncio.create_task(self.recognize(client, rng)))
                item = eb.item(self.seeded["bench"], f"{self.tag}-pad{n}-{sent}", rng)
                item["screen_id"] = screen
                self.posted.append(item["uid"])
                in_flight.add(asyncio.create_task(self.event(client, item)))
                in_flight = {t for t in in_flight if not t.done()}
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
            await asyncio.gather(*in_flight)

    async def event(self, client, item: dict) -> None:
        self.counts["event posts"] += 1
        response = await self._post(client, eb.INGEST_PATH, item, (200, 201), f"event {item['uid']}")
        if response is not None and response.status_code != 201:
            self.failed.append(f"event {item['uid']} answered {response.status_code} {response.text[:200]}")

    async def heartbeat(self, client) -> None:
        self.counts["heartbeats"] += 1
        from datetime import UTC, datetime

        body = {"sent_at": datetime.now(UTC).isoformat(timespec="seconds")}
        await self._post(client, "/api/v1/device/heartbeat", body, (200,), "heartbeat")

    async def recognize(self, client, rng: random.Random) -> None:
        self.counts["recognitions"] += 1
        uid = f"{self.tag}-rec-{self.counts['recognitions']}"
        self.posted.append(uid)
        body = {"image": rng.choice(self.recognize_bodies), "uid": uid}
        # A connection of its own, as a pad that wakes for a face: the recognitions spread
        # over both workers, which a pad's kept-alive connection would not do.
        async with httpx.AsyncClient(base_url=self.servers.base, headers=client.headers, timeout=60) as own:
            await self._post(own, "/api/v1/device/recognize", body, (200, 201), f"recognize {uid}")

    async def boxes(self, folders: list[Path]) -> None:
        n = 0
        while self.running():
            for folder in folders:
                name = f"frame-{n:05d}.jpg"
                (folder / f".{name}").write_bytes(self.pictures[n % 2])
                (folder / f".{name}").rename(folder / name)
            n += 1
            await asyncio.sleep(self.args.box_every)

    async def admins(self) -> None:
        s = self.seeded["bench"]
        cookie = s.cookie
        api = {"Authorization": f"Bearer {self.seeded['api_key']}"}
        async with httpx.AsyncClient(base_url=self.servers.base, timeout=60) as client:
            turn = 0
            while self.running():
                if turn % 2 == 0:
                    await self.export(client, cookie)
                else:
                    await self.upsert(client, api, turn)
                turn += 1
                await asyncio.sleep(10)

    async def export(self, client, cookie: str) -> None:
        from subjects.resources import SubjectResource

        path = "/admin/subjects/subject/export/"
        try:
            page = await client.get(path, headers={"Cookie": cookie})
            csrf = page.cookies.get("csrftoken") or ""
            fields = {"resource": "0", "format": "0", "csrfmiddlewaretoken": csrf}
            fields |= {f"subjectresource_{name}": "on" for name in SubjectResource().get_export_order()}
            headers = {"Cookie": f"{cookie}; csrftoken={csrf}", "Referer": self.servers.base + path}
            response = await client.post(path, data=fields, headers=headers)
        except httpx.HTTPError as error:
            self.failed.append(f"export: {error!r}")
            return
        self.counts["exports"] += 1
        rows = response.text.count("\n")
        if response.status_code != 200 or rows < 2000:
            self.failed.append(f"export answered {response.status_code} with {rows} lines: {response.text[:200]}")

    async def upsert(self, client, api: dict, turn: int) -> None:
        body = {"subjects": [{"job_number": f"SOAK-{n:04d}", "name": f"Soak {n} v{turn}"} for n in range(100)]}
        try:
            response = await client.post("/api/v1/subjects/upsert", json=body, headers=api)
        except httpx.HTTPError as error:
            self.failed.append(f"upsert: {error!r}")
            return
        self.counts["upserts"] += 1
        if response.status_code != 200 or any(r["status"] == "error" for r in response.json()["results"]):
            self.failed.append(f"upsert answered {response.status_code}: {response.text[:300]}")


def start_dashboards(seeded: dict, servers: Servers, count: int, seconds: float) -> list[subprocess.Popen]:
    scoped = min(4, count // 5)  # a fifth of them (at most 4) on one door each, the rest on the company
    screens = [seeded["door_screens"][n] for n in range(scoped)] + [None] * (count - scoped)
    configs = [
        {
            "url": servers.base.replace("http://", "ws://") + "/ws/events/",
            "origin": servers.base,
            "cookie": seeded["bench"].cookie,
            "screens": screens[start : start + 10],
            "drop_between": [seconds * 0.1, seconds * 0.9],
            "seed": start,
        }
        for start in range(0, count, 10)
    ]
    processes = live_pages.start(__file__, "--dashboard-process", configs)
    live_pages.wait_ready(processes)
    return processes


def start_boxes(seeded: dict, servers: Servers) -> tuple[list[subprocess.Popen], list[Path], list[Path]]:
    processes, folders, uid_files = [], [], []
    for n, (key, screen) in enumerate(seeded["boxes"]):
        folder = RUN_DIR / f"box{n}" / "watch"
        folder.mkdir(parents=True)
        uid_file = RUN_DIR / f"box{n}" / "uids.txt"
        argv = ["--url", servers.base, "--screen", str(screen), "--watch", str(folder)]
        argv += ["--state", str(RUN_DIR / f"box{n}" / "state.sqlite3"), "--sync-every", "30"]
        config = {"uids": str(uid_file), "argv": argv}
        log = open(RUN_DIR / "logs" / f"box{n}.log", "wb")  # noqa: SIM115 - the agent's for its life
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "--box-process", json.dumps(config)],
                env={**os.environ, "KANGAROO_BOX_KEY": key},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        folders.append(folder)
        uid_files.append(uid_file)
    return processes, folders, uid_files


def box_uids(uid_files: list[Path]) -> list[str]:
    return [uid for path in uid_files if path.exists() for uid in path.read_text().split()]


def stored(company, uids: list[str]) -> dict[str, list[tuple[int, int | None]]]:
    found: dict[str, list[tuple[int, int | None]]] = {}
    for offset in range(0, len(uids), 5000):
        rows = Event.objects.for_company(company).filter(uid__in=uids[offset : offset + 5000])
        for pk, uid, screen in rows.values_list("pk", "uid", "screen_id"):
            found.setdefault(uid, []).append((pk, screen))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--boxes", type=int, default=3, help="box agents (default %(default)s)")
    parser.add_argument("--box-every", type=float, default=3.0, help="seconds between pictures per box")
    parser.add_argument("--pads", type=int, default=6, help="pads (default %(default)s)")
    parser.add_argument("--rate", type=float, default=60, help="events/s the pads post between them")
    parser.add_argument("--recognize-every", type=float, default=10.0, help="seconds between a pad's recognitions")
    parser.add_argument("--dashboards", type=int, default=20)
    args = parser.parse_args()
    logs = RUN_DIR / "logs"
    logs.mkdir(parents=True)
    load_before = os.getloadavg()
    print(f"run folder {RUN_DIR}; load average {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}")
    seeded = seed(args.boxes, args.pads)
    company = seeded["bench"].company
    servers = Servers(logs)
    boxes: list[subprocess.Popen] = []
    dashboards: list[subprocess.Popen] = []
    try:
        dashboards = start_dashboards(seeded, servers, args.dashboards, args.minutes * 60)
        boxes, folders, uid_files = start_boxes(seeded, servers)
        load = Load(seeded, servers, args)
        seconds = args.minutes * 60
        baseline_at = min(120.0, seconds / 2)
        samples: dict[str, dict[str, float | None]] = {}
        print(f"load for {args.minutes} min: {args.rate:g} events/s from {args.pads} pads, {args.boxes} boxes, "
              f"{args.dashboards} dashboards; Redis restarts at {seconds / 2:.0f} s", flush=True)  # fmt: skip

        async def run() -> None:
            started = time.monotonic()
            load.stop_at = started + seconds

            async def chores() -> None:
                await asyncio.sleep(baseline_at)
                samples["early"] = {name: rss_mib(pid) for name, pid in servers.pids().items()}
                await asyncio.sleep(max(0.0, started + seconds / 2 - time.monotonic()))
                print(f"{time.monotonic() - started:.0f} s: stopping Redis", flush=True)
                await asyncio.to_thread(REDIS.stop)
                await asyncio.sleep(5)
                await asyncio.to_thread(REDIS.start)
                print(f"{time.monotonic() - started:.0f} s: Redis is back", flush=True)
                while load.running():
                    await asyncio.sleep(30)
                    elapsed = time.monotonic() - started
                    rss = ", ".join(f"{name} {rss_mib(pid) or 0:.0f}" for name, pid in servers.pids().items())
                    print(f"{elapsed:.0f} s: {load.counts}, {len(load.failed)} failures; RSS MiB {rss}", flush=True)
                samples["late"] = {name: rss_mib(pid) for name, pid in servers.pids().items()}

            pads = [load.pad(n, key, screen) for n, (key, screen) in enumerate(seeded["pads"])]
            await asyncio.gather(chores(), load.admins(), load.boxes(folders), *pads)

        asyncio.run(run())
        # The boxes' outboxes and watch folders drain, then every posted event is looked up.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pending = any(p.is_file() for folder in folders for p in folder.iterdir())
            uids = box_uids(uid_files)
            if not pending and len(stored(company, uids)) == len(uids):
                break
            time.sleep(1)
        for box in boxes:
            box.send_signal(signal.SIGTERM)
        for box in boxes:
            box.wait(timeout=30)
        from_boxes = box_uids(uid_files)
        found = stored(company, load.posted + from_boxes)
        all_uids = load.posted + from_boxes
        lost = [uid for uid in all_uids if uid not in found]
        doubled = [uid for uid, rows in found.items() if len(rows) > 1]
        scopes: dict[str, list[int]] = {"company": sorted(pk for rows in found.values() for pk, _ in rows)}
        for screen in seeded["door_screens"]:
            scopes[str(screen)] = sorted(pk for rows in found.values() for pk, sc in rows if sc == screen)
        expected_file = RUN_DIR / "expected.json"
        expected_file.write_text(json.dumps(scopes))
        pages = [page for report in live_pages.stop(dashboards, expected_file, 30) for page in report]
    finally:
        for process in [*boxes, *dashboards]:
            if process.poll() is None:
                process.kill()
                process.wait()
        servers.stop()
        REDIS.stop()
    problems = {name: log_problems(logs / f"{name}.log") for name in servers.commands}
    load_after = os.getloadavg()
    early, late = samples.get("early", {}), samples.get("late", {})

    checks = []
    all_uids_count = len(load.posted) + len(from_boxes)
    checks.append(("events stored once", f"{all_uids_count - len(lost)} of {all_uids_count}, lost {len(lost)}, "
                   f"twice {len(doubled)}", not lost and not doubled))  # fmt: skip
    checks.append(("device requests", f"{load.counts}, failed {len(load.failed)}", not load.failed))
    for n, page in enumerate(pages):
        scope = f"screen {page['screen']}" if page["screen"] else "company"
        ok = page["missing"] == 0 and page["twice"] == 0
        detail = f"{page['expected'] - page['missing']} of {page['expected']} ({scope}), "
        detail += f"twice {page['twice']}, reconnects {page['reconnects']}"
        checks.append((f"dashboard {n + 1}", detail, ok))
        if not ok:
            print(f"dashboard {n + 1}: missing {page['missing_ids']}, twice {page['twice_ids']}, {page['history']}")
    for name in sorted(set(early) | set(late)):
        before, after = early.get(name), late.get(name)
        ok = before is not None and after is not None and after <= before * (1 + RSS_GROWTH_LIMIT)
        shown = f"{before or 0:.0f} -> {after or 0:.0f} MiB" + (f" ({(after / before - 1) * 100:+.1f} %)" if ok else "")
        checks.append((f"RSS {name}", shown, ok))
    for name, lines in problems.items():
        checks.append((f"log {name}", f"{len(lines)} ERROR/CRITICAL/traceback lines", not lines))

    print(f"\nsoak {args.minutes:g} min, {args.rate:g} events/s from {args.pads} pads, {args.boxes} boxes, "
          f"{args.dashboards} dashboards; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")  # fmt: skip
    print(f"{'check':<22} {'result':<6} figures")
    for name, detail, ok in checks:
        print(f"{name:<22} {'pass' if ok else 'FAIL':<6} {detail}")
    for failure in load.failed[:5]:
        print(f"  failed: {failure}")
    for retry in load.retried[:5]:
        print(f"  retried: {retry[:300]}")
    for name, lines in problems.items():
        for line in lines[:5]:
            print(f"  {name}: {line[:300]}")
    print(f"logs in {logs}")
    return 0 if all(ok for _name, _detail, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
