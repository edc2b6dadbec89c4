"""Request and response shapes of the platform tenants API. Never a password or the
credentials of a database URL."""

from __future__ import annotations

from pathlib import Path

from rest_framework import serializers

from config.api import StrictSerializer
from tenants.models import Tenant


class TenantSerializer(serializers.ModelSerializer):
    domains = serializers.SerializerMethodField()
    database = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["slug", "name", "status", "domains", "database", "created_at"]

    def get_domains(self, tenant) -> list[str]:
        return [domain.domain for domain in tenant.domains.all()]

    def get_database(self, tenant) -> str:
        # SQLite tenants store a file path; its name is enough and shows no server layout.
        name = tenant.database_name or ""
        return Path(name).name if "/" in name or "\\" in name else name


class AdminInputSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class TenantCreateSerializer(StrictSerializer):
    slug = serializers.CharField(max_length=63)
    name = serializers.CharField(max_length=200)
    domains = serializers.ListField(child=serializers.CharField(max_length=253), default=list)
    database_url = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )
    admin = AdminInputSerializer(required=False, allow_null=True, default=None)

    def validate_slug(self, value: str) -> str:
        existing = Tenant.objects.filter(slug=value).first()
        # A failed or half-provisioned tenant may be provisioned again (idempotent retry).
        if existing is not None and existing.status not in (
            Tenant.Status.FAILED,
            Tenant.Status.PROVISIONING,
        ):
            raise serializers.ValidationError("A tenant with this slug already exists.")
        return value


class TenantUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    status = serializers.ChoiceField(
        choices=[Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED], required=False
    )
    domains = serializers.ListField(child=serializers.CharField(max_length=253), required=False)


# --- documentation only (the views build these bodies from selectors) --------------------
class TenantPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TenantSerializer(many=True)


class TenantHealthSerializer(serializers.Serializer):
    slug = serializers.CharField()
    tenant_status = serializers.ChoiceField(choices=Tenant.Status.choices)
    database = serializers.ChoiceField(choices=["ok", "unreachable"])
    migrations = serializers.ChoiceField(choices=["ok", "pending", "unknown"])
    pending_migrations = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=["ok", "unhealthy"])
