"""The base for every company-scoped API view set.

The view set reads rows only through `model.objects.for_company(...)` and gives the
company of the requester to every write, so a `company` sent by a client has no effect and
another company's id answers 404 exactly like a missing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Model, QuerySet
from rest_framework import viewsets

if TYPE_CHECKING:
    from accounts.models import Company, User


def request_company(request) -> Company | None:
    """The company a request acts for: the signed-in user's, or for a request made with a
    device key (`devices.authentication`), the device's: its principal carries it."""
    company = getattr(request, "company", None)
    if company is not None:
        return company
    user = getattr(request, "user", None)
    return getattr(user, "company", None)


class TenantViewSet(viewsets.GenericViewSet):
    """Set `model`; override `scope()` for select_related and default ordering.

    Writes go through services: subclasses implement `perform_create` / `perform_update` /
    `perform_destroy` with `self.company` and `self.actor`.
    """

    model: type[Model]

    @property
    def company(self) -> Company | None:
        return request_company(self.request)

    @property
    def actor(self) -> User | None:
        user = self.request.user
        return user if user.is_authenticated else None

    # Optional: a selector `(*, company) -> QuerySet` that reads the rows (with its joins and
    # annotations); without one, the model's rows of the company.
    selector = None

    def scope(self, queryset: QuerySet) -> QuerySet:
        return queryset

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return self.model.objects.none()
        if self.selector is not None:
            return self.scope(self.selector(company=self.company))
        return self.scope(self.model.objects.for_company(self.company))
