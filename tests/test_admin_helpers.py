"""The one way every admin shows a service's coded error on a form, and adopts a row a
service saved."""

import pytest
from django import forms

from kangaroo import errors
from kangaroo.admin import add_service_error, adopt
from kangaroo.errors import KangarooError
from subjects.models import Department
from tests.factories import DepartmentFactory


class NameForm(forms.Form):
    name = forms.CharField()
    box = forms.CharField(required=False)


def bound_form() -> NameForm:
    form = NameForm({"name": "x"})
    assert form.is_valid()
    return form


def test_a_field_error_lands_on_the_field_it_names_with_its_code():
    form = bound_form()
    add_service_error(form, KangarooError(errors.DEPARTMENT_NAME_TAKEN, fields={"name": ["Taken."]}))
    assert form.errors == {"name": ["Taken."]}
    assert form.errors.as_data()["name"][0].code == "department_name_taken"


def test_a_field_the_form_lacks_falls_back_to_the_given_field_or_the_whole_form():
    form = bound_form()
    add_service_error(form, KangarooError(errors.BOX_SCREEN_LIMIT, fields={"screens": ["Full."]}), "box")
    assert form.errors == {"box": ["Full."]}
    form = bound_form()
    add_service_error(form, KangarooError(errors.BOX_SCREEN_LIMIT, fields={"screens": ["Full."]}))
    assert form.non_field_errors() == ["Full."]


def test_an_error_without_fields_shows_its_message():
    form = bound_form()
    add_service_error(form, KangarooError(errors.LAST_OWNER))
    assert form.non_field_errors() == [str(errors.LAST_OWNER.message)]
    form = bound_form()
    add_service_error(form, KangarooError(errors.LAST_OWNER), "name")
    assert form.errors["name"] == [str(errors.LAST_OWNER.message)]


@pytest.mark.django_db
def test_adopt_makes_the_unsaved_object_the_saved_row(tenant_a):
    saved = DepartmentFactory(company=tenant_a.company, name="Sales")
    obj = Department(company=tenant_a.company, name="Sales")
    adopt(obj, saved)
    assert obj.pk == saved.pk
    assert not obj._state.adding
    assert obj._state.db == "default"


@pytest.mark.django_db
def test_a_relation_filter_lists_only_the_companys_rows_the_relation_allows(tenants, rf):
    """Every relation filter of a tenant admin applies the relation's `limit_choices_to`, as
    its form does: a host filter over `Subject.host` lists employees, never a visitor or VIP."""
    from django.contrib import admin as django_admin

    from kangaroo.admin import TenantRelatedFieldListFilter
    from subjects.models import Subject, SubjectType
    from tests.factories import SubjectFactory

    a, b = tenants
    employee = SubjectFactory(company=a.company, subject_type=SubjectType.EMPLOYEE)
    SubjectFactory(company=a.company, subject_type=SubjectType.VISITOR)
    SubjectFactory(company=a.company, subject_type=SubjectType.VIP)
    SubjectFactory(company=b.company, subject_type=SubjectType.EMPLOYEE)
    request = rf.get("/")
    request.user = a.admin
    model_admin = django_admin.site._registry[Subject]
    host_filter = TenantRelatedFieldListFilter.__new__(TenantRelatedFieldListFilter)

    choices = host_filter.field_choices(Subject._meta.get_field("host"), request, model_admin)

    assert [pk for pk, _label in choices] == [employee.pk]
    # A relation without a rule of its own lists every row of the company.
    department = host_filter.field_choices(Subject._meta.get_field("department"), request, model_admin)
    assert {pk for pk, _label in department} == set(
        Department.objects.for_company(a.company).values_list("pk", flat=True)
    )
