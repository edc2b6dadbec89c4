"""Provisioning faults: a crash between creating a tenant's database and marking the tenant
active leaves a tenant that does not serve and that every entry point (the `create_tenant`
command, the admin's "Provision" action, the platform API) finishes on retry; concurrent
provisioning of one slug makes exactly one tenant and one database."""

from __future__ import annotations

import io
import threading
from http import HTTPStatus

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import Client

from accounts.models import User
from accounts.tokens import issue_tokens
from tenants import services
from tenants.db import aliases, servers
from tenants.db.servers import postgresql
from tenants.models import Tenant
from tenants.resolution import resolver
from tests.factories import PASSWORD
from tests.helpers import POSTGRES, client_for

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

SLUG = "phoenix"
HOST = "phoenix.test"
ADMIN = services.AdminSpec("pat", "pat@phoenix.test", PASSWORD)


@pytest.fixture
def cleanup(tenant_databases):
    """Drop whatever database the test's tenant got, however far provisioning went."""
    yield
    tenant = Tenant.objects.filter(slug=SLUG).first()
    cfg = (
        aliases.tenant_database_settings(tenant)
        if tenant is not None
        else {**aliases.server_settings(), "NAME": aliases.database_name_for(SLUG)}
    )
    aliases.unregister_alias(aliases.alias_for(SLUG))
    servers.drop_database(cfg)


class Crash(Exception):
    """A failure injected between creating the database and marking the tenant active."""


def crash_after_the_database_exists(monkeypatch, error: type[BaseException] = Crash):
    real = services.migrate_database

    def migrate_then_crash(alias: str) -> int:
        if alias == aliases.alias_for(SLUG):
            assert servers.database_exists(aliases.tenant_database_settings(tenant()))
            raise error("injected crash")
        return real(alias)

    monkeypatch.setattr(services, "migrate_database", migrate_then_crash)


def tenant() -> Tenant:
    return Tenant.objects.get(slug=SLUG)


def provision(**kwargs):
    return services.provision_tenant(slug=SLUG, name="Phoenix", domains=[HOST], **kwargs)


def assert_does_not_serve():
    resolver.invalidate()
    response = client_for(HOST).post(
        "/api/auth/login", {"username_or_email": "pat", "password": PASSWORD}, format="json"
    )
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["message"] == "Unknown tenant"


def assert_serves_its_admin():
    resolver.invalidate()
    assert tenant().status == Tenant.Status.ACTIVE
    response = client_for(HOST).post(
        "/api/auth/login", {"username_or_email": "pat", "password": PASSWORD}, format="json"
    )
    assert response.status_code == HTTPStatus.OK, response.content


def database_count() -> int:
    if not POSTGRES:
        return int(servers.database_exists(aliases.tenant_database_settings(tenant())))
    with postgresql._admin_connection(aliases.server_settings()) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", [tenant().database_name]
        )
        return rows.fetchone()[0]


# --- a crash, then a retry ----------------------------------------------------------------
def test_failed_provisioning_is_marked_failed_and_does_not_serve(monkeypatch, cleanup):
    crash_after_the_database_exists(monkeypatch)
    with pytest.raises(services.ProvisioningError):
        provision(admin=ADMIN)
    assert tenant().status == Tenant.Status.FAILED
    assert "injected crash" in tenant().last_error
    assert_does_not_serve()


def test_hard_crash_leaves_a_provisioning_tenant_that_does_not_serve(monkeypatch, cleanup):
    """A process killed mid-way never reaches the `failed` mark: still not served."""
    crash_after_the_database_exists(monkeypatch, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        provision(admin=ADMIN)
    assert tenant().status == Tenant.Status.PROVISIONING
    assert_does_not_serve()
    monkeypatch.undo()
    provision(admin=ADMIN)
    assert_serves_its_admin()
    assert database_count() == 1


def _retry_with_command():
    out = io.StringIO()
    call_command(
        "create_tenant",
        SLUG,
        "--name",
        "Phoenix",
        "--domain",
        HOST,
        "--admin-username",
        ADMIN.username,
        "--admin-email",
        ADMIN.email,
        "--admin-password",
        ADMIN.password,
        stdout=out,
    )
    assert "is active" in out.getvalue()


def _retry_with_admin_action():
    staff = User.objects.create_superuser("root", "root@platform.test", "Platform-2024-pw")
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/tenants/tenant/",
        {"action": "provision_selected", "_selected_action": [tenant().pk]},
        follow=True,
    )
    assert response.status_code == HTTPStatus.OK
    assert b"is provisioned and active" in response.content


def _retry_with_platform_api():
    staff = User.objects.create_user("ops", "ops@platform.test", PASSWORD, is_staff=True)
    token = issue_tokens(staff, None)["access"]
    response = Client().post(
        "/api/platform/tenants",
        {
            "slug": SLUG,
            "name": "Phoenix",
            "domains": [HOST],
            "admin": {"username": ADMIN.username, "email": ADMIN.email, "password": PASSWORD},
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["status"] == "active"


@pytest.mark.parametrize(
    "retry",
    [_retry_with_command, _retry_with_admin_action, _retry_with_platform_api],
    ids=["create_tenant", "admin-action", "platform-api"],
)
def test_every_entry_point_retries_a_crashed_provisioning_to_completion(
    retry, monkeypatch, cleanup
):
    crash_after_the_database_exists(monkeypatch)
    with pytest.raises(services.ProvisioningError):
        provision(admin=ADMIN)
    monkeypatch.undo()
    retry()
    assert tenant().last_error == ""
    if retry is _retry_with_admin_action:
        # The action has no password to offer: the tenant is served, and its first signup
        # becomes its admin (API.md).
        resolver.invalidate()
        signup = client_for(HOST).post(
            "/api/auth/signup",
            {"username": "pat", "email": "pat@phoenix.test", "password": PASSWORD},
            format="json",
        )
        assert signup.json()["role"] == "admin"
    assert_serves_its_admin()
    assert database_count() == 1


def test_platform_api_reports_a_crashed_provisioning_as_retryable(monkeypatch, cleanup):
    crash_after_the_database_exists(monkeypatch)
    staff = User.objects.create_user("ops", "ops@platform.test", PASSWORD, is_staff=True)
    token = issue_tokens(staff, None)["access"]
    response = Client().post(
        "/api/platform/tenants",
        {"slug": SLUG, "name": "Phoenix", "domains": [HOST]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["message"] == "Tenant provisioning failed; it can be retried"
    assert "injected crash" not in response.content.decode()
    assert_does_not_serve()


# --- concurrent provisioning ----------------------------------------------------------------
@pytest.mark.skipif(not POSTGRES, reason="concurrent provisioning is serialised on PostgreSQL")
def test_concurrent_provisioning_of_one_slug_makes_one_tenant_and_one_database(cleanup):
    workers = 6
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(provision(admin=ADMIN).pk)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(set(results)) == 1
    assert Tenant.objects.filter(slug=SLUG).count() == 1
    assert database_count() == 1
    assert_serves_its_admin()
    with postgresql._admin_connection(aliases.server_settings()) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [f"{settings.TENANT_DB_PREFIX}{SLUG}%"],
            )
        ]
    assert names == [tenant().database_name]
