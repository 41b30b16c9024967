"""Creates the demo companies, their users, people, devices and a morning of arrivals,
once; safe to run again.

`make run` calls it so a fresh install has someone to log in as and something to look at.
A second company with its own data is seeded too, so the demo shows that one company never
sees the other.

The employees have e-mail addresses on the company's demo domain (under example.com, which
reaches nobody), so a visit's host is told of an invitation and an arrival. Two of them get a
real face photo, enrolled like any upload, when the portraits the face engine's tests use are
installed (scikit-image's astronaut and matplotlib's Grace Hopper, from requirements/dev.txt:
nothing is downloaded); a runtime-only install skips them and says so.
"""

import io
import os
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.models import Company, Role, User
from accounts.services import retention_policy_current
from devices import services as device_services
from devices.models import Box
from events.services import event_ingest
from kangaroo.images import normalise_photo
from subjects.models import ConsentMethod, Department
from subjects.services import ConsentGiven, department_create, photos_add_bulk, subject_create

DEMO_PASSWORD = "kangaroo-demo-2026"
DEMO = [
    ("Demo Company", "demo", "Asia/Taipei", "demo-owner", ["Engineering", "Sales", "Front desk"]),
    ("Other Company", "other", "Europe/London", "other-owner", ["Research", "Operations"]),
]
# Where the demo company's visitors come (their invitation shows it).
DEMO_ADDRESS = "No. 7, Section 5, Xinyi Road, Taipei 110, 35th floor\n台北市信義區信義路五段 7 號 35 樓"
# The companies' demo mail domains: reserved for examples (RFC 2606), so no mail reaches anyone.
DEMO_MAIL_DOMAIN = "{slug}.example.com"


def demo_portraits() -> dict[str, bytes]:
    """Real portraits by the demo person they are enrolled for, as JPEG bytes; empty when
    the packages that ship them are not installed (`make run` installs the runtime only)."""
    try:
        from matplotlib.cbook import get_sample_data
        from PIL import Image
        from skimage import data
    except ImportError:
        return {}
    with get_sample_data("grace_hopper.jpg") as file:
        hopper = Image.open(file).convert("RGB")
    portraits = {}
    for name, image in (("陳美玲", Image.fromarray(data.astronaut())), ("Alex Morgan", hopper)):
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)
        portraits[name] = out.getvalue()
    return portraits


class Command(BaseCommand):
    help = "Create the demo companies and owners (idempotent) and print the login."

    @transaction.atomic
    def handle(self, *args, **options):
        for name, slug, zone, username, departments in DEMO:
            company = Company.objects.filter(slug=slug).first()
            if company is None:
                company = services.company_create(name=name, slug=slug, time_zone=zone)
                if slug == "demo":
                    services.company_update(company=company, actor=None, address=DEMO_ADDRESS)
            if not User.objects.for_company(company).filter(username=username).exists():
                services.user_create(
                    company=company,
                    actor=None,
                    username=username,
                    password=DEMO_PASSWORD,
                    role=Role.OWNER,
                    email=f"{username}@example.com",
                )
            existing = set(Department.objects.for_company(company).values_list("name", flat=True))
            for department in departments:
                if department not in existing:
                    department_create(company=company, actor=None, name=department)
            if not Box.objects.for_company(company).exists():
                self.seed_door(company, departments[0])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo login: 'demo-owner@demo', password '{DEMO_PASSWORD}' (user demo-owner of Demo Company)"
            )
        )

    def seed_door(self, company, department_name):
        """People, a box with an entrance and an exit camera, a TV box, and today's arrivals."""
        department = Department.objects.for_company(company).get(name=department_name)
        domain = DEMO_MAIL_DOMAIN.format(slug=company.slug)
        people = [
            ("陳美玲", "employee", "E1001", f"meiling.chen@{domain}"),
            ("林志明", "employee", "E1002", f"zhiming.lin@{domain}"),
            ("Alex Morgan", "employee", "E1003", f"alex.morgan@{domain}"),
            ("王大偉", "vip", "", ""),
            ("Sam Lee", "visitor", "", ""),
        ]
        now = timezone.now()
        subjects = []
        # Everyone but the visitor signed the paper form (so the demo shows both: photos can
        # be added for them, not for the visitor until their consent is recorded).
        paper = ConsentGiven(
            method=ConsentMethod.PAPER, policy_version=retention_policy_current(company=company).version
        )
        for name, kind, job_number, email in people:
            extra = (
                {"visit_start": now - timedelta(hours=2), "visit_end": now + timedelta(hours=6)}
                if kind == "visitor"
                else {}
            )
            subjects.append(
                subject_create(company=company, actor=None, name=name, subject_type=kind, job_number=job_number,
                               email=email, department=department if kind == "employee" else None,
                               consent=paper if kind != "visitor" else None, **extra)
            )  # fmt: skip
        self.seed_photos(company, subjects)
        box, box_key = device_services.box_create(company=company, actor=None, name="Lobby box", max_screens=4)
        entrance, _ = device_services.screen_create(
            company=company, actor=None, name="Main entrance", camera_url="rtsp://camera:demo@192.0.2.10/in",
            direction="in", box=box, location="Lobby",
        )  # fmt: skip
        device_services.screen_create(
            company=company, actor=None, name="Main exit", camera_url="rtsp://camera:demo@192.0.2.11/out",
            direction="out", box=box, location="Lobby",
        )  # fmt: skip
        _, tv_key = device_services.tvbox_create(company=company, actor=None, name="Lobby TV", screens=[entrance])
        arrivals = [
            {"uid": f"demo-{n}", "subject_id": subject.pk, "screen_id": entrance.pk, "confidence": 0.95,
             "happened_at": (now - timedelta(minutes=90 - 15 * n)).isoformat()}
            for n, subject in enumerate(subjects)
        ]  # fmt: skip
        arrivals.append({"uid": "demo-stranger", "screen_id": entrance.pk, "happened_at": now.isoformat()})
        event_ingest(device=box, items=arrivals, now=now)
        if company.slug == "demo":
            self.stdout.write(f"Demo box key (post events with it): {box_key}")
            port = os.environ.get("PORT", "8000")
            self.stdout.write(f"Demo TV page: http://127.0.0.1:{port}/tv/#key={tv_key}")

    def seed_photos(self, company, subjects):
        """Face photos for the demo people who have a portrait; enrolled by the usual job
        once the demo commits (inline under `make run`, by a worker when Redis is set)."""
        portraits = demo_portraits()
        if not portraits:
            self.stdout.write("Demo face photos skipped: install requirements/dev.txt for the sample portraits.")
            return
        by_name = {subject.name: subject for subject in subjects}
        photos = [(by_name[name].pk, normalise_photo(jpeg)) for name, jpeg in portraits.items()]
        photos_add_bulk(company=company, actor=None, photos=photos)
