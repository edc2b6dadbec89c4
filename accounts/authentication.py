"""Bearer authentication that binds every token, and every API key, to the tenant of the
request's host."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services
from accounts.api_keys import KEY_START
from accounts.mfa import ENROLMENT_ONLY_CLAIM, EnrolmentRequired
from accounts.models import User
from accounts.selectors import token_is_revoked, user_for_token
from accounts.tokens import TENANT_CLAIM, issued_before
from config.errors import TenantAccessDenied
from config.network import client_ip
from tenants.context import current_tenant_slug, get_current_tenant

INVALID_TOKEN = "Invalid token"  # noqa: S105 (a message, not a secret)
INSUFFICIENT_SCOPE = "Insufficient scope"
API_KEY_HEADER = "HTTP_X_API_KEY"


class TenantJWTAuthentication(JWTAuthentication):
    """No header: no user (401 `Missing authorization header` where auth is required).
    Bad signature, expired, malformed, wrong audience or issuer, `alg: none`, unknown or
    inactive user, revoked: 401 `Invalid token`. A `tenant` claim that is not the resolved
    tenant of the request (platform paths resolve to none): 403 `Tenant access denied`."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        try:
            raw = self.get_raw_token(header)
        except exceptions.AuthenticationFailed:  # "Bearer", "Bearer a b": no single token
            raw = None
        if raw is None:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        view = (getattr(request, "parser_context", None) or {}).get("view")
        enrolment = getattr(view, "accepts_enrolment_tokens", False)
        return self.authenticate_raw(raw, accept_enrolment_only=enrolment)

    def authenticate_raw(self, raw: str | bytes, *, accept_enrolment_only: bool = False):
        """Validate a raw access token against the current tenant context; returns
        `(user, token)` or raises AuthenticationFailed / TenantAccessDenied. Used by the
        HTTP API and the WebSocket log stream alike. An enrolment-only token (accounts.mfa)
        is refused with 403 unless `accept_enrolment_only` (the enrolment views)."""
        try:
            token = AccessToken(raw)
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from exc
        if TENANT_CLAIM not in token.payload:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        if token[TENANT_CLAIM] != current_tenant_slug():
            raise TenantAccessDenied()
        user = self.get_user(token)
        self.check_revocation(user, token)
        if token.get(ENROLMENT_ONLY_CLAIM) and not accept_enrolment_only:
            raise EnrolmentRequired()
        return user, token

    def get_user(self, token) -> User:
        """The token's active user, read with whether the token is on the deny list (one
        query: the durable answer costs no extra round trip)."""
        jti = token.get("jti")
        user_id = token.get("user_id")
        if isinstance(user_id, str) and user_id.isdigit():
            user_id = int(user_id)
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < 2**63:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        user = user_for_token(user_id=user_id, jti=jti if isinstance(jti, str) else "")
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        return user

    def check_revocation(self, user: User, token) -> None:
        """Refuse tokens issued before the user's `tokens_valid_after` mark (compared to
        the microsecond) and tokens on the deny list (logout)."""
        if issued_before(token, user.tokens_valid_after):
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        jti = token.get("jti")
        if not isinstance(jti, str) or not jti:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        revoked = getattr(user, "token_revoked", None)
        if revoked is None:
            revoked = token_is_revoked(jti=jti)
        if revoked:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)


class ApiKeyAuthentication(BaseAuthentication):
    """An API key (accounts.api_keys) in `X-Api-Key`, or in `Authorization: Bearer` where it is
    told from a JWT by its shape (`tk_...`; a JWT starts with `eyJ`): anything else is left
    to the JWT authentication after it. The key is checked by
    `accounts.services.api_key_authenticate` (throttle, tenant, state), then against the
    view: only a view that declares `api_key_scopes` (accounts.permissions.ApiKeyScopes)
    admits keys, and only with the scope its method needs; any other view, or a missing
    scope, is 403 `Insufficient scope`. Both headers at once: 401 `Invalid token`.

    The request's user is the key's creator, `request.auth` the key."""

    def authenticate(self, request):
        raw = self._raw_key(request)
        if raw is None:
            return None
        api_key = services.api_key_authenticate(
            raw=raw, tenant=get_current_tenant(), ip=client_ip(request)
        )
        scopes = getattr(request.parser_context.get("view"), "api_key_scopes", None)
        if scopes is None or not api_key.grants(scopes.for_method(request.method)):
            raise exceptions.PermissionDenied(INSUFFICIENT_SCOPE)
        return api_key.created_by, api_key

    def _raw_key(self, request) -> str | None:
        header_key = request.META.get(API_KEY_HEADER)
        authorization = request.META.get("HTTP_AUTHORIZATION")
        if header_key is not None:
            if authorization is not None:
                raise exceptions.AuthenticationFailed(INVALID_TOKEN)
            return header_key.strip()
        if authorization is None:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value.startswith(KEY_START):
            return None
        return value

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
