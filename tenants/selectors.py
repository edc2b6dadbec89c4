"""Reads: resolving a request's tenant (cached in-process), listing tenants, migration state."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import nullcontext
from functools import cache

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as shared_cache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import DatabaseError, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from tenants import db as tenant_db
from tenants.models import Domain, Tenant
from tenants.validators import normalize_host

logger = logging.getLogger("tenants.selectors")
_VERSION_KEY = "tenants:resolution-version"
_MISS = object()


class TenantResolver:
    """Host and slug to Tenant, cached per process.

    A warm lookup makes no query. Saving a Tenant or Domain clears this process's cache at
    once and bumps a version key in the shared cache; other processes compare that key every
    `TENANT_CACHE_TTL` seconds and drop their cache when it moved.
    """

    max_entries = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, Tenant | None] = {}
        self._lock = threading.Lock()
        self._version: str | None = None
        self._checked_at = 0.0

    def _expire_if_stale(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < settings.TENANT_CACHE_TTL:
            return
        version = None
        if _cache_is_shared():
            try:
                version = shared_cache.get(_VERSION_KEY)
            except Exception:  # shared cache down: fall back to the TTL alone
                version = None
        with self._lock:
            # No version (a process-local cache, as on the embedded default, where
            # `create_tenant` runs in another process; or the cache is down): the TTL alone.
            if version is None or version != self._version:
                self._entries.clear()
            self._version = version
            self._checked_at = now

    def cached(self, key: str):
        """The cached entry for `key` (a Tenant or None), or `_MISS`; never queries."""
        self._expire_if_stale()
        return self._entries.get(key, _MISS)

    def _store(self, key: str, tenant: Tenant | None) -> Tenant | None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = tenant
        return tenant

    def by_host(self, host: str) -> Tenant | None:
        host = normalize_host(host)
        hit = self.cached(f"host:{host}")
        if hit is not _MISS:
            return hit
        return self._store(f"host:{host}", _lookup_host(host))

    def by_slug(self, slug: str) -> Tenant | None:
        hit = self.cached(f"slug:{slug}")
        if hit is not _MISS:
            return hit
        return self._store(f"slug:{slug}", Tenant.objects.filter(slug=slug).first())

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
            self._checked_at = 0.0
        try:
            shared_cache.set(_VERSION_KEY, uuid.uuid4().hex, None)
        except Exception:  # other processes still catch up through the TTL
            logger.warning(
                "Shared cache unavailable; other processes see the tenant change "
                "within TENANT_CACHE_TTL seconds"
            )


def _cache_is_shared() -> bool:
    """Whether the default cache is seen by every process (Redis), unlike the local-memory
    and dummy caches, whose version key no other process can move."""
    return not isinstance(caches[DEFAULT_CACHE_ALIAS], LocMemCache | DummyCache)


resolver = TenantResolver()


def _lookup_host(host: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant").filter(domain=host).first()
    if domain is not None:
        return domain.tenant
    base = settings.TENANT_BASE_DOMAIN.lower().strip(".")
    if base and host.endswith("." + base):
        slug = host[: -len(base) - 1]
        if slug and "." not in slug:
            return Tenant.objects.filter(slug=slug).first()
    return None


def resolve_tenant_from_host(host: str) -> Tenant | None:
    """The tenant a Host header names (exact domain, then `<slug>.<TENANT_BASE_DOMAIN>`)."""
    return resolver.by_host(host)


def tenant_get(slug: str) -> Tenant | None:
    return resolver.by_slug(slug)


def tenant_list(*, slugs: list[str] | None = None, statuses: list[str] | None = None):
    qs = Tenant.objects.prefetch_related("domains").order_by("slug")
    if slugs:
        qs = qs.filter(slug__in=slugs)
    if statuses:
        qs = qs.filter(status__in=statuses)
    return qs


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
    alias = tenant_db.register_tenant_database(tenant)
    try:
        return pending_migrations(alias)
    finally:
        tenant_db.close_connection(alias)


def tenant_health(*, tenant: Tenant) -> dict:
    """Whether the tenant's database answers and has every tenant migration applied."""
    body = {"slug": tenant.slug, "tenant_status": tenant.status}
    alias = tenant.alias
    try:
        if tenant.status == Tenant.Status.DROPPED or not tenant_db.database_exists(
            tenant_db.tenant_database_settings(tenant)
        ):
            raise tenant_db.TenantDatabaseError("database missing")
        tenant_db.register_tenant_database(tenant)
        connections[alias].ensure_connection()
        pending = pending_migrations(alias)
    except Exception:
        body.update(database="unreachable", migrations="unknown", pending_migrations=[])
    else:
        body.update(
            database="ok",
            migrations="pending" if pending else "ok",
            pending_migrations=[f"{app}.{name}" for app, name in pending],
        )
    finally:
        tenant_db.close_connection(alias)
    healthy = body["database"] == "ok" and body["migrations"] == "ok"
    body["status"] = "ok" if healthy else "unhealthy"
    return body
