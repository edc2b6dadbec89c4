"""Server-level operations on tenant databases (check, create, clone, drop), with one face
over the backends: each of `postgresql` and `sqlite` has the same functions, and the
functions here pick the backend from the settings' `ENGINE` (as Django's
`SESSION_ENGINE` picks a sessions backend). `cfg` is a `DATABASES`-style entry."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import connections

from tenants.db.aliases import TEMPLATE_SLUG, database_name_for, is_postgresql


def backend_for(cfg: dict[str, Any]) -> ModuleType:
    """The module of the server operations for `cfg`'s engine. Imported on first use, so
    an SQLite deployment never needs psycopg."""
    name = "postgresql" if is_postgresql(cfg) else "sqlite"
    return import_module(f"{__name__}.{name}")


def check_server(cfg: dict[str, Any]) -> None:
    """Raise TenantDatabaseError unless the server of `cfg` accepts a connection."""
    backend_for(cfg).check_server(cfg)


def server_answers(cfg: dict[str, Any]) -> bool:
    """Whether the server of `cfg` answers now; creates nothing (the circuit breaker's and
    the deploy check's probe)."""
    return backend_for(cfg).server_answers(cfg)


def connections_in_use(cfg: dict[str, Any], names: list[str]) -> int:
    """Connections open to the databases `names` of the server of `cfg`: every client's on
    PostgreSQL (`pg_stat_activity`), this process's on SQLite."""
    return backend_for(cfg).connections_in_use(cfg, names)


def database_exists(cfg: dict[str, Any]) -> bool:
    return backend_for(cfg).database_exists(cfg)


def create_database(cfg: dict[str, Any], template: dict[str, Any] | None = None) -> None:
    """Create the database of `cfg`, as a copy of `template` when given."""
    backend_for(cfg).create_database(cfg, template)


def drop_database(cfg: dict[str, Any]) -> None:
    """Drop the database of `cfg`. Only the explicit drop command and tests call this."""
    backend_for(cfg).drop_database(cfg)


def database_has_data(cfg: dict[str, Any]) -> bool:
    """True when the existing database of `cfg` has a row in any table other than those
    migrations fill by themselves. A database that cannot be read counts as holding data."""
    return backend_for(cfg).database_has_data(cfg)


def reserved_database_names(cfg: dict[str, Any]) -> set[str]:
    """Databases of the server of `cfg` that no tenant may use as its own: the main
    database, the template and the server's own."""
    names = {database_name_for(TEMPLATE_SLUG), f"{settings.TENANT_DB_PREFIX}{TEMPLATE_SLUG}"}
    for entry in (connections.settings["default"], settings.DATABASES["default"]):
        names.add(str(entry["NAME"]))
    return names | backend_for(cfg).SYSTEM_DATABASES


def same_server(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("ENGINE", "HOST", "PORT", "USER")
    return all((a.get(k) or "") == (b.get(k) or "") for k in keys)
