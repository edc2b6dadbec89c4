"""This thread's tenant connections, bounded: a process keeps at most
`TENANT_MAX_OPEN_CONNECTIONS` of them open, closing the least recently used first."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.conf import settings
from django.db import connections

_connections_lock = threading.Lock()
# Per thread, the tenant aliases whose connection is open, least recently used first.
_open_by_thread: dict[int, OrderedDict[str, None]] = {}


def close_connection(alias: str) -> None:
    """Close this thread's connection to `alias`, unless a transaction is using it."""
    conn = getattr(connections._connections, alias, None)
    if conn is not None and not conn.in_atomic_block:
        conn.close()


def note_connection_used(alias: str) -> None:
    """Record that this thread used `alias`, for the least-recently-used bound."""
    with _connections_lock:
        lru = _open_by_thread.setdefault(threading.get_ident(), OrderedDict())
        lru[alias] = None
        lru.move_to_end(alias)


def enforce_connection_cap() -> list[str]:
    """Close this thread's least recently used tenant connections while the process holds
    more than `TENANT_MAX_OPEN_CONNECTIONS`. Returns the aliases closed.

    Only the calling thread's connections are closed: a Django connection belongs to the
    thread that opened it. Called when a request finishes.
    """
    cap = settings.TENANT_MAX_OPEN_CONNECTIONS
    to_close: list[str] = []
    with _connections_lock:
        # A thread that ended took its connections with it; it no longer counts.
        alive = {thread.ident for thread in threading.enumerate()}
        for ident in [ident for ident in _open_by_thread if ident not in alive]:
            del _open_by_thread[ident]
        lru = _open_by_thread.get(threading.get_ident())
        if not lru:
            return to_close
        for alias in list(lru):
            conn = getattr(connections._connections, alias, None)
            if conn is None or conn.connection is None:
                del lru[alias]
        total = sum(len(aliases) for aliases in _open_by_thread.values())
        while total > cap and lru:
            alias, _ = lru.popitem(last=False)
            to_close.append(alias)
            total -= 1
    for alias in to_close:
        close_connection(alias)
    return to_close


def open_tenant_connection_count() -> int:
    with _connections_lock:
        return sum(len(aliases) for aliases in _open_by_thread.values())
