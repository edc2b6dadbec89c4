"""Who may open the log stream, decided from the WebSocket handshake alone.

Credentials, in order: `Authorization: Bearer` header, `?token=` query parameter,
`access_token` cookie (each a tenant token for the handshake's tenant, or a platform token
on any host), then a staff admin session cookie. The first credential that authenticates
wins. A tenant user may read its own tenant's records; platform staff read everything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.db import DatabaseError
from django.http import HttpRequest, parse_cookie
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from accounts.authentication import TenantJWTAuthentication
from config.errors import tenant_database_unavailable
from tenants.context import use_tenant
from tenants.db import circuit_open
from tenants.middleware import resolve_scope
from tenants.models import Tenant

logger = logging.getLogger("logstream.auth")


@dataclass(frozen=True)
class LogViewer:
    """An authenticated log stream client: a tenant user, or platform staff (tenant None)."""

    user: object
    tenant: Tenant | None


def handshake_headers(scope: dict) -> dict[str, str]:
    return {
        name.decode("latin1").lower(): value.decode("latin1")
        for name, value in scope.get("headers", ())
    }


def handshake_query(scope: dict) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin1"))


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
    if scheme.lower() == "bearer" and value.strip():
        yield value.strip()
    for value in handshake_query(scope).get("token", [])[:1]:
        if value:
            yield value
    if cookies.get("access_token"):
        yield cookies["access_token"]


def _viewer_from_token(raw: str, tenant: Tenant | None) -> LogViewer | None:
    authentication = TenantJWTAuthentication()
    if tenant is not None and circuit_open(tenant.alias):
        tenant = None  # its database is down: only a platform token can still be checked
    if tenant is not None:
        try:
            with use_tenant(tenant):
                try:
                    user, _token = authentication.authenticate_raw(raw)
                except DatabaseError as exc:
                    if not tenant_database_unavailable(exc):
                        raise
                    logger.warning("Log stream handshake: tenant database unavailable")
                    tenant = None  # recorded; a platform token may still be accepted
                else:
                    return LogViewer(user=user, tenant=tenant)
        except AuthenticationFailed:
            return None
        except PermissionDenied:
            pass  # not this tenant's token; it may still be a platform token
    try:
        with use_tenant(None):
            user, _token = authentication.authenticate_raw(raw)
    except (AuthenticationFailed, PermissionDenied):
        return None
    return LogViewer(user=user, tenant=None) if user.is_staff else None


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
        return LogViewer(user=user, tenant=None)
    return None


def may_read_logs(user) -> bool:
    """WS_LOGS_ADMIN_USER, when set, lists the usernames or e-mails allowed to connect."""
    allowed = {value.strip().lower() for value in settings.WS_LOGS_ADMIN_USER if value.strip()}
    if not allowed:
        return True
    names = {str(user.username).lower(), str(getattr(user, "email", "") or "").lower()}
    return bool(names & allowed)


def authenticate_handshake(scope: dict) -> LogViewer | None:
    """The viewer the handshake's credentials name, or None to refuse it. Queries the
    databases: call it through `database_sync_to_async`."""
    headers = handshake_headers(scope)
    cookies = parse_cookie(headers.get("cookie", ""))
    with use_tenant(None):
        resolution = resolve_scope(scope)
    tenant = resolution.tenant if resolution.error is None else None
    viewer = None
    for raw in _raw_tokens(scope, headers, cookies):
        viewer = _viewer_from_token(raw, tenant)
        if viewer is not None:
            break
    if viewer is None:
        viewer = _viewer_from_session(cookies)
    if viewer is None:
        return None
    if not may_read_logs(viewer.user):
        logger.warning("Log stream refused: user %s is not in WS_LOGS_ADMIN_USER", viewer.user.pk)
        return None
    return viewer
