"""Tenant database aliases: a tenant's `DATABASES` entry, registered lazily and thread-safely.

A tenant's settings are a copy of the normalised `default` entry with only the connection
fields replaced, so every key Django filled in once (`OPTIONS`, `TIME_ZONE`, `TEST`...) is
there (django-tenants #1085). An alias is built from the tenant's server and slug:
`tenant_<slug>` on the default server (and for a tenant with its own URL),
`tenant_<server>__<slug>` on any other; slugs never change and are never reused, so an
alias always names the same database.

A database server (`tenants.models.DatabaseServer`) names the environment variables that
hold its URLs; they are read here, when a connection is configured, and never stored.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import environ
from django.conf import settings
from django.db import connections

from tenants.db.connections import close_connection
from tenants.db.exceptions import TenantDatabaseError

if TYPE_CHECKING:
    from tenants.models import DatabaseServer, Tenant

ALIAS_PREFIX = "tenant_"
# Between a server's name and a slug in an alias; neither a slug nor a server name has "_".
SERVER_SEPARATOR = "__"
TEMPLATE_SLUG = "template"
# The server `TENANT_DATABASE_URL` names; its tenants keep the alias `tenant_<slug>`.
DEFAULT_SERVER = "default"
# The settings a server row may name instead of a variable of its own: read from Django's
# settings (so `.env` and overrides apply), where empty means the main database's server.
DEFAULT_URL_SETTINGS = ("TENANT_DATABASE_URL", "TENANT_DATABASE_ADMIN_URL")
# The key of a tenant alias's settings that names its server (for the circuit breaker).
SERVER_KEY = "TENANT_SERVER"
# The key of a tenant alias's settings that holds the tenant's `database_name` as the alias
# was registered with it (a restore changes it; `register_tenant_database`).
DATABASE_KEY = "TENANT_DATABASE"
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


def alias_for(slug: str, server: str | None = DEFAULT_SERVER) -> str:
    """The alias of `slug` on the server named `server` (None: a tenant's own URL)."""
    if server is None or server == DEFAULT_SERVER:
        return f"{ALIAS_PREFIX}{slug}"
    return f"{ALIAS_PREFIX}{server}{SERVER_SEPARATOR}{slug}"


def slug_for(alias: str) -> str:
    return alias.removeprefix(ALIAS_PREFIX).rpartition(SERVER_SEPARATOR)[2]


def is_tenant_alias(alias: str) -> bool:
    return alias.startswith(ALIAS_PREFIX)


def is_postgresql(cfg: dict[str, Any]) -> bool:
    return cfg["ENGINE"] == "django.db.backends.postgresql"


class ServerUrlError(TenantDatabaseError):
    """A database server's environment variable is unset or holds no valid URL."""


def read_url_env(name: str) -> str:
    """The value of the environment variable `name` (for `DEFAULT_URL_SETTINGS`, the
    setting of that name), '' when unset."""
    if name in DEFAULT_URL_SETTINGS:
        return getattr(settings, name, "") or ""
    return os.environ.get(name, "").strip()


def check_url(url: str) -> dict[str, Any]:
    """The parsed URL; ServerUrlError unless it is a postgres:// or sqlite:// URL."""
    try:
        with warnings.catch_warnings():  # an unknown scheme is reported below, not warned
            warnings.simplefilter("ignore")
            parsed = environ.Env.db_url_config(url)
    except Exception as exc:
        raise ServerUrlError("not a database URL") from exc
    if parsed.get("ENGINE") not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ServerUrlError("not a postgres:// or sqlite:// URL")
    return parsed


def server_url(server: DatabaseServer | None, *, admin: bool = False) -> str:
    """The URL of `server` (the default server: None) read from the environment variable
    its row names; with `admin`, its direct URL for DDL when it has one. '' means the main
    database's server (SQLite: `TENANT_SQLITE_DIR`). ServerUrlError when a variable of its
    own is unset or invalid."""
    if server is None:
        names = ["TENANT_DATABASE_ADMIN_URL"] if admin else []
        names.append("TENANT_DATABASE_URL")
    else:
        names = [server.admin_url_env] if admin and server.admin_url_env else []
        names.append(server.url_env)
    for name in names:
        url = read_url_env(name)
        if url:
            check_url(url)
            return url
        if name not in DEFAULT_URL_SETTINGS:
            raise ServerUrlError(f"environment variable {name} is not set")
    return ""


def settings_of_server(server: DatabaseServer | None, *, admin: bool = False) -> dict[str, Any]:
    """`server_settings` of a registered server (None: the default one)."""
    return server_settings(server_url(server, admin=admin))


def server_settings(database_url: str = "") -> dict[str, Any]:
    """Settings of the server that holds a tenant database, before NAME is chosen: NAME is
    the URL's database on PostgreSQL, the directory of the tenant files on SQLite."""
    cfg = copy.deepcopy(connections.settings["default"])
    url = database_url or settings.TENANT_DATABASE_URL
    if not url and not is_postgresql(cfg):
        cfg["NAME"] = str(settings.TENANT_SQLITE_DIR)
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


def database_name_for(
    slug: str, database_url: str = "", *, server: DatabaseServer | None = None
) -> str:
    """The database a new tenant gets: `<prefix><slug>` on PostgreSQL (or the database its
    own `database_url` names), a file in the server's directory on SQLite."""
    if database_url:
        cfg = server_settings(database_url)
        if is_postgresql(cfg) and environ.Env.db_url_config(database_url).get("NAME"):
            return environ.Env.db_url_config(database_url)["NAME"]
    else:
        cfg = settings_of_server(server)
    if is_postgresql(cfg):
        return f"{settings.TENANT_DB_PREFIX}{slug.replace('-', '_')}"
    return str(Path(cfg["NAME"]) / f"{slug}.sqlite3")


# A tenant alias on PostgreSQL works through a transaction pooler (PgBouncer's
# `pool_mode = transaction`): consecutive transactions of one Django connection may run on
# different server sessions, so it keeps nothing in a session. No server-side cursor (a
# `.iterator()` would DECLARE one WITH HOLD, lost with the session), no prepared statement
# (the next transaction's session would lack it: Django's default for psycopg 3, kept here
# so that an OPTIONS inherited from the main database's URL cannot turn them on).
# The time zone comes from the pooler: its database entry opens sessions in UTC
# (config/pgbouncer/), and TimeZone is a parameter it tracks per client.
POOLER_SAFE_OPTIONS = {"prepare_threshold": None}


def tenant_database_settings(tenant: Tenant, *, admin: bool = False) -> dict[str, Any]:
    """The `DATABASES` entry of the tenant's database; with `admin`, reached through its
    server's direct URL (for creating, cloning and dropping it)."""
    server = tenant.server if tenant.server_id else None
    if tenant.database_url:
        cfg = server_settings(tenant.database_url)
    else:
        cfg = settings_of_server(server, admin=admin)
    cfg["NAME"] = tenant.database_name or database_name_for(
        tenant.slug, tenant.database_url, server=server
    )
    cfg[SERVER_KEY] = tenant.server_name
    cfg[DATABASE_KEY] = tenant.database_name
    if is_postgresql(cfg):
        # One tenant's unreachable server must not hold a worker for long.
        cfg["OPTIONS"]["connect_timeout"] = settings.TENANT_DB_CONNECT_TIMEOUT
        cfg["OPTIONS"].update(POOLER_SAFE_OPTIONS)
        cfg["DISABLE_SERVER_SIDE_CURSORS"] = True
    else:
        cfg["ENGINE"] = TENANT_SQLITE_ENGINE  # opens the file, never creates it
    _refuse_non_test_database(cfg)
    return cfg


def template_database_settings(server: DatabaseServer | None = None) -> dict[str, Any]:
    """The template of `server` (None: the default), reached through its direct URL: every
    server has its own, since PostgreSQL clones only within one server."""
    cfg = settings_of_server(server, admin=True)
    cfg["NAME"] = database_name_for(TEMPLATE_SLUG, server=server)
    cfg[SERVER_KEY] = server.name if server is not None else DEFAULT_SERVER
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
    """Make the tenant's alias usable and return it. The fast path takes no lock.

    A restore (`tenants.lifecycle.backup`) puts a tenant on another database of the same
    server, so under the same alias: an alias registered for its previous database is
    registered again, and this thread's connection made from the previous settings is
    dropped, so that no request goes on with the database the tenant left."""
    alias = tenant.alias
    registered = connections.settings.get(alias)
    if registered is None:
        return register_alias(alias, tenant_database_settings(tenant))
    if tenant.database_name and registered.get(DATABASE_KEY, tenant.database_name) != (
        tenant.database_name
    ):
        with _register_lock:
            connections.settings[alias] = tenant_database_settings(tenant)
    current = getattr(connections._connections, alias, None)
    if (
        current is not None
        and current.settings_dict is not connections.settings[alias]
        and not current.in_atomic_block
    ):
        current.close()
        with contextlib.suppress(AttributeError):
            delattr(connections._connections, alias)
    return alias


def unregister_alias(alias: str) -> None:
    """Close this thread's connection to `alias` and forget the alias."""
    with _register_lock:
        if alias in connections.settings:
            close_connection(alias)
            del connections.settings[alias]
            with contextlib.suppress(AttributeError):
                delattr(connections._connections, alias)
