"""Tenant-bound JWTs. Every token carries `tenant` (the slug, or null for platform staff),
`user_id` and `iat_us` (issue time in microseconds); SimpleJWT adds `jti`, `exp`, `iat`,
and, from settings, `aud` and `iss`. An access token also names its refresh token (`rjti`),
so that logging out with the access token alone revokes both."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import BlacklistMixin, RefreshToken, Token

from tenants.context import slug_of

if TYPE_CHECKING:
    from accounts.models import User
    from tenants.models import Tenant

TENANT_CLAIM = "tenant"
# `iat` has one-second resolution; revocation marks (`User.tokens_valid_after`) need more,
# or a token issued in the same second as a password change would be ambiguous.
ISSUED_AT_US_CLAIM = "iat_us"
REFRESH_JTI_CLAIM = "rjti"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PlatformRefreshToken(RefreshToken):
    """A platform staff refresh token. The blacklist app's tables live in tenant databases
    only; platform refresh tokens are refused through the main database's deny list
    (`RevokedToken`, see `accounts.services`) instead."""

    def verify(self, *args, **kwargs) -> None:
        Token.verify(self, *args, **kwargs)


def refresh_token_class(tenant: Tenant | None) -> type[RefreshToken]:
    return RefreshToken if tenant is not None else PlatformRefreshToken


def issue_tokens(user: User, tenant: Tenant | None, claims: dict | None = None) -> dict:
    """A fresh access + refresh pair for `user` in `tenant` (None: platform staff), as the
    login response body: `{token, access, refresh, token_type, expires_in, tenant}`;
    `claims` are added to both tokens.

    Refresh tokens are recorded (a tenant's outstanding-token table, the main database's
    deny list) when they are first rotated or revoked (`accounts.services`), not here:
    the blacklist needs the row only once the token is refused, and writing it at every
    login cost each login an INSERT and its commit.
    """
    slug = slug_of(tenant)
    # Token.for_user: the claims SimpleJWT sets for a user, without BlacklistMixin's
    # outstanding-token insert.
    refresh = super(BlacklistMixin, refresh_token_class(tenant)).for_user(user)
    refresh[TENANT_CLAIM] = slug
    refresh[ISSUED_AT_US_CLAIM] = time.time_ns() // 1000
    for name, value in (claims or {}).items():
        refresh[name] = value
    access = refresh.access_token
    access[REFRESH_JTI_CLAIM] = refresh["jti"]
    access_value = str(access)
    return {
        "token": access_value,
        "access": access_value,
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        "tenant": slug,
    }


def issued_at_us(token) -> int:
    """When `token` was issued, in microseconds since the epoch. Tokens without the
    precise claim count from the start of their `iat` second (the strict reading)."""
    value = token.get(ISSUED_AT_US_CLAIM)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    iat = token.get("iat", 0)
    return int(iat) * 1_000_000 if isinstance(iat, int | float) else 0


def issued_before(token, mark: datetime | None) -> bool:
    """True when `token` was issued before the revocation mark `mark`."""
    if mark is None:
        return False
    mark_us = (mark - _EPOCH) // timedelta(microseconds=1)
    return issued_at_us(token) < mark_us


def access_ttl_seconds() -> int:
    return settings.ACCESS_TOKEN_TTL
