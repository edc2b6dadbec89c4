"""Which tenant a request or a WebSocket handshake is for, from trusted server-side facts.

Order: exact `Domain` on the Host, then `<slug>.<TENANT_BASE_DOMAIN>`, then (only when the
peer is a trusted proxy) the `TENANT_HEADER` header, then `TENANT_DEFAULT`. `resolve_tenant`
works on those plain values, so the HTTP middleware (`tenants.middleware`) and the log
stream's handshake (`logstream.auth`) decide by the same rules. Answers are cached per
process (`resolver`); saving a Tenant or Domain invalidates them (`tenants.signals`).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as shared_cache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

from config.network import peer_is_trusted_proxy
from tenants.models import Domain, Tenant
from tenants.validators import normalize_host

logger = logging.getLogger("tenants.resolution")
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

    def _cached(self, key: str):
        """The cached entry for `key` (a Tenant or None), or `_MISS`; never queries."""
        self._expire_if_stale()
        return self._entries.get(key, _MISS)

    def _store(self, key: str, tenant: Tenant | None) -> Tenant | None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = tenant
        return tenant

    def lookup(self, key: str, load: Callable[[], Tenant | None], *, allow_queries=True):
        """The tenant cached under `key`, else `load()`'s answer, cached. With
        `allow_queries=False`, `_MISS` instead of loading."""
        hit = self._cached(key)
        if hit is not _MISS or not allow_queries:
            return hit
        return self._store(key, load())

    def by_host(self, host: str) -> Tenant | None:
        host = normalize_host(host)
        return self.lookup(f"host:{host}", lambda: _lookup_host(host))

    def by_slug(self, slug: str) -> Tenant | None:
        return self.lookup(f"slug:{slug}", lambda: _tenant_by_slug(slug))

    def recheck(self) -> None:
        """Compare the shared version key at the next lookup instead of after the rest of
        `TENANT_CACHE_TTL`: one cache read, and the cache is dropped only if a tenant or
        domain changed (a move's cut-over, whose end this process should see at once)."""
        self._checked_at = 0.0

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


def _tenant_by_slug(slug: str) -> Tenant | None:
    # With its server: the tenant's alias is built from it, and a warm request queries
    # nothing.
    return Tenant.objects.select_related("server").filter(slug=slug).first()


def _lookup_host(host: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant__server").filter(domain=host).first()
    if domain is not None:
        return domain.tenant
    base = settings.TENANT_BASE_DOMAIN.lower().strip(".")
    if base and host.endswith("." + base):
        slug = host[: -len(base) - 1]
        if slug and "." not in slug:
            return _tenant_by_slug(slug)
    return None


def resolve_tenant_from_host(host: str) -> Tenant | None:
    """The tenant a Host header names (exact domain, then `<slug>.<TENANT_BASE_DOMAIN>`)."""
    return resolver.by_host(host)


class Refusal(enum.Enum):
    """Why a request or handshake has no tenant to be served by."""

    INVALID_HOST = "invalid host"
    UNKNOWN_TENANT = "unknown tenant"
    TENANT_SUSPENDED = "tenant suspended"


@dataclass(frozen=True, slots=True)
class Resolution:
    """What `resolve_tenant` decided: the tenant to serve, or why there is none."""

    tenant: Tenant | None = None
    refusal: Refusal | None = None


def _candidates(host: str, tenant_header: str | None, peer: str | None) -> Iterator[tuple]:
    """`(cache key, loader)` of each way the tenant may be named, in resolution order."""
    yield f"host:{host}", lambda: _lookup_host(host)
    if tenant_header and peer_is_trusted_proxy(peer):
        slug = tenant_header.strip().lower()
        yield f"slug:{slug}", lambda: _tenant_by_slug(slug)
    if settings.TENANT_DEFAULT:
        default = settings.TENANT_DEFAULT
        yield f"slug:{default}", lambda: _tenant_by_slug(default)


def _decide(tenant: Tenant | None) -> Resolution:
    if tenant is None or tenant.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        return Resolution(refusal=Refusal.UNKNOWN_TENANT)
    if tenant.status == Tenant.Status.SUSPENDED:
        return Resolution(refusal=Refusal.TENANT_SUSPENDED)
    return Resolution(tenant=tenant)


def resolve_tenant(
    *,
    host: str | None,
    tenant_header: str | None = None,
    peer: str | None = None,
    allow_queries: bool = True,
) -> Resolution | None:
    """Decide the tenant of a Host value (None: the host was not acceptable), the
    `TENANT_HEADER` value and the transport's peer address (the header counts only from a
    trusted proxy). Queries the main database on a cache miss; with `allow_queries=False`,
    returns None instead of querying (an async caller then retries in a thread)."""
    host = normalize_host(host or "")
    if not host:
        return Resolution(refusal=Refusal.INVALID_HOST)
    for key, load in _candidates(host, tenant_header, peer):
        tenant = resolver.lookup(key, load, allow_queries=allow_queries)
        if tenant is _MISS:
            return None
        if tenant is not None:
            return _decide(tenant)
    return _decide(None)
