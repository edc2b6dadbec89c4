"""The audit trail: the vocabulary of security events and the one way to record one.

`record_event` writes one row (`accounts.models.AuditEvent`) with one INSERT, in the
database of the event: a tenant's events in the active tenant's database, the platform's
(`PLATFORM_EVENTS`) in the main database whatever tenant is active. The actor, the client
address (`config.network`, the one place that computes it) and the request id default to
those of the request being served; a management command records no actor.

The row is written in the caller's connection, outside any transaction the caller has not
opened itself: services record an event after their own change has committed, so an event
exists when, and only when, its change happened; a failed login, which changes nothing,
is recorded although the request then answers 401.

The trail never holds a secret: `details` is a small flat mapping whose keys may not name
a secret and whose values may not look like a token; an identifier typed at a login that
names no account is stored only as a keyed digest (it may be a password typed in the
wrong field).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, router
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import AuditEvent, User
from config.middleware import get_current_request, get_request_id
from config.network import client_ip
from tenants.models import Tenant

# --- the vocabulary -----------------------------------------------------------------------
# A tenant's events (in its database; platform staff's own in the main database).
LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOCKOUT = "lockout"
MFA_ENROLLED = "mfa_enrolled"
MFA_REMOVED = "mfa_removed"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name)
PASSWORD_RESET = "password_reset"  # noqa: S105 (an event name)
ROLE_CHANGED = "role_changed"
USER_DEACTIVATED = "user_deactivated"
USER_REACTIVATED = "user_reactivated"
API_KEY_CREATED = "api_key_created"
API_KEY_REVOKED = "api_key_revoked"
TOKENS_REVOKED = "tokens_revoked"
# The platform's events (always in the main database).
TENANT_CREATED = "tenant_created"
TENANT_SUSPENDED = "tenant_suspended"
TENANT_ACTIVATED = "tenant_activated"
TENANT_DROPPED = "tenant_dropped"
TENANT_MOVED = "tenant_moved"
TENANT_BACKED_UP = "tenant_backed_up"
TENANT_RESTORED = "tenant_restored"
TENANT_EXPORTED = "tenant_exported"
TENANT_PURGED = "tenant_purged"
STAFF_LOGIN = "staff_login"
STAFF_LOGIN_FAILED = "staff_login_failed"

TENANT_EVENTS = (
    LOGIN,
    LOGIN_FAILED,
    LOCKOUT,
    MFA_ENROLLED,
    MFA_REMOVED,
    PASSWORD_CHANGED,
    PASSWORD_RESET,
    ROLE_CHANGED,
    USER_DEACTIVATED,
    USER_REACTIVATED,
    API_KEY_CREATED,
    API_KEY_REVOKED,
    TOKENS_REVOKED,
)
PLATFORM_EVENTS = (
    TENANT_CREATED,
    TENANT_SUSPENDED,
    TENANT_ACTIVATED,
    TENANT_DROPPED,
    TENANT_MOVED,
    TENANT_BACKED_UP,
    TENANT_RESTORED,
    TENANT_EXPORTED,
    TENANT_PURGED,
    STAFF_LOGIN,
    STAFF_LOGIN_FAILED,
)
EVENTS = frozenset(TENANT_EVENTS + PLATFORM_EVENTS)

# --- what a row may hold ------------------------------------------------------------------
MAX_DETAILS = 10
MAX_DETAIL_LENGTH = 200
# A key naming one of these is refused, whatever its value: the trail never holds a secret.
_SECRET_KEY_NAME = re.compile(r"pass|secret|token|otp|code|hash|credential|session", re.I)
# A value shaped like a JWT, or a long unbroken run of token-like characters.
_TOKEN_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}|[A-Za-z0-9_\-+/=.]{40,}")
_FROM_REQUEST = object()


@dataclass(frozen=True)
class Target:
    """What an event is about: `Target("api_key", prefix, name)`; a User or a Tenant given
    to `record_event` is turned into one."""

    type: str
    id: str
    label: str = ""


def _target_of(value) -> Target | None:
    if value is None or isinstance(value, Target):
        return value
    if isinstance(value, User):
        return Target("user", str(value.pk), value.username)
    if isinstance(value, Tenant):
        return Target("tenant", value.slug, value.name)
    raise TypeError(f"An audit target is a User, a Tenant or a Target, not {type(value)}.")


def _clean_details(details: Mapping | None) -> dict:
    """`details` checked: at most MAX_DETAILS scalar values under names that are not a
    secret's, strings cut to MAX_DETAIL_LENGTH. A secret-looking name or value is a
    programming error (ValueError), caught by the tests of the call site."""
    if not details:
        return {}
    if len(details) > MAX_DETAILS:
        raise ValueError(f"At most {MAX_DETAILS} audit details.")
    clean = {}
    for key, value in details.items():
        if not isinstance(key, str) or _SECRET_KEY_NAME.search(key):
            raise ValueError(f"Audit detail {key!r} may name a secret.")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"Audit detail {key!r} is not a scalar.")
        if isinstance(value, str):
            if _TOKEN_LIKE.search(value):
                raise ValueError(f"Audit detail {key!r} looks like a token.")
            value = value[:MAX_DETAIL_LENGTH]
        clean[key] = value
    return clean


def identifier_digest(identifier: str) -> str:
    """A keyed, truncated digest of a login identifier that names no account: repeated
    attempts with one name can be told apart from others without storing what was typed
    (possibly a password in the wrong field); without `SECRET_KEY` it cannot be reversed
    by guessing."""
    normalized = (identifier or "").strip().lower()
    return salted_hmac("accounts.audit.identifier", normalized).hexdigest()[:16]


def _request_actor(request) -> User | None:
    user = getattr(request, "user", None) if request is not None else None
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return None
    return user if isinstance(user, User) else None


def _address(value: str | None) -> str | None:
    """`value` when it is an IP address (the column is `inet` on PostgreSQL), else None."""
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _database_of(event: str) -> str:
    if event in PLATFORM_EVENTS:
        return DEFAULT_DB_ALIAS
    return router.db_for_write(AuditEvent)


def _row(
    event: str,
    *,
    actor,
    target,
    details: Mapping | None,
    ip: str | None,
    request,
    created_at: datetime,
) -> AuditEvent:
    if event not in EVENTS:
        raise ValueError(f"Unknown audit event {event!r}.")
    if actor is _FROM_REQUEST:
        actor = _request_actor(request)
    if ip is None and request is not None:
        ip = client_ip(request) or None
    subject = _target_of(target)
    return AuditEvent(
        event=event,
        created_at=created_at,
        actor_id=actor.pk if actor is not None else None,
        actor_username=actor.username if actor is not None else "",
        target_type=subject.type if subject else "",
        target_id=subject.id[:64] if subject else "",
        target_label=subject.label[:150] if subject else "",
        ip=_address(ip),
        request_id=get_request_id() or "",
        details=_clean_details(details),
    )


def record_events(
    events: Sequence[str],
    *,
    actor=_FROM_REQUEST,
    target: User | Tenant | Target | None = None,
    details: Mapping | None = None,
    ip: str | None = None,
) -> list[AuditEvent]:
    """Record `events` (of one database: all tenant or all platform events) about one
    actor and target, with a single INSERT. `actor` defaults to the request's
    authenticated user; None records no actor (an anonymous attempt, a command)."""
    if not events:
        return []
    request = get_current_request()
    now = timezone.now()
    rows = [
        _row(
            event,
            actor=actor,
            target=target,
            details=details,
            ip=ip,
            request=request,
            created_at=now,
        )
        for event in events
    ]
    databases = {_database_of(event) for event in events}
    if len(databases) != 1:
        raise ValueError("Tenant and platform events are recorded separately.")
    return AuditEvent.objects.using(databases.pop()).bulk_create(rows)


def record_event(
    event: str,
    *,
    actor=_FROM_REQUEST,
    target: User | Tenant | Target | None = None,
    details: Mapping | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Record one security event (see `record_events`); returns the row."""
    return record_events([event], actor=actor, target=target, details=details, ip=ip)[0]


def record_login(user: User, *, tenant: Tenant | None, ip: str | None, details=None) -> None:
    """A completed login (tokens issued, or an admin session opened): `login` of a tenant's
    user, `staff_login` on the platform. A password alone, when a second factor follows,
    is not one."""
    event = LOGIN if tenant is not None else STAFF_LOGIN
    record_event(event, actor=user, target=user, ip=ip, details=details)


# --- reads ----------------------------------------------------------------------------------
AUDIT_ORDERING = ("-created_at", "-id")  # newest first; `id` makes the keyset unique
_MAX_ID_DIGITS = 18  # below 2**63: a longer number is no row's id


def audit_event_list(
    *, event: str | None = None, user: str | None = None, since: datetime | None = None
) -> QuerySet[AuditEvent]:
    """The active database's events (the current tenant's, or the platform's), filtered:
    `event` one of EVENTS; `user` a username or a user id, matching the actor or the
    user the event is about (names as they were at the time); `since` an instant."""
    queryset = AuditEvent.objects.all()
    if event:
        queryset = queryset.filter(event=event)
    if user:
        about = Q(actor_username=user) | Q(target_type="user", target_label=user)
        if user.isascii() and user.isdigit() and len(user) <= _MAX_ID_DIGITS:
            about |= Q(actor_id=int(user)) | Q(target_type="user", target_id=str(int(user)))
        queryset = queryset.filter(about)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    return queryset


def audit_events_purge(*, older_than: datetime, using: str) -> int:
    """Delete the events of database `using` recorded before `older_than`; returns how
    many went (one DELETE: the table has no relation and no signal)."""
    deleted, _ = AuditEvent.objects.using(using).filter(created_at__lt=older_than).delete()
    return deleted
