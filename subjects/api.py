from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets

from kangaroo.api.viewsets import TenantViewSet
from subjects import services
from subjects.models import Department


class DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name", "created_at"]
        read_only_fields = ["id", "created_at"]


@extend_schema(tags=["departments"])
class DepartmentViewSet(viewsets.ModelViewSet, TenantViewSet):
    model = Department
    serializer_class = DepartmentSerializer
    search_fields = ["name"]

    def scope(self, queryset):
        return queryset.order_by("name")

    def perform_create(self, serializer):
        serializer.instance = services.department_create(
            company=self.company, actor=self.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.department_update(
            company=self.company,
            actor=self.actor,
            department=serializer.instance,
            name=serializer.validated_data.get("name", serializer.instance.name),
        )

    def perform_destroy(self, instance):
        services.department_delete(company=self.company, actor=self.actor, department=instance)
