"""Activates the request's tenant: its Host, tenant header and peer address go to
`tenants.resolution.resolve_tenant`, a refusal is answered in the error envelope, and a
tenant whose database circuit is open gets a 503, as does a view whose tenant database
refused or dropped the connection (the failure is recorded for the circuit breaker and
/ready). A tenant in a move's cut-over answers its writes 503 `Tenant is being moved`, as
does a write its source database refused as read-only (a process whose cache has not seen
the move yet). Platform paths run with no tenant,
whatever the host. The ContextVar is set and reset inside the same `__call__` /
`__acall__` (asgiref #267).
"""

from __future__ import annotations

import math

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse

from config.errors import error_response
from config.middleware import HybridMiddleware
from config.paths import is_platform_path
from tenants.context import get_current_tenant, use_tenant
from tenants.db.aliases import settings_of_server
from tenants.db.breaker import (
    check_server_after_failure,
    connection_failed,
    record_database_failure,
    tenant_circuit_open,
)
from tenants.db.connections import close_connection, note_connection_used
from tenants.db.exceptions import TenantDatabaseError
from tenants.models import TenantMove
from tenants.resolution import Refusal, Resolution, resolve_tenant, resolver

# The answer to each refusal, as the API documents it.
REFUSALS = {
    Refusal.INVALID_HOST: (400, "Invalid host header"),
    Refusal.UNKNOWN_TENANT: (404, "Unknown tenant"),
    Refusal.TENANT_SUSPENDED: (403, "Tenant suspended"),
}
PLATFORM = Resolution()
TENANT_DATABASE_UNAVAILABLE = "Tenant database unavailable"
TENANT_BEING_MOVED = "Tenant is being moved"
# A move's cut-over refuses writes for a few seconds (tenants.lifecycle.move).
MOVE_RETRY_AFTER = 5
# SQLSTATE read_only_sql_transaction: the source database of a move refuses writes.
READ_ONLY_SQLSTATE = "25006"
# SQLSTATE admin_shutdown: a move's cut-over ended the session (and the pooler's).
ADMIN_SHUTDOWN_SQLSTATE = "57P01"
# A move ends the source's sessions from its cut-over on (and its drop, once switched).
SESSIONS_ENDED_STATES = (TenantMove.State.CUTOVER, TenantMove.State.SWITCHED)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def tenant_database_failed(exc: BaseException) -> bool:
    """True when `exc` is the active tenant's database refusing or dropping the connection;
    the failure is then recorded (circuit breaker, /ready)."""
    if not isinstance(exc, DatabaseError):
        return False
    tenant = get_current_tenant()
    if tenant is None or not connection_failed(tenant.alias):
        return False
    record_database_failure(tenant.alias, exc)
    _check_server_of(tenant)
    return True


def _check_server_of(tenant) -> None:
    """Probe the server of `tenant` after its connection failed: a server that does not
    answer opens the circuit of all its tenants (tenants.db.breaker). The probe goes to the
    server's direct URL: a pooler in front of it accepts connections by itself."""
    if tenant.server_name is None:  # its own URL: its own circuit is enough
        return
    try:
        cfg = settings_of_server(tenant.server if tenant.server_id else None, admin=True)
    except TenantDatabaseError:
        cfg = None
    check_server_after_failure(tenant.server_name, cfg)


def tenant_database_unavailable_response() -> JsonResponse:
    """503 `Tenant database unavailable` with `Retry-After` (API.md): the circuit breaker
    tries the database again after TENANT_DB_RETRY_INTERVAL seconds."""
    retry_after = max(1, math.ceil(settings.TENANT_DB_RETRY_INTERVAL))
    return error_response(
        503, TENANT_DATABASE_UNAVAILABLE, headers={"Retry-After": str(retry_after)}
    )


def tenant_database_read_only(exc: BaseException) -> bool:
    """True when `exc` is the active tenant's database refusing a write as read-only
    because the tenant is being moved: its source, in the cut-over or after the flip while
    this process's cache lags."""
    if getattr(exc.__cause__, "sqlstate", None) != READ_ONLY_SQLSTATE:
        return False
    return _active_tenant_is_moving(exc)


def tenant_session_ended_by_move(exc: BaseException) -> bool:
    """True when `exc` is the active tenant's session ended because a move refused the
    source's writes (SQLSTATE 57P01, or the connection just lost when the server's message
    did not arrive first): not an outage, so the circuit stays closed; the connection is
    closed here and the next one is read-only."""
    tenant = get_current_tenant()
    if not isinstance(exc, DatabaseError) or tenant is None:
        return False
    ended = getattr(exc.__cause__, "sqlstate", None) == ADMIN_SHUTDOWN_SQLSTATE
    if not (ended or connection_failed(tenant.alias)):
        return False
    if not _active_tenant_is_moving(exc, states=SESSIONS_ENDED_STATES):
        return False
    close_connection(tenant.alias)
    return True


def _active_tenant_is_moving(
    exc: BaseException, states: tuple[str, ...] = TenantMove.OPEN_STATES
) -> bool:
    """Whether the active tenant has a move under way (in one of `states`), asked of the
    main database (this process's cache may not know yet); one query, only on these
    errors."""
    tenant = get_current_tenant()
    if not isinstance(exc, DatabaseError) or tenant is None:
        return False
    try:
        return TenantMove.objects.filter(tenant_id=tenant.pk, state__in=states).exists()
    except DatabaseError:  # the main database is down too: not this tenant's move
        return False


def tenant_being_moved_response() -> JsonResponse:
    """503 `Tenant is being moved` with `Retry-After` (API.md). The next request compares
    the tenant cache's shared version first: the move may have ended (or begun) in
    another process, and its writes should be taken as soon as it has."""
    resolver.recheck()
    return error_response(503, TENANT_BEING_MOVED, headers={"Retry-After": str(MOVE_RETRY_AFTER)})


def _header_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def _request_host(request: HttpRequest) -> str | None:
    try:
        return request.get_host()
    except DisallowedHost:
        return None


def resolve_request(request: HttpRequest, *, allow_queries: bool = True) -> Resolution | None:
    """The request's tenant (`resolve_tenant` on its Host, tenant header and peer); no
    tenant on a platform path. With `allow_queries=False`, None when the answer is not
    cached."""
    if is_platform_path(request.path_info):
        return PLATFORM
    return resolve_tenant(
        host=_request_host(request),
        tenant_header=request.META.get(_header_key(settings.TENANT_HEADER)),
        peer=request.META.get("REMOTE_ADDR"),
        allow_queries=allow_queries,
    )


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
    def _admit(request: HttpRequest, resolution: Resolution):
        if resolution.refusal is not None:
            return error_response(*REFUSALS[resolution.refusal])
        if resolution.tenant is not None and tenant_circuit_open(resolution.tenant):
            return tenant_database_unavailable_response()
        if (
            resolution.tenant is not None
            and resolution.tenant.moving
            and request.method not in SAFE_METHODS
        ):
            return tenant_being_moved_response()
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

    def process_exception(self, request: HttpRequest, exception: Exception):
        # The API's exception handler leaves database errors to the middleware.
        if tenant_database_read_only(exception) or tenant_session_ended_by_move(exception):
            return tenant_being_moved_response()
        if tenant_database_failed(exception):
            return tenant_database_unavailable_response()
        return None
