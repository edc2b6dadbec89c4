"""API keys for machine clients: their format, and the digest their secret is stored as.

A key reads `tk_<tenant slug>_<id>.<secret>`. The part before the dot, the prefix, names
the key (stored, and listed in place of the key) and the tenant it was issued for: a
key of another tenant is told apart from a wrong one by reading it, without looking into
any other tenant's database and without a table shared by the tenants, so the answer says
nothing the client did not write itself. The recognisable `tk_` start also lets secret
scanners find keys pasted where they should not be. The secret after the dot is 256
random bits, shown once and stored only as its digest.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.utils.crypto import salted_hmac

KEY_START = "tk_"
# base32's lower-case alphabet: no `_`, `-` or `.`, so the parts split unambiguously.
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_ID_LENGTH = 12  # 60 bits: the prefix is an identifier, unique in the tenant's table
_SECRET_BYTES = 32  # 256 bits, 43 characters of base64url
# The longest well-formed key (a 63-character slug); nothing longer reaches the pattern.
MAX_KEY_LENGTH = len(KEY_START) + 63 + 1 + _ID_LENGTH + 1 + 43
_KEY = re.compile(
    r"tk_(?P<slug>[a-z][a-z0-9-]{1,61}[a-z0-9])_(?P<id>[a-z2-7]{12})\.(?P<secret>[A-Za-z0-9_-]{43})"
)
_DIGEST_SALT = "accounts.api_keys.ApiKeyGenerator"


@dataclass(frozen=True)
class ParsedKey:
    prefix: str
    tenant_slug: str
    secret: str


class ApiKeyGenerator:
    """Makes, reads and checks API keys (as Django's PasswordResetTokenGenerator does for
    reset links)."""

    def make_key(self, tenant_slug: str) -> tuple[str, str]:
        """A new `(prefix, secret)` for the tenant `tenant_slug`; the key is
        `f"{prefix}.{secret}"`."""
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
        return f"{KEY_START}{tenant_slug}_{key_id}", secrets.token_urlsafe(_SECRET_BYTES)

    def parse(self, raw: str) -> ParsedKey | None:
        """The parts of a well-formed key, else None (never a regex on unbounded input)."""
        if not isinstance(raw, str) or len(raw) > MAX_KEY_LENGTH:
            return None
        match = _KEY.fullmatch(raw)
        if match is None:
            return None
        prefix = f"{KEY_START}{match['slug']}_{match['id']}"
        return ParsedKey(prefix=prefix, tenant_slug=match["slug"], secret=match["secret"])

    def digest(self, secret: str, *, signing_key: str | None = None) -> str:
        """The stored form of `secret`: HMAC-SHA256 keyed with SECRET_KEY.

        A fast keyed hash, not a password hasher, on purpose: the secret is 256 random
        bits, so no guessing at any speed can find it from its digest (slow hashes exist
        to protect low-entropy passwords), while Argon2 on every request would cost each
        machine call ~20 ms of CPU and hand anyone a way to burn it. The key (SECRET_KEY)
        means a copy of the database alone cannot even check a guess."""
        return salted_hmac(_DIGEST_SALT, secret, secret=signing_key, algorithm="sha256").hexdigest()

    def check(self, secret: str, stored: str) -> bool:
        """Whether `secret` is the one `stored` was made from, compared in constant time;
        digests made with a key of SECRET_KEY_FALLBACKS still match after a rotation."""
        keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        matched = False
        for signing_key in keys:
            candidate = self.digest(secret, signing_key=signing_key)
            matched |= hmac.compare_digest(candidate.encode(), stored.encode())
        return matched


api_key_generator = ApiKeyGenerator()
