"""Server operations on PostgreSQL: a tenant database is a database of the server, reached
through its `postgres` maintenance database; a clone is `CREATE DATABASE ... TEMPLATE`."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from tenants.db.aliases import direct_server_settings
from tenants.db.exceptions import TenantDatabaseError
from tenants.db.servers.base import BOOKKEEPING_TABLES, quote_name

# The server's own databases: never a tenant's.
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})


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


def _admin_connection(cfg: dict[str, Any]) -> psycopg.Connection:
    """An autocommit connection to the `postgres` database of `cfg`'s server, directly
    (TENANT_DATABASE_ADMIN_URL when `cfg` is behind the pooler): CREATE and DROP DATABASE
    run there, never through a transaction pooler."""
    cfg = direct_server_settings(cfg)
    try:
        return psycopg.connect(**_psycopg_params(cfg, dbname="postgres"))
    except psycopg.OperationalError as exc:
        raise TenantDatabaseError(
            f"Database server {cfg.get('HOST') or 'localhost'}:{cfg.get('PORT') or 5432} "
            "is unreachable."
        ) from exc


def check_server(cfg: dict[str, Any]) -> None:
    _admin_connection(cfg).close()


def server_answers(cfg: dict[str, Any]) -> bool:
    try:
        check_server(cfg)
    except TenantDatabaseError:
        return False
    return True


def connections_in_use(cfg: dict[str, Any], names: list[str]) -> int:
    """Sessions open on the server's databases `names`, whoever holds them."""
    if not names:
        return 0
    with _admin_connection(cfg) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s)", [names]
        ).fetchone()
    return int(row[0])


def database_exists(cfg: dict[str, Any]) -> bool:
    with _admin_connection(cfg) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        return row.fetchone() is not None


def create_database(cfg: dict[str, Any], template: dict[str, Any] | None = None) -> None:
    sql = f"CREATE DATABASE {quote_name(cfg['NAME'])}"
    if template is not None:
        sql += f" TEMPLATE {quote_name(template['NAME'])}"
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
    with _admin_connection(cfg) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {quote_name(cfg['NAME'])} WITH (FORCE)")


def database_has_data(cfg: dict[str, Any]) -> bool:
    try:
        conn = psycopg.connect(**_psycopg_params(direct_server_settings(cfg), dbname=cfg["NAME"]))
    except psycopg.OperationalError:
        return True
    with conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        return any(
            conn.execute(
                f"SELECT 1 FROM {quote_name(schema)}.{quote_name(table)} LIMIT 1"
            ).fetchone()
            for schema, table in tables
            if table not in BOOKKEEPING_TABLES
        )
