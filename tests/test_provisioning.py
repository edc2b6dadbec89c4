"""The provisioning service: real databases, idempotence, failures and retries."""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from accounts.models import User
from tenants import services
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.models import Domain, Tenant
from tenants.selectors import pending_migrations
from tenants.validators import RESERVED_SLUGS, SLUG_PATTERN
from tests.helpers import client_for

pytestmark = pytest.mark.django_db(databases="__all__")


def test_provisioning_creates_a_migrated_database_and_first_admin(tenant_factory):
    tenant = tenant_factory(
        "initech",
        domains=["Initech.example.com"],
        admin=services.AdminSpec("boss", "boss@initech.test", "Initech-2024-pw"),
    )
    assert tenant.status == Tenant.Status.ACTIVE
    assert tenant.last_error == ""
    assert tenant.provisioned_at is not None
    assert list(tenant.domains.values_list("domain", flat=True)) == ["initech.example.com"]
    cfg = aliases.tenant_database_settings(tenant)
    assert servers.database_exists(cfg)
    assert pending_migrations(tenant.alias) == []
    with use_tenant(tenant):
        boss = User.objects.get(username="boss")
    assert boss.role == User.Role.ADMIN
    assert boss.check_password("Initech-2024-pw")
    assert not User.objects.using("default").filter(username="boss").exists()


def test_provisioning_twice_is_idempotent(tenant_factory):
    first = tenant_factory("hooli")
    again = services.provision_tenant(slug="hooli", name="Hooli", domains=["hooli.test"])
    assert again.pk == first.pk
    assert Tenant.objects.filter(slug="hooli").count() == 1
    assert Domain.objects.filter(domain="hooli.test").count() == 1


def test_failed_provisioning_is_marked_failed_and_a_retry_completes(tenant_factory, monkeypatch):
    real_migrate = services.migrate_database

    def broken_migrate(alias):
        raise RuntimeError("disk full while migrating postgres://user:hunter2@db/x")

    monkeypatch.setattr(services, "migrate_database", broken_migrate)
    with pytest.raises(services.ProvisioningError):
        tenant_factory("umbrella")
    tenant = Tenant.objects.get(slug="umbrella")
    assert tenant.status == Tenant.Status.FAILED
    assert "disk full" in tenant.last_error
    assert "hunter2" not in tenant.last_error
    assert client_for("umbrella.test").get("/api/address-book").status_code == HTTPStatus.NOT_FOUND

    monkeypatch.setattr(services, "migrate_database", real_migrate)
    retried = tenant_factory("umbrella")
    assert retried.status == Tenant.Status.ACTIVE
    assert retried.last_error == ""
    assert pending_migrations(retried.alias) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"slug": "Bad_Slug"}, "slug"),
        ({"slug": "ab-"}, "slug"),
        ({"slug": "www"}, "slug"),
        ({"slug": "template"}, "slug"),
        ({"name": "  "}, "name"),
        ({"domains": ["not a host"]}, "domains"),
        ({"domains": ["acme.test"]}, "domains"),
        ({"database_url": "mysql://x@y/z"}, "database_url"),
        ({"database_url": "postgres://postgres@127.0.0.1:1/x"}, "database_url"),
        ({"admin": services.AdminSpec("boss", "not-an-email", "weak")}, "admin.email"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(acme, kwargs, field):
    arguments = {"slug": "newco", "name": "New Co", "domains": ["newco.test"], **kwargs}
    tenants_before = Tenant.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        services.provision_tenant(**arguments)
    assert field in excinfo.value.message_dict
    assert Tenant.objects.count() == tenants_before
    assert not Domain.objects.filter(domain="newco.test").exists()
    cfg = aliases.server_settings()
    cfg["NAME"] = aliases.database_name_for(arguments["slug"])
    if SLUG_PATTERN.match(arguments["slug"]) and arguments["slug"] not in RESERVED_SLUGS:
        assert not servers.database_exists(cfg)


def test_suspend_activate_and_drop(tenant_factory):
    tenant = tenant_factory("soylent")
    cfg = aliases.tenant_database_settings(tenant)
    with pytest.raises(ValidationError):
        services.tenant_drop(tenant)
    assert servers.database_exists(cfg)

    services.tenant_suspend(tenant)
    assert Tenant.objects.get(slug="soylent").status == Tenant.Status.SUSPENDED
    services.tenant_activate(tenant)
    services.tenant_suspend(tenant)
    services.tenant_drop(tenant)
    assert Tenant.objects.get(slug="soylent").status == Tenant.Status.DROPPED
    assert not servers.database_exists(cfg)
    assert tenant.alias not in connections.settings


def test_deleting_a_tenant_row_keeps_its_database(tenant_factory):
    tenant = tenant_factory("cyberdyne")
    cfg = aliases.tenant_database_settings(tenant)
    Tenant.objects.filter(pk=tenant.pk).delete()
    assert servers.database_exists(cfg)
