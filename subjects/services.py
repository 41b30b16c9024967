"""Writes on departments (subjects and photos follow with their own issue)."""

from django.db import transaction

from accounts.models import Company, User
from accounts.services import audit_record
from kangaroo import errors
from kangaroo.errors import KangarooError
from subjects.models import Department


def _check_department_name(*, company: Company, name: str, exclude_pk=None) -> str:
    name = name.strip()
    taken = Department.objects.for_company(company).filter(name__iexact=name).exclude(pk=exclude_pk)
    if taken.exists():
        raise KangarooError(errors.DEPARTMENT_NAME_TAKEN, fields={"name": [str(errors.DEPARTMENT_NAME_TAKEN.message)]})
    return name


@transaction.atomic
def department_create(*, company: Company, actor: User | None, name: str) -> Department:
    name = _check_department_name(company=company, name=name)
    department = Department.objects.create(company=company, name=name)
    audit_record(company=company, actor=actor, action="department.create", obj=department)
    return department


@transaction.atomic
def department_update(*, company: Company, actor: User | None, department: Department, name: str) -> Department:
    department = Department.objects.for_company(company).select_for_update().get(pk=department.pk)
    name = _check_department_name(company=company, name=name, exclude_pk=department.pk)
    if name != department.name:
        changes = {"name": [department.name, name]}
        department.name = name
        department.save(update_fields=["name"])
        audit_record(company=company, actor=actor, action="department.update", obj=department, changes=changes)
    return department


@transaction.atomic
def department_delete(*, company: Company, actor: User | None, department: Department) -> None:
    department = Department.objects.for_company(company).get(pk=department.pk)
    audit_record(company=company, actor=actor, action="department.delete", obj=department)
    department.delete()
