"""How tokens are signed and verified: SimpleJWT's TokenBackend, unchanged with HS256 (the
default), or with the key ring's keys (`accounts.keys`) when `JWT_ALGORITHM` is EdDSA or
RS256: signed with the current private key, its `kid` in the header, verified with the
public key that `kid` names among the current and previous keys.

Every token class of SimpleJWT reads the backend from `rest_framework_simplejwt.state`
(`Token.token_backend`), so `install()` (from `AccountsConfig.ready`) puts this one there:
access and refresh tokens, tenant and platform, the HTTP API and the log stream all sign
and verify through it.
"""

from __future__ import annotations

from typing import Any

import jwt
from jwt import ExpiredSignatureError, InvalidTokenError
from rest_framework_simplejwt import state
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken
from rest_framework_simplejwt.settings import api_settings

from accounts import keys

INVALID = "Token is invalid"


class KeyRingTokenBackend(TokenBackend):
    """HS256 as SimpleJWT does it; EdDSA / RS256 with a key chosen by `kid`. A token whose
    header names another algorithm (`none` included), no `kid`, an unknown `kid` or the
    `kid` of a retired key is invalid."""

    def encode(self, payload: dict[str, Any]) -> str:
        if not keys.uses_key_ring():
            return super().encode(payload)
        key = keys.signing_key()
        claims = payload.copy()
        if self.audience is not None:
            claims["aud"] = self.audience
        if self.issuer is not None:
            claims["iss"] = self.issuer
        return jwt.encode(
            claims,
            key.private_key,
            algorithm=key.alg,
            headers={"kid": key.kid},
            json_encoder=self.json_encoder,
        )

    def decode(self, token, verify: bool = True) -> dict[str, Any]:
        if not keys.uses_key_ring():
            return super().decode(token, verify=verify)
        algorithm = keys.configured_algorithm()
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError as exc:
            raise TokenBackendError(INVALID) from exc
        kid = header.get("kid")
        # Checked before any key is touched: the algorithm is the configured one, never the
        # header's choice (alg confusion, `alg: none`).
        if header.get("alg") != algorithm or not isinstance(kid, str):
            raise TokenBackendError(INVALID)
        key = keys.verifying_key(kid)
        if key is None:
            raise TokenBackendError(INVALID)
        try:
            return jwt.decode(
                token,
                key.public_key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.get_leeway(),
                options={"verify_aud": self.audience is not None, "verify_signature": verify},
            )
        except ExpiredSignatureError as exc:
            raise TokenBackendExpiredToken("Token is expired") from exc
        except InvalidTokenError as exc:
            raise TokenBackendError(INVALID) from exc


def install() -> None:
    """Make every SimpleJWT token sign and verify through KeyRingTokenBackend, built from
    the same settings as SimpleJWT's own backend."""
    state.token_backend = KeyRingTokenBackend(
        api_settings.ALGORITHM,
        api_settings.SIGNING_KEY,
        api_settings.VERIFYING_KEY,
        api_settings.AUDIENCE,
        api_settings.ISSUER,
        api_settings.JWK_URL,
        api_settings.LEEWAY,
        api_settings.JSON_ENCODER,
    )
