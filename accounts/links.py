"""The signed tokens of the links e-mailed to users: password reset and e-mail verification.

Both are bound to the tenant of the request (a token made on acme is refused on globex),
expire, and are single-use because what they sign stops being true once they are used:

- a reset token is Django's `PasswordResetTokenGenerator` (an HMAC of the user's password
  hash, last login, address and active flag, plus the tenant here), so setting the new
  password spends it and every other reset token of the user;
- a verification token is `django.core.signing` of (user, address), salted with the
  tenant, accepted only while that address is the user's and not yet verified.

`parse` methods return the user a token names, or None for any token that is malformed,
expired, spent, of another tenant or of an inactive user: callers answer all of these the
same way.
"""

from __future__ import annotations

import binascii

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts.models import User
from tenants.context import current_tenant_slug

# Long enough for any token made here; a longer value is refused before it is parsed.
MAX_LINK_TOKEN_LENGTH = 512
_MAX_USER_ID = 2**63 - 1


class PasswordResetTokens(PasswordResetTokenGenerator):
    """Django's reset tokens with the tenant in the hashed value; a public token is
    `<base64 user id>.<Django's token>`."""

    key_salt = "accounts.links.PasswordResetTokens"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        login = "" if user.last_login is None else user.last_login.replace(microsecond=0)
        return (
            f"{current_tenant_slug('-')}|{user.pk}|{user.password}|{login}|{timestamp}|"
            f"{user.email}|{user.is_active}"
        )

    def make_link_token(self, user: User) -> str:
        return f"{urlsafe_base64_encode(force_bytes(user.pk))}.{self.make_token(user)}"

    def parse(self, token: str, *, lock: bool = False) -> User | None:
        uid, _, secret = token.partition(".")
        user = _active_user(_decode_user_id(uid), lock=lock)
        if user is None or not self.check_token(user, secret):
            return None
        return user


class EmailVerificationTokens:
    """Signed `{"u": user id, "e": address}`, salted with the tenant's slug."""

    def _salt(self) -> str:
        return f"accounts.links.EmailVerificationTokens:{current_tenant_slug('-')}"

    def make_token(self, user: User) -> str:
        return signing.dumps({"u": user.pk, "e": user.email}, salt=self._salt())

    def parse(self, token: str, *, lock: bool = False) -> User | None:
        try:
            payload = signing.loads(
                token, salt=self._salt(), max_age=settings.EMAIL_VERIFICATION_TIMEOUT
            )
        except (signing.BadSignature, ValueError, TypeError):
            return None
        if not isinstance(payload, dict):
            return None
        user_id, address = payload.get("u"), payload.get("e")
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            return None
        user = _active_user(user_id, lock=lock)
        if user is None or user.email_verified or user.email != address:
            return None
        return user


def _decode_user_id(value: str) -> int | None:
    try:
        text = force_str(urlsafe_base64_decode(value))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if not text.isascii() or not text.isdigit():
        return None
    return int(text)


def _active_user(user_id: int | None, *, lock: bool) -> User | None:
    """The active user `user_id`; with `lock`, its row locked for the caller's transaction
    (two uses of one token at once: the second sees what the first changed)."""
    if user_id is None or not 0 < user_id <= _MAX_USER_ID:
        return None
    users = User.objects.select_for_update() if lock else User.objects
    user = users.filter(pk=user_id).first()
    return user if user is not None and user.is_active else None


password_reset_tokens = PasswordResetTokens()
email_verification_tokens = EmailVerificationTokens()
