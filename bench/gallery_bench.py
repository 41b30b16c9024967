"""Gallery sync at scale: a box's full sync of a 100,000-face gallery over loopback HTTP,
next to reading the same rows with one plain query and serialising them, in the same run.

    .venv/bin/python bench/gallery_bench.py                 # 100,000 faces (seeded once, about a minute)
    .venv/bin/python bench/gallery_bench.py --faces 2000    # a quick smoke run

Runs on its own PostgreSQL database (BENCH_GALLERY_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/kangaroo_bench_gallery), created and migrated if
missing. The seed (one company per gallery size, each subject with one enrolled face: a
random 128-d float32 embedding) is written once with bulk_create, and its change log with
the product's own `gallery_append` (one row per subject created, one per face enrolled, as
an import followed by enrolment leaves it). The server is the real ASGI app served like
production (`uvicorn kangaroo.asgi:application`, one worker, DEBUG off) on a free
127.0.0.1 port; this process is the box: it pulls `after=0` with the largest page and
gzip, follows `next` while `more`, parses each page and decodes every embedding into a
float32 array, as an agent must. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_GALLERY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kangaroo_bench_gallery")
# Never the developer's own database, whatever DATABASE_URL says.
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kangaroo.settings")
os.environ.pop("REDIS_URL", None)  # jobs inline: the seed queues none anyway

import logging  # noqa: E402

import django  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
from isal import igzip  # noqa: E402

from bench.database import ensure_database  # noqa: E402
from bench.report import ABSOLUTE, LOWER, record  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise

MODEL = "dlib-resnet-v1"
DIM = 128
GOAL_SECONDS = 10.0
GOAL_RATIO = 2.0


ensure_database(DATABASE_URL)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from accounts.models import Company  # noqa: E402
from devices import services as device_services  # noqa: E402
from devices.models import Box  # noqa: E402
from subjects.gallery import PHOTO_ENROLLED, SUBJECT_CREATED, gallery_append  # noqa: E402
from subjects.models import Photo, PhotoStatus, Subject  # noqa: E402
from subjects.selectors import gallery_sequence  # noqa: E402
from tests.served import Server  # noqa: E402

FEED_LIMIT = 5000


def seed(faces: int) -> Company:
    slug = f"gallery-{faces}"
    company, _ = Company.objects.get_or_create(slug=slug, defaults={"name": f"Gallery {faces}"})
    have = Photo.objects.for_company(company).filter(status=PhotoStatus.OK).count()
    if have == faces:
        return company
    if have:
        raise SystemExit(f"company {slug} holds {have} faces, not {faces}: drop the database and run again")
    print(f"seeding {faces:,} subjects with one face each…", flush=True)
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    batch = 5000
    for first in range(0, faces, batch):
        count = min(batch, faces - first)
        with transaction.atomic():
            subjects = Subject.objects.bulk_create(  # tenant: the bench company's own rows
                [
                    Subject(company=company, name=f"Person {first + i}", job_number=f"E{first + i:06d}")
                    for i in range(count)
                ]
            )
            vectors = rng.random((count, DIM), dtype=np.float32).astype("<f4")
            Photo.objects.bulk_create(  # tenant: the bench company's own rows
                [
                    Photo(
                        company=company,
                        subject=subject,
                        image=f"bench/{subject.pk}.jpg",
                        thumbnail=f"bench/{subject.pk}-t.jpg",
                        width=640,
                        height=640,
                        sha256="0" * 64,
                        status=PhotoStatus.OK,
                        embedding=vectors[i].tobytes(),
                        embedding_model=MODEL,
                    )
                    for i, subject in enumerate(subjects)
                ]
            )
            ids = [subject.pk for subject in subjects]
            gallery_append(company_id=company.pk, subject_ids=ids, reason=SUBJECT_CREATED)
            gallery_append(company_id=company.pk, subject_ids=ids, reason=PHOTO_ENROLLED)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
    return company


def box_key(company: Company) -> str:
    """A fresh key for the bench company's box (keys are stored hashed: issue one per run)."""
    box = Box.objects.for_company(company).first()
    if box is None:
        box, key = device_services.device_create(company=company, actor=None, kind="box", name="Bench box")
        return key
    return device_services.device_key_rotate(company=company, actor=None, device=box)[1]


def start_server() -> Server:
    """The app under uvicorn, one worker, DEBUG off (tests/served.py), on the bench's database."""
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
    }
    return Server(env, ready_path="/api/v1/device/gallery")


def full_sync(base: str, key: str, *, gzip: bool = True) -> dict:
    """What a box does from nothing: every page from 0, each embedding decoded. The next
    page is asked for as soon as a page's headers name its cursor (`Gallery-Next`), so the
    portal builds it while the box parses the last one."""
    headers = {"Authorization": f"Device {key}", "Accept-Encoding": "gzip" if gzip else "identity"}
    gallery: dict[int, list[np.ndarray]] = {}
    pages, wire = 0, 0
    started = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client, ThreadPoolExecutor(1) as pool:

        def fetch(after: int) -> tuple[httpx.Response, bytes]:
            # The body as sent, inflated here with ISA-L (as the box agent does), about
            # three times faster than the zlib httpx would use.
            with client.stream(
                "GET", "/api/v1/device/gallery", params={"after": after, "limit": FEED_LIMIT}
            ) as response:
                response.raise_for_status()
                raw = b"".join(response.iter_raw())
            gzipped = response.headers.get("Content-Encoding") == "gzip"
            return response, igzip.decompress(raw) if gzipped else raw

        pending = pool.submit(fetch, 0)
        while True:
            response, content = pending.result()
            more = response.headers["Gallery-More"] == "true"
            if more:
                pending = pool.submit(fetch, int(response.headers["Gallery-Next"]))
            wire += int(response.headers["Content-Length"])
            page = json.loads(content)
            for change in page["changes"]:
                if change["op"] == "upsert":
                    gallery[change["id"]] = [
                        np.frombuffer(base64.b64decode(face["embedding"]), dtype="<f4") for face in change["faces"]
                    ]
                else:
                    gallery.pop(change["id"], None)
            pages += 1
            if not more:
                break
        seconds = time.perf_counter() - started
        cursor = page["next"]
        # A box polling an unchanged gallery: the ETag of its last poll answers 304.
        etag = fetch(cursor)[0].headers["ETag"]
        polled = time.perf_counter()
        unchanged = client.get(
            "/api/v1/device/gallery", params={"after": cursor, "limit": FEED_LIMIT}, headers={"If-None-Match": etag}
        )
        poll_seconds = time.perf_counter() - polled
    faces = sum(len(vectors) for vectors in gallery.values())
    return {
        "seconds": seconds,
        "pages": pages,
        "wire": wire,
        "faces": faces,
        "cursor": cursor,
        "poll": (unchanged.status_code, poll_seconds),
    }


BASELINE_QUERY = """
    SELECT s.id, s.name, s.subject_type, s.job_number, s.visit_start, s.visit_end,
           p.id, p.embedding_model, p.embedding
    FROM subjects_subject s JOIN subjects_photo p ON p.subject_id = s.id
    WHERE s.company_id = %s AND s.archived = false AND p.status = 'ok' AND p.embedding IS NOT NULL
    ORDER BY s.id, p.id
"""


def plain_query(company: Company) -> tuple[float, int]:
    """The baseline: the same rows in one plain query, serialised to the same JSON."""

    def when(value):
        return value.isoformat() if value is not None else None

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_QUERY, [company.pk])
        rows = cursor.fetchall()
    subjects: dict[int, dict] = {}
    for sid, name, kind, job, start, end, photo, model, embedding in rows:
        subject = subjects.get(sid)
        if subject is None:
            subject = subjects[sid] = {
                "op": "upsert",
                "id": sid,
                "name": name,
                "type": kind,
                "job_number": job,
                "visit_start": when(start),
                "visit_end": when(end),
                "faces": [],
            }
        subject["faces"].append(
            {"photo_id": photo, "model": model, "embedding": base64.b64encode(bytes(embedding)).decode()}
        )
    body = json.dumps({"changes": list(subjects.values())}, ensure_ascii=False, separators=(",", ":")).encode()
    return time.perf_counter() - started, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=100_000, help="gallery size (default 100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side; the median is reported")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    company = seed(args.faces)
    key = box_key(company)
    connection.close()
    server = start_server()
    try:
        syncs, plain, baselines = [], [], []
        for _ in range(args.rounds):
            syncs.append(full_sync(server.base, key))
            plain.append(full_sync(server.base, key, gzip=False))
            baselines.append(plain_query(company))
    finally:
        server.stop()
    sync = syncs[-1]
    assert sync["faces"] == args.faces, f"synced {sync['faces']} faces of {args.faces}"
    assert sync["cursor"] == gallery_sequence(company.pk)
    feed = statistics.median(s["seconds"] for s in syncs)
    base = statistics.median(seconds for seconds, _ in baselines)
    ratio = feed / base
    size = baselines[-1][1]
    print()
    print(f"full sync of {args.faces:,} faces, median of {args.rounds} (page of {FEED_LIMIT:,}, gzip)")
    print(f"{'item':<52}{'seconds':>9}{'ratio':>8}  goal")
    print(
        f"{'feed: after=0 to the end, over HTTP, decoded':<52}{feed:>9.2f}{ratio:>8.2f}"
        f"  <= {GOAL_SECONDS:.0f} s: {'pass' if feed <= GOAL_SECONDS else 'FAIL'};"
        f" <= {GOAL_RATIO:.0f} x: {'pass' if ratio <= GOAL_RATIO else 'FAIL'}"
    )
    name = f"full sync of {args.faces:,} faces, gzip"
    baseline = "one plain query + JSON"
    record(name, feed, "s", better=LOWER, goal=GOAL_RATIO, baseline=baseline, baseline_value=base)
    record(name, feed, "s", better=LOWER, goal=GOAL_SECONDS, goal_on=ABSOLUTE, baseline=baseline, baseline_value=base)
    unzipped = statistics.median(s["seconds"] for s in plain)
    record(f"full sync of {args.faces:,} faces, no gzip", unzipped, "s", better=LOWER, baseline=baseline,
           baseline_value=base)  # fmt: skip
    print(f"{'feed, the same without gzip':<52}{unzipped:>9.2f}{unzipped / base:>8.2f}")
    print(f"{'baseline: one plain query + JSON, in process':<52}{base:>9.2f}{1:>8.2f}")
    print(
        f"pages {sync['pages']}, on the wire {sync['wire'] / 1e6:.1f} MB gzipped"
        f" ({size / 1e6:.1f} MB as plain JSON); an unchanged poll answers"
        f" {sync['poll'][0]} in {sync['poll'][1] * 1000:.1f} ms"
    )
    print(
        "runs (s):",
        " ".join(f"{s['seconds']:.2f}" for s in syncs),
        "| baseline:",
        " ".join(f"{b:.2f}" for b, _ in baselines),
    )


if __name__ == "__main__":
    main()
