"""The tenancy building blocks every company-owned model uses.

A row that belongs to a company carries `company`; every read that a request makes goes
through `Model.objects.for_company(company)`. `tests/test_tenant_scope_lint.py` fails the
build when code queries a tenant model any other way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from accounts.models import Company


class TenantQuerySet(models.QuerySet):
    def for_company(self, company: Company | None) -> TenantQuerySet:
        """Rows of `company`; no rows at all for None (never "every company")."""
        if company is None:
            return self.none()
        return self.filter(company=company)


TenantManager = models.Manager.from_queryset(TenantQuerySet)


class TenantModel(models.Model):
    """Abstract base: a row owned by one company.

    Subclasses should start their unique constraints and indexes with `company`, so that
    every lookup is tenant-local and the tables can later be sharded by company.
    """

    company = models.ForeignKey(
        "accounts.Company",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("company"),
    )

    objects = TenantManager()

    class Meta:
        abstract = True


def is_tenant_model(model: type[models.Model]) -> bool:
    return any(field.name == "company" and field.is_relation for field in model._meta.fields)
