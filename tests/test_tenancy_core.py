"""Tenant resolution, the middleware, the router and per-tenant databases."""

import asyncio
import json
import sqlite3
import time
from http import HTTPStatus

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tenants.context import NoTenantError, get_current_tenant, use_tenant
from tenants.db import aliases, servers
from tenants.db import connections as tenant_connections
from tenants.models import Domain, Tenant
from tenants.resolution import resolve_tenant_from_host, resolver
from tenants.validators import normalize_host
from tests.helpers import client_for

pytestmark = pytest.mark.django_db(databases="__all__")
probe = pytest.mark.urls("tests.probe_urls")


def usernames_in_database(tenant: Tenant) -> list[str]:
    """Read the users table straight from the tenant's database, bypassing Django."""
    cfg = aliases.tenant_database_settings(tenant)
    sql = "SELECT username FROM accounts_user ORDER BY username"
    if aliases.is_postgresql(cfg):
        with psycopg.connect(
            dbname=cfg["NAME"],
            user=cfg["USER"] or None,
            password=cfg["PASSWORD"] or None,
            host=cfg["HOST"] or None,
            port=cfg["PORT"] or None,
        ) as conn:
            return [row[0] for row in conn.execute(sql)]
    with sqlite3.connect(cfg["NAME"]) as conn:
        return [row[0] for row in conn.execute(sql)]


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_rows_written_in_a_tenant_context_land_only_in_that_tenants_database(acme, globex):
    with use_tenant(acme):
        User.objects.create_user("only-in-acme", "a@acme.test", "x")
    with use_tenant(globex):
        User.objects.create_user("only-in-globex", "g@globex.test", "x")

    assert usernames_in_database(acme) == ["only-in-acme"]
    assert usernames_in_database(globex) == ["only-in-globex"]
    assert not User.objects.using("default").filter(username__startswith="only-in").exists()


def test_each_tenant_has_its_own_database(acme, globex):
    acme_cfg = aliases.tenant_database_settings(acme)
    globex_cfg = aliases.tenant_database_settings(globex)
    assert acme_cfg["NAME"] != globex_cfg["NAME"]
    assert servers.database_exists(acme_cfg)
    assert servers.database_exists(globex_cfg)
    assert acme.database_name == acme_cfg["NAME"]


def test_tenant_only_model_without_tenant_raises_instead_of_using_default():
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    with pytest.raises(NoTenantError):
        OutstandingToken.objects.count()


def test_dual_app_model_without_tenant_uses_the_main_database():
    assert User.objects.db == "default"


def test_use_tenant_restores_the_previous_tenant(acme, globex):
    with use_tenant(acme):
        with use_tenant(globex):
            assert get_current_tenant() == globex
        assert get_current_tenant() == acme
    assert get_current_tenant() is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACME.test:8000", "acme.test"),
        ("acme.test", "acme.test"),
        ("[::1]:8000", "[::1]"),
        ("Acme.Localhost", "acme.localhost"),
        ("acme.test.", "acme.test"),
        ("acme.test.:8000", "acme.test"),
    ],
)
def test_host_is_normalised(raw, expected):
    assert normalize_host(raw) == expected


def test_host_resolution_order(acme, globex, settings):
    Domain.objects.create(domain="crm.example.com", tenant=globex)
    assert resolve_tenant_from_host("crm.example.com") == globex
    assert resolve_tenant_from_host("acme.localhost") == acme
    assert resolve_tenant_from_host("ACME.LOCALHOST:8000") == acme
    assert resolve_tenant_from_host("nobody.localhost") is None
    assert resolve_tenant_from_host("deep.acme.localhost") is None


@probe
def test_tenant_request_is_served_from_its_own_database(acme, globex):
    with use_tenant(acme):
        User.objects.create_user("ann", "ann@acme.test", "x")
    with use_tenant(globex):
        User.objects.create_user("gus", "gus@globex.test", "x")

    body = client_for("acme.test").get("/api/_probe_sync").json()
    assert body == {"tenant": "acme", "users": ["ann"]}
    body = client_for("globex.localhost:8000").get("/api/_probe_sync").json()
    assert body == {"tenant": "globex", "users": ["gus"]}


def test_unknown_host_is_404_in_the_error_envelope(acme):
    response = client_for("nobody.example.org").get("/api/address-book")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {
        "status": HTTPStatus.NOT_FOUND,
        "error": "Not Found",
        "message": "Unknown tenant",
    }


def test_suspended_tenant_is_403(acme):
    acme.status = Tenant.Status.SUSPENDED
    acme.save()
    response = client_for("acme.test").post("/api/auth/signup", {}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {
        "status": HTTPStatus.FORBIDDEN,
        "error": "Forbidden",
        "message": "Tenant suspended",
    }


@pytest.mark.parametrize("status", ["provisioning", "failed", "dropped"])
def test_tenant_that_is_not_active_is_unknown(acme, status):
    Tenant.objects.filter(pk=acme.pk).update(status=status)
    resolver.invalidate()
    response = client_for("acme.test").get("/api/address-book")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["message"] == "Unknown tenant"


def test_platform_paths_run_without_tenant_on_any_host(acme):
    response = client_for("nobody.example.org").get("/health")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok"}


@probe
def test_default_tenant_serves_unmatched_hosts_only_when_configured(acme, settings):
    assert client_for("localhost").get("/api/_probe_sync").status_code == HTTPStatus.NOT_FOUND
    settings.TENANT_DEFAULT = "acme"
    assert client_for("localhost").get("/api/_probe_sync").json()["tenant"] == "acme"
    # An exact match still wins over the default.
    assert client_for("globex.test").get("/api/_probe_sync").status_code == HTTPStatus.OK


@probe
def test_tenant_header_is_honoured_only_from_a_trusted_proxy(acme, globex, settings):
    client = client_for("gateway.internal")
    assert (
        client.get("/api/_probe_sync", HTTP_X_TENANT="globex").status_code == HTTPStatus.NOT_FOUND
    )
    settings.TRUSTED_PROXY_IPS = ["127.0.0.0/8"]
    body = client.get("/api/_probe_sync", HTTP_X_TENANT="globex").json()
    assert body["tenant"] == "globex"
    # The host still wins over the header.
    assert (
        client_for("acme.test").get("/api/_probe_sync", HTTP_X_TENANT="globex").json()["tenant"]
        == "acme"
    )


@probe
def test_warm_request_makes_no_query_on_the_main_database(acme):
    client = client_for("acme.test")
    client.get("/api/_probe_sync")  # warms the resolution cache
    with CaptureQueriesContext(connections["default"]) as main_queries:
        response = client.get("/api/_probe_sync")
    assert response.json()["tenant"] == "acme"
    assert main_queries.captured_queries == []


@probe
def test_saving_a_tenant_invalidates_the_resolution_cache(acme):
    client = client_for("acme.test")
    assert client.get("/api/_probe_sync").status_code == HTTPStatus.OK
    acme.status = Tenant.Status.SUSPENDED
    acme.save()
    assert client.get("/api/_probe_sync").status_code == HTTPStatus.FORBIDDEN


@probe
def test_another_process_change_is_seen_within_the_ttl_on_a_process_local_cache(acme, settings):
    """The embedded default's cache is local memory: `create_tenant`, `drop_tenant` or the
    admin of another process cannot move this process's version key, so the TTL alone
    expires the resolution, even after this process moved the key itself."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "p"}
    }
    settings.TENANT_CACHE_TTL = 0.2
    resolver.invalidate()  # a change made in this process once, as any save here does
    client = client_for("acme.test")
    assert client.get("/api/_probe_sync").status_code == HTTPStatus.OK
    # Another process suspends the tenant: no signal reaches this one.
    Tenant.objects.filter(pk=acme.pk).update(status=Tenant.Status.SUSPENDED)
    assert client.get("/api/_probe_sync").status_code == HTTPStatus.OK  # within the TTL
    time.sleep(0.3)
    assert client.get("/api/_probe_sync").status_code == HTTPStatus.FORBIDDEN


@probe
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_concurrent_requests_for_two_tenants_never_see_each_other(acme, globex):
    from config.asgi import application

    with use_tenant(acme):
        User.objects.create_user("ann", "ann@acme.test", "x")
    with use_tenant(globex):
        User.objects.create_user("gus", "gus@globex.test", "x")
    expected_users = {"acme": ["ann"], "globex": ["gus"]}

    async def request(host: str) -> dict:
        from channels.testing import HttpCommunicator

        communicator = HttpCommunicator(
            application, "GET", "/api/_probe", headers=[(b"host", host.encode())]
        )
        response = await communicator.get_response(timeout=10)
        assert response["status"] == HTTPStatus.OK
        return {"host": host, **json.loads(response["body"])}

    # Bounded so the database server's connection limit is not the thing under test.
    slots = asyncio.Semaphore(16)

    async def bounded(host: str) -> dict:
        async with slots:
            return await request(host)

    async def run_all() -> list[dict]:
        hosts = ["acme.test", "globex.test"] * 30
        return await asyncio.gather(*(bounded(host) for host in hosts))

    results = async_to_sync(run_all)()
    assert len(results) == 60
    for result in results:
        slug = result["host"].split(".")[0]
        assert result["before"] == slug
        assert result["after"] == slug
        assert result["users"] == expected_users[slug]


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_connection_cap_closes_least_recently_used_tenant_connections(
    acme, globex, settings, monkeypatch
):
    # Only this thread's connections: earlier tests' threads (asgiref's executor) may live on.
    monkeypatch.setattr(tenant_connections, "_open_by_thread", {})
    settings.TENANT_MAX_OPEN_CONNECTIONS = 1
    for tenant in (acme, globex):
        with use_tenant(tenant):
            User.objects.exists()
        tenant_connections.note_connection_used(tenant.alias)

    assert tenant_connections.enforce_connection_cap() == [acme.alias]
    assert connections[acme.alias].connection is None
    assert connections[globex.alias].connection is not None
    assert tenant_connections.open_tenant_connection_count() == 1


def _make_obsolete(alias: str) -> None:
    connections[alias].close_at = 0  # past its CONN_MAX_AGE


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_request_looks_after_only_the_tenant_connections_it_used(acme, globex, monkeypatch):
    """The end of a request closes its own tenant connection once it is past its age, as
    Django's close_old_connections would, but leaves the other tenants' idle connections
    to the periodic sweep: its cost does not grow with the tenants a process served."""
    monkeypatch.setattr(tenant_connections._local, "swept_at", time.monotonic(), raising=False)
    for tenant in (acme, globex):
        monkeypatch.setitem(connections[tenant.alias].settings_dict, "CONN_MAX_AGE", 60)
        connections[tenant.alias].close()
        with use_tenant(tenant):
            User.objects.exists()
    tenant_connections.end_request(sender=WSGIHandler)
    assert connections[acme.alias].connection is not None
    _make_obsolete(acme.alias)
    _make_obsolete(globex.alias)

    with use_tenant(globex):
        User.objects.exists()
    tenant_connections.end_request(sender=WSGIHandler)

    assert connections[globex.alias].connection is None
    assert connections[acme.alias].connection is not None

    monkeypatch.setattr(tenant_connections._local, "swept_at", 0.0)
    tenant_connections.end_request(sender=WSGIHandler)
    assert connections[acme.alias].connection is None


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_request_housekeeping_does_not_walk_every_registered_alias(acme, monkeypatch):
    monkeypatch.setattr(tenant_connections._local, "swept_at", time.monotonic(), raising=False)
    for i in range(1000):
        monkeypatch.setitem(
            connections.settings, aliases.alias_for(f"idle-{i}"), connections.settings[acme.alias]
        )
    looked_at: list[str] = []
    real = tenant_connections._look_after
    monkeypatch.setattr(
        tenant_connections, "_look_after", lambda names: real(looked_at.extend(names) or names)
    )
    with use_tenant(acme):
        User.objects.exists()
    tenant_connections.begin_request(sender=WSGIHandler)
    tenant_connections.end_request(sender=WSGIHandler)

    assert acme.alias in looked_at
    assert len(looked_at) <= 2 * len(tenant_connections._main_aliases()) + 1


@probe
@pytest.mark.django_db(databases="__all__", transaction=True)
def test_an_asgi_request_closes_its_tenant_connection_when_it_ends(acme):
    """Under ASGI the view's queries run in a worker thread, not where the middleware
    activated the tenant; with CONN_MAX_AGE 0 (daphne's) the request's end still closes
    the tenant connection of that thread."""
    from asgiref.sync import sync_to_async
    from channels.testing import HttpCommunicator

    from config.asgi import application

    assert connections.settings[acme.alias]["CONN_MAX_AGE"] == 0

    def tenant_connection_is_open() -> bool:
        conn = getattr(connections._connections, acme.alias, None)
        return conn is not None and conn.connection is not None

    async def run() -> tuple[int, bool]:
        # Two requests: the first request of a thread also sweeps every connection.
        for _ in range(2):
            communicator = HttpCommunicator(
                application, "GET", "/api/_probe_sync", headers=[(b"host", b"acme.test")]
            )
            response = await communicator.get_response(timeout=10)
        return response["status"], await sync_to_async(tenant_connection_is_open)()

    # asyncio.run, not async_to_sync: no outer sync thread, so the view runs in asgiref's
    # executor thread as under daphne, away from the thread the middleware ran in.
    status, still_open = asyncio.run(run())

    assert status == HTTPStatus.OK
    assert not still_open


def test_django_per_request_walks_are_replaced_by_the_tenants_housekeeping():
    """TenantsConfig.ready() installs it; the test client and CaptureQueriesContext put
    Django's receivers back while a test runs, so it is installed again here."""
    from django.core import signals
    from django.db import close_old_connections, reset_queries

    tenant_connections.install_request_housekeeping()

    started, _ = signals.request_started._live_receivers(None)
    finished, _ = signals.request_finished._live_receivers(None)
    assert tenant_connections.begin_request in started
    assert tenant_connections.end_request in finished
    assert reset_queries not in started
    assert close_old_connections not in started
    assert close_old_connections not in finished


def test_tenant_connections_start_in_utc_without_a_set_time_zone(acme):
    """On PostgreSQL a tenant session starts in UTC (the `options` startup parameter), so
    Django sends no `SET TIME ZONE` on a new connection (one round trip less)."""
    connection = connections[acme.alias]
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    raw = connection.get_new_connection(connection.get_connection_params())
    try:
        assert raw.info.parameter_status("TimeZone") == "UTC"
    finally:
        raw.close()
