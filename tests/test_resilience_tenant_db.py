"""One tenant's database down: that tenant gets a quick 503 in the error envelope, every
other tenant is served, /ready counts it (never names it), list_tenants names it, and it
recovers without a restart.

The outage is made two ways: the tenant's registered alias pointed at a database that
cannot be opened (a closed port on PostgreSQL, a missing directory on SQLite; both
backends), and on PostgreSQL the real database closed with `ALLOW_CONNECTIONS false` and its
sessions terminated (an open connection lost mid-stream).
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from http import HTTPStatus
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import OperationalError, connections

from tenants.db import aliases, breaker
from tenants.db import connections as tenant_connections
from tenants.db.servers import postgresql
from tests.helpers import (
    POSTGRES,
    HostAsyncClient,
    alias_points_at,
    client_for,
    database_unreachable,
    status_once_recovered,
)

pytestmark = [
    pytest.mark.django_db(databases="__all__", transaction=True),
    pytest.mark.usefixtures("closed_circuits"),
]

only_postgres = pytest.mark.skipif(not POSTGRES, reason="needs a PostgreSQL server")
UNAVAILABLE = {
    "status": HTTPStatus.SERVICE_UNAVAILABLE,
    "error": "Service Unavailable",
    "message": "Tenant database unavailable",
}


@pytest.fixture
def downco(tenant_factory, make_user, bearer):
    """A tenant with a user and a valid token, made before its database goes away."""
    tenant = tenant_factory("downco")
    user = make_user(tenant, "dora")
    return tenant, bearer(user, tenant)


@pytest.fixture
def acme_auth(acme, make_user, bearer):
    return bearer(make_user(acme, "alice", id=7001), acme)


def contacts(host, auth):
    return client_for(host).get("/api/address-book", **auth)


# --- the outage ---------------------------------------------------------------------------
def test_unreachable_tenant_database_answers_503_in_the_envelope(downco):
    tenant, auth = downco
    with database_unreachable(tenant):
        started = time.monotonic()
        response = contacts("downco.test", auth)
        elapsed = time.monotonic() - started
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == UNAVAILABLE
    assert response["Retry-After"] == "5"  # TENANT_DB_RETRY_INTERVAL, when it tries again
    assert elapsed < 3


def test_login_and_signup_of_the_down_tenant_answer_503_not_500(downco):
    tenant, _auth = downco
    client = client_for("downco.test")
    with database_unreachable(tenant):
        login = client.post(
            "/api/auth/login",
            {"username_or_email": "dora", "password": "Whatever-1x"},
            format="json",
        )
        breaker._failed_at.clear()
        signup = client.post(
            "/api/auth/signup",
            {"username": "newbie", "email": "n@example.test", "password": "Sup3r-Secret-pw"},
            format="json",
        )
    assert (login.status_code, login.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert (signup.status_code, signup.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert login["Retry-After"] == signup["Retry-After"] == "5"


def test_other_tenants_are_served_while_one_database_is_down(downco, acme_auth):
    tenant, auth = downco
    with database_unreachable(tenant):
        assert contacts("downco.test", auth).status_code == HTTPStatus.SERVICE_UNAVAILABLE
        response = contacts("acme.test", acme_auth)
    assert response.status_code == HTTPStatus.OK


def test_open_circuit_answers_at_once_without_trying_the_database(downco):
    tenant, auth = downco
    with database_unreachable(tenant):
        assert contacts("downco.test", auth).status_code == HTTPStatus.SERVICE_UNAVAILABLE
    # The database is back, but within TENANT_DB_RETRY_INTERVAL nobody tries it.
    response = contacts("downco.test", auth)
    assert (response.status_code, response.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert response["Retry-After"] == "5"
    assert getattr(connections._connections, tenant.alias).connection is None


def test_tenant_recovers_without_a_restart(downco, settings):
    settings.TENANT_DB_RETRY_INTERVAL = 0.2
    tenant, auth = downco
    with database_unreachable(tenant):
        assert contacts("downco.test", auth).status_code == HTTPStatus.SERVICE_UNAVAILABLE
    time.sleep(0.3)
    assert contacts("downco.test", auth).status_code == HTTPStatus.OK
    assert client_for("any.test").get("/ready").json()["tenants"]["unavailable"] == 0


def test_ready_counts_the_tenant_and_stays_ready(downco, acme_auth):
    tenant, auth = downco
    with database_unreachable(tenant):
        contacts("downco.test", auth)
        contacts("acme.test", acme_auth)
        response = client_for("any.test").get("/ready")
    body = response.json()
    assert body["tenants"] == {"unavailable": 1}
    assert body["checks"]["database"] == "ok"


def test_list_tenants_names_the_unavailable_tenant(downco, acme):
    tenant, _auth = downco
    out = io.StringIO()
    with database_unreachable(tenant):
        call_command("list_tenants", "--json", stdout=out)
    rows = {row["slug"]: row for row in json.loads(out.getvalue())}
    assert rows["downco"]["database_status"] == "unavailable"
    assert rows["downco"]["failed_recently"] is True
    assert rows["acme"]["database_status"] == "ok"
    assert rows["acme"]["failed_recently"] is False


async def test_asgi_requests_get_the_same_503(downco):
    tenant, auth = downco
    client = HostAsyncClient("downco.test")
    headers = {"authorization": auth["HTTP_AUTHORIZATION"]}
    with database_unreachable(tenant):
        failed = await client.get("/api/address-book", headers=headers)
    short_circuited = await client.get("/api/address-book", headers=headers)
    await sync_to_async(connections.close_all)()  # the handler thread's, not left open
    assert (failed.status_code, failed.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert (short_circuited.status_code, short_circuited.json()) == (
        HTTPStatus.SERVICE_UNAVAILABLE,
        UNAVAILABLE,
    )


def test_a_query_error_on_a_healthy_connection_is_not_an_outage(downco, monkeypatch):
    """Only a refused or lost connection is a tenant outage; other database errors stay 500s."""
    from addressbook import views

    _tenant, auth = downco

    def failing(*args, **kwargs):
        raise OperationalError("canceling statement due to lock timeout")

    monkeypatch.setattr(views.ContactListCreateView, "get", failing)
    response = contacts("downco.test", auth)
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert breaker.recently_unavailable_tenants() == []


# --- PostgreSQL: the real database closed, a silent server --------------------------------
def _admin(sql: str) -> None:
    with postgresql._admin_connection(aliases.server_settings()) as conn:
        conn.execute(sql)


@pytest.mark.skipif(POSTGRES, reason="a tenant database is a file only on SQLite")
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(b"this is not a database" * 100), id="garbage"),
        pytest.param(lambda path: path.write_bytes(b""), id="emptied"),
    ],
)
def test_damaged_tenant_file_is_an_outage_of_that_tenant_only(downco, acme_auth, damage):
    tenant, auth = downco
    path = Path(connections[tenant.alias].settings_dict["NAME"])
    connections[tenant.alias].close()
    damage(path)

    response = contacts("downco.test", auth)

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == UNAVAILABLE
    assert response["Retry-After"]
    assert breaker.circuit_open(tenant.alias)
    assert contacts("acme.test", acme_auth).status_code == HTTPStatus.OK


@only_postgres
def test_closed_database_loses_open_sessions_then_recovers(downco, acme_auth, settings):
    settings.TENANT_DB_RETRY_INTERVAL = 0.2
    tenant, auth = downco
    name = tenant.database_name
    assert contacts("downco.test", auth).status_code == HTTPStatus.OK  # a connection is open
    try:
        _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        _admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        lost = contacts("downco.test", auth)
        time.sleep(0.3)
        refused = contacts("downco.test", auth)
        other = contacts("acme.test", acme_auth)
        ready = client_for("any.test").get("/ready").json()
    finally:
        _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert (lost.status_code, lost.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert (refused.status_code, refused.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert other.status_code == HTTPStatus.OK
    assert ready["tenants"]["unavailable"] == 1
    status = status_once_recovered(lambda: contacts("downco.test", auth))
    assert status == HTTPStatus.OK


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: a hung database server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@only_postgres
def test_hung_database_server_costs_one_short_connect_timeout(downco, silent_server, settings):
    settings.TENANT_DB_CONNECT_TIMEOUT = 1
    tenant, auth = downco
    aliases.unregister_alias(tenant.alias)
    aliases.register_tenant_database(tenant)  # registered afresh under the new setting
    with alias_points_at(tenant, PORT=str(silent_server)):
        started = time.monotonic()
        first = contacts("downco.test", auth)
        first_elapsed = time.monotonic() - started
        started = time.monotonic()
        second = contacts("downco.test", auth)
        second_elapsed = time.monotonic() - started
    assert (first.status_code, first.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert first_elapsed < 3, first_elapsed
    assert (second.status_code, second.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, UNAVAILABLE)
    assert second_elapsed < 0.5, second_elapsed


async def test_log_stream_handshake_of_the_down_tenant_is_refused_cleanly(downco):
    """A WebSocket handshake while the tenant's database is down is refused (HTTP 403 from
    the server), like a bad token, instead of crashing the consumer; the outage is recorded,
    so the next handshake is refused at once."""
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    tenant, auth = downco
    headers = [
        (b"host", b"downco.test"),
        (b"authorization", auth["HTTP_AUTHORIZATION"].encode()),
    ]

    def forget_connection(alias):
        # The consumer's database thread may still hold a connection object made from an
        # earlier test's registration of this alias (the same slug, another database).
        tenant_connections.close_connection(alias)
        with contextlib.suppress(AttributeError):
            del connections[alias]

    with database_unreachable(tenant):
        await sync_to_async(forget_connection)(tenant.alias)
        first = WebsocketCommunicator(application, "/api/ws/logs", headers=headers)
        connected, _ = await first.connect(timeout=10)
        assert connected is False
        assert breaker.circuit_open(tenant.alias)
        started = time.monotonic()
        second = WebsocketCommunicator(application, "/api/ws/logs", headers=headers)
        connected_again, _ = await second.connect(timeout=10)
        assert connected_again is False
        assert time.monotonic() - started < 1.0
    await sync_to_async(connections.close_all)()
