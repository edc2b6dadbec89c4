"""Shared fixtures.

Two tenants, `acme` (host `acme.test`) and `globex` (host `globex.test`), are provisioned
once per session on real databases (PostgreSQL when DATABASE_URL says so, else SQLite
files) whose names carry the test prefix; they are dropped at the end. Tests mark
themselves `django_db(databases="__all__")`, so each test's writes to the main and the
tenant databases are rolled back. Tests that create their own tenants use
`tenant_factory`, which drops what it made.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from unittest import mock

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client
from rest_framework.test import APIClient

from accounts.mail import wait_for_outgoing_mail
from bench.servers import PgServer
from config import ratelimit
from tenants.db import aliases, breaker, servers
from tenants.db.aliases import DEFAULT_SERVER
from tenants.db.servers import postgresql
from tenants.models import DatabaseServer, Tenant
from tenants.resolution import resolver
from tenants.services import database_server_add, provision_tenant
from tests import pgbouncer as pgbouncer_plugin
from tests.factories import bearer_for, create_contact, create_staff, create_user
from tests.helpers import (
    POSTGRES,
    SECOND_CLUSTER_SETTINGS,
    SECOND_SERVER,
    SECOND_SERVER_ADMIN_URL_ENV,
    SECOND_SERVER_URL_ENV,
    SecondServer,
    client_for,
    free_port,
    require_components,
    use_fresh_cache,
)
from tests.leak_collector import collector

SESSION_TENANTS = {"acme": "Acme Corp", "globex": "Globex Inc"}


# --- components: programs some tests drive (tests.helpers.needs_component) ---------------
def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs_component(name, available, install): the test drives an installed program; "
        "it skips without it, or fails when TENANTKIT_REQUIRE_ALL=1",
    )


def pytest_runtest_setup(item):
    require_components(item)


def pytest_collection_modifyitems(items):
    """The secrets check reads what the whole session produced, so it runs last."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_secrets_never_leak.py"))


@pytest.fixture(scope="session", autouse=True)
def _collect_secrets_and_output():
    """Every password, token and signing key the session handles, and every log line,
    WebSocket frame and error body it produces (tests/leak_collector.py)."""
    with collector.installed():
        yield


@pytest.fixture(autouse=True)
def _allow_tenant_aliases_registered_during_the_test(_django_db_marker, django_db_blocker):
    """Django refuses connections to aliases a test did not declare up front; tenant
    aliases are registered on the fly by design (their databases carry the test prefix,
    see tenants.db.aliases), so they may connect. Every other alias keeps Django's guard."""
    guarded = BaseDatabaseWrapper.ensure_connection
    real = django_db_blocker._real_ensure_connection

    def ensure_connection(self, *args, **kwargs):
        if aliases.is_tenant_alias(self.alias) and guarded is not real:
            return real(self, *args, **kwargs)
        return guarded(self, *args, **kwargs)

    with mock.patch.object(BaseDatabaseWrapper, "ensure_connection", ensure_connection):
        yield


def _drop_leftover_test_databases() -> None:
    """Remove tenant databases a crashed earlier run of this same suite left behind."""
    server = aliases.server_settings()
    if not aliases.is_postgresql(server):
        shutil.rmtree(settings.TENANT_SQLITE_DIR, ignore_errors=True)
        return
    prefix = settings.TENANT_DB_PREFIX
    assert prefix.startswith("test_")
    with postgresql._admin_connection(server) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"]
            )
        ]
    for name in names:
        if name.startswith(prefix):
            servers.drop_database({**server, "NAME": name})


@pytest.fixture(scope="session")
def tenant_databases(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        _drop_leftover_test_databases()
        for slug, name in SESSION_TENANTS.items():
            provision_tenant(slug=slug, name=name, domains=[f"{slug}.test"])
    yield
    with django_db_blocker.unblock():
        for slug in SESSION_TENANTS:
            aliases.unregister_alias(aliases.alias_for(slug))
        connections.close_all()
        _drop_leftover_test_databases()
        if not aliases.is_postgresql(aliases.server_settings()):
            shutil.rmtree(Path(settings.TENANT_SQLITE_DIR), ignore_errors=True)


@pytest.fixture(scope="session")
def second_database_server() -> SecondServer:
    """A second tenant database server for the session, its URL in SECOND_SERVER_URL_ENV:
    on PostgreSQL a cluster of the machine's binaries on a free port, its files under
    var/test-pg/ (stopped and removed at the end); on SQLite a second directory."""
    if POSTGRES and os.environ.get(pgbouncer_plugin.SECOND_SERVER_URL):
        # make test-pgbouncer: the plugin's second cluster, reached through its own pooler,
        # with its direct URL for DDL.
        server = SecondServer(
            url=f"{os.environ[pgbouncer_plugin.SECOND_SERVER_URL]}/postgres",
            cluster=pgbouncer_plugin._topology.second_server,
            admin_url=f"{os.environ[pgbouncer_plugin.SECOND_SERVER_ADMIN_URL]}/postgres",
            owned=False,
        )
    elif POSTGRES:
        tag = settings.TEST_RUN_TAG or "default"
        cluster = PgServer(
            parent=settings.VAR_DIR / "test-pg" / tag, settings=SECOND_CLUSTER_SETTINGS
        ).__enter__()
        server = SecondServer(url=f"{cluster.url}/postgres", cluster=cluster)
    else:
        directory = settings.TENANT_SQLITE_DIR.with_name(settings.TENANT_SQLITE_DIR.name + "-2")
        shutil.rmtree(directory, ignore_errors=True)
        server = SecondServer(url=f"sqlite:///{directory.absolute()}", directory=directory)
    os.environ[SECOND_SERVER_URL_ENV] = server.url
    if server.admin_url:
        os.environ[SECOND_SERVER_ADMIN_URL_ENV] = server.admin_url
    try:
        yield server
    finally:
        os.environ.pop(SECOND_SERVER_URL_ENV, None)
        os.environ.pop(SECOND_SERVER_ADMIN_URL_ENV, None)
        if server.owned:
            server.remove()


@pytest.fixture
def second_server(tenant_databases, second_database_server) -> DatabaseServer:
    """The second server, registered (`add_database_server second --url-env ...`)."""
    existing = DatabaseServer.objects.filter(name=SECOND_SERVER).first()
    return existing or database_server_add(
        name=SECOND_SERVER,
        url_env=SECOND_SERVER_URL_ENV,
        admin_url_env=SECOND_SERVER_ADMIN_URL_ENV if second_database_server.admin_url else "",
    )


@pytest.fixture(autouse=True)
def _own_cache(settings):
    use_fresh_cache(settings)


@pytest.fixture(autouse=True)
def _fresh_tenant_resolution():
    """Rolled-back rows fire no signal, so each test starts with an empty resolution cache."""
    resolver.invalidate()
    yield
    resolver.invalidate()


def _session_tenant(slug: str) -> Tenant:
    # Idempotent: a transactional test's flush may have removed the row; this restores it.
    # On the default server, wherever placement would put a new tenant now.
    return provision_tenant(
        slug=slug, name=SESSION_TENANTS[slug], domains=[f"{slug}.test"], server=DEFAULT_SERVER
    )


@pytest.fixture
def acme(tenant_databases) -> Tenant:
    return _session_tenant("acme")


@pytest.fixture
def globex(tenant_databases) -> Tenant:
    return _session_tenant("globex")


@pytest.fixture
def tenant_factory(tenant_databases):
    """Provision extra tenants for one test; their databases are dropped afterwards. A
    tenant goes to the default server unless the test names one (`server=""`: wherever
    placement puts it) or gives a database URL."""
    made: list[Tenant] = []

    def make(slug: str, **kwargs) -> Tenant:
        kwargs.setdefault("name", slug.title())
        kwargs.setdefault("domains", [f"{slug}.test"])
        if not kwargs.get("database_url"):
            kwargs.setdefault("server", DEFAULT_SERVER)
        tenant = provision_tenant(slug=slug, **kwargs)
        made.append(tenant)
        return tenant

    yield make
    for tenant in made:
        cfg = aliases.tenant_database_settings(tenant)
        aliases.unregister_alias(tenant.alias)
        servers.drop_database(cfg)


@pytest.fixture
def low_rate(settings, monkeypatch):
    """A per-IP login rate of 3 a minute, the lockout out of the way. The rate limiter's
    clock stands still, so a test's attempts never straddle two one-minute windows."""
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 3
    settings.LOGIN_LOCKOUT_THRESHOLD = 100
    frozen = ratelimit._now()
    monkeypatch.setattr(ratelimit, "_now", lambda: frozen)


@pytest.fixture
def low_lockout(settings):
    """An account locks after 3 failures, the per-IP rate out of the way."""
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 1000
    settings.LOGIN_LOCKOUT_THRESHOLD = 3
    settings.LOGIN_LOCKOUT_WINDOW = 900


@pytest.fixture
def acme_client(acme) -> APIClient:
    return client_for("acme.test")


@pytest.fixture
def globex_client(globex) -> APIClient:
    return client_for("globex.test")


@pytest.fixture
def make_user():
    """Create a user in a tenant's database (or the main one with tenant=None)."""
    return create_user


@pytest.fixture
def bearer():
    """`bearer(user, tenant)` -> headers for APIClient calls carrying a fresh access token."""
    return bearer_for


@pytest.fixture
def ann(acme, make_user):
    """A member of acme."""
    return make_user(acme, "ann")


@pytest.fixture
def api(acme, ann, bearer):
    """Acme's host with Ann's token: `api.get(path, ...)`, `api.post(path, data)`..."""
    client = client_for("acme.test")
    client.credentials(**bearer(ann, acme))
    return client


@pytest.fixture
def make_contact():
    """`make_contact(tenant, name, **fields)` creates a contact in that tenant's database."""
    return create_contact


@pytest.fixture
def staff(tenant_databases):
    """A platform staff account, `root`, with the test password."""
    return create_staff("root")


@pytest.fixture
def as_staff(staff, acme) -> dict:
    """Headers carrying a platform token of `staff` (and acme served, to manage)."""
    return bearer_for(staff, None)


@pytest.fixture
def superuser_client(tenant_databases) -> Client:
    """A Django test client logged in as a superuser (the admin site's user)."""
    client = Client()
    client.force_login(create_staff("superuser", is_superuser=True))
    return client


@pytest.fixture
def dropped_after(tenant_databases):
    """Slugs a test provisions through an entry point (a command, the API), not
    tenant_factory: their databases are dropped afterwards, whatever became of their rows."""
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        tenant = Tenant.objects.filter(slug=slug).first() or Tenant(slug=slug)
        cfg = aliases.tenant_database_settings(tenant, admin=True)
        aliases.unregister_alias(tenant.alias)
        servers.drop_database(cfg)


@dataclass
class SmtpServer:
    """A local SMTP server (aiosmtpd) and the messages it received, parsed."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    delay: float = 0.0  # seconds the server waits before accepting a message

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """Django's SMTP backend pointed at a real SMTP server on a free local port."""
    server = SmtpServer(host="127.0.0.1", port=free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    try:
        yield server
    finally:
        wait_for_outgoing_mail()
        controller.stop()


@pytest.fixture
def closed_circuits():
    """No tenant database or database server is marked as failed before or after the test."""

    def clear():
        breaker._failed_at.clear()
        breaker._server_failed_at.clear()
        cache.delete_many([breaker.FAILURES_CACHE_KEY, breaker.SERVER_FAILURES_CACHE_KEY])

    clear()
    yield
    clear()
