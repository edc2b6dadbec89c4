"""The audit trail in the Django admin, read-only: the platform's events (main database),
or, chosen in the "database" filter, one tenant's events read from that tenant's database.
Nothing here can add, change or delete an event."""

from __future__ import annotations

from django.contrib import admin

from accounts import audit
from accounts.models import AuditEvent
from tenants.db.aliases import register_tenant_database
from tenants.models import Tenant
from tenants.validators import SLUG_PATTERN

DATABASE_PARAMETER = "database"
# Tenants whose database exists: a dropped tenant's is gone.
_READABLE = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def _tenant_named(slug: str | None) -> Tenant | None:
    # Only a well-formed slug reaches the query (a NUL byte is a PostgreSQL error).
    if not slug or not SLUG_PATTERN.fullmatch(slug):
        return None
    return Tenant.objects.filter(slug=slug, status__in=_READABLE).first()


class DatabaseFilter(admin.SimpleListFilter):
    """Which database's trail is shown; the platform's unless a tenant is chosen (the
    queryset itself is switched in `AuditEventAdmin.get_queryset`)."""

    title = "database"
    parameter_name = DATABASE_PARAMETER

    def lookups(self, request, model_admin):
        tenants = Tenant.objects.filter(status__in=_READABLE).order_by("slug")
        return [(tenant.slug, f"tenant {tenant.slug}") for tenant in tenants]

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "All":
                choice["display"] = "platform (main database)"
            yield choice

    def queryset(self, request, queryset):
        return queryset


class EventFilter(admin.SimpleListFilter):
    title = "event"
    parameter_name = "event"

    def lookups(self, request, model_admin):
        return [(event, event) for event in (*audit.TENANT_EVENTS, *audit.PLATFORM_EVENTS)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(event=value) if value in audit.EVENTS else queryset.none()


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "event",
        "actor_username",
        "actor_id",
        "target_type",
        "target_id",
        "target_label",
        "ip",
        "request_id",
        "details",
    ]
    list_display_links = None
    list_filter = [DatabaseFilter, EventFilter]
    search_fields = ["actor_username", "target_label", "target_id", "request_id"]
    actions = None
    list_per_page = 100

    def lookup_allowed(self, lookup, value, request=None):
        # Only the filters above and the search: a hand-made `?ip=x` would reach the
        # database as a malformed address (a 500 on PostgreSQL); any other parameter is
        # refused (400) before a query.
        return lookup in (DATABASE_PARAMETER, EventFilter.parameter_name)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        tenant = _tenant_named(request.GET.get(DATABASE_PARAMETER))
        if tenant is None:
            return queryset.using("default")
        return queryset.using(register_tenant_database(tenant))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
