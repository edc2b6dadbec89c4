"""This thread's tenant connections, bounded and kept at a cost per request that does not
grow with the number of tenants a process has served.

- The bound: a process keeps at most `TENANT_MAX_OPEN_CONNECTIONS` tenant connections
  open, closing the least recently used first.
- The housekeeping: Django's own request signals (`reset_queries`, `close_old_connections`)
  walk every alias in `DATABASES` twice a request, and a worker that has served a thousand
  tenants has a thousand aliases. `begin_request` and `end_request` replace them: they
  look after the main database's connections and the tenant connections this thread used
  since the last request, and walk the rest at most every `TENANT_CONNECTION_SWEEP_SECONDS`
  (closing what is past its age or broken, as Django would have).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.core import signals
from django.db import close_old_connections, connections, reset_queries

_connections_lock = threading.Lock()
# Per thread, the tenant aliases whose connection may be open, least recently used first.
_open_by_thread: dict[int, OrderedDict[str, None]] = {}
# Per thread: the tenant aliases used since the last request ended, and the last full sweep.
_local = threading.local()
# Seconds between two walks over every connection of a thread (see the module docstring).
SWEEP_SECONDS = 30.0


def close_connection(alias: str) -> None:
    """Close this thread's connection to `alias`, unless a transaction is using it."""
    conn = getattr(connections._connections, alias, None)
    if conn is not None and not conn.in_atomic_block:
        conn.close()


def _used_since_last_request() -> set[str]:
    used = getattr(_local, "used", None)
    if used is None:
        used = _local.used = set()
    return used


def note_tenant_activated(alias: str) -> None:
    """Record that this thread may use `alias` in the current request (tenants.context
    calls it when a tenant is activated), so that the request's end looks after it."""
    _used_since_last_request().add(alias)


def note_connection_used(alias: str) -> None:
    """Record that this thread used `alias`, for the least-recently-used bound."""
    _used_since_last_request().add(alias)
    with _connections_lock:
        lru = _open_by_thread.setdefault(threading.get_ident(), OrderedDict())
        lru[alias] = None
        lru.move_to_end(alias)


def _is_open(alias: str) -> bool:
    conn = getattr(connections._connections, alias, None)
    return conn is not None and conn.connection is not None


def enforce_connection_cap() -> list[str]:
    """Close this thread's least recently used tenant connections while the process holds
    more than `TENANT_MAX_OPEN_CONNECTIONS`. Returns the aliases closed.

    Only the calling thread's connections are closed: a Django connection belongs to the
    thread that opened it. Called when a request finishes; under the cap it costs a sum
    over the process's threads, not a walk over its connections.
    """
    cap = settings.TENANT_MAX_OPEN_CONNECTIONS
    to_close: list[str] = []
    with _connections_lock:
        lru = _open_by_thread.get(threading.get_ident())
        if not lru or sum(len(aliases) for aliases in _open_by_thread.values()) <= cap:
            return to_close
        # Over the cap by the count: first forget entries whose connection closed by
        # itself (past its age, broken) and threads that ended, then close the oldest.
        for alias in [alias for alias in lru if not _is_open(alias)]:
            del lru[alias]
        _forget_ended_threads()
        total = sum(len(aliases) for aliases in _open_by_thread.values())
        while total > cap and lru:
            alias, _ = lru.popitem(last=False)
            to_close.append(alias)
            total -= 1
    for alias in to_close:
        close_connection(alias)
    return to_close


def _forget_ended_threads() -> None:
    # A thread that ended took its connections with it; it no longer counts.
    alive = {thread.ident for thread in threading.enumerate()}
    for ident in [ident for ident in _open_by_thread if ident not in alive]:
        del _open_by_thread[ident]


def open_tenant_connection_count() -> int:
    with _connections_lock:
        return sum(len(aliases) for aliases in _open_by_thread.values())


# --- request housekeeping -------------------------------------------------------------
def _main_aliases() -> tuple[str, ...]:
    """The aliases of the settings file (`default` and any other): never a tenant's."""
    main = getattr(_local, "main", None)
    if main is None:
        from tenants.db.aliases import is_tenant_alias

        main = _local.main = tuple(a for a in settings.DATABASES if not is_tenant_alias(a))
    return main


def _look_after(aliases) -> None:
    """What Django does for every connection at a request's edges, for `aliases` only:
    forget the query log, close a connection past its age, broken or left outside
    autocommit, and re-check its health before its next use. A connection inside a
    transaction is left to the code that opened it (a test's transaction, a command)."""
    for alias in aliases:
        conn = getattr(connections._connections, alias, None)
        if conn is not None and not conn.in_atomic_block:
            conn.queries_log.clear()
            conn.close_if_unusable_or_obsolete()


def _from_a_server(sender) -> bool:
    """Whether the signal comes from Django's WSGI or ASGI handler (a response names its
    handler class). Django's test client keeps connection housekeeping out of its requests
    (it disconnects close_old_connections around them, and its responses name no
    handler): the test owns its connections."""
    return sender is not None and getattr(sender, "__module__", "") != "django.test.client"


def begin_request(sender=None, **kwargs) -> None:
    if _from_a_server(sender):
        _look_after(_main_aliases())


def end_request(sender=None, **kwargs) -> None:
    if not _from_a_server(sender):
        enforce_connection_cap()
        return
    used = _used_since_last_request()
    _look_after(_main_aliases())
    _look_after(used)
    closed = [alias for alias in used if not _is_open(alias)]
    used.clear()
    if closed:
        with _connections_lock:
            lru = _open_by_thread.get(threading.get_ident())
            for alias in closed:
                if lru:
                    lru.pop(alias, None)
    now = time.monotonic()
    if now - getattr(_local, "swept_at", 0.0) >= SWEEP_SECONDS:
        _local.swept_at = now
        _look_after(list(connections.settings))
        with _connections_lock:
            lru = _open_by_thread.get(threading.get_ident())
            for alias in [alias for alias in lru or () if not _is_open(alias)]:
                del lru[alias]
            _forget_ended_threads()
    enforce_connection_cap()


def install_request_housekeeping() -> None:
    """Replace Django's per-request walks over every connection with `begin_request` and
    `end_request` (called from TenantsConfig.ready())."""
    signals.request_started.disconnect(reset_queries)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.request_started.connect(begin_request, dispatch_uid="tenants.begin_request")
    signals.request_finished.connect(end_request, dispatch_uid="tenants.end_request")
