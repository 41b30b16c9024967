from django.contrib import admin

from kangaroo.admin import TenantAdmin
from subjects import services
from subjects.models import Department


@admin.register(Department)
class DepartmentAdmin(TenantAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        company = obj.company
        if change:
            services.department_update(company=company, actor=request.user, department=obj, name=obj.name)
        else:
            saved = services.department_create(company=company, actor=request.user, name=obj.name)
            obj.pk = saved.pk
            obj._state.adding = False

    def delete_model(self, request, obj):
        services.department_delete(company=obj.company, actor=request.user, department=obj)
