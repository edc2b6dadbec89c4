"""The transaction pooler in front of the default tenant server, seen from the app.

`TENANT_DATABASE_URL` is a pooler when `TENANT_DATABASE_ADMIN_URL` names the same server at
another address (docs/architecture.md, "Behind PgBouncer"). `check --deploy` reads the
pooler's limits from its admin console (`SHOW CONFIG` in the virtual database `pgbouncer`,
allowed to the app's user by `stats_users`) and the server's `max_connections` through the
admin URL, and flags limits that cannot hold what the settings let the app open:

- tenants.W100: the pooler's configuration cannot be read;
- tenants.W101: processes x TENANT_MAX_OPEN_CONNECTIONS exceeds the pooler's
  `max_client_conn` (processes = WEB_CONCURRENCY x APP_REPLICAS);
- tenants.W102: the pooler may open as many PostgreSQL backends as the server allows, or
  more (`max_user_connections` 0 or not below max_connections - superuser_reserved), so
  the server is not protected whatever the number of tenants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

from tenants.db.aliases import direct_server_settings, is_postgresql, server_settings

CONSOLE_DATABASE = "pgbouncer"


@dataclass(frozen=True)
class Pooler:
    client_limit: int  # max_client_conn
    backend_limit: int  # max_user_connections; 0 means none


def pooled_server() -> dict[str, Any] | None:
    """The default tenant server's settings when they name a pooler, else None."""
    if not settings.TENANT_DATABASE_ADMIN_URL:
        return None
    cfg = server_settings()
    if not is_postgresql(cfg):
        return None
    direct = direct_server_settings(cfg)
    same = all(str(cfg.get(k) or "") == str(direct.get(k) or "") for k in ("HOST", "PORT"))
    return None if same else cfg


def read_pooler(cfg: dict[str, Any]) -> Pooler:
    """The pooler's limits, from its admin console (raises psycopg.Error)."""
    import psycopg

    with psycopg.connect(
        dbname=CONSOLE_DATABASE,
        user=cfg.get("USER") or None,
        password=cfg.get("PASSWORD") or None,
        host=cfg.get("HOST") or None,
        port=cfg.get("PORT") or None,
        connect_timeout=5,
        autocommit=True,
    ) as conn:
        rows = conn.execute("SHOW CONFIG").fetchall()
    values = {row[0]: row[1] for row in rows}
    return Pooler(
        client_limit=int(values["max_client_conn"]),
        backend_limit=int(values["max_user_connections"]),
    )


def server_backend_limit(cfg: dict[str, Any]) -> int:
    """Backends the server lets non-superusers open (raises psycopg.Error)."""
    import psycopg

    direct = direct_server_settings(cfg)
    with psycopg.connect(
        dbname="postgres",
        user=direct.get("USER") or None,
        password=direct.get("PASSWORD") or None,
        host=direct.get("HOST") or None,
        port=direct.get("PORT") or None,
        connect_timeout=5,
        autocommit=True,
    ) as conn:
        total = int(conn.execute("SHOW max_connections").fetchone()[0])
        reserved = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0])
    return total - reserved


def app_clients() -> int:
    """Pooler clients the settings let the app open: every process's cap."""
    processes = settings.WEB_CONCURRENCY * settings.APP_REPLICAS
    return processes * settings.TENANT_MAX_OPEN_CONNECTIONS


def limit_problems(pooler: Pooler, *, clients: int, server_limit: int | None) -> list[Warning]:
    """What is wrong with `pooler`'s limits for `clients` app connections and a server
    that allows `server_limit` backends (None: unknown)."""
    problems = []
    if clients > pooler.client_limit:
        problems.append(
            Warning(
                f"The tenant database pooler accepts {pooler.client_limit} clients "
                f"(max_client_conn); the app may open {clients} (WEB_CONCURRENCY "
                f"{settings.WEB_CONCURRENCY} x APP_REPLICAS {settings.APP_REPLICAS} x "
                f"TENANT_MAX_OPEN_CONNECTIONS {settings.TENANT_MAX_OPEN_CONNECTIONS}).",
                hint="Raise the pooler's max_client_conn, or lower the workers or the cap.",
                id="tenants.W101",
            )
        )
    if server_limit is not None and not 0 < pooler.backend_limit < server_limit:
        limit = pooler.backend_limit or "no limit"
        problems.append(
            Warning(
                f"The tenant database pooler may open {limit} backends "
                f"(max_user_connections); the server allows {server_limit} "
                "(max_connections - superuser_reserved_connections).",
                hint="Set max_user_connections below the server's limit, leaving room for "
                "the direct connections (main database, provisioning).",
                id="tenants.W102",
            )
        )
    return problems


@register(Tags.database, deploy=True)
def check_pooler_limits(app_configs, databases=None, **kwargs):
    cfg = pooled_server()
    if cfg is None or not databases:
        return []
    try:
        pooler = read_pooler(cfg)
    except Exception as exc:  # any failure to read it is the finding
        return [
            Warning(
                f"The tenant database pooler's configuration cannot be read "
                f"({type(exc).__name__}).",
                hint="TENANT_DATABASE_URL names a pooler (TENANT_DATABASE_ADMIN_URL is "
                "another address); add its user to PgBouncer's stats_users.",
                id="tenants.W100",
            )
        ]
    try:
        server_limit = server_backend_limit(cfg)
    except Exception:  # an unreachable server is the tenant database check's finding
        server_limit = None
    return limit_problems(pooler, clients=app_clients(), server_limit=server_limit)
