"""One probe of a tenant's database serves the deploy check, list_tenants and the platform
health endpoint: reachable or not, the failure's class (never its text), the pending
migrations; it feeds the circuit breaker only when its caller does."""

from __future__ import annotations

import pytest

from tenants.checks import check_tenant_databases
from tenants.db import breaker
from tenants.models import Tenant
from tenants.selectors import probe_tenant_database
from tests.helpers import database_unreachable

pytestmark = [
    pytest.mark.django_db(databases="__all__", transaction=True),
    pytest.mark.usefixtures("closed_circuits"),
]


def test_probe_of_a_migrated_tenant_is_reachable_with_nothing_pending(acme):
    probe = probe_tenant_database(acme)
    assert (probe.reachable, probe.pending_migrations, probe.error) == (True, (), "")


def test_probe_of_an_unreachable_database_gives_only_the_failures_class(tenant_factory):
    tenant = tenant_factory("probe-down")
    with database_unreachable(tenant):
        probe = probe_tenant_database(tenant)
    assert not probe.reachable
    assert probe.error == "OperationalError"
    assert probe.exception is not None
    assert "nonexistent" not in repr(probe) and "127.0.0.1" not in repr(probe)


def test_probe_records_nothing_for_the_circuit_breaker(tenant_factory):
    tenant = tenant_factory("probe-quiet")
    with database_unreachable(tenant):
        probe_tenant_database(tenant)
    assert breaker.recently_unavailable_tenants() == []


def test_probe_of_a_dropped_tenant_is_unreachable(acme):
    dropped = Tenant(slug=acme.slug, status=Tenant.Status.DROPPED)
    probe = probe_tenant_database(dropped)
    assert (probe.reachable, probe.error) == (False, "TenantDatabaseError")


def test_deploy_check_names_the_unreachable_tenant_and_the_failures_class(tenant_factory):
    tenant = tenant_factory("probe-check")
    with database_unreachable(tenant):
        problems = check_tenant_databases(None, databases=["default"])
    mine = [p for p in problems if f"'{tenant.slug}'" in p.msg]
    assert [(p.id, p.msg) for p in mine] == [
        ("tenants.E001", "Tenant 'probe-check': database is unreachable (OperationalError).")
    ]
