"""Tenant database aliases: settings, lazy thread-safe registration, bounded connections,
and the server-level operations (create, clone, drop) that provisioning needs.

A tenant's settings are a copy of the normalised `default` entry with only the connection
fields replaced, so every key Django filled in once (`OPTIONS`, `TIME_ZONE`, `TEST`...) is
there (django-tenants #1085). An alias is `tenant_<slug>`; slugs never change and are never
reused, so an alias always names the same database.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import environ
from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

if TYPE_CHECKING:
    from tenants.models import Tenant

logger = logging.getLogger("tenants.db")

TEMPLATE_SLUG = "template"
# Every SQLite alias, main or tenant: concurrent writers wait for the lock (a transaction
# takes it at BEGIN, so a read-then-write never fails at once with "database is locked"),
# and WAL lets readers go on while one writes.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}
TENANT_SQLITE_ENGINE = "tenants.backends.sqlite3"
# Tables a freshly migrated database fills by itself: rows there are not a tenant's data.
BOOKKEEPING_TABLES = frozenset({"django_migrations", "django_content_type", "auth_permission"})
_register_lock = threading.Lock()
_connections_lock = threading.Lock()
# Per thread, the tenant aliases whose connection is open, least recently used first.
_open_by_thread: dict[int, OrderedDict[str, None]] = {}


class TenantDatabaseError(Exception):
    """A tenant database server could not be reached or refused an operation."""


def alias_for(slug: str) -> str:
    return f"tenant_{slug}"


def _psycopg_params(cfg: dict[str, Any], *, dbname: str) -> dict[str, Any]:
    """psycopg.connect() arguments for database `dbname` of the server `cfg` describes."""
    return {
        "dbname": dbname,
        "user": cfg.get("USER") or None,
        "password": cfg.get("PASSWORD") or None,
        "host": cfg.get("HOST") or None,
        "port": cfg.get("PORT") or None,
        "connect_timeout": int(cfg.get("OPTIONS", {}).get("connect_timeout", 5)),
        "autocommit": True,
    }


def is_tenant_alias(alias: str) -> bool:
    return alias.startswith("tenant_")


def is_postgresql(cfg: dict[str, Any]) -> bool:
    return cfg["ENGINE"] == "django.db.backends.postgresql"


def _server_settings(database_url: str = "") -> dict[str, Any]:
    """Settings of the server that holds a tenant database, before NAME is chosen."""
    cfg = copy.deepcopy(connections.settings["default"])
    url = database_url or settings.TENANT_DATABASE_URL
    if url:
        parsed = environ.Env.db_url_config(url)
        # The main database's options belong to its engine: a server of another engine
        # (PostgreSQL tenants beside an SQLite main database) starts from its URL's own.
        inherited = cfg.get("OPTIONS", {}) if parsed.get("ENGINE") == cfg["ENGINE"] else {}
        for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT"):
            cfg[key] = parsed.get(key, "")
        cfg["OPTIONS"] = {**inherited, **parsed.get("OPTIONS", {})}
        if is_postgresql(cfg):
            cfg["OPTIONS"].setdefault("connect_timeout", 5)
    if not is_postgresql(cfg):
        cfg["OPTIONS"] = {**SQLITE_OPTIONS, **cfg.get("OPTIONS", {})}
    cfg["TEST"] = {
        "CHARSET": None,
        "COLLATION": None,
        "MIGRATE": True,
        "MIRROR": None,
        "NAME": None,
    }
    return cfg


def database_name_for(slug: str, database_url: str = "") -> str:
    """The database a new tenant gets: `<prefix><slug>` on PostgreSQL, a file on SQLite."""
    cfg = _server_settings(database_url)
    if is_postgresql(cfg):
        if database_url and environ.Env.db_url_config(database_url).get("NAME"):
            return environ.Env.db_url_config(database_url)["NAME"]
        return f"{settings.TENANT_DB_PREFIX}{slug.replace('-', '_')}"
    return str(Path(settings.TENANT_SQLITE_DIR) / f"{slug}.sqlite3")


def tenant_database_settings(tenant: Tenant) -> dict[str, Any]:
    cfg = _server_settings(tenant.database_url)
    cfg["NAME"] = tenant.database_name or database_name_for(tenant.slug, tenant.database_url)
    if is_postgresql(cfg):
        # One tenant's unreachable server must not hold a worker for long.
        cfg["OPTIONS"]["connect_timeout"] = settings.TENANT_DB_CONNECT_TIMEOUT
    else:
        cfg["ENGINE"] = TENANT_SQLITE_ENGINE  # opens the file, never creates it
    _refuse_non_test_database(cfg)
    return cfg


def template_database_settings() -> dict[str, Any]:
    cfg = _server_settings()
    cfg["NAME"] = database_name_for(TEMPLATE_SLUG)
    _refuse_non_test_database(cfg)
    return cfg


def _refuse_non_test_database(cfg: dict[str, Any]) -> None:
    if not settings.TESTING:
        return
    name = cfg["NAME"] if is_postgresql(cfg) else Path(cfg["NAME"]).parent.name
    is_test = name.startswith("test_") if is_postgresql(cfg) else "test-tenants" in cfg["NAME"]
    if not is_test:
        raise TenantDatabaseError(f"Refusing to use non-test database {name!r} under tests.")


def register_alias(alias: str, cfg: dict[str, Any]) -> str:
    """Add `alias` to `DATABASES` once; safe to call from any thread."""
    if alias in connections.settings:
        return alias
    with _register_lock:
        if alias not in connections.settings:
            connections.settings[alias] = cfg
    return alias


def register_tenant_database(tenant: Tenant) -> str:
    """Make the tenant's alias usable and return it. The fast path takes no lock."""
    alias = tenant.alias
    if alias in connections.settings:
        return alias
    return register_alias(alias, tenant_database_settings(tenant))


def unregister_alias(alias: str) -> None:
    """Close this thread's connection to `alias` and forget the alias."""
    with _register_lock:
        if alias in connections.settings:
            close_connection(alias)
            del connections.settings[alias]
            with contextlib.suppress(AttributeError):
                delattr(connections._connections, alias)


def close_connection(alias: str) -> None:
    """Close this thread's connection to `alias`, unless a transaction is using it."""
    conn = getattr(connections._connections, alias, None)
    if conn is not None and not conn.in_atomic_block:
        conn.close()


# --- bounded open connections ------------------------------------------------------------
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


# --- server-level operations -------------------------------------------------------------
def _admin_connection(cfg: dict[str, Any]):
    import psycopg

    try:
        return psycopg.connect(**_psycopg_params(cfg, dbname="postgres"))
    except psycopg.OperationalError as exc:
        raise TenantDatabaseError(
            f"Database server {cfg.get('HOST') or 'localhost'}:{cfg.get('PORT') or 5432} "
            "is unreachable."
        ) from exc


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_server(cfg: dict[str, Any]) -> None:
    """Raise TenantDatabaseError unless the server of `cfg` accepts a connection."""
    if is_postgresql(cfg):
        _admin_connection(cfg).close()
    else:
        Path(cfg["NAME"]).parent.mkdir(parents=True, exist_ok=True)


def database_exists(cfg: dict[str, Any]) -> bool:
    if not is_postgresql(cfg):
        return Path(cfg["NAME"]).exists()
    with _admin_connection(cfg) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        return row.fetchone() is not None


def create_database(cfg: dict[str, Any], template: dict[str, Any] | None = None) -> None:
    """Create the database of `cfg`, as a copy of `template` when given."""
    if not is_postgresql(cfg):
        path = Path(cfg["NAME"])
        path.parent.mkdir(parents=True, exist_ok=True)
        if template is not None:
            # The backup API copies what the WAL holds too, which a file copy would miss.
            with (
                contextlib.closing(sqlite3.connect(template["NAME"])) as source,
                contextlib.closing(sqlite3.connect(path)) as target,
            ):
                source.backup(target)
        else:
            path.touch()
        return
    import psycopg

    sql = f"CREATE DATABASE {_quote(cfg['NAME'])}"
    if template is not None:
        sql += f" TEMPLATE {_quote(template['NAME'])}"
    with _admin_connection(cfg) as conn:
        for attempt in range(20):
            try:
                conn.execute(sql)
                return
            except psycopg.errors.DuplicateDatabase:
                return
            except psycopg.errors.ObjectInUse:
                # Another clone of the same template is under way; it takes milliseconds.
                if attempt == 19:
                    raise
                threading.Event().wait(0.05 * (attempt + 1))


def drop_database(cfg: dict[str, Any]) -> None:
    """Drop the database of `cfg`. Only the explicit drop command and tests call this."""
    if not is_postgresql(cfg):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(cfg["NAME"] + suffix).unlink(missing_ok=True)
        return
    with _admin_connection(cfg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {_quote(cfg['NAME'])} WITH (FORCE)")


def database_has_data(cfg: dict[str, Any]) -> bool:
    """True when the existing database of `cfg` has a row in any table other than those
    migrations fill by themselves. A database that cannot be read counts as holding data."""
    if not is_postgresql(cfg):
        path = Path(cfg["NAME"])
        if not path.exists() or path.stat().st_size == 0:
            return False
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                tables = [
                    row[0]
                    for row in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite_%'"
                    )
                ]
                return any(
                    conn.execute(f"SELECT 1 FROM {_quote(table)} LIMIT 1").fetchone()
                    for table in tables
                    if table not in BOOKKEEPING_TABLES
                )
        except sqlite3.DatabaseError:
            return True
    import psycopg

    try:
        conn = psycopg.connect(**_psycopg_params(cfg, dbname=cfg["NAME"]))
    except psycopg.OperationalError:
        return True
    with conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        return any(
            conn.execute(f"SELECT 1 FROM {_quote(schema)}.{_quote(table)} LIMIT 1").fetchone()
            for schema, table in tables
            if table not in BOOKKEEPING_TABLES
        )


def reserved_database_names(cfg: dict[str, Any]) -> set[str]:
    """Databases of the server of `cfg` that no tenant may use as its own: the main
    database, the template and PostgreSQL's own."""
    names = {database_name_for(TEMPLATE_SLUG)}
    for entry in (connections.settings["default"], settings.DATABASES["default"]):
        names.add(str(entry["NAME"]))
    if is_postgresql(cfg):
        names.update({"postgres", "template0", "template1"})
    return names


def same_server(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("ENGINE", "HOST", "PORT", "USER")
    return all((a.get(k) or "") == (b.get(k) or "") for k in keys)


# --- unavailable tenant databases --------------------------------------------------------
# A tenant whose database refuses connections is answered 503 at once for
# `TENANT_DB_RETRY_INTERVAL` seconds (a per-process circuit breaker), then the next request
# tries again, so the tenant recovers by itself. Failures are also written to the shared
# cache, so /ready on any process can name the tenants that failed recently.
FAILURES_CACHE_KEY = "tenants:database-failures"
FAILURES_REPORTED_FOR = 300  # seconds a failure stays listed by /ready unless it recovers
_failures_lock = threading.Lock()
_failed_at: dict[str, float] = {}  # alias -> time.monotonic() of the last failure


def slug_for(alias: str) -> str:
    return alias.removeprefix("tenant_")


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


def circuit_open(alias: str) -> bool:
    """True while requests for `alias` should be answered 503 without trying to connect."""
    failed = _failed_at.get(alias)
    return failed is not None and time.monotonic() - failed < settings.TENANT_DB_RETRY_INTERVAL


def recently_unavailable_tenants() -> list[str]:
    """Slugs of tenants whose database failed within `FAILURES_REPORTED_FOR` seconds and
    has not answered since, as seen by this process and (through the cache) by others.
    Reads no tenant database."""
    now_mono, now = time.monotonic(), time.time()
    slugs = {
        slug_for(alias)
        for alias, at in list(_failed_at.items())
        if now_mono - at < FAILURES_REPORTED_FOR
    }
    try:
        shared = cache_failures()
    except Exception:  # the cache is down: this process's view alone
        shared = {}
    slugs.update(slug for slug, at in shared.items() if now - at < FAILURES_REPORTED_FOR)
    return sorted(slugs)


def cache_failures() -> dict[str, float]:
    from django.core.cache import cache

    return dict(cache.get(FAILURES_CACHE_KEY) or {})


def _share_failure(slug: str, at: float | None) -> None:
    """Best effort: a cache outage only makes /ready on other processes less informed."""
    from django.core.cache import cache

    try:
        failures = cache_failures()
        if at is None:
            if failures.pop(slug, None) is None:
                return
        else:
            failures[slug] = at
        cache.set(FAILURES_CACHE_KEY, failures, FAILURES_REPORTED_FOR)
    except Exception:
        logger.warning("Cache unavailable; tenant database failure of %s not shared", slug)


@receiver(connection_created, dispatch_uid="tenants.db.connection_created")
def _close_circuit_on_connect(sender, connection, **kwargs) -> None:
    if is_tenant_alias(connection.alias):
        record_database_recovery(connection.alias)
