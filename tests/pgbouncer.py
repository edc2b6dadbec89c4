"""PgBouncer in the test run, as production runs it: `make test-pgbouncer`.

Loaded as a plugin (`python -m pytest -p tests.pgbouncer`), it does nothing unless
`TENANTKIT_PGBOUNCER=1`. Then, before pytest-django reads the settings, it

- starts Debian's pgbouncer, rendered from `config/pgbouncer/pgbouncer.ini.template`, in
  front of the PostgreSQL server of `DATABASE_URL`, and points `TENANT_DATABASE_URL` at it
  (tenant queries go through the pooler) and `TENANT_DATABASE_ADMIN_URL` at the server
  (provisioning DDL goes direct); the main database stays direct;
- starts a second PostgreSQL server (a cluster of the machine's binaries on another port,
  `bench.servers.PgServer`) with its own pgbouncer in front, and exports its pooled and
  direct URLs as `TENANTKIT_SECOND_SERVER_URL` and `TENANTKIT_SECOND_SERVER_ADMIN_URL`;

and stops all of it when the run ends. A missing pgbouncer leaves the run direct (the
pooler's tests skip), or stops it with `TENANTKIT_REQUIRE_ALL=1` (CI).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from string import Template

import pytest

from bench.servers import Pooler, auth_line, pgbouncer_defaults

ENABLE = "TENANTKIT_PGBOUNCER"
SECOND_SERVER_URL = "TENANTKIT_SECOND_SERVER_URL"
SECOND_SERVER_ADMIN_URL = "TENANTKIT_SECOND_SERVER_ADMIN_URL"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config" / "pgbouncer"
INSTALL = "apt-get install pgbouncer"
# The shipped defaults, except: a backend limit small enough that a test's 200 tenants
# exceed it tenfold; a short wait for a backend (a starved test fails instead of hanging);
# a failed login retried after 0.2 s, as the tests' TENANT_DB_RETRY_INTERVAL is (the
# tests close a database, reopen it, and expect it served at once).
TEST_LIMITS = {
    "PGBOUNCER_LISTEN_ADDR": "127.0.0.1",
    "PGBOUNCER_MAX_USER_CONNECTIONS": "20",
    "PGBOUNCER_QUERY_WAIT_TIMEOUT": "3",
    "PGBOUNCER_SERVER_LOGIN_RETRY": "0.2",
}
# The second server is small (its backends are what the pooler in front of it bounds) and
# throw-away: no durability, so that creating and dropping hundreds of tenant databases is
# quick.
SECOND_SERVER_SETTINGS = {
    "max_connections": "40",
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'16MB'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def binary() -> str | None:
    """Debian's pgbouncer (in /usr/sbin, outside a user's PATH), or PATH's."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


def enabled() -> bool:
    return os.environ.get(ENABLE) == "1"


defaults = pgbouncer_defaults  # config/pgbouncer/defaults.env as a dict


def render(values: dict[str, str]) -> str:
    """The configuration, as envsubst renders it; a variable left unset is an error."""
    template = Template((CONFIG_DIR / "pgbouncer.ini.template").read_text())
    return template.substitute({**defaults(), **values})


userlist_line = auth_line  # one auth file line (bench.servers)


class PgBouncer(Pooler):
    """`with PgBouncer(host, port, user, password) as pooler:` pgbouncer on `pooler.port`
    in front of the server at host:port, with the tests' limits; its files are removed on
    exit (bench.servers.Pooler, the benchmark's pooler, with TEST_LIMITS)."""

    def __init__(self, host: str, port: int, user: str, password: str, **limits: str):
        super().__init__(
            int(port), server_host=host, user=user, password=password, **{**TEST_LIMITS, **limits}
        )


class PoolerTopology:
    """The run's servers: the pooler in front of DATABASE_URL's server, a second server
    and its pooler. Started once, before the settings are read."""

    def __init__(self, database_url: str) -> None:
        import environ

        main = environ.Env.db_url_config(database_url)
        if main["ENGINE"] != "django.db.backends.postgresql":
            raise pytest.UsageError(f"{ENABLE}=1 needs DATABASE_URL on PostgreSQL")
        self.user = main.get("USER") or "postgres"
        # The server's own password when it has one; a made-up one for the pooler's clients
        # when it trusts local connections.
        self.server_password = main.get("PASSWORD") or ""
        self.password = self.server_password or secrets.token_urlsafe(18)
        self.host = main.get("HOST") or "127.0.0.1"
        self.port = int(main.get("PORT") or 5432)
        self.poolers: list[PgBouncer] = []
        self.second_server = None

    def start(self) -> dict[str, str]:
        """Starts everything; returns the environment variables to export."""
        from bench.servers import PgServer

        main = PgBouncer(self.host, self.port, self.user, self.password).start()
        self.poolers.append(main)
        self.second_server = PgServer(settings=SECOND_SERVER_SETTINGS).start()
        second = PgBouncer(
            "127.0.0.1", self.second_server.port, "postgres", secrets.token_urlsafe(18)
        ).start()
        self.poolers.append(second)
        auth = f"{self.user}:{self.server_password}@" if self.server_password else f"{self.user}@"
        return {
            "TENANT_DATABASE_URL": main.url,
            "TENANT_DATABASE_ADMIN_URL": f"postgres://{auth}{self.host}:{self.port}",
            SECOND_SERVER_URL: second.url,
            SECOND_SERVER_ADMIN_URL: self.second_server.url,
        }

    def stop(self) -> None:
        for pooler in self.poolers:
            pooler.stop()
        if self.second_server is not None:
            self.second_server.stop()


_topology: PoolerTopology | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Runs before pytest-django imports the settings, so they read the pooler's URLs."""
    global _topology
    if not enabled():
        return
    if binary() is None:
        if os.environ.get("TENANTKIT_REQUIRE_ALL") == "1":
            raise pytest.UsageError(f"pgbouncer is not installed ({INSTALL}); it is required")
        return  # the pooler's tests skip (tests/test_pgbouncer.py)
    _topology = PoolerTopology(os.environ.get("DATABASE_URL", ""))
    try:
        os.environ.update(_topology.start())
    except BaseException:
        _topology.stop()
        raise


def pytest_report_header(config):
    if _topology is not None:
        return [f"pgbouncer: tenant databases through 127.0.0.1:{_topology.poolers[0].port}"]
    return []


def pytest_unconfigure(config):
    global _topology
    if _topology is not None:
        _topology.stop()
        _topology = None
