"""Writes on users: creation, login, token rotation and revocation, passwords and roles;
API keys: creation, revocation and the check of a key a request presents."""

from __future__ import annotations

import logging
import unicodedata
from datetime import UTC, datetime, timedelta
from functools import cache as memoize
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, router, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import audit, mfa, throttles
from accounts.api_keys import api_key_generator
from accounts.links import email_verification_tokens, password_reset_tokens
from accounts.mail import render_message, send_in_background
from accounts.models import ApiKey, RevokedToken, User
from accounts.selectors import (
    api_key_for_prefix,
    revocation_cache_key,
    token_is_revoked,
    user_find_by_email,
    user_find_for_login,
    user_get,
)
from accounts.tokens import (
    REFRESH_JTI_CLAIM,
    TENANT_CLAIM,
    PlatformRefreshToken,
    issue_tokens,
    issued_before,
    refresh_token_class,
)
from config.errors import Conflict, TenantAccessDenied
from tenants.context import slug_of

if TYPE_CHECKING:
    from tenants.models import Tenant

logger = logging.getLogger("accounts.services")

INVALID_CREDENTIALS = "Invalid credentials"
INVALID_TOKEN = "Invalid token"  # noqa: S105 (a message, not a secret)
LAST_ADMIN = "A tenant must keep at least one admin"


def _tenant_label(tenant: Tenant | None) -> str:
    return slug_of(tenant, "platform")


# --- creation -----------------------------------------------------------------------------
# Control, format (zero-width, bidi), surrogate, private-use and unassigned characters:
# Django's EmailValidator admits them in the domain, which makes look-alikes of addresses.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _has_invisible_characters(value: str) -> bool:
    return any(unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in value)


def validate_new_user(*, username: str, email: str, password: str) -> None:
    """Raise ValidationError (a dict by field) unless a user could be created from these."""
    errors: dict[str, list] = {}
    probe = User(username=username, email=email)
    try:
        User._meta.get_field("username").run_validators(username)
        if not username:
            raise ValidationError("This field may not be blank.")
    except ValidationError as exc:
        errors["username"] = exc.messages
    try:
        if _has_invisible_characters(email):
            raise ValidationError(EmailValidator.message)
        EmailValidator()(email)
    except ValidationError as exc:
        errors["email"] = exc.messages
    try:
        password_validation.validate_password(password, probe)
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)


def _validate_unique_user(*, username: str, email: str) -> None:
    """Usernames and e-mails are unique, and neither may be another user's other one: login
    takes either, and a username equal to someone's address would take over that
    address's logins (and its lockout)."""
    errors: dict[str, list] = {}
    email = email.strip()
    if User.objects.filter(username=username).exists():
        errors["username"] = ["A user with that username already exists."]
    elif User.objects.filter(email__iexact=username).exists():
        errors["username"] = ["This username is another user's email address."]
    if User.objects.filter(email__iexact=email).exists():
        errors["email"] = ["A user with that email already exists."]
    elif User.objects.filter(username__iexact=email).exists():
        errors["email"] = ["This email address is another user's username."]
    if errors:
        raise ValidationError(errors)


def user_create(
    *,
    username: str,
    email: str,
    password: str,
    role: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
    signed_up: bool = False,
) -> User:
    """Create a user in the active database (the current tenant's, or the main one);
    `signed_up` marks an account made by open signup.

    The first user of a database is an admin whatever `role` says.
    """
    validate_new_user(username=username, email=email, password=password)
    with transaction.atomic(using=router.db_for_write(User)):
        if not User.objects.exists():
            role = User.Role.ADMIN
        user = User(
            username=username,
            email=email.strip(),
            role=role or User.Role.MEMBER,
            is_staff=is_staff,
            is_superuser=is_superuser,
            signed_up=signed_up,
        )
        user.set_password(password)
        user.save()
    return user


def user_register(
    *, username: str, email: str, password: str, role: str | None = None, signed_up: bool = False
) -> User:
    """Create a user for the API (signup, `signed_up=True`, or an admin adding one): every
    field problem, uniqueness included, comes back as a 400 with details."""
    errors: dict[str, list] = {}
    try:
        validate_new_user(username=username, email=email, password=password)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        _validate_unique_user(username=username, email=email)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    try:
        user = user_create(
            username=username, email=email, password=password, role=role, signed_up=signed_up
        )
    except IntegrityError as exc:  # a concurrent signup took the name or address
        raise ValidationError(
            {"username": ["A user with that username or email already exists."]}
        ) from exc
    logger.info("User %s created (user_id=%s, role=%s)", user.username, user.pk, user.role)
    return user


# --- login --------------------------------------------------------------------------------
@memoize
def _dummy_hash() -> str:
    return make_password("dummy password for timing equality")


def _lockout_subject(user: User | None, identifier: str) -> str:
    """What the lockout counts: the account, whichever identifier named it; for an
    identifier that names no account, the identifier itself, so that guessing locks out
    the same way and the answers do not tell which names exist."""
    if user is not None:
        return f"user:{user.pk}"
    return f"name:{identifier.strip().lower()}"


def authenticate_credentials(
    *, username_or_email: str, password: str, tenant: Tenant | None, ip: str | None
) -> User:
    """The password check of every login path (tenant API, platform API, Django admin):
    the per-IP rate (`LOGIN_RATE_LIMIT_PER_MINUTE`, skipped when `ip` is None: no request),
    then the per-account lockout, then the password. Returns the user, or raises Throttled
    (429) or AuthenticationFailed (401 `Invalid credentials`).

    `tenant` None is a platform login: only active staff of the main database. Unknown
    user, wrong password, inactive user: the same 401 after the same hashing work; a
    locked account and a locked unknown name: the same 429 without any.
    """
    scope = _tenant_label(tenant)
    if ip is not None:
        throttles.check_login_rate(ip=ip)
    user = user_find_for_login(username_or_email=username_or_email)
    subject = _lockout_subject(user, username_or_email)
    failures_counted = throttles.check_lockout(scope=scope, identifier=subject)
    if user is None:
        check_password(password, _dummy_hash())
        ok, reason = False, "unknown_account"
    else:
        ok = user.check_password(password)
        reason = "" if ok else "wrong_password"
        if ok and not user.is_active:
            ok, reason = False, "inactive"
        if ok and tenant is None and not user.is_staff:
            ok, reason = False, "not_staff"
    if not ok:
        user_id = user.pk if user is not None else None
        locked = bool(throttles.record_login_failure(scope=scope, identifier=subject))
        logger.warning("Failed login (tenant=%s, user_id=%s)", scope, user_id)
        if locked:
            logger.warning("Account locked out (tenant=%s, user_id=%s)", scope, user_id)
        _record_login_failure(
            user=user,
            identifier=username_or_email,
            reason=reason,
            tenant=tenant,
            ip=ip,
            locked=locked,
        )
        raise exceptions.AuthenticationFailed(INVALID_CREDENTIALS)
    if failures_counted is not False:  # None: the cache could not tell, clear anyway
        throttles.reset_login_failures(scope=scope, identifier=subject)
    return user


def _record_login_failure(
    *,
    user: User | None,
    identifier: str,
    reason: str,
    tenant: Tenant | None,
    ip: str | None,
    locked: bool,
    actor: User | None = None,
) -> None:
    """One INSERT: the failed attempt (and the lockout it caused). An identifier naming no
    account is kept only as a digest: it may be a password typed in the wrong field."""
    failed = audit.LOGIN_FAILED if tenant is not None else audit.STAFF_LOGIN_FAILED
    details = {"reason": reason}
    if user is None:
        details["identifier_digest"] = audit.identifier_digest(identifier)
    audit.record_events(
        [failed, audit.LOCKOUT] if locked else [failed],
        actor=actor,
        target=user,
        details=details,
        ip=ip,
    )


def login(*, username_or_email: str, password: str, tenant: Tenant | None, ip: str) -> dict:
    """Check credentials (`authenticate_credentials`) and return the login response body:
    a token pair, or what `accounts.mfa.login_step` answers instead (a second-factor
    challenge, an enrolment-only pair)."""
    user = authenticate_credentials(
        username_or_email=username_or_email, password=password, tenant=tenant, ip=ip
    )
    second_step = mfa.login_step(user=user, tenant=tenant)
    if second_step is not None:  # a code is needed, or enrolment is
        return second_step
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    tokens = issue_tokens(user, tenant)
    audit.record_login(user, tenant=tenant, ip=ip)
    scope = _tenant_label(tenant)
    logger.info("User %s logged in (tenant=%s, user_id=%s)", user.username, scope, user.pk)
    return tokens


# --- revocation ---------------------------------------------------------------------------
def token_revoke(*, jti: str, expires_at: datetime, user_id: int | None) -> bool:
    """Refuse the token `jti` from now on: recorded in the active database (durable), then
    in the cache (fast). Returns False when it already was refused."""
    _, created = RevokedToken.objects.get_or_create(
        jti=jti, defaults={"expires_at": expires_at, "user_id": user_id}
    )
    ttl = max(1, int((expires_at - timezone.now()).total_seconds()))
    try:
        cache.set(revocation_cache_key(jti), "1", ttl)
    except Exception:  # the database record still refuses the token
        logger.warning("Cache unavailable while revoking a token; the database has it")
    logger.info("Token revoked (tenant=%s, user_id=%s)", _current_label(), user_id)
    return created


def revoked_tokens_purge() -> int:
    """Delete deny-list rows of tokens that have expired anyway (in the active database);
    returns how many went."""
    deleted, _ = RevokedToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


def _current_label() -> str:
    from tenants.context import get_current_tenant

    return _tenant_label(get_current_tenant())


def _expiry(token) -> datetime:
    return datetime.fromtimestamp(int(token["exp"]), tz=UTC)


def _load_refresh(*, raw: str, tenant: Tenant | None) -> tuple[RefreshToken, User]:
    """Verify a refresh token for `tenant` (None: platform staff); returns it with its
    (active) user."""
    try:
        refresh = refresh_token_class(tenant)(raw)
    except (TokenError, TypeError, ValueError) as exc:
        raise exceptions.AuthenticationFailed(INVALID_TOKEN) from exc
    if TENANT_CLAIM not in refresh.payload:
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    if refresh[TENANT_CLAIM] != slug_of(tenant):
        raise TenantAccessDenied()
    try:
        user = user_get(user_id=int(refresh.get("user_id")))
    except (TypeError, ValueError):
        user = None
    if user is None or not user.is_active or issued_before(refresh, user.tokens_valid_after):
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    if tenant is None and not user.is_staff:
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    # A logout with the access token alone revokes its refresh token on the deny list.
    if token_is_revoked(jti=str(refresh["jti"])):
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    return refresh, user


def _blacklist(refresh: RefreshToken, user: User) -> bool:
    """Refuse `refresh` from now on; False when it already was.

    A tenant's refresh token goes on the tenant's blacklist, recorded as outstanding first
    (refresh tokens are recorded when first rotated or revoked, not when issued); a
    platform one on the main database's deny list, the blacklist app's tables living in
    tenant databases only."""
    if isinstance(refresh, PlatformRefreshToken):
        return token_revoke(jti=str(refresh["jti"]), expires_at=_expiry(refresh), user_id=user.pk)
    outstanding, _ = OutstandingToken.objects.get_or_create(  # race-safe on the unique jti
        jti=refresh["jti"],
        defaults={
            "user": user,
            "token": str(refresh),
            "created_at": datetime.fromtimestamp(int(refresh["iat"]), tz=UTC),
            "expires_at": _expiry(refresh),
        },
    )
    try:
        with transaction.atomic(using=router.db_for_write(BlacklistedToken)):
            _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    except IntegrityError:
        return False
    return created


def tokens_refresh(*, raw: str, tenant: Tenant | None) -> dict:
    """Rotate a refresh token (of `tenant`, or of platform staff with None): the old one is
    refused from now on, a new pair is returned. A token already rotated away, revoked or
    issued before the user's revocation mark: 401."""
    refresh, user = _load_refresh(raw=raw, tenant=tenant)
    mfa.check_refresh(refresh=refresh, user=user, tenant=tenant)
    with transaction.atomic(using=router.db_for_write(RevokedToken)):
        if not _blacklist(refresh, user):
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        tokens = issue_tokens(user, tenant)
    label = _tenant_label(tenant)
    logger.info("Refresh token rotated (tenant=%s, user_id=%s)", label, user.pk)
    return tokens


def logout(*, user: User, access_token, refresh_raw: str | None, tenant: Tenant | None) -> None:
    """Revoke the access token in use and the refresh token it was issued with (its `rjti`
    claim), and, when given and the user's, the refresh token in the body."""
    label = _tenant_label(tenant)
    token_revoke(jti=access_token["jti"], expires_at=_expiry(access_token), user_id=user.pk)
    paired = access_token.get(REFRESH_JTI_CLAIM)
    if isinstance(paired, str) and paired:
        # The refresh token outlives its access token by at most its own lifetime.
        expires_at = timezone.now() + api_settings.REFRESH_TOKEN_LIFETIME
        token_revoke(jti=paired, expires_at=expires_at, user_id=user.pk)
    if refresh_raw:
        try:
            refresh, owner = _load_refresh(raw=refresh_raw, tenant=tenant)
        except exceptions.APIException:
            refresh, owner = None, None
        if refresh is not None and owner.pk == user.pk:
            _blacklist(refresh, user)
            logger.info("Token revoked (tenant=%s, user_id=%s)", label, user.pk)
    logger.info("User %s logged out (tenant=%s, user_id=%s)", user.username, label, user.pk)
    audit.record_event(audit.TOKENS_REVOKED, actor=user, target=user, details={"by": "logout"})


def _move_revocation_mark(user: User) -> None:
    """Every token of `user` issued up to now is refused from now on."""
    user.tokens_valid_after = timezone.now()


def password_change(
    *,
    user: User,
    old_password: str,
    new_password: str,
    tenant: Tenant | None,
    ip: str | None = None,
) -> dict:
    """Change the password; every earlier token of the user stops working, and a new pair
    (issued after the mark) is returned. The old password is a password check like a
    login's: throttled per IP, and a wrong one counts towards the account's lockout (a
    stolen access token must not be a way to guess the password)."""
    scope = _tenant_label(tenant)
    subject = _lockout_subject(user, user.username)
    if ip is not None:
        throttles.check_login_rate(ip=ip)
    failures_counted = throttles.check_lockout(scope=scope, identifier=subject)
    if not user.check_password(old_password):
        locked = bool(throttles.record_login_failure(scope=scope, identifier=subject))
        logger.warning("Failed password check (tenant=%s, user_id=%s)", scope, user.pk)
        _record_login_failure(
            user=user,
            identifier="",
            reason="password_change",
            tenant=tenant,
            ip=ip,
            locked=locked,
            actor=user,
        )
        raise ValidationError({"old_password": ["The current password is incorrect."]})
    if failures_counted is not False:
        throttles.reset_login_failures(scope=scope, identifier=subject)
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.messages}) from exc
    user.set_password(new_password)
    _move_revocation_mark(user)
    user.save(update_fields=["password", "tokens_valid_after"])
    label = _tenant_label(tenant)
    logger.info("Password changed (tenant=%s, user_id=%s)", label, user.pk)
    logger.info("Tokens revoked by password change (tenant=%s, user_id=%s)", label, user.pk)
    audit.record_event(audit.PASSWORD_CHANGED, actor=user, target=user, ip=ip)
    return issue_tokens(user, tenant)


# --- administration -----------------------------------------------------------------------
def user_update(*, user: User, role: str | None = None, is_active: bool | None = None) -> User:
    """Change a user's role or active flag. A role change or deactivation revokes the
    user's tokens; removing the last active admin is a 409."""
    with transaction.atomic(using=router.db_for_write(User)):
        target = User.objects.select_for_update().get(pk=user.pk)
        loses_admin = (
            target.role == User.Role.ADMIN
            and target.is_active
            and ((role is not None and role != User.Role.ADMIN) or is_active is False)
        )
        if loses_admin:
            admins = list(
                User.objects.select_for_update()
                .filter(role=User.Role.ADMIN, is_active=True)
                .values_list("pk", flat=True)
            )
            if [pk for pk in admins if pk != target.pk] == []:
                raise Conflict(LAST_ADMIN)
        revoke = False
        events = []
        if role is not None and role != target.role:
            events.append((audit.ROLE_CHANGED, {"from": target.role, "to": role}))
            target.role = role
            revoke = True
        if is_active is not None and is_active != target.is_active:
            target.is_active = is_active
            revoke = revoke or not is_active
            events.append((audit.USER_REACTIVATED if is_active else audit.USER_DEACTIVATED, None))
        if revoke:
            _move_revocation_mark(target)
        target.save(update_fields=["role", "is_active", "tokens_valid_after"])
    label = _current_label()
    logger.info(
        "User %s updated (tenant=%s, user_id=%s, role=%s, active=%s)",
        target.username,
        label,
        target.pk,
        target.role,
        target.is_active,
    )
    if revoke:
        logger.info("Tokens revoked by account change (tenant=%s, user_id=%s)", label, target.pk)
    for event, details in events:  # after the commit: an event is a change that happened
        audit.record_event(event, target=target, details=details)
    return target


def user_deactivate(*, user: User) -> User:
    return user_update(user=user, is_active=False)


# --- password reset and e-mail verification (links by e-mail, accounts.links) -------------
def _tenant_domain(tenant: Tenant) -> str:
    """The host a tenant's links point at: its primary domain (else its first), never the
    request's Host, which a client chooses."""
    domain = (
        tenant.domains.order_by("-is_primary", "domain").values_list("domain", flat=True).first()
    )
    return domain or f"{tenant.slug}.{settings.TENANT_BASE_DOMAIN}"


def _link(template: str, *, tenant: Tenant, token: str) -> str:
    return template.replace("{domain}", _tenant_domain(tenant)).replace("{token}", token)


def password_reset_request(*, email: str, tenant: Tenant, ip: str | None) -> None:
    """E-mail a reset link to the active user of `tenant` whose address is `email`, if
    there is one. The caller's answer must not depend on it: the throttles count the
    address either way, and the same work (a token, a rendered message) is done either way;
    only the sending, on a background thread, differs."""
    label = _tenant_label(tenant)
    throttles.check_email_link_rate(ip=ip, address=email, scope=label)
    user = user_find_by_email(email=email)
    found = user is not None and user.is_active
    recipient = user if found else User(username="nobody", email=email)
    token = password_reset_tokens.make_link_token(recipient)
    message = render_message(
        template="password_reset",
        to=recipient.email,
        context={
            "username": recipient.username,
            "tenant_name": tenant.name,
            "link": _link(settings.PASSWORD_RESET_URL, tenant=tenant, token=token),
            "valid_minutes": max(1, settings.PASSWORD_RESET_TIMEOUT // 60),
        },
    )
    if not found:
        logger.info("Password reset asked for an address without an account (tenant=%s)", label)
        return
    send_in_background(message, what=f"password reset, tenant={label}, user_id={user.pk}")
    logger.info("Password reset link sent (tenant=%s, user_id=%s)", label, user.pk)


def password_reset_confirm(*, token: str, new_password: str, tenant: Tenant) -> None:
    """Set the password of the user a reset token names; the token, every other reset
    token and every JWT of the user issued before stop working, and the account's login
    failures are cleared. A malformed, expired, spent or other tenant's token: 401 `Invalid
    token`; a new password the validators refuse: 400 with details (the token stays
    usable)."""
    label = _tenant_label(tenant)
    with transaction.atomic(using=router.db_for_write(User)):
        user = password_reset_tokens.parse(token, lock=True)
        if user is None:
            logger.warning("Password reset refused: invalid or used link (tenant=%s)", label)
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        try:
            password_validation.validate_password(new_password, user)
        except ValidationError as exc:
            raise ValidationError({"new_password": exc.messages}) from exc
        user.set_password(new_password)
        _move_revocation_mark(user)
        user.save(update_fields=["password", "tokens_valid_after"])
    throttles.reset_login_failures(scope=label, identifier=_lockout_subject(user, ""))
    audit.record_event(audit.PASSWORD_RESET, actor=user, target=user)
    logger.info("Password reset (tenant=%s, user_id=%s)", label, user.pk)
    logger.info("Tokens revoked by password reset (tenant=%s, user_id=%s)", label, user.pk)


def email_verification_request(*, user: User, tenant: Tenant, ip: str | None) -> bool:
    """E-mail `user` a link that verifies their current address; False (nothing sent)
    when it is verified already. Throttled like reset requests."""
    label = _tenant_label(tenant)
    if user.email_verified:
        return False
    throttles.check_email_link_rate(ip=ip, address=user.email, scope=label)
    token = email_verification_tokens.make_token(user)
    message = render_message(
        template="verify_email",
        to=user.email,
        context={
            "username": user.username,
            "email": user.email,
            "tenant_name": tenant.name,
            "link": _link(settings.EMAIL_VERIFICATION_URL, tenant=tenant, token=token),
            "valid_hours": max(1, settings.EMAIL_VERIFICATION_TIMEOUT // 3600),
        },
    )
    send_in_background(message, what=f"e-mail verification, tenant={label}, user_id={user.pk}")
    logger.info("E-mail verification link sent (tenant=%s, user_id=%s)", label, user.pk)
    return True


def email_verification_confirm(*, token: str, tenant: Tenant) -> User:
    """Mark the address a verification token names as verified; the token is spent. A
    malformed, expired, spent or other tenant's token, or one for an address the user no
    longer has: 401 `Invalid token`."""
    label = _tenant_label(tenant)
    with transaction.atomic(using=router.db_for_write(User)):
        user = email_verification_tokens.parse(token, lock=True)
        if user is None:
            logger.warning("E-mail verification refused: invalid or used link (tenant=%s)", label)
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        user.email_verified = True
        user.save(update_fields=["email_verified"])
    logger.info("E-mail verified (tenant=%s, user_id=%s)", label, user.pk)
    return user


# --- API keys -----------------------------------------------------------------------------
# Failed key attempts are counted per client address by the login lockout's machinery.
API_KEY_THROTTLE_SCOPE = "api-key"
# `last_used_at` is written at most once a minute per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_create(
    *,
    name: str,
    scopes: list[str],
    created_by: User,
    expires_at: datetime | None = None,
    tenant: Tenant,
) -> tuple[ApiKey, str]:
    """Create a key of `tenant`, made by `created_by`; returns the row and the key
    (`<prefix>.<secret>`), which cannot be read again: only a digest of the secret is
    stored. An expiry that is not in the future is a 400."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    prefix, secret = api_key_generator.make_key(tenant.slug)
    api_key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        secret_digest=api_key_generator.digest(secret),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=created_by,
    )
    audit.record_event(
        audit.API_KEY_CREATED,
        actor=created_by,
        target=audit.Target("api_key", prefix, name),
        details={"scopes": ",".join(api_key.scopes)},
    )
    logger.info(
        "API key created (tenant=%s, key_id=%s, user_id=%s, scopes=%s)",
        tenant.slug,
        api_key.pk,
        created_by.pk,
        ",".join(api_key.scopes),
    )
    return api_key, f"{prefix}.{secret}"


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Refuse the key from the next request on; revoking it again changes nothing."""
    now = timezone.now()
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now):
        api_key.revoked_at = now
        audit.record_event(
            audit.API_KEY_REVOKED, target=audit.Target("api_key", api_key.prefix, api_key.name)
        )
        logger.info("API key revoked (tenant=%s, key_id=%s)", _current_label(), api_key.pk)
    return api_key


def _api_key_refused(reason: str, *, ip: str, key_id: int | None = None, counted: bool) -> None:
    """Log a refused key (never the key) and, when it may be a guess, count it against the
    client address."""
    label = _current_label()
    logger.warning("API key refused (tenant=%s, key_id=%s, reason=%s)", label, key_id, reason)
    if counted and throttles.record_login_failure(
        scope=f"{API_KEY_THROTTLE_SCOPE}:{label}", identifier=f"ip:{ip}"
    ):
        logger.warning("API key attempts locked out for a client address (tenant=%s)", label)


def api_key_authenticate(*, raw: str, tenant: Tenant | None, ip: str) -> ApiKey:
    """The key `raw` of `tenant` (None: a platform path), with its creator loaded, or:
    429 while the client address is locked out for failed attempts; 403 `Tenant access
    denied` for a key naming another tenant (or any tenant, on a platform path); 401
    `Invalid token` for a malformed, unknown, wrong, revoked or expired key, or one whose
    creator is inactive.

    Malformed, other-tenant, unknown and wrong keys count towards the address's lockout
    (LOGIN_LOCKOUT_THRESHOLD failures in LOGIN_LOCKOUT_WINDOW); a genuine key that is
    revoked, expired or orphaned does not: it is no guess."""
    # Counted per tenant: one tenant's junk keys never lock out another's from a shared
    # address (a NAT, an office).
    throttles.check_lockout(
        scope=f"{API_KEY_THROTTLE_SCOPE}:{_current_label()}", identifier=f"ip:{ip}"
    )
    parsed = api_key_generator.parse(raw)
    if parsed is None:
        _api_key_refused("malformed", ip=ip, counted=True)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    if parsed.tenant_slug != slug_of(tenant):
        _api_key_refused("another tenant", ip=ip, counted=True)
        raise TenantAccessDenied()
    api_key = api_key_for_prefix(prefix=parsed.prefix)
    # The digest is computed for unknown prefixes too: both answers take the same work.
    genuine = api_key_generator.check(parsed.secret, api_key.secret_digest if api_key else "")
    if api_key is None or not genuine:
        key_id = api_key.pk if api_key is not None else None
        _api_key_refused(
            "unknown" if api_key is None else "wrong secret", ip=ip, key_id=key_id, counted=True
        )
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    now = timezone.now()
    reason = None
    if api_key.revoked_at is not None:
        reason = "revoked"
    elif api_key.expires_at is not None and api_key.expires_at <= now:
        reason = "expired"
    elif not api_key.created_by.is_active:
        reason = "creator inactive"
    elif _created_before(api_key.created_at, api_key.created_by.tokens_valid_after):
        # The creator's credentials were revoked since (password changed or reset, role
        # changed, deactivated): an account's recovery ends the keys made before it.
        reason = "creator's credentials revoked"
    if reason is not None:
        _api_key_refused(reason, ip=ip, key_id=api_key.pk, counted=False)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
    _api_key_touch(api_key, now)
    return api_key


def _created_before(created_at: datetime, mark: datetime | None) -> bool:
    return mark is not None and created_at <= mark


def _api_key_touch(api_key: ApiKey, now: datetime) -> None:
    """Record that the key was used, unless that was recorded less than a minute ago."""
    last = api_key.last_used_at
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
