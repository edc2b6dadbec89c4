"""Who may open the log stream, decided from the WebSocket handshake alone.

Credentials, in order: `Authorization: Bearer` header, `?token=` query parameter,
`access_token` cookie (each a tenant token for the handshake's tenant, or a platform token
on any host), then a staff admin session cookie. The first credential that authenticates
wins. A tenant user may read its own tenant's records; platform staff read everything, and
only from `ADMIN_ALLOWED_IPS` when it is set.

A stream lives longer than its handshake: `credentials_still_valid` runs the same checks
again (the HTTP API's token validation, the admin's session validation, the tenant's
status, `WS_LOGS_ADMIN_USER` with the address's verification) every
`WS_AUTH_RECHECK_SECONDS`, and the consumer closes the socket (4401) when they fail.
The handshake's checks run in `logstream.handshake`, before the consumer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.db import DatabaseError
from django.http import HttpRequest, parse_cookie
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from accounts.authentication import TenantJWTAuthentication
from config.network import ip_in, scope_client_ip, scope_peer
from tenants.context import slug_of, use_tenant
from tenants.db.breaker import tenant_circuit_open
from tenants.middleware import tenant_database_failed
from tenants.models import Tenant
from tenants.resolution import resolve_tenant

logger = logging.getLogger("logstream.auth")


# Longer query values are not credentials or options: they are ignored, in bounded time.
MAX_QUERY_STRING = 8192
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class LogViewer:
    """An authenticated log stream client: a tenant user, or platform staff (tenant None),
    with the credential it authenticated with (a raw access token, or an admin session
    key) so that it can be checked again while the stream is open."""

    user: object
    tenant: Tenant | None
    token: str | None = field(default=None, repr=False)
    session_key: str | None = field(default=None, repr=False)


def handshake_headers(scope: dict) -> dict[str, str]:
    return {
        name.decode("latin1").lower(): value.decode("latin1")
        for name, value in scope.get("headers", ())
    }


def handshake_query(scope: dict) -> dict[str, list[str]]:
    """The handshake's query parameters; an over-long query string is ignored whole."""
    query = scope.get("query_string", b"")
    if len(query) > MAX_QUERY_STRING:
        return {}
    return parse_qs(query.decode("latin1"))


def _header_value(scope: dict, name: str) -> str | None:
    """The last value of header `name`, matched as HTTP matches it (case-insensitively,
    `-` and `_` alike)."""
    wanted = name.upper().replace("-", "_")
    found = None
    for raw, value in scope.get("headers", ()):
        if raw.decode("latin1").upper().replace("-", "_") == wanted:
            found = value.decode("latin1")
    return found


def handshake_tenant(scope: dict) -> Tenant | None:
    """The tenant the handshake is for, by the HTTP rules (`tenants.resolution`), or None
    (no tenant, an unknown one, or a suspended one). Queries the main database on a cache
    miss: call it from a thread."""
    with use_tenant(None):
        resolution = resolve_tenant(
            host=_header_value(scope, "host"),
            tenant_header=_header_value(scope, settings.TENANT_HEADER),
            peer=scope_peer(scope),
        )
    return resolution.tenant


def origin_allowed(scope: dict) -> bool:
    """Production only: the Origin must be listed in CORS_ALLOWED_ORIGINS or be the
    handshake's own host. No Origin (a non-browser client) is always accepted."""
    headers = handshake_headers(scope)
    origin = headers.get("origin", "").strip().rstrip("/").lower()
    if not origin or not settings.PRODUCTION:
        return True
    if getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False):
        return True
    allowed = {value.strip().rstrip("/").lower() for value in settings.CORS_ALLOWED_ORIGINS}
    if origin in allowed:
        return True
    return urlsplit(origin).netloc == headers.get("host", "").strip().lower()


def _raw_tokens(scope: dict, headers: dict[str, str], cookies: dict[str, str]):
    scheme, _, value = headers.get("authorization", "").partition(" ")
    candidates = [value.strip()] if scheme.lower() == "bearer" else []
    candidates.extend(handshake_query(scope).get("token", [])[:1])
    candidates.append(cookies.get("access_token", ""))
    for candidate in candidates:
        if candidate and len(candidate) <= MAX_TOKEN_LENGTH:
            yield candidate


def _viewer_from_token(raw: str, tenant: Tenant | None) -> LogViewer | None:
    authentication = TenantJWTAuthentication()
    if tenant is not None and tenant_circuit_open(tenant):
        tenant = None  # its database is down: only a platform token can still be checked
    if tenant is not None:
        try:
            with use_tenant(tenant):
                try:
                    user, _token = authentication.authenticate_raw(raw)
                except DatabaseError as exc:
                    if not tenant_database_failed(exc):
                        raise
                    logger.warning("Log stream handshake: tenant database unavailable")
                    tenant = None  # recorded; a platform token may still be accepted
                else:
                    return LogViewer(user=user, tenant=tenant, token=raw)
        except AuthenticationFailed:
            return None
        except PermissionDenied:
            pass  # not this tenant's token; it may still be a platform token
    try:
        with use_tenant(None):
            user, _token = authentication.authenticate_raw(raw)
    except (AuthenticationFailed, PermissionDenied):
        return None
    return LogViewer(user=user, tenant=None, token=raw) if user.is_staff else None


def _viewer_from_session(cookies: dict[str, str]) -> LogViewer | None:
    from importlib import import_module

    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return None
    with use_tenant(None):
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        user = get_user(request)
    if user.is_authenticated and user.is_active and user.is_staff:
        return LogViewer(user=user, tenant=None, session_key=session_key)
    return None


def may_read_logs(user, tenant: Tenant | None) -> bool:
    """`WS_LOGS_ADMIN_USER`, when set, lists who may connect (see `allow_list_entry`): a
    bare entry names platform staff, a `slug:` entry a tenant admin of that tenant, by
    username or by e-mail address. A username matches platform staff (who cannot sign up)
    and tenant admins whose account was not made by open signup (the first signup of a
    tenant without an admin is its admin). An address matches only once the user proved
    it is theirs (`email_verified`, cleared when the address changes): anyone can sign up
    with any address, but only its owner can verify it."""
    entries = settings.WS_LOGS_ADMIN_USER
    if not any(value.strip() for value in entries):
        return True
    if tenant is not None and not getattr(user, "is_tenant_admin", False):
        return False
    slug = slug_of(tenant)
    username = str(user.username)
    by_username = tenant is None or not getattr(user, "signed_up", True)
    address = str(user.email or "").strip().lower()
    by_address = bool(address) and getattr(user, "email_verified", False) is True
    for value in entries:
        entry = allow_list_entry(value)
        if entry is None or entry[0] != slug:
            continue
        if by_username and entry[1] == username:
            return True
        if by_address and "@" in entry[1] and entry[1].lower() == address:
            return True
    return False


def allow_list_entry(value: str) -> tuple[str | None, str] | None:
    """A `WS_LOGS_ADMIN_USER` entry as (tenant slug or None, username or e-mail address);
    None when it is malformed and can never match."""
    value = value.strip()
    slug, sep, username = value.partition(":")
    if not sep:
        return (None, value) if value else None
    if not slug or not username or ":" in username:
        return None
    return slug.lower(), username


def network_allowed(scope: dict, viewer: LogViewer) -> bool:
    """Platform staff may read the stream only from `ADMIN_ALLOWED_IPS` (when set), as they
    may reach `/admin/` and `/api/platform/` only from there."""
    allowed = settings.ADMIN_ALLOWED_IPS
    if viewer.tenant is not None or not allowed:
        return True
    return ip_in(scope_client_ip(scope), allowed)


def credentials_still_valid(viewer: LogViewer) -> bool:
    """Whether the credentials a stream was opened with still authenticate the same user
    for the same audience: the token is unexpired, unrevoked, issued after the user's last
    password or role change and its user active (the HTTP API's own checks,
    `TenantJWTAuthentication.authenticate_raw`), the tenant active, the admin session alive
    and its user active staff, and the user still allowed by `WS_LOGS_ADMIN_USER`. Queries
    the databases: call it through `database_sync_to_async`."""
    tenant = viewer.tenant
    if tenant is not None:
        with use_tenant(None):
            status = Tenant.objects.filter(pk=tenant.pk).values_list("status", flat=True).first()
        if status != Tenant.Status.ACTIVE:
            return False
    if viewer.token is not None:
        try:
            with use_tenant(tenant):
                user, _token = TenantJWTAuthentication().authenticate_raw(viewer.token)
        except (AuthenticationFailed, PermissionDenied):
            return False
        if tenant is None and not user.is_staff:
            return False
    elif viewer.session_key is not None:
        again = _viewer_from_session({settings.SESSION_COOKIE_NAME: viewer.session_key})
        if again is None:
            return False
        user = again.user
    else:
        return False
    return user.pk == viewer.user.pk and may_read_logs(user, tenant)


def authenticate_handshake(scope: dict, *, tenant: Tenant | None) -> LogViewer | None:
    """The viewer the handshake's credentials name, or None to refuse it; `tenant` is the
    handshake's (`handshake_tenant`). Queries the databases: call it through
    `database_sync_to_async`."""
    headers = handshake_headers(scope)
    cookies = parse_cookie(headers.get("cookie", ""))
    viewer = None
    for raw in _raw_tokens(scope, headers, cookies):
        viewer = _viewer_from_token(raw, tenant)
        if viewer is not None:
            break
    if viewer is None:
        viewer = _viewer_from_session(cookies)
    if viewer is None:
        return None
    if not may_read_logs(viewer.user, viewer.tenant):
        logger.warning("Log stream refused: user %s is not in WS_LOGS_ADMIN_USER", viewer.user.pk)
        return None
    if not network_allowed(scope, viewer):
        logger.warning("Log stream refused: platform staff outside ADMIN_ALLOWED_IPS")
        return None
    return viewer
