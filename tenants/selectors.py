"""Reads: a tenant by slug, listing tenants, migration state. (Which tenant a request is
for: `tenants.resolution`.)"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache

from django.db import DatabaseError, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Count, Q

from tenants.db import servers
from tenants.db.aliases import DEFAULT_SERVER, register_tenant_database, settings_of_server
from tenants.db.connections import close_connection
from tenants.db.exceptions import TenantDatabaseError
from tenants.models import DatabaseServer, Tenant
from tenants.resolution import resolver


def tenant_get(slug: str) -> Tenant | None:
    """The tenant with this slug, whatever its status (cached like the resolution)."""
    return resolver.by_slug(slug)


def tenant_list(*, slugs: list[str] | None = None, statuses: list[str] | None = None):
    qs = Tenant.objects.select_related("server").prefetch_related("domains").order_by("slug")
    if slugs:
        qs = qs.filter(slug__in=slugs)
    if statuses:
        qs = qs.filter(status__in=statuses)
    return qs


def tenants_on_servers(names: list[str]) -> list[str]:
    """Slugs of the active tenants placed on the servers named."""
    on = Q(server__name__in=names)
    if DEFAULT_SERVER in names:  # a tenant not placed yet is the default server's
        on |= Q(server=None, database_url="")
    return list(
        Tenant.objects.filter(on, status=Tenant.Status.ACTIVE).values_list("slug", flat=True)
    )


# --- database servers ---------------------------------------------------------------------
# The tenants a server holds: every one but the dropped and the purged.
PLACED_STATUSES = [status for status in Tenant.Status.values if status not in Tenant.GONE_STATUSES]


def database_server_list() -> list[DatabaseServer]:
    """Every registered server by name, each with `tenant_count` (its tenants but the
    dropped and the purged) and `room` (capacity minus tenants; None without a capacity)."""
    placed = Count("tenants", filter=Q(tenants__status__in=PLACED_STATUSES))
    rows = list(DatabaseServer.objects.annotate(tenant_count=placed).order_by("name"))
    for server in rows:
        server.room = None if server.capacity is None else server.capacity - server.tenant_count
    return rows


def database_server_report() -> list[dict]:
    """`database_server_list` as rows for operators: status, capacity, tenants and the
    connections in use on each (None when the server cannot be asked). Never a URL."""
    rows = []
    for server in database_server_list():
        names = list(
            Tenant.objects.filter(server=server, status__in=PLACED_STATUSES).values_list(
                "database_name", flat=True
            )
        )
        try:
            in_use = servers.connections_in_use(settings_of_server(server, admin=True), names)
            reachable = True
        except TenantDatabaseError:
            in_use, reachable = None, False
        rows.append(
            {
                "name": server.name,
                "status": server.status,
                "capacity": server.capacity,
                "tenants": server.tenant_count,
                "connections": in_use,
                "reachable": reachable,
                "url_env": server.url_env,
                "admin_url_env": server.admin_url_env,
            }
        )
    return rows


# --- migration state ----------------------------------------------------------------------
@cache
def expected_tenant_migrations() -> frozenset[tuple[str, str]]:
    """Every migration a tenant database should have applied (read from disk once)."""
    from tenants.routers import tenant_labels

    loader = MigrationLoader(None, ignore_no_migrations=True)
    labels = tenant_labels()
    return frozenset(key for key in loader.graph.nodes if key[0] in labels)


def applied_migrations(alias: str) -> set[tuple[str, str]]:
    """`(app, name)` of every migration recorded on `alias`, in one query.

    `MigrationRecorder.applied_migrations()` lists the database's tables first (a catalog
    query that costs a fresh PostgreSQL session as much as the connection itself: 40% of
    `migrate_tenants` in a py-spy profile); here the table is only looked for when the read
    fails, as it does on a database never migrated.
    """
    connection = connections[alias]
    connection.ensure_connection()  # a connection failure is not a missing table
    table = connection.ops.quote_name(MigrationRecorder.Migration._meta.db_table)
    # Inside a transaction, a savepoint keeps a failed read from aborting it.
    guard = transaction.atomic(using=alias) if connection.in_atomic_block else nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(f"SELECT app, name FROM {table}")
            return set(cursor.fetchall())
    except DatabaseError:
        if MigrationRecorder(connection).has_table():
            raise
        return set()


def pending_migrations(alias: str) -> list[tuple[str, str]]:
    """Migrations of the tenant apps not yet applied on `alias` (one cheap query)."""
    return sorted(expected_tenant_migrations() - applied_migrations(alias))


def tenant_pending_migrations(tenant: Tenant) -> list[tuple[str, str]]:
    """`pending_migrations` of the tenant's database, read on a connection of this thread
    that is closed again before returning."""
    alias = register_tenant_database(tenant)
    try:
        return pending_migrations(alias)
    finally:
        close_connection(alias)


@dataclass(frozen=True)
class DatabaseProbe:
    """What opening a tenant's database found."""

    reachable: bool
    pending_migrations: tuple[tuple[str, str], ...] = ()
    # The failure's class name only: its text can name hosts and users.
    error: str = ""
    # The failure itself, for a caller that logs it or records it for the circuit breaker.
    exception: BaseException | None = field(default=None, repr=False, compare=False)


def probe_tenant_database(tenant: Tenant) -> DatabaseProbe:
    """Open the tenant's database on a connection of this thread (closed again before
    returning) and read which tenant migrations it lacks. A dropped or purged tenant's
    database is unreachable. Records nothing for the circuit breaker: that is the caller's
    choice."""
    alias = tenant.alias
    try:
        if tenant.status in Tenant.GONE_STATUSES:
            raise TenantDatabaseError(f"the tenant is {tenant.status}; its database is gone")
        register_tenant_database(tenant)
        pending = pending_migrations(alias)
    except Exception as exc:
        return DatabaseProbe(reachable=False, error=type(exc).__name__, exception=exc)
    finally:
        close_connection(alias)
    return DatabaseProbe(reachable=True, pending_migrations=tuple(pending))


def tenant_health(*, tenant: Tenant) -> dict:
    """Whether the tenant's database answers and has every tenant migration applied."""
    body = {"slug": tenant.slug, "tenant_status": tenant.status}
    probe = probe_tenant_database(tenant)
    if probe.reachable:
        body.update(
            database="ok",
            migrations="pending" if probe.pending_migrations else "ok",
            pending_migrations=[f"{app}.{name}" for app, name in probe.pending_migrations],
        )
    else:
        body.update(database="unreachable", migrations="unknown", pending_migrations=[])
    healthy = body["database"] == "ok" and body["migrations"] == "ok"
    body["status"] = "ok" if healthy else "unhealthy"
    return body
