"""Unavailable tenant databases: a per-process circuit breaker.

A tenant whose database refuses connections is answered 503 at once for
`TENANT_DB_RETRY_INTERVAL` seconds, then the next request tries again, so the tenant
recovers by itself. Failures are also written to the shared cache, so /ready on any
process can count the tenants that failed recently.

A circuit is kept per database server too: when a tenant's connection fails, its server is
probed, and a server that does not answer answers 503 for every one of its tenants at once
(without each of them trying first) until the next attempt after the interval, or any
connection to it, succeeds. Tenants of other servers are served meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from tenants.db import servers
from tenants.db.aliases import SERVER_KEY, is_tenant_alias, slug_for
from tenants.db.connections import close_connection
from tenants.db.exceptions import TenantDatabaseError

logger = logging.getLogger(__name__)

FAILURES_CACHE_KEY = "tenants:database-failures"
SERVER_FAILURES_CACHE_KEY = "tenants:server-failures"
FAILURES_REPORTED_FOR = 300  # seconds a failure stays listed by /ready unless it recovers
_failures_lock = threading.Lock()
_failed_at: dict[str, float] = {}  # alias -> time.monotonic() of the last failure
_server_failed_at: dict[str, float] = {}  # server name -> time.monotonic() of its failure


def connection_failed(alias: str) -> bool:
    """True when this thread's connection to `alias` failed to open or was lost: Django
    flagged an error on it and it is not usable. A query error on a healthy connection
    (a lock timeout, a bad statement) is not a failure of the database."""
    if not _lost(alias):
        return False
    # The main database failing too is not this tenant's outage.
    return not _lost("default")


def _lost(alias: str) -> bool:
    conn = getattr(connections._connections, alias, None)
    if conn is None or not conn.errors_occurred:
        return False
    try:
        return conn.connection is None or not conn.is_usable()
    except Exception:
        return True


def record_database_failure(alias: str, error: BaseException | None = None) -> None:
    """Open the circuit for `alias` and report it; the broken connection is dropped."""
    with _failures_lock:
        first = alias not in _failed_at
        _failed_at[alias] = time.monotonic()
    if first:
        reason = str(error).strip().splitlines()[0] if error is not None and str(error) else ""
        logger.error("Tenant database of %s is unavailable: %s", slug_for(alias), reason or "-")
    with contextlib.suppress(Exception):
        close_connection(alias)
    _share_failure(slug_for(alias), time.time())


def record_database_recovery(alias: str) -> None:
    """Close the circuit for `alias`. Cheap when it was not open."""
    if alias not in _failed_at:
        return
    with _failures_lock:
        recovered = _failed_at.pop(alias, None) is not None
    if recovered:
        logger.warning("Tenant database of %s is available again", slug_for(alias))
        _share_failure(slug_for(alias), None)


def circuit_open(alias: str, server: str | None = None) -> bool:
    """True while requests for `alias` (on the server named `server`) should be answered
    503 without trying to connect: its own circuit or its server's is open."""
    now = time.monotonic()
    for failed in (_failed_at.get(alias), _server_failed_at.get(server) if server else None):
        if failed is not None and now - failed < settings.TENANT_DB_RETRY_INTERVAL:
            return True
    return False


def tenant_circuit_open(tenant) -> bool:
    """`circuit_open` for a `Tenant`: its database's circuit or its server's."""
    return circuit_open(tenant.alias, tenant.server_name)


def server_circuit_open(server: str) -> bool:
    failed = _server_failed_at.get(server)
    return failed is not None and time.monotonic() - failed < settings.TENANT_DB_RETRY_INTERVAL


def check_server_after_failure(server: str, cfg: dict | None) -> bool:
    """After a connection of a tenant of `server` failed: probe the server (`cfg`, its
    settings; None when they cannot be read) and open its circuit when it does not answer.
    Returns whether it is down."""
    if server_circuit_open(server):
        return True
    answers = False
    if cfg is not None:
        probe = {**cfg, "OPTIONS": {**cfg.get("OPTIONS", {})}}
        if "connect_timeout" in probe["OPTIONS"]:
            probe["OPTIONS"]["connect_timeout"] = settings.TENANT_DB_CONNECT_TIMEOUT
        try:
            answers = servers.server_answers(probe)
        except TenantDatabaseError:
            answers = False
    if answers:
        return False
    with _failures_lock:
        first = server not in _server_failed_at
        _server_failed_at[server] = time.monotonic()
    if first:
        logger.error("Database server %s is unavailable; its tenants answer 503", server)
        _share(SERVER_FAILURES_CACHE_KEY, server, time.time())
    return True


def record_server_recovery(server: str | None) -> None:
    """Close the circuit of `server`. Cheap when it was not open."""
    if server is None or server not in _server_failed_at:
        return
    with _failures_lock:
        recovered = _server_failed_at.pop(server, None) is not None
    if recovered:
        logger.warning("Database server %s is available again", server)
        _share(SERVER_FAILURES_CACHE_KEY, server, None)


def _recent(local: dict[str, float], key: str) -> set[str]:
    """Names failed within `FAILURES_REPORTED_FOR` seconds and not recovered since, as seen
    by this process (`local`, monotonic times) and through the cache (`key`) by others."""
    now_mono, now = time.monotonic(), time.time()
    names = {name for name, at in list(local.items()) if now_mono - at < FAILURES_REPORTED_FOR}
    try:
        shared = cache_failures(key)
    except Exception:  # the cache is down: this process's view alone
        shared = {}
    names.update(name for name, at in shared.items() if now - at < FAILURES_REPORTED_FOR)
    return names


def recently_unavailable_tenants() -> list[str]:
    """Slugs of tenants whose database failed recently and has not answered since. Reads
    no tenant database."""
    return sorted({slug_for(alias) for alias in _recent(_failed_at, FAILURES_CACHE_KEY)})


def recently_unavailable_servers() -> list[str]:
    """Names of database servers found down recently (their circuit opened) and not
    answering since: every tenant on one is unavailable, whether or not it was asked for."""
    return sorted(_recent(_server_failed_at, SERVER_FAILURES_CACHE_KEY))


def cache_failures(key: str = FAILURES_CACHE_KEY) -> dict[str, float]:
    from django.core.cache import cache

    return dict(cache.get(key) or {})


def _share(key: str, name: str, at: float | None) -> None:
    """Best effort: a cache outage only makes /ready on other processes less informed."""
    from django.core.cache import cache

    try:
        failures = cache_failures(key)
        if at is None:
            if failures.pop(name, None) is None:
                return
        else:
            failures[name] = at
        cache.set(key, failures, FAILURES_REPORTED_FOR)
    except Exception:
        logger.warning("Cache unavailable; database failure of %s not shared", name)


def _share_failure(slug: str, at: float | None) -> None:
    _share(FAILURES_CACHE_KEY, slug, at)


@receiver(connection_created, dispatch_uid="tenants.db.connection_created")
def _close_circuit_on_connect(sender, connection, **kwargs) -> None:
    if is_tenant_alias(connection.alias):
        record_database_recovery(connection.alias)
        record_server_recovery(connection.settings_dict.get(SERVER_KEY))
