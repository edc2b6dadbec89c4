"""Tenant-bound JWTs. Every token carries `tenant` (the slug, or null for platform staff)
and `user_id`; SimpleJWT adds `jti`, `exp`, `iat`, and, from settings, `aud` and `iss`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

if TYPE_CHECKING:
    from accounts.models import User
    from tenants.models import Tenant

TENANT_CLAIM = "tenant"


def issue_tokens(user: User, tenant: Tenant | None) -> dict:
    """A fresh access + refresh pair for `user` in `tenant` (None: platform staff), as the
    login response body: `{token, access, refresh, token_type, expires_in, tenant}`.

    Tenant refresh tokens are recorded in the tenant's outstanding-token table so they can
    be rotated and blacklisted; platform sessions get an access token only.
    """
    slug = tenant.slug if tenant is not None else None
    if tenant is not None:
        refresh = RefreshToken.for_user(user)
        refresh[TENANT_CLAIM] = slug
        access = refresh.access_token
        refresh_value = str(refresh)
    else:
        access = AccessToken.for_user(user)
        access[TENANT_CLAIM] = None
        refresh_value = None
    access_value = str(access)
    body = {
        "token": access_value,
        "access": access_value,
        "refresh": refresh_value,
        "token_type": "Bearer",
        "expires_in": int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        "tenant": slug,
    }
    if refresh_value is None:
        del body["refresh"]
    return body


def access_ttl_seconds() -> int:
    return settings.ACCESS_TOKEN_TTL
