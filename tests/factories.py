"""Factories: the users, staff, contacts, tokens and API keys tests build. The conftest fixtures
(`make_user`, `make_contact`, `bearer`, `staff`) hand these out; a test or a helper that
builds data outside a fixture calls them directly."""

from __future__ import annotations

from accounts import services
from accounts.models import ApiKey, AuditEvent, User
from accounts.tokens import issue_tokens
from addressbook.models import Contact
from tenants.context import use_tenant

PASSWORD = "Sup3r-Secret-pw"
NEW_PASSWORD = "An0ther-Secret-pw"
WRONG_PASSWORD = "Wrong-pass-123"


def create_user(tenant, username="alice", *, role=None, password=PASSWORD, **extra) -> User:
    """A user in the tenant's database (the main one with tenant=None)."""
    with use_tenant(tenant):
        user = User.objects.create_user(
            username, extra.pop("email", f"{username}@example.test"), password, **extra
        )
        if role is not None:
            user.role = role
            user.save(update_fields=["role"])
    return user


def create_staff(username="root", *, email=None, password=PASSWORD, **extra) -> User:
    """A platform staff account (main database)."""
    return User.objects.create_user(
        username, email or f"{username}@example.test", password, is_staff=True, **extra
    )


def create_contact(tenant, name="Someone", **fields) -> Contact:
    """A contact in the tenant's database."""
    with use_tenant(tenant):
        return Contact.objects.create(name=name, **fields)


def create_audit_event(tenant, event="login", **fields) -> AuditEvent:
    """An audit event stored as it is in the tenant's database (the main one with
    tenant=None), e.g. with a `created_at` in the past."""
    with use_tenant(tenant):
        return AuditEvent.objects.create(event=event, **fields)


def access_token(user, tenant) -> str:
    """A fresh access token of `user` in `tenant` (None: a platform token)."""
    with use_tenant(tenant):
        return issue_tokens(user, tenant)["access"]


def bearer_for(user, tenant) -> dict:
    """Headers for APIClient calls carrying a fresh access token of `user` in `tenant`."""
    return bearer_header(access_token(user, tenant))


def bearer_header(access: str) -> dict:
    """Headers for APIClient calls carrying `access`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def create_api_key(
    tenant, user, *, scopes=("contacts:read",), name="robot", expires_at=None, id=None
) -> tuple[ApiKey, str]:
    """An API key of `tenant` made by `user` through the service: `(row, key)`. `id` moves
    the row to that id (the isolation matrix gives two tenants' keys the same one)."""
    with use_tenant(tenant):
        api_key, key = services.api_key_create(
            name=name, scopes=list(scopes), expires_at=expires_at, created_by=user, tenant=tenant
        )
        if id is not None:
            ApiKey.objects.filter(pk=api_key.pk).update(id=id)
            api_key.pk = id
    return api_key, key


def api_key_bearer(key: str) -> dict:
    """Headers for APIClient calls carrying the API key `key` as a bearer credential."""
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def api_key_header(key: str) -> dict:
    """Headers for APIClient calls carrying the API key `key` in `X-Api-Key`."""
    return {"HTTP_X_API_KEY": key}


# A TOTP secret (base32) for users whose authenticator a test sets up directly.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def enrol_totp(tenant, user, secret: str = TOTP_SECRET) -> str:
    """Give `user` (in `tenant`; None: the main database) a confirmed authenticator with
    `secret`; returns the secret."""
    from django.utils import timezone

    from accounts.models import TotpDevice

    with use_tenant(tenant):
        TotpDevice.objects.create(user=user, secret=secret, confirmed_at=timezone.now())
    return secret
