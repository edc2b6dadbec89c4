"""Password reset by an e-mailed link: POST /api/auth/password-reset {email} answers 202
whatever the address, the link's token sets a new password once (POST
/api/auth/password-reset/confirm {token, new_password}) and revokes every earlier token of
the account; used, expired, malformed and other tenants' tokens are 401 `Invalid token`."""

from __future__ import annotations

import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.conf import settings
from django.core.checks import run_checks

from accounts.links import password_reset_tokens
from accounts.models import User
from config import ratelimit
from tenants.context import use_tenant
from tests.factories import NEW_PASSWORD, PASSWORD
from tests.helpers import client_for, free_port, link_in, login, me, sent_mail, tokens_for
from tests.leak_collector import collector

pytestmark = pytest.mark.django_db(databases="__all__")

RESET = "/api/auth/password-reset"
CONFIRM = "/api/auth/password-reset/confirm"
INVALID_TOKEN = {"status": 401, "error": "Unauthorized", "message": "Invalid token"}


def ask_reset(email: str, host: str = "acme.test", **extra):
    return client_for(host).post(RESET, {"email": email}, format="json", **extra)


def confirm(token: str, new_password: str = NEW_PASSWORD, host: str = "acme.test"):
    return client_for(host).post(
        CONFIRM, {"token": token, "new_password": new_password}, format="json"
    )


def reset_token_sent_to(address: str) -> str:
    """The token of the one reset link e-mailed to `address`."""
    messages = [m for m in sent_mail() if m.to == [address]]
    assert len(messages) == 1, [m.to for m in sent_mail()]
    return link_in(messages[0].body).group("token")


@pytest.fixture
def alice(acme, make_user):
    return make_user(acme, "alice", email="alice@acme.example")


@pytest.fixture
def frozen_rate_clock(monkeypatch):
    """The rate limiter's clock stands still: a test's requests share one window."""
    frozen = ratelimit._now()
    monkeypatch.setattr(ratelimit, "_now", lambda: frozen)


# --- no enumeration -----------------------------------------------------------------------
def test_known_and_unknown_addresses_get_the_same_answer(alice):
    known = ask_reset("alice@acme.example")
    unknown = ask_reset("nobody@acme.example")
    assert known.status_code == unknown.status_code == HTTPStatus.ACCEPTED
    assert known.json() == unknown.json()
    assert set(known.json()) == {"message"}
    assert [m.to for m in sent_mail()] == [["alice@acme.example"]]


def test_address_is_matched_case_insensitively_and_mailed_as_stored(alice):
    assert ask_reset("ALICE@Acme.Example").status_code == HTTPStatus.ACCEPTED
    assert [m.to for m in sent_mail()] == [["alice@acme.example"]]


def test_inactive_account_gets_the_same_answer_and_no_mail(acme, alice):
    with use_tenant(acme):
        User.objects.filter(pk=alice.pk).update(is_active=False)
    response = ask_reset("alice@acme.example")
    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json() == ask_reset("nobody@acme.example").json()
    assert sent_mail() == []


def test_address_of_another_tenant_gets_no_mail(acme, globex, make_user):
    make_user(globex, "gus", email="gus@globex.example")
    assert ask_reset("gus@globex.example", host="acme.test").status_code == HTTPStatus.ACCEPTED
    assert sent_mail() == []


def test_request_does_not_wait_for_the_mail_server(alice, smtp_server):
    """Sending happens off the request, so a slow mail server does not make a known
    address answer later than an unknown one."""
    smtp_server.delay = 2.0
    started = time.monotonic()
    assert ask_reset("alice@acme.example").status_code == HTTPStatus.ACCEPTED
    known = time.monotonic() - started
    started = time.monotonic()
    assert ask_reset("nobody@acme.example").status_code == HTTPStatus.ACCEPTED
    unknown = time.monotonic() - started
    assert known < 1.0 and unknown < 1.0, (known, unknown)
    sent_mail()
    assert [m["To"] for m in smtp_server.messages] == ["alice@acme.example"]


def test_malformed_address_is_a_400_with_details(acme):
    response = ask_reset("not-an-address")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "email" in response.json()["details"]


# --- the link -----------------------------------------------------------------------------
def test_link_points_at_the_tenants_primary_domain_not_the_requests_host(alice, settings):
    settings.TENANT_DEFAULT = "acme"
    assert ask_reset("alice@acme.example", host="attacker.example").status_code == 202
    (message,) = sent_mail()
    link = link_in(message.body)
    assert link.group("host") == "acme.test"
    assert link.group(0).startswith("http://acme.test/reset-password#token=")


def test_link_follows_the_password_reset_url_setting(alice, settings):
    settings.PASSWORD_RESET_URL = "https://app.example/{domain}/reset?t={token}"
    ask_reset("alice@acme.example")
    (message,) = sent_mail()
    assert "https://app.example/acme.test/reset?t=" in message.body


def test_mail_comes_from_the_default_from_address(alice, settings):
    settings.DEFAULT_FROM_EMAIL = "Acme Accounts <accounts@acme.example>"
    ask_reset("alice@acme.example")
    (message,) = sent_mail()
    assert message.from_email == "Acme Accounts <accounts@acme.example>"
    assert "Acme Corp" in message.subject


# --- confirming ---------------------------------------------------------------------------
def test_following_the_link_sets_the_password_and_revokes_every_earlier_token(alice):
    before = tokens_for("acme.test", "alice")
    ask_reset("alice@acme.example")
    response = confirm(reset_token_sent_to("alice@acme.example"))
    assert response.status_code == HTTPStatus.OK
    assert set(response.json()) == {"message"}
    assert me("acme.test", before["access"]).status_code == HTTPStatus.UNAUTHORIZED
    refresh = client_for("acme.test").post(
        "/api/auth/refresh", {"refresh": before["refresh"]}, format="json"
    )
    assert (refresh.status_code, refresh.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    assert login("acme.test", "alice", PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    assert login("acme.test", "alice", NEW_PASSWORD).status_code == HTTPStatus.OK


def test_token_is_single_use(alice):
    ask_reset("alice@acme.example")
    token = reset_token_sent_to("alice@acme.example")
    assert confirm(token).status_code == HTTPStatus.OK
    again = confirm(token, new_password="Th1rd-Secret-pw")
    assert (again.status_code, again.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    assert login("acme.test", "alice", NEW_PASSWORD).status_code == HTTPStatus.OK


def test_a_reset_spends_every_other_reset_link_of_the_account(alice):
    ask_reset("alice@acme.example")
    ask_reset("alice@acme.example")
    first, second = (link_in(m.body).group("token") for m in sent_mail())
    assert confirm(second).status_code == HTTPStatus.OK
    assert confirm(first, new_password="Th1rd-Secret-pw").status_code == HTTPStatus.UNAUTHORIZED


def test_token_expires_after_password_reset_timeout(alice, monkeypatch):
    ask_reset("alice@acme.example")
    token = reset_token_sent_to("alice@acme.example")
    later = password_reset_tokens._now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 5)
    monkeypatch.setattr(password_reset_tokens, "_now", lambda: later)
    response = confirm(token)
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    assert login("acme.test", "alice", PASSWORD).status_code == HTTPStatus.OK


def test_token_of_one_tenant_is_refused_on_another(acme, globex, make_user):
    make_user(acme, "alice", email="alice@example.test", id=7001)
    make_user(globex, "alice", email="alice@example.test", id=7001)
    ask_reset("alice@example.test", host="acme.test")
    token = reset_token_sent_to("alice@example.test")
    response = confirm(token, host="globex.test")
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    assert login("globex.test", "alice", PASSWORD).status_code == HTTPStatus.OK
    assert confirm(token, host="acme.test").status_code == HTTPStatus.OK


def test_token_is_bound_to_the_tenant_not_only_to_the_password_hash(acme, globex, alice):
    """The same user row, seen from another tenant, does not check: the slug is hashed."""
    with use_tenant(acme):
        token = password_reset_tokens.make_link_token(alice)
        assert password_reset_tokens.check_token(alice, token.partition(".")[2])
    with use_tenant(globex):
        assert not password_reset_tokens.check_token(alice, token.partition(".")[2])


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "x.y",
        "MQ.zzz-zzz",
        "Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3.ct1-abc",  # a user id past 2**63
        "LTE.ct1-abc",  # "-1"
        "w6k.ct1-abc",  # not ASCII digits
        "%%%.%%%",
        "🙂.🙂",
    ],
)
def test_malformed_token_is_invalid_token_and_changes_nothing(alice, token):
    response = confirm(token)
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    assert login("acme.test", "alice", PASSWORD).status_code == HTTPStatus.OK


def test_over_long_token_is_a_400(alice):
    response = confirm("a" * 100_000)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "token" in response.json()["details"]


def test_new_password_is_checked_by_the_validators_and_the_link_stays_usable(acme, alice):
    ask_reset("alice@acme.example")
    token = reset_token_sent_to("alice@acme.example")
    weak = confirm(token, new_password="password")
    assert weak.status_code == HTTPStatus.BAD_REQUEST
    assert weak.json()["details"]["new_password"]
    with use_tenant(acme):
        assert User.objects.get(pk=alice.pk).check_password(PASSWORD)
    assert confirm(token).status_code == HTTPStatus.OK


def test_a_login_after_the_request_spends_the_link(alice):
    """Django's reset tokens hash the last login too: signing in means the link is no
    longer needed."""
    ask_reset("alice@acme.example")
    token = reset_token_sent_to("alice@acme.example")
    assert login("acme.test", "alice", PASSWORD).status_code == HTTPStatus.OK
    assert confirm(token).status_code == HTTPStatus.UNAUTHORIZED


def test_a_reset_clears_the_accounts_login_lockout(alice, low_lockout):
    for _ in range(3):
        login("acme.test", "alice", "Wrong-pass-123")
    assert login("acme.test", "alice", PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    ask_reset("alice@acme.example")
    assert confirm(reset_token_sent_to("alice@acme.example")).status_code == HTTPStatus.OK
    assert login("acme.test", "alice", NEW_PASSWORD).status_code == HTTPStatus.OK


# --- throttling ---------------------------------------------------------------------------
def test_requests_for_one_address_are_throttled_whether_or_not_it_exists(
    alice, settings, frozen_rate_clock
):
    settings.EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR = 2
    settings.EMAIL_LINK_RATE_LIMIT_PER_MINUTE = 100
    for address in ("alice@acme.example", "nobody@acme.example"):
        answers = [ask_reset(address) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429], address
        assert int(answers[-1]["Retry-After"]) > 0
        assert answers[-1].json()["error"] == "Too Many Requests"
    assert len(sent_mail()) == 2


def test_one_mailbox_is_one_counter_whatever_its_unicode_case(alice, settings, frozen_rate_clock):
    """The database finds an address case-insensitively with Unicode's folding (a long s
    is an s), so its spellings share one counter and cannot mail past the limit."""
    settings.EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR = 2
    settings.EMAIL_LINK_RATE_LIMIT_PER_MINUTE = 100
    spellings = ("sam@acme.example", "SAM@acme.example", "\u017fam@acme.example")
    assert [ask_reset(address).status_code for address in spellings] == [202, 202, 429]


def test_requests_from_one_client_address_are_throttled(alice, settings, frozen_rate_clock):
    settings.EMAIL_LINK_RATE_LIMIT_PER_MINUTE = 2
    answers = [ask_reset(f"n{i}@acme.example") for i in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert 0 < int(answers[-1]["Retry-After"]) <= 60
    other_client = ask_reset("n9@acme.example", REMOTE_ADDR="198.51.100.7")
    assert other_client.status_code == HTTPStatus.ACCEPTED


# --- a real SMTP server -------------------------------------------------------------------
def test_reset_through_a_real_smtp_server(alice, smtp_server, settings):
    settings.DEFAULT_FROM_EMAIL = "accounts@acme.example"
    assert ask_reset("alice@acme.example").status_code == HTTPStatus.ACCEPTED
    sent_mail()
    (message,) = smtp_server.messages
    assert (message["From"], message["To"]) == ("accounts@acme.example", "alice@acme.example")
    assert message["X-Envelope-To"] == "alice@acme.example"
    link = link_in(message.get_content())
    assert link.group("host") == "acme.test"
    assert confirm(link.group("token")).status_code == HTTPStatus.OK
    assert login("acme.test", "alice", NEW_PASSWORD).status_code == HTTPStatus.OK


def test_an_unreachable_mail_server_still_answers_202_and_logs_no_link(alice, settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    settings.EMAIL_TIMEOUT = 2
    with caplog.at_level("WARNING", logger="accounts.mail"):
        assert ask_reset("alice@acme.example").status_code == HTTPStatus.ACCEPTED
        sent_mail()
    (record,) = [r for r in caplog.records if r.name == "accounts.mail"]
    assert "password reset" in record.getMessage()
    assert "#token=" not in record.getMessage()


# --- secrets ------------------------------------------------------------------------------
def test_no_reset_token_or_link_reaches_any_log_line_or_error_body(alice):
    seen = len(collector.output)
    ask_reset("alice@acme.example")
    ask_reset("nobody@acme.example")
    token = reset_token_sent_to("alice@acme.example")
    confirm(token, new_password="password")  # a 400 names the password problem only
    assert confirm(token).status_code == HTTPStatus.OK
    confirm(token)  # spent: 401
    produced = [exposure.text for exposure in collector.output[seen:]]
    assert produced, "the flow logs something (the collector is installed)"
    secret = token.partition(".")[2]
    assert not [text for text in produced if secret in text or "#token=" in text]
    assert secret in collector.secrets


# --- configuration ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("backend", "warned"),
    [
        ("django.core.mail.backends.console.EmailBackend", True),
        ("django.core.mail.backends.smtp.EmailBackend", False),
    ],
)
def test_console_email_backend_is_a_deploy_warning(settings, backend, warned):
    settings.EMAIL_BACKEND = backend
    ids = {m.id for m in run_checks(include_deployment_checks=True, tags=["security"])}
    assert ("config.W006" in ids) is warned
