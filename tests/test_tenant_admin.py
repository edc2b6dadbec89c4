"""Onboarding tenants in the Django admin."""

from http import HTTPStatus

import pytest

from accounts.models import User
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(databases="__all__")


def _add_form(**overrides) -> dict:
    data = {
        "slug": "massive",
        "name": "Massive Dynamic",
        "database_url": "",
        "admin_username": "nina",
        "admin_email": "nina@massive.test",
        "admin_password": "Massive-2024-pw",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
        "domains-0-domain": "Massive.Test",
        "domains-0-is_primary": "on",
    }
    data.update(overrides)
    return data


def test_adding_a_tenant_in_the_admin_provisions_it(superuser_client):
    response = superuser_client.post("/admin/tenants/tenant/add/", _add_form())
    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    tenant = Tenant.objects.get(slug="massive")
    try:
        assert tenant.status == Tenant.Status.ACTIVE
        assert list(tenant.domains.values_list("domain", flat=True)) == ["massive.test"]
        assert servers.database_exists(aliases.tenant_database_settings(tenant))
        with use_tenant(tenant):
            assert User.objects.get(username="nina").role == User.Role.ADMIN
    finally:
        cfg = aliases.tenant_database_settings(tenant)
        aliases.unregister_alias(tenant.alias)
        servers.drop_database(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"slug": "www"}, "reserved"),
        ({"slug": "Bad Slug"}, "lower-case letters"),
        ({"domains-0-domain": "acme.test"}, "already exists"),
        ({"admin_password": "short"}, "too short"),
        ({"database_url": "postgres://postgres@127.0.0.1:1/x"}, "unreachable"),
    ],
)
def test_bad_input_in_the_admin_is_a_form_error_and_changes_nothing(
    superuser_client, acme, overrides, message
):
    before = Tenant.objects.count()
    response = superuser_client.post("/admin/tenants/tenant/add/", _add_form(**overrides))
    assert response.status_code == HTTPStatus.OK
    assert message in response.content.decode()
    assert Tenant.objects.count() == before


def test_the_admin_offers_no_delete_page(superuser_client, acme):
    """Deleting a row would free its slug while its database lives on: tenants are
    suspended in the admin and dropped only by `drop_tenant`."""
    response = superuser_client.get(f"/admin/tenants/tenant/{acme.pk}/delete/")
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_suspend_and_activate_actions(superuser_client, acme):
    changelist = "/admin/tenants/tenant/"
    superuser_client.post(changelist, {"action": "suspend_selected", "_selected_action": [acme.pk]})
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.SUSPENDED
    superuser_client.post(
        changelist, {"action": "activate_selected", "_selected_action": [acme.pk]}
    )
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.ACTIVE


def test_migrate_action_reports_per_tenant(superuser_client, acme):
    response = superuser_client.post(
        "/admin/tenants/tenant/",
        {"action": "migrate_selected", "_selected_action": [acme.pk]},
        follow=True,
    )
    assert "Tenant acme: 0 migration(s) applied." in response.content.decode()
