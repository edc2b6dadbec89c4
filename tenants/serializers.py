"""Request and response shapes of the platform tenants API. Never a password or the
credentials of a database URL."""

from __future__ import annotations

from pathlib import Path

from rest_framework import serializers

from accounts.serializers import NewUserSerializer
from config.api import DocumentedCharField, StrictSerializer
from tenants.models import Tenant, TenantArchive, TenantMove
from tenants.validators import (
    HOST_MAX_LENGTH,
    HOST_PATTERN,
    SERVER_NAME_MAX_LENGTH,
    SERVER_NAME_PATTERN,
    SLUG_MAX_LENGTH,
    SLUG_PATTERN,
)


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


class AdminInputSerializer(NewUserSerializer):
    """The tenant's first admin: what a signup takes. The provisioning service checks the
    values together with the tenant's (one 400 names every problem)."""


# More host names than any tenant needs; keeps the uniqueness check one bounded query.
MAX_DOMAINS = 100


def _domain() -> DocumentedCharField:
    # Host names are normalised (lower-cased, port stripped) and then checked by the
    # service; the schema states the normalised form.
    return DocumentedCharField(max_length=HOST_MAX_LENGTH, schema_pattern=HOST_PATTERN)


class TenantCreateSerializer(StrictSerializer):
    slug = DocumentedCharField(max_length=SLUG_MAX_LENGTH, schema_pattern=SLUG_PATTERN.pattern)
    name = serializers.CharField(max_length=200)
    domains = serializers.ListField(child=_domain(), max_length=MAX_DOMAINS, default=list)
    database_url = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )
    # The registered database server to place it on; default: the accepting server with
    # the most room. Checked by the provisioning service (400 on `server`).
    server = DocumentedCharField(
        max_length=SERVER_NAME_MAX_LENGTH,
        schema_pattern=f"^$|{SERVER_NAME_PATTERN.pattern}",
        required=False,
        allow_blank=True,
        default="",
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
    domains = serializers.ListField(child=_domain(), max_length=MAX_DOMAINS, required=False)


class TenantArchiveSerializer(serializers.ModelSerializer):
    """A backup or export the product wrote: its file's name only (where the deployment
    keeps it is not the client's business), its digest, who asked for it."""

    file = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField()

    class Meta:
        model = TenantArchive
        fields = [
            "id", "kind", "file", "size_bytes", "sha256", "created_at", "created_by", "available",
        ]  # fmt: skip

    def get_file(self, archive) -> str:
        return Path(archive.path).name

    def get_available(self, archive) -> bool:
        """Whether it can still be downloaded: not purged, and the file is there."""
        return archive.deleted_at is None and Path(archive.path).is_file()


class TenantMoveInputSerializer(StrictSerializer):
    server = DocumentedCharField(
        max_length=SERVER_NAME_MAX_LENGTH, schema_pattern=SERVER_NAME_PATTERN.pattern
    )
    drop_source = serializers.BooleanField(required=False, default=False)


class TenantMoveSerializer(serializers.ModelSerializer):
    """A move's progress: servers by name (never a URL), its state and timings."""

    tenant = serializers.CharField(source="tenant.slug")
    source_server = serializers.CharField(source="source_server.name")
    target_server = serializers.CharField(source="target_server.name")

    class Meta:
        model = TenantMove
        fields = [
            "id", "tenant", "source_server", "target_server", "state", "drop_source",
            "started_at", "cutover_at", "switched_at", "ended_at", "started_by",
        ]  # fmt: skip


# --- documentation only (the views build these bodies from selectors) --------------------
class TenantPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TenantSerializer(many=True)


class TenantArchivePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TenantArchiveSerializer(many=True)


class TenantHealthSerializer(serializers.Serializer):
    slug = serializers.CharField()
    tenant_status = serializers.ChoiceField(choices=Tenant.Status.choices)
    database = serializers.ChoiceField(choices=["ok", "unreachable"])
    migrations = serializers.ChoiceField(choices=["ok", "pending", "unknown"])
    pending_migrations = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=["ok", "unhealthy"])
