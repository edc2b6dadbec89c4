"""Resolves the request's tenant from trusted server-side facts and activates it.

Order: exact `Domain` on the Host, then `<slug>.<TENANT_BASE_DOMAIN>`, then (only from a
trusted proxy) the `TENANT_HEADER` header, then `TENANT_DEFAULT`. Platform paths run with
no tenant, whatever the host. The ContextVar is set and reset inside the same `__call__` /
`__acall__` (asgiref #267).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from config.errors import error_response, tenant_database_unavailable_response
from config.middleware import HybridMiddleware
from config.network import peer_is_trusted_proxy
from config.paths import is_platform_path
from tenants.context import use_tenant
from tenants.db import circuit_open, note_connection_used
from tenants.models import Tenant
from tenants.selectors import _MISS, resolver
from tenants.validators import normalize_host


class TenantResolution:
    """What the middleware decided: a tenant to serve, none (platform), or an error."""

    __slots__ = ("error", "tenant")

    def __init__(self, tenant: Tenant | None = None, error: HttpResponse | None = None):
        self.tenant = tenant
        self.error = error


def _candidates(request: HttpRequest, host: str):
    """Cache keys to try, in resolution order, each with a loader for a cache miss."""
    yield f"host:{host}", lambda: resolver.by_host(host)
    header = request.META.get("HTTP_" + settings.TENANT_HEADER.upper().replace("-", "_"))
    if header and peer_is_trusted_proxy(request.META.get("REMOTE_ADDR")):
        slug = header.strip().lower()
        yield f"slug:{slug}", lambda: resolver.by_slug(slug)
    if settings.TENANT_DEFAULT:
        slug = settings.TENANT_DEFAULT
        yield f"slug:{slug}", lambda: resolver.by_slug(slug)


def _decide(tenant: Tenant | None) -> TenantResolution:
    if tenant is None or tenant.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        return TenantResolution(error=error_response(404, "Unknown tenant"))
    if tenant.status == Tenant.Status.SUSPENDED:
        return TenantResolution(error=error_response(403, "Tenant suspended"))
    return TenantResolution(tenant=tenant)


def _request_host(request: HttpRequest) -> str | None:
    try:
        return normalize_host(request.get_host())
    except DisallowedHost:
        return None


def resolve_request(request: HttpRequest, *, allow_queries: bool = True) -> TenantResolution | None:
    """Decide the request's tenant. With `allow_queries=False`, return None instead of
    querying when the answer is not cached (the async path then retries in a thread)."""
    if is_platform_path(request.path_info):
        return TenantResolution()
    host = _request_host(request)
    if host is None:
        return TenantResolution(error=error_response(400, "Invalid host header"))
    for key, load in _candidates(request, host):
        tenant = resolver.cached(key)
        if tenant is _MISS:
            if not allow_queries:
                return None
            tenant = load()
        if tenant is not None:
            return _decide(tenant)
    return _decide(None)


class TenantMiddleware(HybridMiddleware):
    def before(self, request: HttpRequest):
        return self._admit(request, resolve_request(request))

    async def abefore(self, request: HttpRequest):
        # A warm cache answers without a query; only a miss leaves the event loop.
        resolution = resolve_request(request, allow_queries=False)
        if resolution is None:
            resolution = await sync_to_async(resolve_request)(request)
        return self._admit(request, resolution)

    @staticmethod
    def _admit(request: HttpRequest, resolution: TenantResolution):
        if resolution.error is not None:
            return resolution.error
        if resolution.tenant is not None and circuit_open(resolution.tenant.alias):
            return tenant_database_unavailable_response()
        request.tenant = resolution.tenant
        return None

    def around(self, request: HttpRequest):
        return use_tenant(request.tenant)

    def after(self, request: HttpRequest, response):
        tenant = getattr(request, "tenant", None)
        # The connection bound is per thread; under ASGI the view ran in another thread and
        # its connections close at the end of the request anyway.
        if tenant is not None and not self.is_async:
            note_connection_used(tenant.alias)
        return response


def resolve_scope(scope: dict) -> TenantResolution:
    """The tenant of an ASGI scope (a WebSocket handshake), by the same rules as HTTP:
    Host, trusted-proxy header, `TENANT_DEFAULT`. Queries the main database on a cache miss,
    so call it from a thread (`database_sync_to_async`)."""
    meta = {
        "HTTP_" + name.decode("latin1").upper().replace("-", "_"): value.decode("latin1")
        for name, value in scope.get("headers", ())
    }
    client = scope.get("client")
    meta["REMOTE_ADDR"] = client[0] if client else ""
    host = normalize_host(meta.get("HTTP_HOST", ""))
    if not host:
        return TenantResolution(error=error_response(400, "Invalid host header"))
    handshake = HttpRequest()
    handshake.META = meta
    for _key, load in _candidates(handshake, host):
        tenant = load()
        if tenant is not None:
            return _decide(tenant)
    return _decide(None)
