"""The password backend of `django.contrib.auth.authenticate`: the Django admin login (and
anything else that authenticates a password through Django) goes through the same per-IP
throttle and per-account lockout as the API logins (`services.authenticate_credentials`)."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from rest_framework import exceptions

from accounts import audit, mfa, services
from accounts.models import User
from config.network import client_ip
from tenants.context import get_current_tenant

THROTTLED_MESSAGE = "Too many login attempts. Try again in %(wait)s seconds."
SECOND_FACTOR_MESSAGE = (
    "This account uses two-factor authentication: enter the code of its authenticator app "
    "or a recovery code."
)


class LoginThrottled(ValidationError):
    """A throttled or locked-out attempt. A ValidationError so that the login form that
    called `authenticate` (the admin's) shows it as the form's error, whatever the
    password was, instead of logging in or failing."""


class SecondFactorNeeded(ValidationError):
    """The password was right and the account has an authenticator: the login form shows
    this and asks for a code."""


class ThrottledModelBackend(ModelBackend):
    """ModelBackend's permissions with the API's password check: username or e-mail,
    throttled per client address, locked out per account; a locked account does not log
    in even with the right password."""

    def authenticate(self, request, username=None, password=None, otp_code=None, **kwargs):
        """`otp_code`: the second factor of a user with an authenticator (accounts.mfa);
        without it such a user does not log in (SecondFactorNeeded), with a wrong one
        neither (a failed login, counted)."""
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = services.authenticate_credentials(
                username_or_email=username,
                password=password,
                tenant=get_current_tenant(),
                ip=client_ip(request) if request is not None else None,
            )
            if not mfa.second_factor_check(user=user, code=otp_code, tenant=get_current_tenant()):
                raise SecondFactorNeeded(SECOND_FACTOR_MESSAGE, code="mfa_required")
        except exceptions.Throttled as exc:
            wait = int(exc.wait or 1)
            if request is not None:
                request.login_throttled_for = wait  # admin_login answers 429 with it
            raise LoginThrottled(
                THROTTLED_MESSAGE, code="throttled", params={"wait": wait}
            ) from None
        except exceptions.AuthenticationFailed:
            return None
        if not self.user_can_authenticate(user):
            return None
        audit.record_login(
            user, tenant=get_current_tenant(), ip=client_ip(request) if request else None
        )
        return user


def admin_login(request, extra_context=None):
    """The Django admin's login view, answering a throttled or locked-out attempt as the API
    does: 429 with `Retry-After` (the page shows the form and the reason)."""
    from django.contrib import admin

    response = admin.site.login(request, extra_context)
    wait = getattr(request, "login_throttled_for", None)
    if wait is not None:
        response.status_code = 429
        response["Retry-After"] = str(wait)
    return response
