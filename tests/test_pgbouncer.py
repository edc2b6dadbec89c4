"""Tenant databases behind PgBouncer, as production runs them (`make test-pgbouncer`).

On the pooler leg (tests/pgbouncer.py started Debian's pgbouncer in front of the server, a
second server with its own pooler, and pointed TENANT_DATABASE_URL at the first): tenant
requests go through the pooler and provisioning DDL does not; 200 tenants served by one
process hold at most its cap of pooler clients and at most the pooler's limit of
PostgreSQL backends; a closed connection comes back through the pooler on a backend it
already had; sessions are in UTC; isolation holds, also with a tenant on the second
server. On every leg: the configuration template, the tenant aliases' pooler-safe options,
the direct path of DDL and the deploy check's rules.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import environ
import psycopg
import pytest
from django.conf import settings
from django.core.checks import registry
from django.db import connections

from addressbook.models import Contact
from tenants.context import use_tenant
from tenants.db import aliases, pooler, servers
from tenants.db import connections as tenant_connections
from tenants.db.servers import postgresql
from tenants.services import migrate_database, provision_tenant
from tests import pgbouncer
from tests.factories import bearer_for, create_contact, create_user
from tests.helpers import POSTGRES, client_for, needs_component

POOLED = pgbouncer.enabled() and bool(settings.TENANT_DATABASE_ADMIN_URL)
on_pooler_leg = [
    needs_component(
        "pgbouncer", available=pgbouncer.binary() is not None, install="apt-get install pgbouncer"
    ),
    pytest.mark.skipif(
        not (pgbouncer.enabled() and POSTGRES),
        reason="runs on the pooler leg: make test-pgbouncer",
    ),
]
only_postgres = pytest.mark.skipif(not POSTGRES, reason="needs a PostgreSQL server")


def pooled(test):
    for mark in on_pooler_leg:
        test = mark(test)
    return pytest.mark.django_db(databases="__all__", transaction=True)(test)


# --- the pooler and the server, seen directly ---------------------------------------------
def _url_params(url: str, dbname: str) -> dict:
    cfg = environ.Env.db_url_config(url)
    return {
        "host": cfg["HOST"],
        "port": cfg["PORT"],
        "user": cfg["USER"],
        "password": cfg.get("PASSWORD") or None,
        "dbname": dbname,
        "autocommit": True,
    }


def console(url: str | None = None) -> psycopg.Connection:
    """The admin console of the pooler `url` names (default: the tenant server's)."""
    return psycopg.connect(**_url_params(url or settings.TENANT_DATABASE_URL, "pgbouncer"))


def show(what: str, url: str | None = None) -> list[dict]:
    with console(url) as conn:
        cursor = conn.execute(f"SHOW {what}")
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def pooler_config(url: str | None = None) -> dict[str, str]:
    return {row["key"]: row["value"] for row in show("CONFIG", url)}


def direct(sql: str, params=(), url: str | None = None):
    with psycopg.connect(
        **_url_params(url or settings.TENANT_DATABASE_ADMIN_URL, "postgres")
    ) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def tenant_backends(url: str | None = None) -> int:
    """PostgreSQL backends open on this run's tenant databases of the server `url` names."""
    like = settings.TENANT_DB_PREFIX.replace("_", r"\_") + "%"
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s"
    return direct(query, [like], url=url)[0][0]


def pooler_clients(url: str | None = None) -> list[dict]:
    """The pooler's client connections to this run's tenant databases."""
    prefix = settings.TENANT_DB_PREFIX
    return [row for row in show("CLIENTS", url) if row["database"].startswith(prefix)]


def local_port(alias: str) -> int:
    """The local TCP port of this thread's connection to `alias`."""
    raw = connections[alias].connection
    sock = socket.socket(fileno=os.dup(raw.pgconn.socket))
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


def tenant_backend_pid(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def served(tenant, user) -> int:
    return (
        client_for(f"{tenant.slug}.test")
        .get("/api/address-book", **bearer_for(user, tenant))
        .status_code
    )


# --- the configuration --------------------------------------------------------------------
def test_the_template_renders_with_its_defaults_as_a_transaction_pooler():
    ini = pgbouncer.render({})
    assert not re.search(r"\$\{?[A-Z_]+", ini)  # every variable has a default
    assert re.search(r"^pool_mode = transaction$", ini, re.M)
    # One wildcard entry: a tenant database created at any time needs no reload.
    assert re.search(r"^\* = host=\S+ port=\d+ timezone=UTC$", ini, re.M)
    ignored = re.search(r"^ignore_startup_parameters = (.*)$", ini, re.M).group(1).split(",")
    assert "options" in ignored  # PgBouncer 1.18 refuses the main database's `options`
    for limit in (
        "max_client_conn",
        "default_pool_size",
        "max_db_connections",
        "max_user_connections",
        "server_idle_timeout",
    ):
        assert re.search(rf"^{limit} = [1-9]\d*$", ini, re.M), limit


def test_the_shipped_limits_keep_postgresql_under_its_default_max_connections():
    """The sizing rule with the shipped numbers: the compose stack's PostgreSQL has the
    default max_connections (100, 3 reserved for superusers); 2 replicas x 2 workers x
    the default cap of 32 tenant connections go to the pooler."""
    limits = pgbouncer.defaults()
    backends = int(limits["PGBOUNCER_MAX_USER_CONNECTIONS"])
    direct_connections = 2 * 2 + 2 + 4  # main database per worker, log stream, provisioning
    assert backends + direct_connections <= 100 - 3
    assert (
        int(limits["PGBOUNCER_MAX_CLIENT_CONN"])
        >= 2 * 2 * settings.TENANT_MAX_OPEN_CONNECTIONS + 16
    )
    assert int(limits["PGBOUNCER_DEFAULT_POOL_SIZE"]) >= 2 * 2  # one hot tenant, every worker


def test_the_auth_file_quotes_its_fields():
    assert pgbouncer.userlist_line('a"b', "p w") == '"a""b" "p w"\n'


@only_postgres
@pytest.mark.django_db(databases="__all__")
def test_tenant_aliases_keep_no_state_in_a_server_session(acme):
    cfg = connections.settings[aliases.register_tenant_database(acme)]
    assert cfg["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert cfg["OPTIONS"]["prepare_threshold"] is None


def test_ddl_goes_to_the_admin_url_for_the_pooled_server_only(settings):
    settings.TENANT_DATABASE_URL = "postgres://app:pw@pooler:6432"
    settings.TENANT_DATABASE_ADMIN_URL = "postgres://admin:secret@db:5432"
    pooled_cfg = {**aliases.server_settings(), "NAME": "tenant_x"}
    ddl = aliases.direct_server_settings(pooled_cfg)
    assert (ddl["HOST"], str(ddl["PORT"]), ddl["USER"], ddl["NAME"]) == (
        "db",
        "5432",
        "admin",
        "tenant_x",
    )
    assert (aliases.template_database_settings()["HOST"], pooler.pooled_server()["HOST"]) == (
        "db",
        "pooler",
    )
    elsewhere = {**aliases.server_settings("postgres://app:pw@other:5432/tenant_y")}
    assert aliases.direct_server_settings(elsewhere) is elsewhere
    settings.TENANT_DATABASE_ADMIN_URL = ""
    assert aliases.direct_server_settings(pooled_cfg) is pooled_cfg
    assert pooler.pooled_server() is None


def test_deploy_check_flags_limits_that_cannot_hold_workers_times_cap(settings):
    settings.WEB_CONCURRENCY, settings.APP_REPLICAS = 4, 2
    settings.TENANT_MAX_OPEN_CONNECTIONS = 32
    limits = pooler.Pooler(client_limit=200, backend_limit=60)
    assert [
        p.id for p in pooler.limit_problems(limits, clients=pooler.app_clients(), server_limit=97)
    ] == ["tenants.W101"]
    roomy = pooler.Pooler(client_limit=1000, backend_limit=60)
    assert pooler.limit_problems(roomy, clients=pooler.app_clients(), server_limit=97) == []
    for backend_limit in (0, 97, 150):
        unbounded = pooler.Pooler(client_limit=1000, backend_limit=backend_limit)
        problems = pooler.limit_problems(unbounded, clients=256, server_limit=97)
        assert [p.id for p in problems] == ["tenants.W102"], backend_limit
    checks = registry.registry.get_checks(include_deployment_checks=True)
    assert pooler.check_pooler_limits in checks


# --- through the pooler -------------------------------------------------------------------
@pooled
def test_tenant_requests_go_through_pgbouncer(acme):
    user = create_user(acme, "pia", password=None)
    assert served(acme, user) == HTTPStatus.OK
    pooler_port = int(environ.Env.db_url_config(settings.TENANT_DATABASE_URL)["PORT"])
    assert int(connections[acme.alias].settings_dict["PORT"]) == pooler_port
    port = local_port(acme.alias)
    clients = [row for row in show("CLIENTS") if row["port"] == port]
    assert [row["database"] for row in clients] == [acme.database_name]
    assert any(row["database"] == acme.database_name for row in show("POOLS"))
    # The main database stays direct.
    assert int(connections["default"].settings_dict["PORT"]) != pooler_port


@pooled
def test_provisioning_ddl_goes_to_the_server_directly(tenant_factory, monkeypatch):
    admin_port = int(environ.Env.db_url_config(settings.TENANT_DATABASE_ADMIN_URL)["PORT"])
    opened = []
    real_connect = postgresql.psycopg.connect

    def connect(*args, **kwargs):
        opened.append((kwargs["dbname"], int(kwargs["port"])))
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(postgresql.psycopg, "connect", connect)
    tenant = tenant_factory("viaddl")
    monkeypatch.undo()
    pooler_port = int(environ.Env.db_url_config(settings.TENANT_DATABASE_URL)["PORT"])
    template = aliases.database_name_for(aliases.TEMPLATE_SLUG)
    ports = {}
    for dbname, port in opened:
        ports.setdefault(dbname, set()).add(port)
    assert ports["postgres"] == {admin_port}  # CREATE DATABASE ... TEMPLATE, checks
    assert ports.get(template, {admin_port}) == {admin_port}
    assert pooler_port in ports[tenant.database_name]  # its migrations (none pending)
    # The template never had a session through the pooler (it could not be cloned).
    assert template not in {row["database"] for row in show("SERVERS")}
    # Its migrations ran through the pooler: the pooler has a pool for the new database.
    assert tenant.database_name in {row["database"] for row in show("POOLS")}


@pytest.fixture
def second_server_template():
    """A migrated template on the second server (its own, cheap to clone: the main server
    is shared with other test runs); dropped afterwards."""
    admin = os.environ[pgbouncer.SECOND_SERVER_ADMIN_URL]
    cfg = {**aliases.server_settings(admin), "NAME": f"{settings.TENANT_DB_PREFIX}tpl2"}
    alias = aliases.alias_for("tpl2")
    servers.create_database(cfg)
    aliases.register_alias(alias, cfg)
    try:
        migrate_database(alias)
    finally:
        aliases.unregister_alias(alias)
    yield cfg["NAME"]
    servers.drop_database(cfg)


@pytest.fixture
def second_server_tenants(tenant_databases, second_server_template):
    """`make(slug)`: a tenant provisioned by the product on the second server, in a clone of
    its template; the databases are dropped directly afterwards (the registry of servers,
    not this test, knows the second server's direct address)."""
    second = os.environ[pgbouncer.SECOND_SERVER_URL]
    admin = os.environ[pgbouncer.SECOND_SERVER_ADMIN_URL]
    made = []

    def make(slug: str):
        name = f"{settings.TENANT_DB_PREFIX}{slug}"
        direct(f'CREATE DATABASE "{name}" TEMPLATE "{second_server_template}"', url=admin)
        made.append((aliases.alias_for(slug), name))
        return provision_tenant(
            slug=slug, name=slug, domains=[f"{slug}.test"], database_url=f"{second}/{name}"
        )

    yield make
    for alias, _ in made:
        aliases.unregister_alias(alias)
    # Each drop waits for the pooler's terminated sessions to end: a few at once.
    with ThreadPoolExecutor(8) as pool:
        drops = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for _, name in made]
        list(pool.map(lambda sql: direct(sql, url=admin), drops))


@pooled
def test_200_tenants_hold_at_most_the_cap_of_pooler_clients_and_the_pool_limit_of_backends(
    second_server_tenants,
):
    """On the second server (max_connections = 40), 200 tenants provisioned through the
    product and served one after another by this process."""
    second = os.environ[pgbouncer.SECOND_SERVER_URL]
    admin = os.environ[pgbouncer.SECOND_SERVER_ADMIN_URL]
    cap = settings.TENANT_MAX_OPEN_CONNECTIONS
    backend_limit = int(pooler_config(second)["max_user_connections"])
    assert 0 < backend_limit < 40 and cap < 200
    statuses, peak_clients, peak_backends = [], 0, 0
    for number in range(200):
        tenant = second_server_tenants(f"many{number:03d}")
        statuses.append(served(tenant, create_user(tenant, "mo", password=None)))
        if number % 10 == 9:
            peak_clients = max(peak_clients, len(pooler_clients(second)))
            peak_backends = max(peak_backends, tenant_backends(url=admin))
    assert statuses == [HTTPStatus.OK] * 200
    assert 0 < peak_clients <= cap
    assert 0 < peak_backends <= backend_limit
    assert len(pooler_clients(second)) <= cap
    assert tenant_backends(url=admin) <= backend_limit


@pooled
def test_a_closed_tenant_connection_reconnects_through_the_pooler_on_a_kept_backend(acme):
    user = create_user(acme, "rey", password=None)
    assert served(acme, user) == HTTPStatus.OK
    first_port, first_pid = local_port(acme.alias), tenant_backend_pid(acme.alias)
    backends = {
        row[0]
        for row in direct(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [acme.database_name]
        )
    }
    tenant_connections.close_connection(acme.alias)
    assert served(acme, user) == HTTPStatus.OK
    assert local_port(acme.alias) != first_port  # a new client connection to the pooler...
    assert tenant_backend_pid(acme.alias) in backends | {first_pid}  # ...on a kept backend
    after = {
        row[0]
        for row in direct(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [acme.database_name]
        )
    }
    assert after <= backends  # no PostgreSQL backend was started for it


@pooled
def test_tenant_sessions_are_in_utc_through_the_pooler(acme):
    with use_tenant(acme):
        contact = create_contact(acme, "Tz")
    connection = connections[acme.alias]
    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        assert cursor.fetchone()[0] == "UTC"
        cursor.execute("SELECT to_char(now(), 'OF')")
        assert cursor.fetchone()[0] == "+00"
    assert connection.connection.info.parameter_status("TimeZone") == "UTC"
    with use_tenant(acme):
        stored = Contact.objects.get(pk=contact.pk).created_at
    assert stored.utcoffset().total_seconds() == 0


@pooled
def test_no_server_side_cursor_through_the_pooler(acme):
    with use_tenant(acme):
        for name in ("One", "Two", "Three"):
            create_contact(acme, name)
        names = [c.name for c in Contact.objects.order_by("id").iterator(chunk_size=1)]
    assert names[-3:] == ["One", "Two", "Three"]


@pooled
def test_isolation_holds_through_the_pooler(acme, globex):
    ann = create_user(acme, "ann-p", password=None)
    create_contact(acme, "Acme only")
    response = client_for("globex.test").get("/api/address-book", **bearer_for(ann, acme))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"
    with use_tenant(globex):
        assert not Contact.objects.filter(name="Acme only").exists()


@pooled
def test_a_tenant_on_the_second_server_is_served_through_its_own_pooler(acme, tenant_factory):
    second = os.environ[pgbouncer.SECOND_SERVER_URL]
    second_admin = os.environ[pgbouncer.SECOND_SERVER_ADMIN_URL]
    name = f"{settings.TENANT_DB_PREFIX}far"
    far = tenant_factory("far", database_url=f"{second}/{name}")
    user = create_user(far, "fay", password=None)
    with use_tenant(far):
        create_contact(far, "Far away")
    assert served(far, user) == HTTPStatus.OK
    port = local_port(far.alias)
    assert [row["database"] for row in show("CLIENTS", second) if row["port"] == port] == [name]
    # Routed to the second server, and only there.
    with psycopg.connect(**_url_params(second_admin, name)) as conn:
        assert conn.execute("SELECT count(*) FROM addressbook_contact").fetchone()[0] == 1
    assert not direct("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    # Isolation across servers: acme's token on the far tenant, and the far token on acme.
    acme_user = create_user(acme, "al-p", password=None)
    assert (
        client_for("far.test").get("/api/address-book", **bearer_for(acme_user, acme)).status_code
        == HTTPStatus.FORBIDDEN
    )
    assert (
        client_for("acme.test").get("/api/address-book", **bearer_for(user, far)).status_code
        == HTTPStatus.FORBIDDEN
    )
    # The second server's pooler bounds its backends too.
    with psycopg.connect(**_url_params(second, "pgbouncer")) as conn:
        limits = {row[0]: row[1] for row in conn.execute("SHOW CONFIG").fetchall()}
    assert int(limits["max_user_connections"]) < 40  # the second server's max_connections


@pooled
def test_deploy_check_reads_the_running_poolers_limits(settings):
    config = pooler_config()
    assert pooler.read_pooler(pooler.pooled_server()) == pooler.Pooler(
        client_limit=int(config["max_client_conn"]),
        backend_limit=int(config["max_user_connections"]),
    )
    settings.WEB_CONCURRENCY, settings.APP_REPLICAS = 2, 1
    assert pooler.check_pooler_limits(None, databases=["default"]) == []
    settings.WEB_CONCURRENCY = int(config["max_client_conn"])  # one client each would fill it
    problems = pooler.check_pooler_limits(None, databases=["default"])
    assert [problem.id for problem in problems] == ["tenants.W101"]


@pooled
def test_deploy_check_says_when_the_pooler_cannot_be_read(settings):
    url = environ.Env.db_url_config(settings.TENANT_DATABASE_URL)
    settings.TENANT_DATABASE_URL = f"postgres://nobody:wrong@127.0.0.1:{url['PORT']}"
    problems = pooler.check_pooler_limits(None, databases=["default"])
    assert [problem.id for problem in problems] == ["tenants.W100"]
    assert "wrong" not in problems[0].msg


@needs_component(
    "envsubst",
    available=shutil.which("envsubst") is not None,
    install="apt-get install gettext-base",
)
def test_the_images_entrypoint_writes_a_private_auth_file_and_the_configuration(tmp_path):
    """config/pgbouncer/entrypoint.sh, run with a stand-in for pgbouncer that shows what it
    was given: the rendered configuration, and an auth file only its owner can read that
    holds the password from the environment, which pgbouncer's environment no longer has."""
    stand_in = tmp_path / "pgbouncer"
    stand_in.write_text(
        "#!/bin/sh\n"
        'auth=$(sed -n "s/^auth_file = //p" "$1")\n'
        'stat -c "%a" "$auth"; cat "$auth"; cat "$1"\n'
        'echo "password in env: ${PGBOUNCER_AUTH_PASSWORD:-none}"\n'
    )
    stand_in.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "PGBOUNCER_AUTH_USER": "app",
        "PGBOUNCER_AUTH_PASSWORD": 'pa"ss',
        "PGBOUNCER_SERVER_HOST": "db",
        "PGBOUNCER_MAX_USER_CONNECTIONS": "42",
    }
    result = subprocess.run(
        ["sh", str(pgbouncer.CONFIG_DIR / "entrypoint.sh")],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    mode, auth_line, *ini = result.stdout.splitlines()
    assert mode == "600"
    assert auth_line == '"app" "pa""ss"'
    assert "* = host=db port=5432 timezone=UTC" in ini
    assert "max_user_connections = 42" in ini
    assert "pool_mode = transaction" in ini
    assert ini[-1] == "password in env: none"
