"""Creates the demo companies and their users, once; safe to run again.

`make run` calls it so a fresh install has someone to log in as. A second company with
its own data is seeded too, so the demo shows that one company never sees the other.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services
from accounts.models import Company, Role, User
from subjects.models import Department
from subjects.services import department_create

DEMO_PASSWORD = "kangaroo-demo-2026"
DEMO = [
    ("Demo Company", "demo", "Asia/Taipei", "demo-owner", ["Engineering", "Sales", "Front desk"]),
    ("Other Company", "other", "Europe/London", "other-owner", ["Research", "Operations"]),
]


class Command(BaseCommand):
    help = "Create the demo companies and owners (idempotent) and print the login."

    @transaction.atomic
    def handle(self, *args, **options):
        for name, slug, zone, username, departments in DEMO:
            company = Company.objects.filter(slug=slug).first()
            if company is None:
                company = services.company_create(name=name, slug=slug, time_zone=zone)
            if not User.objects.filter(username=username).exists():  # tenant: global login names
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
        self.stdout.write(
            self.style.SUCCESS(f"Demo login: username 'demo-owner', password '{DEMO_PASSWORD}' (company: Demo Company)")
        )
