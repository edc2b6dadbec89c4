"""The second factor: TOTP authenticators (RFC 6238) with recovery codes, the tenant's
policy, and the two-step login (the password answers an `mfa_token`, the token and a code
answer the tokens).

TOTP is pyotp's (the RFC's HMAC and truncation, and the `otpauth://` URI authenticator
apps read); the QR code is segno's SVG, pure Python without an imaging library. Codes are
checked behind the login throttles: the per-IP rate, the account lockout (a wrong code
counts as a failed login) and a second-factor lockout that a correct password does not
clear, so knowing the password does not reset the count of guessed codes.
"""

from __future__ import annotations

import hmac
import io
import logging
import math
import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import pyotp
import segno
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework import exceptions

from accounts import audit, throttles
from accounts.models import MfaPolicy, RecoveryCode, RevokedToken, TotpDevice, User
from accounts.selectors import user_get
from accounts.tokens import issue_tokens
from config.errors import Conflict, TenantAccessDenied
from tenants.context import current_tenant_slug, slug_of

if TYPE_CHECKING:
    from tenants.models import Tenant

logger = logging.getLogger("accounts.mfa")

INVALID_CREDENTIALS = "Invalid credentials"
INVALID_TOKEN = "Invalid token"  # noqa: S105 (a message, not a secret)
CODE_NOT_VALID = "The code is not valid."
ALREADY_ENABLED = "Two-factor authentication is already enabled"
NOTHING_TO_CONFIRM = "No two-factor enrolment to confirm"
NOT_ENABLED = "Two-factor authentication is not enabled"
# The claim of tokens that reach enrolment only (a tenant that requires 2FA, a user
# without an authenticator): every other endpoint answers 403 EnrolmentRequired.
ENROLMENT_ONLY_CLAIM = "mfa_enrol"

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 10
# No 0/o, 1/l/i: a code is read off paper. 31 symbols, 10 of them: about 49 bits.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_TOKEN_SALT = "accounts.mfa.login"  # noqa: S105 (a signing salt, not a secret)
_RECOVERY_SALT = "accounts.mfa.recovery"
_TOTP_DIGITS = 6
# A code of the previous or the next 30-second step is accepted too (clock drift,
# RFC 6238 section 5.2); each step once.
_DRIFT_STEPS = 1


class EnrolmentRequired(exceptions.PermissionDenied):
    default_detail = "Two-factor enrolment required"
    default_code = "mfa_enrolment_required"


def _now() -> float:
    return time.time()


def _label(tenant: Tenant | None) -> str:
    return slug_of(tenant, "platform")


# --- reads --------------------------------------------------------------------------------
def totp_enabled(user: User) -> bool:
    """True when `user` has a confirmed authenticator (in the active database)."""
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def policy_get() -> MfaPolicy:
    """The active tenant database's policy (an unsaved default when none was ever set)."""
    return MfaPolicy.objects.filter(pk=1).first() or MfaPolicy(pk=1)


def required_by_tenant(tenant: Tenant | None) -> bool:
    """True when `tenant` requires a second factor of its users (never for the platform)."""
    return tenant is not None and MfaPolicy.objects.filter(pk=1, required=True).exists()


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


# --- the tenant's policy ------------------------------------------------------------------
def policy_update(*, required: bool | None = None) -> MfaPolicy:
    """Set the active tenant's policy. Users without an authenticator get enrolment-only
    tokens at their next login; their refresh tokens stop working at once."""
    policy = policy_get()
    if required is not None and required != policy.required:
        policy.required = required
        policy.save()
        logger.info("Two-factor policy changed (tenant=%s, required=%s)", _current(), required)
    return policy


def _current() -> str:
    return current_tenant_slug("platform")


# --- enrolment ----------------------------------------------------------------------------
def _account_name(user: User, tenant: Tenant | None) -> str:
    return f"{user.username} ({_label(tenant)})"


def _qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, xmldecl=False)
    return out.getvalue().decode()


def totp_enrol(*, user: User, tenant: Tenant | None) -> dict:
    """Start (or restart) enrolment: a new secret each time until a code confirms it.
    Returns `{otpauth_uri, qr_svg}`; 409 when an authenticator is already confirmed."""
    secret = pyotp.random_base32()
    with transaction.atomic(using=router.db_for_write(TotpDevice)):
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.is_confirmed:
            raise Conflict(ALREADY_ENABLED)
        if device is None:
            device = TotpDevice(user=user)
        device.secret, device.confirmed_at, device.last_used_step = secret, None, None
        device.save()
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=_account_name(user, tenant), issuer_name=settings.MFA_ISSUER
    )
    logger.info("Two-factor enrolment started (tenant=%s, user_id=%s)", _label(tenant), user.pk)
    return {"otpauth_uri": uri, "qr_svg": _qr_svg(uri)}


def totp_confirm(*, user: User, code: str, tenant: Tenant | None, ip: str | None) -> list[str]:
    """Confirm the pending authenticator with its first code; returns ten new recovery
    codes (shown once, stored hashed). A wrong code: 400 naming `code`, counted like a
    failed login."""
    _check_throttles(user=user, tenant=tenant, ip=ip)
    with transaction.atomic(using=router.db_for_write(TotpDevice)):
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is None:
            raise Conflict(NOTHING_TO_CONFIRM)
        if device.is_confirmed:
            raise Conflict(ALREADY_ENABLED)
        step = _matching_step(device.secret, _normalized(code))
        if step is not None:
            device.confirmed_at, device.last_used_step = timezone.now(), step
            device.save(update_fields=["confirmed_at", "last_used_step"])
            codes = _recovery_codes_replace(user)
    if step is None:
        _record_failure(user=user, tenant=tenant)
        raise ValidationError({"code": [CODE_NOT_VALID]})
    _reset_failures(user=user, tenant=tenant)
    audit.record_event(audit.MFA_ENROLLED, actor=user, target=user, ip=ip)
    logger.info(
        "Two-factor authentication enabled (tenant=%s, user_id=%s)", _label(tenant), user.pk
    )
    return codes


def totp_remove(*, user: User, code: str, tenant: Tenant | None, ip: str | None) -> None:
    """Remove the authenticator and the recovery codes. Takes a current code or a recovery
    code, so that a stolen access token alone cannot turn the second factor off."""
    _check_throttles(user=user, tenant=tenant, ip=ip)
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        raise Conflict(NOT_ENABLED)
    if _accept_code(user=user, device=device, code=code) is None:
        _record_failure(user=user, tenant=tenant)
        raise ValidationError({"code": [CODE_NOT_VALID]})
    _reset_failures(user=user, tenant=tenant)
    with transaction.atomic(using=router.db_for_write(TotpDevice)):
        RecoveryCode.objects.filter(user=user).delete()
        TotpDevice.objects.filter(user=user).delete()
    audit.record_event(audit.MFA_REMOVED, actor=user, target=user, ip=ip)
    logger.info(
        "Two-factor authentication removed (tenant=%s, user_id=%s)", _label(tenant), user.pk
    )


def totp_reset(*, user: User) -> None:
    """A tenant admin's removal of `user`'s authenticator and recovery codes (a lost
    phone and lost codes): the user's next login is by password again, or to enrolment
    only when the tenant requires 2FA. 409 when there is none."""
    with transaction.atomic(using=router.db_for_write(TotpDevice)):
        removed, _ = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).delete()
        if not removed:
            raise Conflict(NOT_ENABLED)
        TotpDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
    audit.record_event(audit.MFA_REMOVED, target=user, details={"by": "admin"})
    logger.info(
        "Two-factor authentication reset by an admin (tenant=%s, user_id=%s)", _current(), user.pk
    )


# --- codes --------------------------------------------------------------------------------
def _normalized(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _matching_step(secret: str, code: str) -> int | None:
    """The time step whose code `code` is (now, or one step either side), else None."""
    if len(code) != _TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(_now() // totp.interval)
    for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _claim_step(device: TotpDevice, step: int) -> bool:
    """Record `step` as used; False when it, or a later one, already was (a replay). One
    conditional UPDATE, so two requests racing with the same code cannot both pass."""
    newer = Q(last_used_step__isnull=True) | Q(last_used_step__lt=step)
    return TotpDevice.objects.filter(newer, pk=device.pk).update(last_used_step=step) == 1


def _recovery_hash(user: User, value: str) -> str:
    return salted_hmac(_RECOVERY_SALT, f"{user.pk}:{value}", algorithm="sha256").hexdigest()


def _recovery_codes_replace(user: User) -> list[str]:
    """Ten new recovery codes for `user` (the old ones are deleted), as shown: `xxxxx-xxxxx`."""
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH)))
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=_recovery_hash(user, code)) for code in codes
    )
    half = RECOVERY_CODE_LENGTH // 2
    return [f"{code[:half]}-{code[half:]}" for code in sorted(codes)]


def _use_recovery_code(user: User, value: str) -> bool:
    if len(value) != RECOVERY_CODE_LENGTH:
        return False
    unused = RecoveryCode.objects.filter(
        user=user, code_hash=_recovery_hash(user, value), used_at__isnull=True
    )
    return unused.update(used_at=timezone.now()) == 1


def _accept_code(*, user: User, device: TotpDevice, code: str) -> str | None:
    """Accept `code` once: "totp" or "recovery" for the kind it was, None when refused
    (wrong, already used, a replay)."""
    value = _normalized(code)
    step = _matching_step(device.secret, value)
    if step is not None:
        return "totp" if _claim_step(device, step) else None
    if _use_recovery_code(user, value):
        return "recovery"
    return None


# --- throttles ----------------------------------------------------------------------------
def _subjects(user: User, tenant: Tenant | None) -> list[tuple[str, str]]:
    """(scope, identifier) of the account lockout and of the second-factor lockout."""
    label, subject = _label(tenant), f"user:{user.pk}"
    return [(label, subject), (f"{label}:mfa", subject)]


def _check_throttles(*, user: User, tenant: Tenant | None, ip: str | None) -> None:
    if ip is not None:
        throttles.check_login_rate(ip=ip)
    for scope, identifier in _subjects(user, tenant):
        throttles.check_lockout(scope=scope, identifier=identifier)


def _record_failure(*, user: User, tenant: Tenant | None) -> None:
    (account, second_factor) = _subjects(user, tenant)
    locked = throttles.record_login_failure(scope=account[0], identifier=account[1])
    throttles.record_login_failure(scope=second_factor[0], identifier=second_factor[1])
    logger.warning("Failed second factor (tenant=%s, user_id=%s)", _label(tenant), user.pk)
    if locked:
        logger.warning("Account locked out (tenant=%s, user_id=%s)", _label(tenant), user.pk)


def _reset_failures(*, user: User, tenant: Tenant | None) -> None:
    for scope, identifier in _subjects(user, tenant):
        throttles.reset_login_failures(scope=scope, identifier=identifier)


def _attempts_key(nonce: str) -> str:
    return f"accounts:mfa-attempts:{nonce}"


def _check_token_attempts(nonce: str, issued_at: int) -> None:
    """429 once this `mfa_token` took MFA_CODE_ATTEMPTS wrong codes, until it expires."""
    try:
        count = cache.get(_attempts_key(nonce)) or 0
    except Exception:  # the account lockout still counts
        logger.warning("Cache unavailable; the mfa_token attempt count skipped")
        return
    if count >= settings.MFA_CODE_ATTEMPTS:
        wait = max(1, math.ceil(issued_at + settings.MFA_TOKEN_TTL - _clock()))
        raise exceptions.Throttled(wait=wait)


def _count_token_attempt(nonce: str) -> None:
    key, ttl = _attempts_key(nonce), settings.MFA_TOKEN_TTL + 1
    try:
        cache.add(key, 0, ttl)
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, ttl)
    except Exception:
        logger.warning("Cache unavailable; the mfa_token attempt count skipped")


def _clock() -> float:
    """Wall time for `mfa_token` lifetimes (signing's clock); TOTP steps use `_now`."""
    return time.time()


# --- the two-step login -------------------------------------------------------------------
def login_step(*, user: User, tenant: Tenant | None) -> dict | None:
    """What a correct password answers when it is not the whole login: a challenge for a
    user with an authenticator, an enrolment-only token pair for a user of a tenant that
    requires one; None when the password is enough."""
    if totp_enabled(user):
        # Locked by wrong codes: no new token to guess with (the password cleared only
        # the account's count, not this one).
        scope, identifier = _subjects(user, tenant)[1]
        throttles.check_lockout(scope=scope, identifier=identifier)
        nonce = secrets.token_urlsafe(16)
        payload = {"u": user.pk, "t": slug_of(tenant), "n": nonce, "i": int(_clock())}
        logger.info(
            "Password accepted, second factor required (tenant=%s, user_id=%s)",
            _label(tenant),
            user.pk,
        )
        return {"mfa_required": True, "mfa_token": signing.dumps(payload, salt=_TOKEN_SALT)}
    if required_by_tenant(tenant):
        User.objects.filter(pk=user.pk).update(last_login=timezone.now())
        tokens = issue_tokens(user, tenant, claims={ENROLMENT_ONLY_CLAIM: True})
        logger.info(
            "User %s logged in for two-factor enrolment only (tenant=%s, user_id=%s)",
            user.username,
            _label(tenant),
            user.pk,
        )
        return {**tokens, "mfa_enrolment_required": True}
    return None


def _load_challenge(raw: str, tenant: Tenant | None) -> dict:
    """The claims of a valid `mfa_token` for `tenant`: 401 `Invalid token` when it is
    forged, malformed or expired; 403 `Tenant access denied` when it is another tenant's
    (or a tenant's on the platform, or the reverse), as for every token."""
    try:
        claims = signing.loads(raw, salt=_TOKEN_SALT, max_age=settings.MFA_TOKEN_TTL)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError) as exc:
        raise exceptions.AuthenticationFailed(INVALID_TOKEN) from exc
    if not isinstance(claims, dict) or set(claims) != {"u", "t", "n", "i"}:
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    if claims["t"] != slug_of(tenant):
        raise TenantAccessDenied()
    user_id, nonce, issued_at = claims["u"], claims["n"], claims["i"]
    if not (isinstance(user_id, int) and isinstance(nonce, str) and isinstance(issued_at, int)):
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    return claims


def login_complete(*, mfa_token: str, code: str, tenant: Tenant | None, ip: str | None) -> dict:
    """The second step: a valid, unused `mfa_token` of this tenant and a code (TOTP or
    recovery) of its user → the login response. The token is spent by the first correct
    code; a wrong one answers 401 `Invalid credentials` and counts, per token
    (MFA_CODE_ATTEMPTS), per account (the lockout) and per IP (the login rate)."""
    if ip is not None:
        throttles.check_login_rate(ip=ip)
    claims = _load_challenge(mfa_token, tenant)
    jti = f"mfa:{claims['n']}"
    if RevokedToken.objects.filter(jti=jti).exists():
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    user = user_get(user_id=claims["u"])
    if user is None or not user.is_active or (tenant is None and not user.is_staff):
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
    if device is None:  # removed since the password step
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    _check_throttles(user=user, tenant=tenant, ip=None)
    _check_token_attempts(claims["n"], claims["i"])
    kind = _accept_code(user=user, device=device, code=code)
    if kind is None:
        _count_token_attempt(claims["n"])
        _record_failure(user=user, tenant=tenant)
        raise exceptions.AuthenticationFailed(INVALID_CREDENTIALS)
    expires_at = timezone.now() + timedelta(seconds=settings.MFA_TOKEN_TTL)
    _, spent_now = RevokedToken.objects.get_or_create(
        jti=jti, defaults={"expires_at": expires_at, "user_id": user.pk}
    )
    if not spent_now:  # a concurrent request spent it first
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    _reset_failures(user=user, tenant=tenant)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    audit.record_login(user, tenant=tenant, ip=ip, details={"second_factor": kind})
    label = _label(tenant)
    if kind == "recovery":
        logger.info(
            "Recovery code used (tenant=%s, user_id=%s, left=%s)",
            label,
            user.pk,
            recovery_codes_left(user),
        )
    logger.info(
        "User %s logged in with a second factor (tenant=%s, user_id=%s)",
        user.username,
        label,
        user.pk,
    )
    return issue_tokens(user, tenant)


def check_refresh(*, refresh, user: User, tenant: Tenant | None) -> None:
    """401 `Invalid token` for a refresh that must not give a full pair: an enrolment-only
    token, or a user without an authenticator in a tenant that now requires one (the
    password login then gives an enrolment-only pair)."""
    if refresh.get(ENROLMENT_ONLY_CLAIM):
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    if required_by_tenant(tenant) and not totp_enabled(user):
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)


def second_factor_check(*, user: User, code: str | None, tenant: Tenant | None) -> bool:
    """For password logins outside the API (the Django admin): True when `user` needs no
    second factor or `code` is a valid one; False when a code is needed and missing.
    Raises ValidationError for a wrong code and Throttled when throttled."""
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        return True
    if not code:
        return False
    _check_throttles(user=user, tenant=tenant, ip=None)
    if _accept_code(user=user, device=device, code=code) is None:
        _record_failure(user=user, tenant=tenant)
        raise ValidationError(CODE_NOT_VALID, code="invalid_code")
    _reset_failures(user=user, tenant=tenant)
    logger.info("Second factor accepted (tenant=%s, user_id=%s)", _label(tenant), user.pk)
    return True
