"""Server operations on SQLite: a tenant database is a file in `TENANT_SQLITE_DIR`; a
clone is a copy of the template through SQLite's backup API."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from tenants.db.servers.base import BOOKKEEPING_TABLES, quote_name

SYSTEM_DATABASES: frozenset[str] = frozenset()


def check_server(cfg: dict[str, Any]) -> None:
    Path(cfg["NAME"]).parent.mkdir(parents=True, exist_ok=True)


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
