"""Recognition end to end: `POST /api/v1/device/recognize` with a pad's key against a
100,000-face gallery in one company, next to the bare dlib calls and the index search on the
same image, measured in the same run.

    .venv/bin/python bench/recognize_bench.py                      # 100,000 faces, 40 requests
    .venv/bin/python bench/recognize_bench.py --faces 2000 --requests 8   # a smoke run

Runs on its own PostgreSQL database (BENCH_RECOGNIZE_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/kangaroo_bench_recognize), created and migrated if
missing. The gallery of company `bench-faces` is `--faces` subjects with one usable photo
each, whose embeddings are random (written in bulk, once, and reused while the count stays
the same), plus one real subject enrolled through the services with scikit-image's
astronaut portrait. The pad's snapshot is that portrait at 80 %, JPEG quality 40.

The server is the real ASGI app, `uvicorn kangaroo.asgi:application` (one worker, jobs
inline, in-memory channel layer: no Redis), as a subprocess on a free 127.0.0.1 port. Its
first request builds the company's index; warm-up requests are not counted. Each measured
request (a new uid each, so each one recognises and stores an event) alternates with one
run of the baseline in this process, so both see the same load:

- baseline: decode the same JPEG bytes with Pillow, dlib's HOG detector (same upsampling),
  5-point landmarks, the ResNet descriptor, and `FaceIndex.identify` on an index of the same
  rows (built here from the same database rows);
- the index search alone (one `identify` at the gallery's size), and the index's memory.

The goal: p50 of the request ≤ 1.3 × p50 of the baseline. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_RECOGNIZE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kangaroo_bench_recognize"
)
SLUG = "bench-faces"
GOAL_RATIO = 1.3
GOAL_IDENTIFY_MS = 10.0  # the index search alone, as the face engine's goal at 100,000 rows
BATCH = 5_000

os.environ["DATABASE_URL"] = DATABASE_URL  # never the developer's own database
os.environ["REDIS_URL"] = ""  # jobs inline, in-memory channel layer
os.environ["DJANGO_SETTINGS_MODULE"] = "kangaroo.settings"
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

import django  # noqa: E402

from bench.database import ensure_database  # noqa: E402
from bench.report import ABSOLUTE, LOWER, record  # noqa: E402

ensure_database(DATABASE_URL)
django.setup()

import dlib  # noqa: E402
import face_recognition_models  # noqa: E402
import numpy as np  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from PIL import Image  # noqa: E402

import faces  # noqa: E402
from accounts.models import Company  # noqa: E402
from accounts.services import retention_policy_current  # noqa: E402
from devices import services as device_services  # noqa: E402
from devices.models import Pad  # noqa: E402
from events.models import Event  # noqa: E402
from subjects import face_index  # noqa: E402
from subjects import services as subject_services  # noqa: E402
from subjects.models import Photo, PhotoStatus, Subject  # noqa: E402
from tests.served import Server  # noqa: E402


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def snapshot() -> bytes:
    image = astronaut()
    image = image.resize((round(image.width * 0.8), round(image.height * 0.8)), Image.Resampling.BICUBIC)
    return jpeg(image, 40)


# --- seed ---------------------------------------------------------------------------------------
def _usable(company: Company):
    return Photo.objects.for_company(company).filter(status=PhotoStatus.OK)


def seed(count: int) -> tuple[Company, int, str]:
    """The company with `count` synthetic faces and the real one; (company, real subject id, pad key)."""
    call_command("migrate", verbosity=0)
    company = Company.objects.filter(slug=SLUG).first()
    if company is None:
        company = Company.objects.create(name="Bench faces", slug=SLUG, time_zone="Asia/Taipei")
    synthetic = _usable(company).exclude(subject__job_number="REAL-1")
    if synthetic.count() != count:
        started = time.perf_counter()
        Subject.objects.for_company(company).delete()  # their photos go with them (no files: seeded rows)
        rng = np.random.default_rng(2026)
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            with transaction.atomic():
                people = Subject.objects.bulk_create(  # tenant: each subject built with company
                    [
                        Subject(company=company, name=f"Person {n}", job_number=f"J{n:06d}")
                        for n in range(start, start + size)
                    ]
                )
                # About as far from each other as unrelated faces are (norm ~1, distances ~1.4).
                vectors = rng.normal(scale=1 / np.sqrt(faces.EMBEDDING_DIM), size=(size, faces.EMBEDDING_DIM))
                Photo.objects.bulk_create(  # tenant: each photo built with company
                    [
                        Photo(
                            company=company,
                            subject=person,
                            image=f"photos/bench/{person.pk}.jpg",
                            thumbnail=f"photos/bench/{person.pk}-t.jpg",
                            width=480,
                            height=640,
                            sha256=f"{person.pk:064d}",
                            status=PhotoStatus.OK,
                            embedding=faces.embedding_to_bytes(vector),
                            embedding_model=faces.MODEL,
                        )
                        for person, vector in zip(people, vectors, strict=True)
                    ]
                )
        print(f"seeded {count} synthetic faces in {time.perf_counter() - started:.0f} s")
    real = Subject.objects.for_company(company).filter(job_number="REAL-1").first()
    if real is None:
        upload = SimpleUploadedFile("eileen.jpg", jpeg(astronaut(), 90), content_type="image/jpeg")
        consent = subject_services.ConsentGiven(
            method="paper", policy_version=retention_policy_current(company=company).version
        )
        real = subject_services.subject_create(
            company=company, actor=None, name="Eileen Collins", job_number="REAL-1", photos=[upload], consent=consent
        )  # enrolled by the job that runs inline after commit
    assert real.photos.get().status == PhotoStatus.OK, "the real portrait did not enrol"
    pad = Pad.objects.for_company(company).filter(name="Bench pad").first()
    if pad is None:
        pad, key = device_services.pad_create(company=company, actor=None, name="Bench pad")
    else:
        pad, key = device_services.device_key_rotate(company=company, actor=None, device=pad)
    Event.objects.for_company(company).delete()  # seeded events have no snapshot files to leave behind
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return company, real.pk, key


# --- the server ---------------------------------------------------------------------------------
def start_server() -> Server:
    """The app under uvicorn, one worker, DEBUG off (tests/served.py)."""
    env = {**os.environ, "DEBUG": "false", "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
    return Server(env, ready_path="/api/v1/device/recognize")


def recognize(server: Server, key: str, body: bytes) -> tuple[float, dict]:
    request = urllib.request.Request(
        f"{server.base}/api/v1/device/recognize",
        data=body,
        headers={"Authorization": f"Device {key}", "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:  # only the local bench server
        answer = json.loads(response.read())
    return time.perf_counter() - started, answer


# --- the baseline -------------------------------------------------------------------------------
class Bare:
    """The dlib calls the endpoint cannot do without, and the index search, on the same bytes."""

    def __init__(self, company: Company):
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
        self.descriptor = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
        rows = (
            Photo.objects.for_company(company)
            .filter(status=PhotoStatus.OK, embedding_model=faces.MODEL)
            .exclude(embedding=None)
            .values_list("pk", "subject_id", "embedding")
        )
        self.index = faces.FaceIndex.from_rows(rows.iterator(chunk_size=10_000))
        self.threshold = company.face_match_threshold
        self.upsample = face_index.face_rules().upsample

    def run(self, data: bytes) -> tuple[float, faces.Match | None]:
        started = time.perf_counter()
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        rects = self.detector(image, self.upsample)
        shape = self.landmarks(image, rects[0])
        embedding = np.asarray(self.descriptor.compute_face_descriptor(image, shape), dtype=np.float32)
        match = self.index.identify(embedding, self.threshold)
        return time.perf_counter() - started, match


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=100_000, help="synthetic faces in the gallery (default 100,000)")
    parser.add_argument("--requests", type=int, default=40, help="measured requests (default 40)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    company, real_id, key = seed(args.faces)
    data = snapshot()
    bare = Bare(company)
    print(f"gallery: {len(bare.index):,} faces, index {bare.index.nbytes / 2**20:.1f} MiB in memory")

    server = start_server()
    try:
        for n in range(args.warmup):
            body = json.dumps({"image": base64.b64encode(data).decode(), "uid": f"warm-{time.time_ns()}-{n}"}).encode()
            recognize(server, key, body)
            bare.run(data)
        endpoint, baseline = [], []
        for n in range(args.requests):
            body = json.dumps({"image": base64.b64encode(data).decode(), "uid": f"bench-{time.time_ns()}-{n}"}).encode()
            seconds, answer = recognize(server, key, body)
            assert answer["kind"] == "recognized" and answer["subject"]["id"] == real_id, answer
            endpoint.append(seconds)
            seconds, match = bare.run(data)
            assert match is not None and match.subject_id == real_id
            baseline.append(seconds)
    finally:
        server.stop()

    query = faces.snapshot_face(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))).embedding
    searches = []
    for _ in range(50):
        started = time.perf_counter()
        bare.index.identify(query, bare.threshold)
        searches.append(time.perf_counter() - started)

    p50, p50_base = statistics.median(endpoint), statistics.median(baseline)
    ratio = p50 / p50_base
    print()
    print(f"| item ({len(bare.index):,} faces, {args.requests} requests) | p50 ms | p90 ms | ratio | goal | result |")
    print("|---|---|---|---|---|---|")
    print(
        f"| POST /api/v1/device/recognize | {p50 * 1000:.1f} | {percentile(endpoint, 90) * 1000:.1f} | "
        f"{ratio:.2f} | ≤ {GOAL_RATIO} × baseline | {'pass' if ratio <= GOAL_RATIO else 'FAIL'} |"
    )
    print(
        f"| baseline: decode + dlib detect, landmarks, descriptor + identify | {p50_base * 1000:.1f} | "
        f"{percentile(baseline, 90) * 1000:.1f} | 1.00 | | |"
    )
    print(
        f"| index identify alone | {statistics.median(searches) * 1000:.2f} | "
        f"{percentile(searches, 90) * 1000:.2f} | | | |"
    )
    print(f"| index memory | {bare.index.nbytes / 2**20:.1f} MiB | | | | |")
    record(f"POST /device/recognize p50, {len(bare.index):,} faces", p50 * 1000, "ms", better=LOWER, goal=GOAL_RATIO,
           baseline="decode + dlib + identify", baseline_value=p50_base * 1000)  # fmt: skip
    record(f"index identify alone, {len(bare.index):,} faces", statistics.median(searches) * 1000, "ms",
           better=LOWER, goal=GOAL_IDENTIFY_MS, goal_on=ABSOLUTE)  # fmt: skip


if __name__ == "__main__":
    main()
