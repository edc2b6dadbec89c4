"""Auth events log one line each, with tenant and user id, and never a secret."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest

from tests.factories import NEW_PASSWORD, PASSWORD, WRONG_PASSWORD, bearer_header
from tests.helpers import client_for, tokens_for

pytestmark = pytest.mark.django_db(databases="__all__")


def accounts_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("accounts")]


def test_auth_flow_logs_each_event_with_tenant_and_user_and_no_secret(
    acme, make_user, caplog, settings
):
    settings.LOGIN_LOCKOUT_THRESHOLD = 2
    ann = make_user(acme, "ann")
    client = client_for("acme.test")
    secrets = [PASSWORD, NEW_PASSWORD, WRONG_PASSWORD]
    with caplog.at_level(logging.DEBUG):
        first = tokens_for("acme.test", "ann")
        refreshed = client.post(
            "/api/auth/refresh", {"refresh": first["refresh"]}, format="json"
        ).json()
        changed = client.post(
            "/api/auth/password",
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            format="json",
            **bearer_header(refreshed["access"]),
        ).json()
        client.post(
            "/api/auth/logout",
            {"refresh": changed["refresh"]},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {changed['access']}",
        )
        for _ in range(2):
            client.post(
                "/api/auth/login",
                {"username_or_email": "ann", "password": WRONG_PASSWORD},
                format="json",
            )
        locked = client.post(
            "/api/auth/login",
            {"username_or_email": "ann", "password": WRONG_PASSWORD},
            format="json",
        )
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    secrets += [t[k] for t in (first, refreshed, changed) for k in ("access", "refresh")]

    everything = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in everything
    assert "Bearer" not in everything

    lines = accounts_lines(caplog)
    tag = f"tenant=acme, user_id={ann.pk}"

    def one(prefix: str) -> None:
        matching = [line for line in lines if line.startswith(prefix)]
        assert len(matching) >= 1, (prefix, lines)
        assert all(tag in line for line in matching), matching

    one("User ann logged in")
    one("Refresh token rotated")
    one("Password changed")
    one("Tokens revoked by password change")
    one("Token revoked")
    one("User ann logged out")
    one("Failed login")
    one("Account locked out")
    assert len([line for line in lines if line.startswith("Failed login")]) == 2


def test_role_change_logs_the_revocation(acme, make_user, bearer, caplog):
    boss = make_user(acme, "boss", role="admin")
    mia = make_user(acme, "mia")
    with caplog.at_level(logging.INFO):
        client_for("acme.test").patch(
            f"/api/users/{mia.pk}", {"role": "admin"}, format="json", **bearer(boss, acme)
        )
    lines = accounts_lines(caplog)
    assert any(
        line.startswith("Tokens revoked by account change") and f"user_id={mia.pk}" in line
        for line in lines
    )


def test_signup_and_platform_login_never_log_the_password(acme, caplog, tenant_databases):
    from accounts.models import User

    User.objects.create_user("root", "root@example.test", PASSWORD, is_staff=True)
    with caplog.at_level(logging.DEBUG):
        client_for("acme.test").post(
            "/api/auth/signup",
            {"username": "ann", "email": "ann@example.test", "password": NEW_PASSWORD},
            format="json",
        )
        body = (
            client_for("acme.test")
            .post(
                "/api/platform/auth/login",
                {"username_or_email": "root", "password": PASSWORD},
                format="json",
            )
            .json()
        )
    assert NEW_PASSWORD not in caplog.text
    assert PASSWORD not in caplog.text
    assert body["access"] not in caplog.text
    assert any("tenant=platform" in line for line in accounts_lines(caplog))
