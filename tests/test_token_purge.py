"""`purge_revoked_tokens`: expired deny-list rows go, live ones stay, one tenant at a time."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import RevokedToken
from tenants.context import use_tenant

pytestmark = pytest.mark.django_db(databases="__all__")


def _revoked(tenant, jti: str, expires_in: timedelta) -> None:
    with use_tenant(tenant):
        RevokedToken.objects.create(jti=jti, expires_at=timezone.now() + expires_in)


def _jtis(tenant) -> set[str]:
    with use_tenant(tenant):
        return set(RevokedToken.objects.values_list("jti", flat=True))


def test_purge_deletes_only_expired_rows_of_the_named_tenant(acme, globex):
    _revoked(acme, "acme-old", timedelta(hours=-1))
    _revoked(acme, "acme-live", timedelta(hours=1))
    _revoked(globex, "globex-old", timedelta(hours=-1))
    out = StringIO()
    call_command("tenant_command", "--tenant", "acme", "purge_revoked_tokens", stdout=out)
    assert "Purged 1 expired revoked token(s) in tenant acme." in out.getvalue()
    assert _jtis(acme) == {"acme-live"}
    assert _jtis(globex) == {"globex-old"}  # another tenant's rows are not touched


def test_purge_across_all_tenants(acme, globex):
    _revoked(acme, "acme-old", timedelta(hours=-1))
    _revoked(globex, "globex-old", timedelta(hours=-1))
    _revoked(globex, "globex-live", timedelta(hours=1))
    call_command("tenant_command", "--all-tenants", "purge_revoked_tokens", stdout=StringIO())
    assert _jtis(acme) == set()
    assert _jtis(globex) == {"globex-live"}
