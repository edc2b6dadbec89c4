"""The platform API: staff login and the tenants API, on any host, platform tokens only."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import connections

from accounts.models import User
from tenants import services as tenant_services
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.models import Tenant
from tests.factories import PASSWORD
from tests.helpers import client_for, platform_login

pytestmark = pytest.mark.django_db(databases="__all__")

TENANT_FIELDS = {"slug", "name", "status", "domains", "database", "created_at"}


# --- login --------------------------------------------------------------------------------
def test_platform_login_has_the_tenant_login_shape_with_tenant_null(staff):
    response = platform_login()
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"token", "access", "refresh", "token_type", "expires_in", "tenant"}
    assert body["tenant"] is None
    assert isinstance(body["refresh"], str) and body["refresh"]  # refreshed as tenant users are
    assert body["token"] == body["access"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0


def test_platform_login_works_on_any_host(staff):
    assert platform_login(host="whatever.example").status_code == HTTPStatus.OK


def test_platform_login_refuses_non_staff_users(tenant_databases):
    User.objects.create_user("plain", "plain@example.test", PASSWORD)
    response = platform_login("plain")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid credentials"


def test_platform_login_refuses_tenant_users(acme, make_user):
    make_user(acme, "ann", is_staff=True)
    assert platform_login("ann").status_code == HTTPStatus.UNAUTHORIZED


def test_platform_login_wrong_password_is_401(staff):
    response = platform_login(password="Wrong-pass-123")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid credentials"


def test_platform_login_rejects_a_tenant_field(staff):
    response = client_for("acme.test").post(
        "/api/platform/auth/login",
        {"username_or_email": "root", "password": PASSWORD, "tenant": "acme"},
        format="json",
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


# --- who may call -------------------------------------------------------------------------
PLATFORM_CALLS = [
    ("get", "/api/platform/tenants"),
    ("post", "/api/platform/tenants"),
    ("get", "/api/platform/tenants/acme"),
    ("patch", "/api/platform/tenants/acme"),
    ("delete", "/api/platform/tenants/acme"),
    ("get", "/api/platform/tenants/acme/health"),
]


@pytest.mark.parametrize(("method", "path"), PLATFORM_CALLS)
def test_a_tenant_token_gets_403_on_platform_endpoints(acme, make_user, bearer, method, path):
    admin = make_user(acme, "boss", role="admin", is_staff=True)
    response = getattr(client_for("acme.test"), method)(path, **bearer(admin, acme))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"
    assert Tenant.objects.get(slug="acme").status == Tenant.Status.ACTIVE


@pytest.mark.parametrize(("method", "path"), PLATFORM_CALLS)
def test_platform_endpoints_without_a_token_are_401(acme, method, path):
    response = getattr(client_for("acme.test"), method)(path)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Missing authorization header"


def test_a_non_staff_platform_token_is_403(acme, bearer, tenant_databases):
    plain = User.objects.create_user("plain", "plain@example.test", PASSWORD)
    response = client_for("acme.test").get("/api/platform/tenants", **bearer(plain, None))
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_a_platform_token_works_on_any_host(as_staff, globex):
    for host in ("acme.test", "globex.test", "unknown.example"):
        response = client_for(host).get("/api/platform/tenants", **as_staff)
        assert response.status_code == HTTPStatus.OK


# --- tenants ------------------------------------------------------------------------------
def test_list_tenants_is_paginated_and_never_shows_a_database_url(as_staff, globex):
    response = client_for("acme.test").get("/api/platform/tenants", **as_staff)
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    by_slug = {t["slug"]: t for t in body["results"]}
    assert {"acme", "globex"} <= set(by_slug)
    assert set(by_slug["acme"]) == TENANT_FIELDS
    assert by_slug["acme"]["domains"] == ["acme.test"]
    assert by_slug["acme"]["status"] == "active"


def test_show_one_tenant(as_staff):
    response = client_for("globex.test").get("/api/platform/tenants/acme", **as_staff)
    assert response.status_code == HTTPStatus.OK
    assert response.json()["slug"] == "acme"
    assert response.json()["name"] == "Acme Corp"


def test_unknown_tenant_is_404(as_staff):
    response = client_for("acme.test").get("/api/platform/tenants/nope-nope", **as_staff)
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_post_provisions_a_tenant_with_its_first_admin(as_staff, dropped_after):
    dropped_after.append("initech-api")
    response = client_for("acme.test").post(
        "/api/platform/tenants",
        {
            "slug": "initech-api",
            "name": "Initech",
            "domains": ["initech-api.test"],
            "admin": {"username": "boss", "email": "boss@initech.test", "password": PASSWORD},
        },
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert set(body) == TENANT_FIELDS
    assert body["status"] == "active"
    assert body["domains"] == ["initech-api.test"]
    assert PASSWORD not in response.content.decode()
    login = client_for("initech-api.test").post(
        "/api/auth/login", {"username_or_email": "boss", "password": PASSWORD}, format="json"
    )
    assert login.status_code == HTTPStatus.OK
    assert login.json()["tenant"] == "initech-api"
    with use_tenant(Tenant.objects.get(slug="initech-api")):
        assert User.objects.get(username="boss").role == "admin"


def test_post_with_bad_input_is_400_with_details_and_changes_nothing(as_staff):
    response = client_for("acme.test").post(
        "/api/platform/tenants",
        {
            "slug": "Bad Slug",
            "name": "",
            "domains": ["acme.test"],
            "admin": {"username": "boss", "email": "nope", "password": "weak"},
        },
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["message"] == "Validation failed"
    assert "name" in response.json()["details"]
    assert not Tenant.objects.filter(name="").exists()


def test_post_service_validation_errors_are_400_with_details(as_staff):
    response = client_for("acme.test").post(
        "/api/platform/tenants",
        {
            "slug": "Bad Slug",
            "name": "Bad",
            "domains": ["acme.test"],
            "admin": {"username": "boss", "email": "nope", "password": "weak"},
        },
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    details = response.json()["details"]
    assert {"slug", "domains", "admin.email", "admin.password"} <= set(details)
    assert "weak" not in response.content.decode()


def test_post_an_existing_slug_is_400(as_staff):
    response = client_for("acme.test").post(
        "/api/platform/tenants",
        {"slug": "acme", "name": "Again", "domains": []},
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "slug" in response.json()["details"]


def test_post_unknown_fields_are_400(as_staff):
    response = client_for("acme.test").post(
        "/api/platform/tenants",
        {"slug": "hooli-x", "name": "Hooli", "domains": [], "plan": "gold"},
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"] == {"plan": ["Unknown field."]}


def test_provisioning_failure_is_503_in_the_envelope(as_staff, dropped_after, monkeypatch):
    dropped_after.append("umbrella-api")

    def broken(alias):
        raise RuntimeError("disk full at postgres://u:hunter2@db/x")

    monkeypatch.setattr(tenant_services, "migrate_database", broken)
    response = client_for("acme.test").post(
        "/api/platform/tenants",
        {"slug": "umbrella-api", "name": "Umbrella", "domains": ["umbrella-api.test"]},
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    body = response.json()
    assert body["status"] == HTTPStatus.SERVICE_UNAVAILABLE
    assert body["error"] == "Service Unavailable"
    assert "hunter2" not in response.content.decode()
    assert Tenant.objects.get(slug="umbrella-api").status == Tenant.Status.FAILED


def test_patch_renames_and_adds_domains(as_staff, tenant_factory):
    tenant_factory("hooli-api")
    response = client_for("acme.test").patch(
        "/api/platform/tenants/hooli-api",
        {"name": "Hooli XYZ", "domains": ["hooli-xyz.test"]},
        format="json",
        **as_staff,
    )
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["name"] == "Hooli XYZ"
    assert sorted(body["domains"]) == ["hooli-api.test", "hooli-xyz.test"]


def test_patch_refuses_a_domain_of_another_tenant(as_staff, tenant_factory):
    tenant_factory("hooli-api")
    response = client_for("acme.test").patch(
        "/api/platform/tenants/hooli-api", {"domains": ["acme.test"]}, format="json", **as_staff
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "domains" in response.json()["details"]


def test_patch_suspends_and_reactivates(as_staff, tenant_factory):
    tenant_factory("hooli-api")
    client = client_for("acme.test")
    suspended = client.patch(
        "/api/platform/tenants/hooli-api", {"status": "suspended"}, format="json", **as_staff
    )
    assert suspended.json()["status"] == "suspended"
    signup = client_for("hooli-api.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "ann@example.test", "password": PASSWORD},
        format="json",
    )
    assert signup.status_code == HTTPStatus.FORBIDDEN
    assert signup.json()["message"] == "Tenant suspended"
    active = client.patch(
        "/api/platform/tenants/hooli-api", {"status": "active"}, format="json", **as_staff
    )
    assert active.json()["status"] == "active"


def test_patch_cannot_drop_or_fail_a_tenant(as_staff):
    response = client_for("acme.test").patch(
        "/api/platform/tenants/acme", {"status": "dropped"}, format="json", **as_staff
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "status" in response.json()["details"]


def test_delete_suspends_and_keeps_the_database(as_staff, tenant_factory):
    tenant = tenant_factory("hooli-api")
    response = client_for("acme.test").delete("/api/platform/tenants/hooli-api", **as_staff)
    assert response.status_code == HTTPStatus.OK
    assert response.json()["status"] == "suspended"
    assert response.json()["slug"] == "hooli-api"
    assert servers.database_exists(aliases.tenant_database_settings(tenant))
    assert Tenant.objects.get(slug="hooli-api").status == Tenant.Status.SUSPENDED


def test_health_reports_a_reachable_migrated_database(as_staff):
    response = client_for("globex.test").get("/api/platform/tenants/acme/health", **as_staff)
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["migrations"] == "ok"
    assert body["pending_migrations"] == []


def test_health_reports_pending_migrations(as_staff, tenant_factory):
    tenant = tenant_factory("pending-api")
    with connections[tenant.alias].cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'token_blacklist' AND "
            "name = '0013_alter_blacklistedtoken_options_and_more'"
        )
    response = client_for("acme.test").get("/api/platform/tenants/pending-api/health", **as_staff)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["pending_migrations"] == [
        "token_blacklist.0013_alter_blacklistedtoken_options_and_more"
    ]


def test_health_of_a_missing_database_is_unreachable(as_staff, tenant_factory):
    tenant = tenant_factory("hooli-api")
    aliases.unregister_alias(tenant.alias)
    servers.drop_database(aliases.tenant_database_settings(tenant))
    response = client_for("acme.test").get("/api/platform/tenants/hooli-api/health", **as_staff)
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["database"] == "unreachable"
