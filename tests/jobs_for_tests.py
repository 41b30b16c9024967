"""A job as real ones are written: takes ids, loads, calls a service."""

from accounts.models import Company
from subjects.services import department_create


def create_department_job(company_id: int, name: str) -> None:
    company = Company.objects.get(pk=company_id)
    department_create(company=company, actor=None, name=name)
