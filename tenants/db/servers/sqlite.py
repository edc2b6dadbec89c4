"""Server operations on SQLite: a tenant database is a file in `TENANT_SQLITE_DIR`; a
clone is a copy of the template through SQLite's backup API."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from django.db import connections

from tenants.db.exceptions import TenantDatabaseError
from tenants.db.servers.base import BOOKKEEPING_TABLES, quote_name

SYSTEM_DATABASES: frozenset[str] = frozenset()


def check_server(cfg: dict[str, Any]) -> None:
    """The server is the directory of the tenant files (`cfg`'s NAME), created if missing."""
    try:
        Path(cfg["NAME"]).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TenantDatabaseError(
            f"Directory {cfg['NAME']} cannot be used: {exc.strerror}."
        ) from exc


def server_answers(cfg: dict[str, Any]) -> bool:
    """Whether the directory of the tenant files is usable: there, or not made yet under a
    writable directory (nothing is created)."""
    path = Path(cfg["NAME"]).absolute()
    if path.is_dir():
        return True
    for parent in path.parents:
        if parent.exists():
            return not path.exists() and parent.is_dir() and os.access(parent, os.W_OK)
    return False


def connections_in_use(cfg: dict[str, Any], names: list[str]) -> int:
    """Open connections of this process to the files `names` (SQLite has no server to ask)."""
    wanted = set(names)
    count = 0
    for alias in list(connections.settings):
        conn = getattr(connections._connections, alias, None)
        if (
            conn is not None
            and conn.connection is not None
            and conn.settings_dict["NAME"] in wanted
        ):
            count += 1
    return count


def database_exists(cfg: dict[str, Any]) -> bool:
    return Path(cfg["NAME"]).exists()


def create_database(cfg: dict[str, Any], template: dict[str, Any] | None = None) -> None:
    path = Path(cfg["NAME"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if template is None:
        path.touch()
        return
    # The backup API copies what the WAL holds too, which a file copy would miss.
    with (
        contextlib.closing(sqlite3.connect(template["NAME"])) as source,
        contextlib.closing(sqlite3.connect(path)) as target,
    ):
        source.backup(target)


def drop_database(cfg: dict[str, Any]) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(cfg["NAME"] + suffix).unlink(missing_ok=True)


def database_has_data(cfg: dict[str, Any]) -> bool:
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
                conn.execute(f"SELECT 1 FROM {quote_name(table)} LIMIT 1").fetchone()
                for table in tables
                if table not in BOOKKEEPING_TABLES
            )
    except sqlite3.DatabaseError:
        return True
