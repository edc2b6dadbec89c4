"""`tenants.resolution`: which tenant a Host, a trusted-proxy header and `TENANT_DEFAULT`
name, decided on plain values (the HTTP middleware and the WebSocket handshake both call it).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import Domain, Tenant
from tenants.resolution import Refusal, Resolution, resolve_tenant, resolver

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXY_IPS = ["10.0.0.0/8"]


def test_exact_domain_names_the_tenant(acme):
    assert resolve_tenant(host="acme.test") == Resolution(tenant=acme)


def test_base_domain_subdomain_names_the_tenant_whatever_the_case_and_port(acme):
    assert resolve_tenant(host="ACME.localhost:8000").tenant == acme


def test_exact_domain_wins_over_the_base_domain_subdomain(acme, globex):
    Domain.objects.create(domain="globex.localhost", tenant=acme)
    assert resolve_tenant(host="globex.localhost").tenant == acme


def test_missing_or_empty_host_is_refused_as_invalid():
    assert resolve_tenant(host=None) == Resolution(refusal=Refusal.INVALID_HOST)
    assert resolve_tenant(host="  ") == Resolution(refusal=Refusal.INVALID_HOST)


def test_unknown_host_is_refused_as_unknown_tenant(acme):
    assert resolve_tenant(host="nobody.example.org") == Resolution(refusal=Refusal.UNKNOWN_TENANT)


def test_suspended_tenant_is_refused_without_naming_it(acme):
    Tenant.objects.filter(pk=acme.pk).update(status=Tenant.Status.SUSPENDED)
    resolver.invalidate()
    assert resolve_tenant(host="acme.test") == Resolution(refusal=Refusal.TENANT_SUSPENDED)


@pytest.mark.parametrize("status", ["provisioning", "failed", "dropped"])
def test_tenant_that_is_not_active_or_suspended_is_unknown(acme, status):
    Tenant.objects.filter(pk=acme.pk).update(status=status)
    resolver.invalidate()
    assert resolve_tenant(host="acme.test").refusal == Refusal.UNKNOWN_TENANT


def test_tenant_header_from_a_trusted_proxy_names_the_tenant(acme, behind_proxy):
    resolution = resolve_tenant(host="edge.example.org", tenant_header=" ACME ", peer=PROXY)
    assert resolution.tenant == acme


def test_tenant_header_from_an_untrusted_peer_is_ignored(acme, behind_proxy):
    resolution = resolve_tenant(host="edge.example.org", tenant_header="acme", peer="192.0.2.1")
    assert resolution.refusal == Refusal.UNKNOWN_TENANT


def test_tenant_header_without_a_peer_is_ignored(acme, behind_proxy):
    resolution = resolve_tenant(host="edge.example.org", tenant_header="acme", peer=None)
    assert resolution.refusal == Refusal.UNKNOWN_TENANT


def test_host_wins_over_the_tenant_header(acme, globex, behind_proxy):
    resolution = resolve_tenant(host="globex.test", tenant_header="acme", peer=PROXY)
    assert resolution.tenant == globex


def test_tenant_default_serves_an_unmatched_host(acme, settings):
    settings.TENANT_DEFAULT = "acme"
    assert resolve_tenant(host="anything.example.org").tenant == acme


def test_tenant_header_wins_over_the_default(acme, globex, settings, behind_proxy):
    settings.TENANT_DEFAULT = "acme"
    resolution = resolve_tenant(host="edge.example.org", tenant_header="globex", peer=PROXY)
    assert resolution.tenant == globex


def test_unknown_tenant_header_falls_back_to_the_default(acme, settings, behind_proxy):
    settings.TENANT_DEFAULT = "acme"
    resolution = resolve_tenant(host="edge.example.org", tenant_header="nobody", peer=PROXY)
    assert resolution.tenant == acme


def test_without_queries_a_cold_cache_answers_none_and_a_warm_one_answers_without_a_query(
    acme,
):
    assert resolve_tenant(host="acme.test", allow_queries=False) is None
    assert resolve_tenant(host="acme.test").tenant == acme
    with CaptureQueriesContext(connection) as queries:
        assert resolve_tenant(host="acme.test", allow_queries=False).tenant == acme
    assert len(queries) == 0


def test_an_unknown_host_is_cached_too(acme):
    resolve_tenant(host="nobody.example.org")
    with CaptureQueriesContext(connection) as queries:
        resolution = resolve_tenant(host="nobody.example.org", allow_queries=False)
    assert resolution.refusal == Refusal.UNKNOWN_TENANT
    assert len(queries) == 0


def test_saving_a_domain_invalidates_the_cached_answer(acme, globex):
    assert resolve_tenant(host="shop.example.org").refusal == Refusal.UNKNOWN_TENANT
    Domain.objects.create(domain="shop.example.org", tenant=globex)
    assert resolve_tenant(host="shop.example.org").tenant == globex


def test_suspending_a_tenant_invalidates_the_cached_answer(acme):
    assert resolve_tenant(host="acme.test").tenant == acme
    acme.status = Tenant.Status.SUSPENDED
    acme.save()
    assert resolve_tenant(host="acme.test").refusal == Refusal.TENANT_SUSPENDED
