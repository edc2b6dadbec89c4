"""Tenant database servers as data: the registry, placement, isolation and routing across
two servers, the circuit breaker per server, the commands, the admin, and what operators
see (list_tenants, /metrics, check --deploy).

The second server is real: on PostgreSQL a cluster of this machine's binaries on a port of
its own (tests/conftest.py, `second_database_server`), on SQLite a second directory.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sqlite3
import threading
import time
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError
from django.core.management.base import SystemCheckError
from django.db import connection, connections
from prometheus_client.parser import text_string_to_metric_families

from tenants import services
from tenants.checks import check_database_servers
from tenants.context import use_tenant
from tenants.db import aliases, breaker
from tenants.db.servers import postgresql
from tenants.models import DatabaseServer, Tenant
from tests.helpers import (
    POSTGRES,
    SECOND_SERVER,
    SECOND_SERVER_URL_ENV,
    client_for,
    database_unreachable,
    free_port,
    run_command,
    status_once_recovered,
)

pytestmark = pytest.mark.django_db(databases="__all__")

UNAVAILABLE = {
    "status": HTTPStatus.SERVICE_UNAVAILABLE,
    "error": "Service Unavailable",
    "message": "Tenant database unavailable",
}
UNSET_ENV = "TENANTKIT_TEST_NEVER_SET_URL"


def unreachable_url() -> str:
    """A URL of a server that is not there: a closed port; on SQLite, a path under a file."""
    if POSTGRES:
        return f"postgres://postgres@127.0.0.1:{free_port()}/postgres"
    return "sqlite:////dev/null/tenants"


def contact_names(tenant: Tenant, server: DatabaseServer | None) -> list[str] | None:
    """The contacts in `tenant`'s database on `server` (None: the default), read by
    connecting to that server directly; None when the server has no such database."""
    cfg = aliases.settings_of_server(server, admin=True)
    if POSTGRES:
        params = postgresql._psycopg_params(cfg, dbname=tenant.database_name)
        try:
            conn = psycopg.connect(**params)
        except psycopg.OperationalError as exc:
            assert "does not exist" in str(exc)
            return None
        with conn:
            return [row[0] for row in conn.execute("SELECT name FROM addressbook_contact")]
    path = Path(cfg["NAME"]) / Path(tenant.database_name).name
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM addressbook_contact")]


def placed(server: DatabaseServer) -> int:
    return server.tenants.exclude(status=Tenant.Status.DROPPED).count()


@pytest.fixture
def default_server(tenant_databases) -> DatabaseServer:
    return services.ensure_default_server()


@pytest.fixture
def farco(second_server, tenant_factory) -> Tenant:
    """A tenant on the second server."""
    return tenant_factory("farco", server=SECOND_SERVER)


# --- the registry -------------------------------------------------------------------------
def test_existing_tenants_live_on_the_default_server_that_tenant_database_url_names(acme):
    assert acme.server.name == "default"
    assert acme.server.url_env == "TENANT_DATABASE_URL"
    assert acme.server.admin_url_env == "TENANT_DATABASE_ADMIN_URL"
    assert acme.alias == "tenant_acme"  # unchanged for the default server's tenants


def test_the_migration_places_tenants_without_a_server_on_the_default_one(tenant_databases):
    # A set-up from before servers: no server rows, no tenant placed.
    Tenant.objects.update(server=None)
    DatabaseServer.objects.all().delete()
    legacy = Tenant.objects.create(slug="legacy", name="Legacy", database_name="x")
    own = Tenant.objects.create(
        slug="ownurl", name="Own", database_name="y", database_url="postgres://h/y"
    )
    migration = importlib.import_module("tenants.migrations.0002_database_servers")
    migration.place_existing_tenants(apps, SimpleNamespace(connection=connection))
    legacy.refresh_from_db()
    own.refresh_from_db()
    assert Tenant.objects.get(slug="acme").server == legacy.server
    assert legacy.server.name == "default"
    assert legacy.server.url_env == "TENANT_DATABASE_URL"
    assert own.server is None  # its own URL stays its server


def test_a_failed_tenant_from_before_servers_is_finished_on_the_default_server(
    default_server, second_server, tenant_factory
):
    DatabaseServer.objects.filter(pk=default_server.pk).update(capacity=placed(default_server))
    Tenant.objects.create(
        slug="oldco",
        name="Old Co",
        status=Tenant.Status.FAILED,
        database_name=aliases.database_name_for("oldco"),
    )
    tenant = tenant_factory("oldco", name="Old Co", server="")
    assert (tenant.status, tenant.server) == (Tenant.Status.ACTIVE, default_server)
    assert tenant.alias == "tenant_oldco"


def test_a_server_row_holds_the_name_of_a_variable_never_a_url(second_server):
    stored = DatabaseServer.objects.values().get(name=SECOND_SERVER)
    assert stored["url_env"] == SECOND_SERVER_URL_ENV
    assert not any(
        isinstance(value, str) and ("://" in value or value.startswith("/"))
        for value in stored.values()
    )


# --- placement ----------------------------------------------------------------------------
def test_a_tenant_named_to_a_server_is_placed_there(farco, second_server):
    assert farco.server == second_server
    assert farco.alias == f"tenant_{SECOND_SERVER}__farco"
    assert aliases.slug_for(farco.alias) == "farco"
    assert aliases.is_tenant_alias(farco.alias)
    if POSTGRES:  # the contract's name, whatever the server
        assert farco.database_name == f"{settings.TENANT_DB_PREFIX}farco"
    else:
        assert Path(farco.database_name).parent == second_server_directory()


def second_server_directory() -> Path:
    return Path(aliases.settings_of_server(DatabaseServer.objects.get(name=SECOND_SERVER))["NAME"])


def test_an_unnamed_tenant_goes_to_the_accepting_server_with_the_most_room(
    default_server, second_server, tenant_factory
):
    default_server.capacity = placed(default_server) + 1
    default_server.save()
    second_server.capacity = 5
    second_server.save()
    assert services.choose_server() == second_server
    tenant = tenant_factory("roomy", server="")
    assert tenant.server == second_server
    # Room 1 on each now: a tie goes to the one with fewer tenants, then by name.
    second_server.capacity = placed(second_server) + 1
    second_server.save()
    expected = min(default_server, second_server, key=lambda s: (placed(s), s.name))
    assert services.choose_server() == expected


def test_a_server_without_capacity_counts_as_unbounded(default_server, second_server):
    second_server.capacity = 1_000_000
    second_server.save()
    assert default_server.capacity is None
    assert services.choose_server() == default_server
    default_server.capacity = placed(default_server) + 2
    default_server.save()
    assert services.choose_server() == second_server


def test_servers_without_capacity_fill_evenly(default_server, second_server, tenant_factory):
    assert (default_server.capacity, second_server.capacity) == (None, None)
    fewer, more = sorted((default_server, second_server), key=placed)
    if placed(fewer) == placed(more):
        tenant_factory("evener", server=more.name)
    assert services.choose_server() == fewer
    while placed(fewer) < placed(more):
        assert tenant_factory(f"even{placed(fewer)}", server="").server == fewer
    # Level now: the tie goes by name.
    assert services.choose_server() == min(fewer, more, key=lambda s: s.name)


def test_draining_offline_and_full_servers_take_no_new_tenant(default_server, second_server):
    second_server.status = DatabaseServer.Status.OFFLINE
    second_server.save()
    default_server.status = DatabaseServer.Status.DRAINING
    default_server.save()
    with pytest.raises(ValidationError) as info:
        services.choose_server()
    assert "No database server accepts new tenants" in info.value.message_dict["server"][0]
    default_server.status = DatabaseServer.Status.ACCEPTING
    default_server.capacity = placed(default_server)
    default_server.save()
    with pytest.raises(ValidationError):
        services.choose_server()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "nowhere"}, "Unknown database server 'nowhere'."),
        ({"status": "draining"}, f"Database server '{SECOND_SERVER}' is draining"),
        ({"status": "offline"}, f"Database server '{SECOND_SERVER}' is offline"),
        ({"capacity": 0}, f"Database server '{SECOND_SERVER}' is full"),
    ],
)
def test_create_tenant_on_a_server_that_cannot_take_it_fails_and_changes_nothing(
    second_server, dropped_after, change, message
):
    target = change.pop("name", SECOND_SERVER)
    DatabaseServer.objects.filter(pk=second_server.pk).update(**change)
    dropped_after.append("refused")
    with pytest.raises(CommandError, match=message):
        run_command("create_tenant", "refused", "--name", "Refused", "--server", target)
    assert not Tenant.objects.filter(slug="refused").exists()


@pytest.mark.skipif(not POSTGRES, reason="concurrent provisioning is serialised on PostgreSQL")
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_concurrent_placements_never_overfill_a_server(second_server, dropped_after):
    DatabaseServer.objects.filter(pk=second_server.pk).update(capacity=2)
    slugs = [f"race-{letter}" for letter in "abcd"]
    dropped_after.extend(slugs)
    barrier = threading.Barrier(len(slugs))
    placed, refused = [], []

    def place(slug):
        try:
            barrier.wait()
            services.provision_tenant(slug=slug, name=slug, server=SECOND_SERVER)
            placed.append(slug)
        except ValidationError as exc:  # collected and asserted below
            refused.extend(exc.message_dict.get("server", [str(exc)]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=place, args=(slug,)) for slug in slugs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(placed) == 2
    assert len(refused) == 2
    assert all("is full (2 of 2 tenants)" in message for message in refused)
    assert Tenant.objects.filter(server=second_server).count() == 2


def test_create_tenant_with_server_places_it_and_says_where(second_server, dropped_after):
    dropped_after.append("placed")
    out = run_command(
        "create_tenant", "placed", "--name", "Placed", "--domain", "placed.test",
        "--server", SECOND_SERVER,
    )  # fmt: skip
    assert f"server {SECOND_SERVER}" in out
    assert Tenant.objects.get(slug="placed").server == second_server


def test_a_server_and_a_database_url_together_are_refused(second_server):
    with pytest.raises(CommandError, match="not both"):
        run_command(
            "create_tenant", "both", "--name", "Both", "--server", SECOND_SERVER,
            "--database-url", "postgres://postgres@127.0.0.1:5432/both",
        )  # fmt: skip
    assert not Tenant.objects.filter(slug="both").exists()


def test_platform_api_places_a_tenant_on_the_server_named(second_server, as_staff, dropped_after):
    dropped_after.append("apico")
    response = client_for("acme.test").post(
        "/api/platform/tenants",
        {"slug": "apico", "name": "Api Co", "domains": ["apico.test"], "server": SECOND_SERVER},
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert set(response.json()) == {"slug", "name", "status", "domains", "database", "created_at"}
    assert Tenant.objects.get(slug="apico").server == second_server


def test_a_tenant_on_the_second_server_is_changed_while_the_default_one_is_away(
    farco, as_staff, settings
):
    # Changing a tenant checks its own server, not the default one.
    settings.TENANT_DATABASE_ADMIN_URL = unreachable_url()
    response = client_for("acme.test").patch(
        "/api/platform/tenants/farco", {"name": "Far Co"}, format="json", **as_staff
    )
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["name"] == "Far Co"


@pytest.mark.parametrize("status", ["offline", "draining"])
def test_platform_api_refuses_a_server_that_takes_no_tenant_with_400(
    second_server, as_staff, status
):
    DatabaseServer.objects.filter(pk=second_server.pk).update(status=status)
    for server in ("nowhere", SECOND_SERVER, "Not A Name!"):
        response = client_for("acme.test").post(
            "/api/platform/tenants",
            {"slug": "apicold", "name": "Api Cold", "server": server},
            format="json",
            **as_staff,
        )
        assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
        body = response.json()
        assert set(body) == {"status", "error", "message", "details"}
        assert list(body["details"]) == ["server"]
    assert not Tenant.objects.filter(slug="apicold").exists()


# --- isolation and routing across servers -------------------------------------------------
def test_tokens_of_a_tenant_on_one_server_are_refused_on_the_other(acme, farco, make_user, bearer):
    acme_auth = bearer(make_user(acme, "ann"), acme)
    farco_auth = bearer(make_user(farco, "fred"), farco)
    assert client_for("farco.test").get("/api/address-book", **farco_auth).status_code == 200
    assert client_for("acme.test").get("/api/address-book", **acme_auth).status_code == 200
    for host, auth in (("acme.test", farco_auth), ("farco.test", acme_auth)):
        response = client_for(host).get("/api/address-book", **auth)
        assert response.status_code == HTTPStatus.FORBIDDEN
        assert response.json()["message"] == "Tenant access denied"


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_each_tenants_data_is_only_in_its_own_database_on_its_own_server(
    acme, farco, second_server, make_user, bearer
):
    for tenant, user, name in ((acme, "ann", "Acme Only"), (farco, "fred", "Farco Only")):
        auth = bearer(make_user(tenant, user), tenant)
        response = client_for(f"{tenant.slug}.test").post(
            "/api/address-book", {"name": name}, format="json", **auth
        )
        assert response.status_code == HTTPStatus.CREATED
    try:
        assert "Acme Only" in contact_names(acme, None)
        assert "Farco Only" not in contact_names(acme, None)
        assert contact_names(farco, second_server) == ["Farco Only"]
        # Neither database exists on the other server.
        assert contact_names(farco, None) is None
        assert contact_names(acme, second_server) is None
    finally:
        with use_tenant(acme):
            from addressbook.models import Contact

            Contact.objects.filter(name="Acme Only").delete()


def test_queries_of_a_tenant_on_the_second_server_go_to_the_second_server(
    acme, farco, second_server, second_database_server
):
    with use_tenant(farco):
        farco_settings = connections[farco.alias].settings_dict
        if POSTGRES:
            with connections[farco.alias].cursor() as cursor:
                cursor.execute("SELECT inet_server_port(), current_database()")
                port, database = cursor.fetchone()
            assert port == second_database_server.cluster.port
            assert database == farco.database_name
        else:
            assert Path(farco_settings["NAME"]).parent == second_server_directory()
    with use_tenant(acme):
        if POSTGRES:
            with connections[acme.alias].cursor() as cursor:
                cursor.execute("SELECT inet_server_port()")
                assert cursor.fetchone()[0] != second_database_server.cluster.port
        else:
            assert Path(connections[acme.alias].settings_dict["NAME"]).parent != (
                second_server_directory()
            )
    assert farco_settings[aliases.SERVER_KEY] == SECOND_SERVER


# --- the circuit breaker per server -------------------------------------------------------
@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.usefixtures("closed_circuits")
def test_a_server_going_away_takes_only_its_tenants_and_they_recover(
    acme, second_server, second_database_server, tenant_factory, make_user, bearer, settings
):
    settings.TENANT_DB_RETRY_INTERVAL = 1.0  # the pytest-django fixture, restored afterwards
    farco = tenant_factory("farco", server=SECOND_SERVER)
    nearco = tenant_factory("nearco", server=SECOND_SERVER)
    auth = {t.slug: bearer(make_user(t, f"{t.slug}-user"), t) for t in (acme, farco, nearco)}
    connections.close_all()

    def contacts(slug):
        return client_for(f"{slug}.test").get("/api/address-book", **auth[slug])

    with second_database_server.unreachable():
        first = contacts("farco")
        assert (first.status_code, first.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
        assert first["Retry-After"] == "1"
        assert breaker.server_circuit_open(SECOND_SERVER)
        # Its other tenant is answered at once, without trying its database.
        other = contacts("nearco")
        assert (other.status_code, other.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
        conn = getattr(connections._connections, nearco.alias, None)
        assert conn is None or conn.connection is None
        # Tenants of the default server are served.
        assert contacts("acme").status_code == HTTPStatus.OK
        # /ready counts every active tenant of the server, asked for or not.
        on_second = Tenant.objects.filter(server__name=SECOND_SERVER, status="active").count()
        assert on_second >= 2
        ready = client_for("localhost").get("/ready").json()
        assert ready["tenants"] == {"unavailable": on_second}
    time.sleep(1.1)
    assert status_once_recovered(lambda: contacts("nearco")) == HTTPStatus.OK
    assert not breaker.server_circuit_open(SECOND_SERVER)
    assert status_once_recovered(lambda: contacts("farco")) == HTTPStatus.OK
    assert client_for("localhost").get("/ready").json()["tenants"] == {"unavailable": 0}


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.usefixtures("closed_circuits")
def test_one_tenants_lost_database_does_not_open_its_servers_circuit(
    farco, second_server, make_user, bearer
):
    auth = bearer(make_user(farco, "fred"), farco)
    with database_unreachable(farco):
        response = client_for("farco.test").get("/api/address-book", **auth)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert not breaker.server_circuit_open(SECOND_SERVER)


@pytest.mark.usefixtures("closed_circuits")
def test_a_servers_circuit_holds_for_its_tenants_whatever_their_own_circuit_says():
    alias = aliases.alias_for("farco", SECOND_SERVER)
    breaker._failed_at[alias] = time.monotonic() - 3600  # its own circuit closed long ago
    breaker._server_failed_at[SECOND_SERVER] = time.monotonic()
    assert breaker.circuit_open(alias, SECOND_SERVER)
    assert not breaker.circuit_open(aliases.alias_for("acme"), "default")
    breaker.record_server_recovery(SECOND_SERVER)
    assert not breaker.circuit_open(alias, SECOND_SERVER)


# --- commands -----------------------------------------------------------------------------
def test_add_database_server_registers_a_server_that_answers(
    second_database_server, tenant_databases, monkeypatch
):
    monkeypatch.setenv("TENANTKIT_TEST_THIRD_URL", second_database_server.url)
    out = run_command(
        "add_database_server", "third", "--url-env", "TENANTKIT_TEST_THIRD_URL",
        "--capacity", "7", "--admin-url-env", SECOND_SERVER_URL_ENV, "--status", "draining",
    )  # fmt: skip
    assert "Database server 'third' is registered" in out
    assert second_database_server.url not in out
    server = DatabaseServer.objects.get(name="third")
    assert (server.url_env, server.admin_url_env) == (
        "TENANTKIT_TEST_THIRD_URL",
        SECOND_SERVER_URL_ENV,
    )
    assert (server.capacity, server.status) == (7, "draining")


def test_add_database_server_if_missing_accepts_the_same_registration_only(second_server):
    """The compose file's start-up job registers its second server on every start."""
    same = [SECOND_SERVER, "--url-env", second_server.url_env]
    same += ["--admin-url-env", second_server.admin_url_env, "--if-missing"]
    before = list(DatabaseServer.objects.values_list("name", "url_env", "admin_url_env"))
    assert "is already registered" in run_command("add_database_server", *same)
    with pytest.raises(CommandError, match="registered with other variables"):
        run_command("add_database_server", SECOND_SERVER, "--url-env", "OTHER_URL", "--if-missing")
    assert list(DatabaseServer.objects.values_list("name", "url_env", "admin_url_env")) == before


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({}, ["third", "--url-env", UNSET_ENV], f"{UNSET_ENV} is not set"),
        ({"TK_BAD": "not a url"}, ["third", "--url-env", "TK_BAD"], "holds no valid URL"),
        ({"TK_BAD": "mysql://u@h/db"}, ["third", "--url-env", "TK_BAD"], "holds no valid URL"),
        ({"TK_GONE": "unreachable"}, ["third", "--url-env", "TK_GONE"], "cannot be reached"),
        ({}, [SECOND_SERVER, "--url-env", SECOND_SERVER_URL_ENV], "already exists"),
        ({}, ["Third_1", "--url-env", SECOND_SERVER_URL_ENV], "lower-case letters"),
        ({}, ["third", "--url-env", "postgres://x"], "name of an environment variable"),
        ({}, ["third", "--url-env", SECOND_SERVER_URL_ENV, "--capacity", "0"], "at least 1"),
        (
            {},
            ["third", "--url-env", SECOND_SERVER_URL_ENV, "--admin-url-env", UNSET_ENV],
            f"{UNSET_ENV} is not set",
        ),
    ],
)
def test_add_database_server_refuses_and_writes_nothing(
    second_server, monkeypatch, env, args, message
):
    for key, value in env.items():
        monkeypatch.setenv(key, unreachable_url() if value == "unreachable" else value)
    before = list(DatabaseServer.objects.values_list("name", flat=True))
    with pytest.raises(CommandError, match=message):
        run_command("add_database_server", *args)
    assert list(DatabaseServer.objects.values_list("name", flat=True)) == before


def test_migrate_tenants_refreshes_the_template_of_every_server_holding_tenants(farco):
    out = run_command("migrate_tenants")
    assert "template: up to date" in out
    assert f"template on {SECOND_SERVER}: up to date" in out
    assert "farco: up to date" in out


def test_drop_tenant_drops_the_database_on_the_tenants_own_server(
    farco, second_server, make_contact
):
    make_contact(farco, "Farco Only")
    Tenant.objects.filter(pk=farco.pk).update(status=Tenant.Status.SUSPENDED)
    run_command("drop_tenant", "farco", "--yes")
    assert contact_names(farco, second_server) is None
    assert Tenant.objects.get(slug="farco").status == Tenant.Status.DROPPED


def test_list_database_servers_shows_tenants_and_connections_per_server(acme, farco, second_server):
    with use_tenant(farco), connections[farco.alias].cursor() as cursor:
        cursor.execute("SELECT 1")  # one connection open to farco's database
        rows = {
            row["name"]: row for row in json.loads(run_command("list_database_servers", "--json"))
        }
    assert rows[SECOND_SERVER]["tenants"] == 1
    assert rows[SECOND_SERVER]["connections"] >= 1
    assert rows[SECOND_SERVER]["status"] == "accepting"
    assert rows[SECOND_SERVER]["url_env"] == SECOND_SERVER_URL_ENV
    assert rows["default"]["tenants"] >= 2  # acme and globex
    text = run_command("list_database_servers")
    assert text.splitlines()[0].split() == [
        "NAME", "STATUS", "CAPACITY", "TENANTS", "CONNECTIONS", "URL", "FROM"
    ]  # fmt: skip
    assert "://" not in text


def test_list_tenants_shows_each_tenants_server(acme, farco):
    rows = {row["slug"]: row for row in json.loads(run_command("list_tenants", "--json"))}
    assert rows["farco"]["server"] == SECOND_SERVER
    assert rows["acme"]["server"] == "default"
    farco_row = next(
        line.split()
        for line in run_command("list_tenants").splitlines()
        if line.startswith("farco ")
    )
    assert farco_row[3] == SECOND_SERVER


# --- operators: metrics, deploy checks ----------------------------------------------------
def test_metrics_count_tenants_per_server_and_keep_tenants_by_status(acme, farco):
    text = client_for("localhost").get("/metrics").content.decode()
    samples = {
        (family.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    per_server = "database_server_tenants"
    assert samples[(per_server, (("server", SECOND_SERVER), ("status", "active")))] == 1
    assert samples[(per_server, (("server", "default"), ("status", "active")))] >= 2
    assert samples[("tenants", (("status", "active"),))] >= 3


def test_deploy_check_flags_an_unset_variable_and_an_unreachable_server(second_server, monkeypatch):
    assert check_database_servers(None, databases=["default"]) == []
    DatabaseServer.objects.create(name="unset", url_env=UNSET_ENV)
    monkeypatch.setenv("TK_GONE", unreachable_url())
    DatabaseServer.objects.create(name="gone", url_env="TK_GONE")
    DatabaseServer.objects.create(name="retired", url_env=UNSET_ENV, status="offline")
    problems = {p.id: p.msg for p in check_database_servers(None, databases=["default"])}
    assert problems == {
        "tenants.E003": f"Database server 'unset': environment variable {UNSET_ENV} is not set.",
        "tenants.E002": "Database server 'gone' is unreachable through its URL.",
    }


def test_check_deploy_command_fails_on_an_unreachable_server(second_server, monkeypatch):
    monkeypatch.setenv("TK_GONE", unreachable_url())
    DatabaseServer.objects.create(name="gone", url_env="TK_GONE")
    with pytest.raises(SystemCheckError, match=r"tenants\.E002"):
        run_command("check", "--deploy", "--database", "default", "--fail-level", "ERROR")


# --- the admin ----------------------------------------------------------------------------
def test_admin_lists_servers_with_tenant_counts_and_never_a_url(
    superuser_client, farco, second_server, second_database_server
):
    page = superuser_client.get("/admin/tenants/databaseserver/")
    assert page.status_code == HTTPStatus.OK
    body = page.content.decode()
    assert SECOND_SERVER_URL_ENV in body
    assert second_database_server.url not in body
    assert "://" not in body.split("<body", 1)[1].replace("http://", "").replace("https://", "")
    change = superuser_client.get(f"/admin/tenants/databaseserver/{second_server.pk}/change/")
    assert change.status_code == HTTPStatus.OK
    assert second_database_server.url not in change.content.decode()


def test_admin_changes_a_servers_status(superuser_client, second_server):
    response = superuser_client.post(
        "/admin/tenants/databaseserver/",
        {"action": "mark_draining", "_selected_action": [second_server.pk]},
    )
    assert response.status_code == HTTPStatus.FOUND
    second_server.refresh_from_db()
    assert second_server.status == DatabaseServer.Status.DRAINING


def test_admin_refuses_a_server_whose_variable_is_unset(superuser_client, tenant_databases):
    response = superuser_client.post(
        "/admin/tenants/databaseserver/add/",
        {"name": "third", "url_env": UNSET_ENV, "admin_url_env": "", "status": "accepting"},
    )
    assert response.status_code == HTTPStatus.OK  # the form again, with the error
    assert f"{UNSET_ENV} is not set" in response.content.decode()
    assert not DatabaseServer.objects.filter(name="third").exists()


def test_admin_add_form_places_a_tenant_on_the_server_chosen(
    superuser_client, second_server, dropped_after
):
    dropped_after.append("adminco")
    response = superuser_client.post(
        "/admin/tenants/tenant/add/",
        {
            "slug": "adminco",
            "name": "Admin Co",
            "server": second_server.pk,
            "database_url": "",
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "0",
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
            "domains-0-domain": "adminco.test",
        },
    )
    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    tenant = Tenant.objects.get(slug="adminco")
    assert (tenant.server, tenant.status) == (second_server, Tenant.Status.ACTIVE)
