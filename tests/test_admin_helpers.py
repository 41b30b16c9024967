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
