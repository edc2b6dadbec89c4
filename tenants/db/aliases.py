"""Tenant database aliases: a tenant's `DATABASES` entry, registered lazily and thread-safely.

A tenant's settings are a copy of the normalised `default` entry with only the connection
fields replaced, so every key Django filled in once (`OPTIONS`, `TIME_ZONE`, `TEST`...) is
there (django-tenants #1085). An alias is `tenant_<slug>`; slugs never change and are never
reused, so an alias always names the same database.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import environ
from django.conf import settings
from django.db import connections

from tenants.db.connections import close_connection
from tenants.db.exceptions import TenantDatabaseError

if TYPE_CHECKING:
    from tenants.models import Tenant

ALIAS_PREFIX = "tenant_"
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
_register_lock = threading.Lock()


def alias_for(slug: str) -> str:
    return f"{ALIAS_PREFIX}{slug}"


def slug_for(alias: str) -> str:
    return alias.removeprefix(ALIAS_PREFIX)


def is_tenant_alias(alias: str) -> bool:
    return alias.startswith(ALIAS_PREFIX)


def is_postgresql(cfg: dict[str, Any]) -> bool:
    return cfg["ENGINE"] == "django.db.backends.postgresql"


def server_settings(database_url: str = "") -> dict[str, Any]:
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
    cfg = server_settings(database_url)
    if is_postgresql(cfg):
        if database_url and environ.Env.db_url_config(database_url).get("NAME"):
            return environ.Env.db_url_config(database_url)["NAME"]
        return f"{settings.TENANT_DB_PREFIX}{slug.replace('-', '_')}"
    return str(Path(settings.TENANT_SQLITE_DIR) / f"{slug}.sqlite3")


# A tenant alias on PostgreSQL works through a transaction pooler (PgBouncer's
# `pool_mode = transaction`): consecutive transactions of one Django connection may run on
# different server sessions, so it keeps nothing in a session. No server-side cursor (a
# `.iterator()` would DECLARE one WITH HOLD, lost with the session), no prepared statement
# (the next transaction's session would lack it: Django's default for psycopg 3, kept here
# so that an OPTIONS inherited from the main database's URL cannot turn them on).
# The time zone comes from the pooler: its database entry opens sessions in UTC
# (config/pgbouncer/), and TimeZone is a parameter it tracks per client.
POOLER_SAFE_OPTIONS = {"prepare_threshold": None}


def tenant_database_settings(tenant: Tenant) -> dict[str, Any]:
    cfg = server_settings(tenant.database_url)
    cfg["NAME"] = tenant.database_name or database_name_for(tenant.slug, tenant.database_url)
    if is_postgresql(cfg):
        # One tenant's unreachable server must not hold a worker for long.
        cfg["OPTIONS"]["connect_timeout"] = settings.TENANT_DB_CONNECT_TIMEOUT
        cfg["OPTIONS"].update(POOLER_SAFE_OPTIONS)
        cfg["DISABLE_SERVER_SIDE_CURSORS"] = True
    else:
        cfg["ENGINE"] = TENANT_SQLITE_ENGINE  # opens the file, never creates it
    _refuse_non_test_database(cfg)
    return cfg


def template_database_settings() -> dict[str, Any]:
    """The template's alias is always direct: a pooler keeps its server sessions to the
    template open after the client leaves, and PostgreSQL refuses to clone a database
    that has a session."""
    cfg = direct_server_settings(server_settings())
    cfg["NAME"] = database_name_for(TEMPLATE_SLUG)
    _refuse_non_test_database(cfg)
    return cfg


def direct_server_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """`cfg` reaching its server directly, for what must not go through a transaction
    pooler: creating, cloning and dropping databases, the template. For the default
    tenant server (TENANT_DATABASE_URL, the pooler) that is TENANT_DATABASE_ADMIN_URL;
    `cfg` itself when no admin URL is set or `cfg` is on another server."""
    admin_url = settings.TENANT_DATABASE_ADMIN_URL
    if not admin_url or not is_postgresql(cfg):
        return cfg
    pooled = server_settings()
    if not is_postgresql(pooled) or not _same_address(cfg, pooled):
        return cfg
    parsed = environ.Env.db_url_config(admin_url)
    direct = copy.deepcopy(cfg)
    for key in ("USER", "PASSWORD", "HOST", "PORT"):
        direct[key] = parsed.get(key, "")
    direct["OPTIONS"] = {**cfg.get("OPTIONS", {}), **parsed.get("OPTIONS", {})}
    return direct


def _same_address(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(str(a.get(key) or "") == str(b.get(key) or "") for key in ("HOST", "PORT", "USER"))


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
