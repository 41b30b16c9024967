from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from kangaroo.tenancy import TenantModel


class Department(TenantModel):
    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "company",
                Lower("name"),
                name="department_name_unique_per_company",
                violation_error_code="department_name_taken",
                violation_error_message=_("A department with this name already exists."),
            )
        ]

    def __str__(self) -> str:
        return self.name
