"""Two-factor login (TOTP, RFC 6238): enrolment, confirmation and recovery codes, the
two-step login on tenant hosts and for platform staff, replay and guessing, the tenant's
policy, and the Django admin's second factor.

Codes are real: pyotp computes them for a secret at a time the test sets
(`accounts.mfa._now`); every secret, recovery code and mfa_token a test sees is handed to
the leak collector (tests/leak_collector.py)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from asgiref.sync import sync_to_async
from django.core import signing
from django.test import Client

from accounts import mfa
from accounts.models import AuditEvent, MfaPolicy, RecoveryCode, TotpDevice, User
from accounts.tokens import issue_tokens
from tenants.context import use_tenant
from tests.factories import (
    PASSWORD,
    TOTP_SECRET,
    WRONG_PASSWORD,
    bearer_for,
    bearer_header,
    create_staff,
    enrol_totp,
)
from tests.helpers import client_for, login, me, open_stream, ws_bearer_header
from tests.leak_collector import collector

pytestmark = pytest.mark.django_db(databases="__all__")

T0 = 1_800_000_000.0  # the start of a 30-second step
INVALID_TOKEN = {"status": 401, "error": "Unauthorized", "message": "Invalid token"}
INVALID_CREDENTIALS = {"status": 401, "error": "Unauthorized", "message": "Invalid credentials"}
DENIED = {"status": 403, "error": "Forbidden", "message": "Tenant access denied"}
ENROLMENT_REQUIRED = {
    "status": 403,
    "error": "Forbidden",
    "message": "Two-factor enrolment required",
}


class Clock:
    def __init__(self, now: float):
        self.now = now

    def step(self, steps: int = 1) -> None:
        self.now += 30 * steps


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The time TOTP codes are checked at (the mfa_token lifetime keeps the real clock)."""
    frozen = Clock(T0)
    monkeypatch.setattr(mfa, "_now", lambda: frozen.now)
    return frozen


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret).at(when)


def secret_of(uri: str) -> str:
    return parse_qs(urlparse(uri).query)["secret"][0]


def kept(*values: str) -> None:
    """Secrets the output must never show (checked by tests/test_secrets_never_leak.py)."""
    for value in values:
        collector.secret(value)


def enrol(client, clock: Clock, prefix: str = "/api/auth") -> tuple[str, list[str]]:
    """Enrol and confirm through the API; (the secret, the recovery codes). The clock moves
    past the confirming code's step."""
    body = client.post(f"{prefix}/mfa/totp").json()
    secret = secret_of(body["otpauth_uri"])
    kept(secret, body["otpauth_uri"])
    response = client.post(
        f"{prefix}/mfa/totp/confirm", {"code": code_at(secret, clock.now)}, format="json"
    )
    assert response.status_code == HTTPStatus.OK, response.content
    codes = response.json()["recovery_codes"]
    kept(*codes)
    clock.step()
    return secret, codes


def challenge(host: str = "acme.test", username: str = "ann") -> str:
    """The mfa_token of a correct password login of an enrolled user."""
    response = login(host, username)
    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert body == {"mfa_required": True, "mfa_token": body["mfa_token"]}
    kept(body["mfa_token"])
    return body["mfa_token"]


def second_step(token: str, code: str, host: str = "acme.test", **extra):
    return client_for(host).post(
        "/api/auth/login/mfa", {"mfa_token": token, "code": code}, format="json", **extra
    )


# --- enrolment ----------------------------------------------------------------------------
def test_enrolment_answers_an_otpauth_uri_and_an_svg_qr_code_with_a_new_secret_each_time(api):
    first = api.post("/api/auth/mfa/totp").json()
    second = api.post("/api/auth/mfa/totp").json()
    kept(secret_of(first["otpauth_uri"]), secret_of(second["otpauth_uri"]))
    assert first["otpauth_uri"].startswith("otpauth://totp/")
    assert "issuer=tenantkit" in first["otpauth_uri"]
    assert "ann" in first["otpauth_uri"]
    assert first["qr_svg"].startswith("<svg") and first["qr_svg"].rstrip().endswith("</svg>")
    assert secret_of(first["otpauth_uri"]) != secret_of(second["otpauth_uri"])
    assert len(secret_of(first["otpauth_uri"])) >= 32  # 160 bits, RFC 4226's recommendation


def test_confirm_with_a_wrong_code_is_400_and_enables_nothing(api, acme, ann, clock):
    secret = secret_of(api.post("/api/auth/mfa/totp").json()["otpauth_uri"])
    kept(secret)
    wrong = code_at(secret, clock.now + 3600)
    response = api.post("/api/auth/mfa/totp/confirm", {"code": wrong}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"] == {"code": ["The code is not valid."]}
    assert "token" in login("acme.test", "ann").json()  # still a one-step login


def test_confirm_answers_ten_single_use_recovery_codes_stored_hashed(api, acme, ann, clock):
    _, codes = enrol(api, clock)
    assert len(codes) == len(set(codes)) == 10
    with use_tenant(acme):
        stored = list(RecoveryCode.objects.filter(user=ann).values_list("code_hash", flat=True))
        device = TotpDevice.objects.get(user=ann)
    assert len(stored) == 10
    assert not set(stored) & {c for code in codes for c in (code, code.replace("-", ""))}
    assert device.confirmed_at is not None


def test_enrolling_again_or_confirming_nothing_is_409(api, clock):
    assert api.post("/api/auth/mfa/totp/confirm", {"code": "123456"}, format="json").json()[
        "message"
    ] == ("No two-factor enrolment to confirm")
    enrol(api, clock)
    response = api.post("/api/auth/mfa/totp")
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json()["message"] == "Two-factor authentication is already enabled"


# --- the two-step login -------------------------------------------------------------------
def test_an_enrolled_users_password_answers_a_challenge_and_the_code_the_tokens(api, acme, clock):
    secret, _ = enrol(api, clock)
    token = challenge()
    response = second_step(token, code_at(secret, clock.now))
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"token", "access", "refresh", "token_type", "expires_in", "tenant"}
    assert body["tenant"] == "acme"
    assert me("acme.test", body["access"]).json()["username"] == "ann"


def test_a_wrong_password_of_an_enrolled_user_is_401_without_a_challenge(api, clock):
    enrol(api, clock)
    response = login("acme.test", "ann", WRONG_PASSWORD)
    assert (response.status_code, response.json()) == (
        HTTPStatus.UNAUTHORIZED,
        INVALID_CREDENTIALS,
    )


def test_a_wrong_code_is_401_invalid_credentials(api, clock):
    secret, _ = enrol(api, clock)
    response = second_step(challenge(), code_at(secret, clock.now + 600))
    assert (response.status_code, response.json()) == (
        HTTPStatus.UNAUTHORIZED,
        INVALID_CREDENTIALS,
    )


def test_a_code_of_the_next_or_previous_step_is_accepted(api, clock):
    secret, _ = enrol(api, clock)
    clock.step(2)  # the previous step is not the confirming code's
    assert second_step(challenge(), code_at(secret, clock.now - 30)).status_code == HTTPStatus.OK
    clock.step(3)
    assert second_step(challenge(), code_at(secret, clock.now + 30)).status_code == HTTPStatus.OK


def test_a_code_is_never_accepted_twice(api, clock):
    secret, _ = enrol(api, clock)
    code = code_at(secret, clock.now)
    assert second_step(challenge(), code).status_code == HTTPStatus.OK
    replay = second_step(challenge(), code)
    assert (replay.status_code, replay.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_CREDENTIALS)
    # Nor an older step once a newer one was used, though still within the drift window.
    clock.step()
    assert second_step(challenge(), code_at(secret, clock.now)).status_code == HTTPStatus.OK
    older = second_step(challenge(), code_at(secret, clock.now - 30))
    assert older.status_code == HTTPStatus.UNAUTHORIZED


def test_the_code_confirming_enrolment_cannot_be_replayed_at_login(api, acme, ann, clock):
    secret = secret_of(api.post("/api/auth/mfa/totp").json()["otpauth_uri"])
    kept(secret)
    code = code_at(secret, clock.now)
    api.post("/api/auth/mfa/totp/confirm", {"code": code}, format="json")
    assert second_step(challenge(), code).status_code == HTTPStatus.UNAUTHORIZED


def test_an_mfa_token_is_single_use(api, clock):
    secret, _ = enrol(api, clock)
    token = challenge()
    assert second_step(token, code_at(secret, clock.now)).status_code == HTTPStatus.OK
    clock.step()
    again = second_step(token, code_at(secret, clock.now))
    assert (again.status_code, again.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "not-a-token",
        lambda token: signing.dumps({"u": 1, "t": "acme", "n": "x", "i": 0}, salt="other"),
        lambda token: signing.dumps({"u": "1", "t": "acme"}, salt="accounts.mfa.login"),
        lambda token: token.split(":")[0],
    ],
    ids=["tampered", "garbage", "other-salt", "bad-claims", "unsigned"],
)
def test_a_forged_or_malformed_mfa_token_is_401_invalid_token(api, clock, forge):
    secret, _ = enrol(api, clock)
    response = second_step(forge(challenge()), code_at(secret, clock.now))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)


def test_an_expired_mfa_token_is_401_invalid_token(api, clock, settings, monkeypatch):
    secret, _ = enrol(api, clock)
    token = challenge()
    later = signing.time.time() + settings.MFA_TOKEN_TTL + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = second_step(token, code_at(secret, clock.now))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)


def test_the_mfa_token_of_another_tenant_is_403_and_spends_nothing(acme, globex, make_user, clock):
    """The contract's tenant rule for every token: another tenant's on this host is 403."""
    gus = make_user(globex, "gus")
    secret = enrol_totp(globex, gus)
    kept(secret)
    token = challenge("globex.test", "gus")
    code = code_at(secret, clock.now)
    response = second_step(token, code, host="acme.test")
    assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, DENIED)
    assert second_step(token, code, host="globex.test").status_code == HTTPStatus.OK


def test_a_recovery_code_logs_in_once(api, acme, ann, clock):
    _, codes = enrol(api, clock)
    assert second_step(challenge(), codes[0]).status_code == HTTPStatus.OK
    again = second_step(challenge(), codes[0])
    assert (again.status_code, again.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_CREDENTIALS)
    # Spaces, case and the dash do not matter.
    typed = codes[1].upper().replace("-", " ")
    assert second_step(challenge(), typed).status_code == HTTPStatus.OK
    with use_tenant(acme):
        assert mfa.recovery_codes_left(ann) == 8


def test_recovery_codes_of_another_user_do_not_work(api, acme, make_user, clock):
    _, codes = enrol(api, clock)
    bob = make_user(acme, "bob")
    bob_secret = enrol_totp(acme, bob)
    kept(bob_secret)
    assert second_step(challenge(username="bob"), codes[0]).status_code == (HTTPStatus.UNAUTHORIZED)


# --- guessing -----------------------------------------------------------------------------
def test_wrong_codes_are_throttled_per_mfa_token(api, clock, settings):
    settings.MFA_CODE_ATTEMPTS = 3
    settings.LOGIN_LOCKOUT_THRESHOLD = 100
    secret, _ = enrol(api, clock)
    token = challenge()
    for _ in range(3):
        assert second_step(token, "000000").status_code == HTTPStatus.UNAUTHORIZED
    throttled = second_step(token, code_at(secret, clock.now))
    assert throttled.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 1 <= int(throttled["Retry-After"]) <= settings.MFA_TOKEN_TTL
    # A new password login gives a new token, with its own count.
    assert second_step(challenge(), code_at(secret, clock.now)).status_code == HTTPStatus.OK


def test_wrong_codes_count_towards_the_account_lockout(api, clock, low_lockout):
    enrol(api, clock)
    token = challenge()
    for _ in range(3):
        assert second_step(token, "000000").status_code == HTTPStatus.UNAUTHORIZED
    for attempt in (lambda: login("acme.test", "ann"), lambda: second_step(token, "000000")):
        locked = attempt()
        assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert int(locked["Retry-After"]) >= 1


def test_wrong_codes_across_password_logins_lock_the_second_factor(api, clock, low_lockout):
    enrol(api, clock)
    for _ in range(3):  # each with a new token, after a correct password
        assert second_step(challenge(), "000000").status_code == HTTPStatus.UNAUTHORIZED
    assert login("acme.test", "ann").status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_a_correct_password_does_not_clear_the_count_of_wrong_codes(api, clock, settings):
    """Knowing the password must not buy unlimited code guesses: the password resets the
    account's failed logins, not the second factor's."""
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 1000
    settings.LOGIN_LOCKOUT_THRESHOLD = 3
    secret, _ = enrol(api, clock)
    token = challenge()
    assert second_step(token, "000000").status_code == HTTPStatus.UNAUTHORIZED
    assert second_step(token, "111111").status_code == HTTPStatus.UNAUTHORIZED
    token = challenge()  # a correct password: the account's count starts again
    assert second_step(token, "222222").status_code == HTTPStatus.UNAUTHORIZED
    blocked = second_step(token, code_at(secret, clock.now))
    assert blocked.status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_codes_are_throttled_per_ip(api, clock, low_rate):
    secret, _ = enrol(api, clock)
    token = challenge()  # one attempt of this address
    for _ in range(3):
        second_step(token, "000000", REMOTE_ADDR="203.0.113.5")
    response = second_step(token, code_at(secret, clock.now), REMOTE_ADDR="203.0.113.5")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert int(response["Retry-After"]) >= 1


# --- removal ------------------------------------------------------------------------------
def test_removal_takes_a_current_code_and_brings_back_the_one_step_login(api, clock):
    secret, _ = enrol(api, clock)
    wrong = api.delete("/api/auth/mfa/totp", {"code": "000000"}, format="json")
    assert wrong.status_code == HTTPStatus.BAD_REQUEST
    assert wrong.json()["details"] == {"code": ["The code is not valid."]}
    missing = api.delete("/api/auth/mfa/totp", {}, format="json")
    assert missing.status_code == HTTPStatus.BAD_REQUEST
    assert "mfa_required" in login("acme.test", "ann").json()
    done = api.delete("/api/auth/mfa/totp", {"code": code_at(secret, clock.now)}, format="json")
    assert done.status_code == HTTPStatus.NO_CONTENT
    assert "token" in login("acme.test", "ann").json()
    again = api.delete("/api/auth/mfa/totp", {"code": "123456"}, format="json")
    assert again.status_code == HTTPStatus.CONFLICT


def test_enrolment_and_removal_are_in_the_audit_trail(api, acme, ann, clock):
    secret, _ = enrol(api, clock)
    api.delete("/api/auth/mfa/totp", {"code": code_at(secret, clock.now + 30)}, format="json")
    with use_tenant(acme):
        events = list(
            AuditEvent.objects.filter(target_id=str(ann.pk))
            .order_by("id")
            .values_list("event", "actor_id")
        )
    assert [e for e in events if e[0].startswith("mfa_")] == [
        ("mfa_enrolled", ann.pk),
        ("mfa_removed", ann.pk),
    ]


def test_a_login_is_recorded_once_the_second_factor_completes_it(api, acme, ann, clock):
    secret, _ = enrol(api, clock)

    def logins() -> list[dict]:
        with use_tenant(acme):
            return list(AuditEvent.objects.filter(event="login").values_list("details", flat=True))

    before = logins()
    token = challenge()
    assert logins() == before  # a password alone is no login
    assert second_step(token, code_at(secret, clock.now)).status_code == HTTPStatus.OK
    after = logins()
    assert len(after) == len(before) + 1
    assert {"second_factor": "totp"} in after


def test_removal_with_a_recovery_code(api, acme, ann, clock):
    _, codes = enrol(api, clock)
    response = api.delete("/api/auth/mfa/totp", {"code": codes[3]}, format="json")
    assert response.status_code == HTTPStatus.NO_CONTENT
    with use_tenant(acme):
        assert not RecoveryCode.objects.filter(user=ann).exists()
        assert not TotpDevice.objects.filter(user=ann).exists()


def test_an_mfa_token_issued_before_removal_is_refused(api, clock):
    secret, _ = enrol(api, clock)
    token = challenge()
    api.delete("/api/auth/mfa/totp", {"code": code_at(secret, clock.now)}, format="json")
    clock.step()
    response = second_step(token, code_at(secret, clock.now))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)


def test_a_tenant_admin_resets_a_users_lost_authenticator(api, acme, ann, make_user, clock):
    enrol(api, clock)
    boss = make_user(acme, "boss", role=User.Role.ADMIN)
    admin = client_for("acme.test")
    admin.credentials(**bearer_for(boss, acme))
    assert api.delete(f"/api/users/{ann.pk}/mfa").status_code == HTTPStatus.FORBIDDEN
    assert admin.delete(f"/api/users/{ann.pk}/mfa").status_code == HTTPStatus.NO_CONTENT
    assert "token" in login("acme.test", "ann").json()
    with use_tenant(acme):
        assert not RecoveryCode.objects.filter(user=ann).exists()
    again = admin.delete(f"/api/users/{ann.pk}/mfa")
    assert again.status_code == HTTPStatus.CONFLICT
    assert admin.delete("/api/users/999999/mfa").status_code == HTTPStatus.NOT_FOUND


# --- the tenant's policy ------------------------------------------------------------------
@pytest.fixture
def acme_admin(acme, make_user):
    return make_user(acme, "boss", role=User.Role.ADMIN)


def test_only_a_tenant_admin_reads_or_sets_the_policy(api, acme, acme_admin):
    assert api.get("/api/auth/mfa/policy").status_code == HTTPStatus.FORBIDDEN
    assert (
        api.patch("/api/auth/mfa/policy", {"required": True}, format="json").status_code
        == HTTPStatus.FORBIDDEN
    )
    admin = client_for("acme.test")
    admin.credentials(**bearer_for(acme_admin, acme))
    assert admin.get("/api/auth/mfa/policy").json() == {"required": False}
    response = admin.patch("/api/auth/mfa/policy", {"required": True}, format="json")
    assert response.json() == {"required": True}
    with use_tenant(acme):
        assert MfaPolicy.objects.get().required is True


def require_2fa(tenant) -> None:
    with use_tenant(tenant):
        MfaPolicy.objects.update_or_create(pk=1, defaults={"required": True})


def test_a_tenant_requiring_2fa_logs_an_unenrolled_user_in_to_enrolment_only(acme, ann, clock):
    require_2fa(acme)
    response = login("acme.test", "ann")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["mfa_enrolment_required"] is True
    restricted = client_for("acme.test")
    restricted.credentials(**bearer_header(body["access"]))
    for method, path in (("get", "/api/auth/me"), ("get", "/api/address-book")):
        refused = getattr(restricted, method)(path)
        assert (refused.status_code, refused.json()) == (
            HTTPStatus.FORBIDDEN,
            ENROLMENT_REQUIRED,
        )
    refreshed = client_for("acme.test").post(
        "/api/auth/refresh", {"refresh": body["refresh"]}, format="json"
    )
    assert (refreshed.status_code, refreshed.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    secret, _ = enrol(restricted, clock)
    token = challenge()
    assert second_step(token, code_at(secret, clock.now)).status_code == HTTPStatus.OK


@pytest.mark.django_db(databases="__all__", transaction=True)
async def test_an_enrolment_only_token_never_opens_the_log_stream(acme, make_user):
    def tokens() -> tuple[str, str]:
        user = make_user(acme, "lena")
        with use_tenant(acme):
            restricted = issue_tokens(user, acme, claims={mfa.ENROLMENT_ONLY_CLAIM: True})
            return restricted["access"], issue_tokens(user, acme)["access"]

    restricted, full = await sync_to_async(tokens)()
    for access, admitted in ((restricted, False), (full, True)):
        communicator, connected = await open_stream(headers=ws_bearer_header(access))
        assert connected is admitted
        await communicator.disconnect()


def test_requiring_2fa_stops_the_refresh_of_unenrolled_users(acme, ann):
    pair = login("acme.test", "ann").json()
    require_2fa(acme)
    response = client_for("acme.test").post(
        "/api/auth/refresh", {"refresh": pair["refresh"]}, format="json"
    )
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)


def test_the_policy_of_one_tenant_is_not_anothers(acme, globex, make_user):
    require_2fa(acme)
    make_user(globex, "gil")
    assert "mfa_enrolment_required" not in login("globex.test", "gil").json()
    with use_tenant(globex):
        assert not MfaPolicy.objects.filter(required=True).exists()


# --- platform staff -----------------------------------------------------------------------
def platform_client(staff) -> object:
    client = client_for("platform.example")
    client.credentials(**bearer_for(staff, None))
    return client


def platform_challenge(host: str = "platform.example") -> str:
    response = client_for(host).post(
        "/api/platform/auth/login",
        {"username_or_email": "root", "password": PASSWORD},
        format="json",
    )
    body = response.json()
    assert set(body) == {"mfa_required", "mfa_token"}, body
    kept(body["mfa_token"])
    return body["mfa_token"]


def test_platform_staff_enrol_and_log_in_with_the_same_flow(staff, clock):
    secret, codes = enrol(platform_client(staff), clock, prefix="/api/platform/auth")
    response = client_for("platform.example").post(
        "/api/platform/auth/login/mfa",
        {"mfa_token": platform_challenge(), "code": code_at(secret, clock.now)},
        format="json",
    )
    assert response.status_code == HTTPStatus.OK
    assert response.json()["tenant"] is None
    assert TotpDevice.objects.filter(user=staff).exists()  # the main database
    recovered = client_for("acme.test").post(
        "/api/platform/auth/login/mfa",
        {"mfa_token": platform_challenge("acme.test"), "code": codes[0]},
        format="json",
    )
    assert recovered.status_code == HTTPStatus.OK


def test_tenant_and_platform_mfa_tokens_are_not_interchangeable(acme, ann, staff, clock):
    kept(enrol_totp(acme, ann), enrol_totp(None, staff))
    code = code_at(TOTP_SECRET, clock.now)
    on_platform = client_for("acme.test").post(
        "/api/platform/auth/login/mfa", {"mfa_token": challenge(), "code": code}, format="json"
    )
    assert (on_platform.status_code, on_platform.json()) == (HTTPStatus.FORBIDDEN, DENIED)
    on_tenant = second_step(platform_challenge(), code)
    assert (on_tenant.status_code, on_tenant.json()) == (HTTPStatus.FORBIDDEN, DENIED)


def admin_login_page(username: str, password: str, otp_code: str | None = None):
    client = Client(REMOTE_ADDR="198.51.100.20")
    data = {"username": username, "password": password, "next": "/admin/"}
    if otp_code is not None:
        data["otp_code"] = otp_code
    return client, client.post("/admin/login/", data)


def test_the_admin_requires_the_second_factor_of_staff_who_enrolled(tenant_databases, clock):
    staff = create_staff("root", is_superuser=True)
    secret = enrol_totp(None, staff)
    kept(secret)
    page = admin_login_page("root", PASSWORD)[1]
    assert page.status_code == HTTPStatus.OK
    assert "two-factor authentication" in page.content.decode()
    assert 'name="otp_code"' in page.content.decode()
    client, wrong = admin_login_page("root", PASSWORD, "000000")
    assert wrong.status_code == HTTPStatus.OK
    assert "_auth_user_id" not in client.session
    assert "The code is not valid." in wrong.content.decode()
    client, right = admin_login_page("root", PASSWORD, code_at(secret, clock.now))
    assert right.status_code == HTTPStatus.FOUND
    assert "_auth_user_id" in client.session
    client, replay = admin_login_page("root", PASSWORD, code_at(secret, clock.now))
    assert "_auth_user_id" not in client.session  # the same code again
    assert "The code is not valid." in replay.content.decode()


def test_the_admin_asks_no_code_of_staff_without_an_authenticator(tenant_databases):
    create_staff("root", is_superuser=True)
    client, response = admin_login_page("root", PASSWORD)
    assert response.status_code == HTTPStatus.FOUND
    assert "_auth_user_id" in client.session


def test_the_admin_counts_wrong_codes_towards_the_lockout(tenant_databases, low_lockout):
    staff = create_staff("root", is_superuser=True)
    kept(enrol_totp(None, staff))
    for _ in range(3):
        admin_login_page("root", PASSWORD, "000000")
    locked = platform_challenge_status()
    assert locked == HTTPStatus.TOO_MANY_REQUESTS


def platform_challenge_status() -> int:
    return (
        client_for("platform.example")
        .post(
            "/api/platform/auth/login",
            {"username_or_email": "root", "password": PASSWORD},
            format="json",
        )
        .status_code
    )


# --- what the output never shows ----------------------------------------------------------
def test_no_secret_code_or_mfa_token_reaches_a_log_line_or_error_body(api, clock, caplog):
    seen = len(collector.output)
    caplog.set_level(logging.INFO)
    secret, codes = enrol(api, clock)
    token = challenge()
    second_step(token, "000000")
    second_step(token, codes[0])
    shown = [exposure.text for exposure in collector.output[seen:]]
    assert any("second factor" in text for text in shown)  # the flow was logged
    for value in (secret, token, *codes, codes[0].replace("-", "")):
        assert not any(value in text for text in shown), value
