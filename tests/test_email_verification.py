"""E-mail verification: POST /api/auth/verify-email (Bearer) e-mails a link; POST
/api/auth/verify-email/confirm {token} sets `email_verified`, which /api/auth/me shows.
The token is signed for the user, the address and the tenant, expires and works once; a
new address clears the flag. `WS_LOGS_ADMIN_USER` matches an address only once verified."""

from __future__ import annotations

import time
from http import HTTPStatus
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import override_settings

from accounts.links import email_verification_tokens
from accounts.models import User
from logstream.auth import may_read_logs
from tenants.context import use_tenant
from tests.factories import access_token, bearer_for
from tests.helpers import (
    client_for,
    close_code_within,
    link_in,
    me,
    open_stream,
    sent_mail,
    ws_bearer_header,
)
from tests.leak_collector import collector

pytestmark = pytest.mark.django_db(databases="__all__")

VERIFY = "/api/auth/verify-email"
CONFIRM = "/api/auth/verify-email/confirm"
INVALID_TOKEN = {"status": 401, "error": "Unauthorized", "message": "Invalid token"}


@pytest.fixture
def alice(acme, make_user):
    return make_user(acme, "alice", email="alice@acme.example", role=User.Role.ADMIN)


def ask_verification(user, tenant, host: str = "acme.test"):
    return client_for(host).post(VERIFY, **bearer_for(user, tenant))


def confirm(token: str, host: str = "acme.test"):
    return client_for(host).post(CONFIRM, {"token": token}, format="json")


def verification_token_sent_to(address: str) -> str:
    messages = [m for m in sent_mail() if m.to == [address]]
    assert len(messages) == 1, [m.to for m in sent_mail()]
    return link_in(messages[0].body).group("token")


def verified(tenant, user) -> bool:
    with use_tenant(tenant):
        return User.objects.get(pk=user.pk).email_verified


def verify(tenant, user) -> None:
    """Through the API: ask for the link, follow it."""
    host = f"{tenant.slug}.test"
    assert ask_verification(user, tenant, host=host).status_code == HTTPStatus.ACCEPTED
    assert confirm(verification_token_sent_to(user.email), host=host).status_code == 200


# --- the flow -----------------------------------------------------------------------------
def test_me_shows_the_flag_which_the_link_sets(acme, alice):
    access = access_token(alice, acme)
    assert me("acme.test", access).json()["email_verified"] is False
    response = ask_verification(alice, acme)
    assert response.status_code == HTTPStatus.ACCEPTED
    assert set(response.json()) == {"message"}
    (message,) = sent_mail()
    assert message.to == ["alice@acme.example"]
    link = link_in(message.body)
    assert link.group(0).startswith("http://acme.test/verify-email#token=")
    confirmed = confirm(link.group("token"))
    assert (confirmed.status_code, confirmed.json()) == (HTTPStatus.OK, {"email_verified": True})
    assert me("acme.test", access).json()["email_verified"] is True


def test_asking_needs_a_token_of_this_tenant(acme, globex, alice, make_user, staff):
    anonymous = client_for("acme.test").post(VERIFY)
    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED
    gus = make_user(globex, "gus", email="gus@globex.example")
    foreign = client_for("acme.test").post(VERIFY, **bearer_for(gus, globex))
    assert foreign.status_code == HTTPStatus.FORBIDDEN
    platform = client_for("acme.test").post(VERIFY, **bearer_for(staff, None))
    assert platform.status_code == HTTPStatus.FORBIDDEN
    assert sent_mail() == []


def test_a_verified_address_gets_no_new_link(acme, alice):
    verify(acme, alice)
    response = ask_verification(alice, acme)
    assert response.status_code == HTTPStatus.ACCEPTED
    assert len(sent_mail()) == 1


def test_token_is_single_use(acme, alice):
    ask_verification(alice, acme)
    token = verification_token_sent_to("alice@acme.example")
    assert confirm(token).status_code == HTTPStatus.OK
    again = confirm(token)
    assert (again.status_code, again.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)


def test_token_expires_after_email_verification_timeout(acme, alice):
    made_at = time.time() - settings.EMAIL_VERIFICATION_TIMEOUT - 5
    with mock.patch("django.core.signing.time.time", return_value=made_at), use_tenant(acme):
        token = email_verification_tokens.make_token(alice)
    response = confirm(token)
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    assert not verified(acme, alice)


def test_token_of_one_tenant_is_refused_on_another(acme, globex, make_user):
    a = make_user(acme, "alice", email="alice@example.test", id=7001)
    g = make_user(globex, "alice", email="alice@example.test", id=7001)
    ask_verification(a, acme)
    token = verification_token_sent_to("alice@example.test")
    response = confirm(token, host="globex.test")
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)
    assert not verified(globex, g)
    assert confirm(token).status_code == HTTPStatus.OK
    assert verified(acme, a) and not verified(globex, g)


@pytest.mark.parametrize(
    "token",
    ["garbage", "a:b:c", "eyJ1IjoxfQ:1abc:zzz", "🙂", "x" * 512],
)
def test_malformed_token_is_invalid_token(acme, alice, token):
    response = confirm(token)
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID_TOKEN)


def test_over_long_token_is_a_400(acme):
    response = confirm("x" * 100_000)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "token" in response.json()["details"]


# --- a new address clears the flag --------------------------------------------------------
@pytest.mark.parametrize("update_fields", [None, ["email"]])
def test_changing_the_address_clears_the_flag(acme, alice, update_fields):
    verify(acme, alice)
    with use_tenant(acme):
        user = User.objects.get(pk=alice.pk)
        user.email = "alice@elsewhere.example"
        user.save(update_fields=update_fields)
    assert not verified(acme, alice)


def test_saving_other_fields_keeps_the_flag(acme, alice):
    verify(acme, alice)
    with use_tenant(acme):
        user = User.objects.get(pk=alice.pk)
        user.first_name = "Alice"
        user.save()
        user.role = User.Role.MEMBER
        user.save(update_fields=["role"])
    assert verified(acme, alice)


def test_link_for_a_former_address_is_refused(acme, alice):
    ask_verification(alice, acme)
    token = verification_token_sent_to("alice@acme.example")
    with use_tenant(acme):
        user = User.objects.get(pk=alice.pk)
        user.email = "alice@elsewhere.example"
        user.save()
    assert confirm(token).status_code == HTTPStatus.UNAUTHORIZED
    assert not verified(acme, alice)


# --- throttling ---------------------------------------------------------------------------
def test_requests_are_throttled_per_address(acme, alice, settings):
    settings.EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR = 2
    answers = [ask_verification(alice, acme) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert len(sent_mail()) == 2


# --- a real SMTP server -------------------------------------------------------------------
def test_verification_through_a_real_smtp_server(acme, alice, smtp_server):
    assert ask_verification(alice, acme).status_code == HTTPStatus.ACCEPTED
    sent_mail()
    (message,) = smtp_server.messages
    assert message["To"] == "alice@acme.example"
    assert "Acme Corp" in message["Subject"]
    link = link_in(message.get_content())
    assert confirm(link.group("token")).status_code == HTTPStatus.OK
    assert verified(acme, alice)


# --- secrets ------------------------------------------------------------------------------
def test_no_verification_token_reaches_any_log_line_or_error_body(acme, alice):
    seen = len(collector.output)
    ask_verification(alice, acme)
    token = verification_token_sent_to("alice@acme.example")
    assert confirm(token).status_code == HTTPStatus.OK
    assert confirm(token).status_code == HTTPStatus.UNAUTHORIZED
    produced = [exposure.text for exposure in collector.output[seen:]]
    assert produced
    assert not [text for text in produced if token in text or "#token=" in text]
    assert token in collector.secrets


# --- the log stream's allow-list ----------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "tenant_admin_verified", "admitted"),
    [
        ("acme:alice@acme.example", False, False),
        ("acme:alice@acme.example", True, True),
        ("acme:ALICE@acme.example", True, True),
        ("globex:alice@acme.example", True, False),
        ("alice@acme.example", True, False),  # a bare entry names platform staff
    ],
)
def test_allow_list_matches_a_tenant_admins_address_only_once_verified(
    acme, alice, entry, tenant_admin_verified, admitted
):
    alice.email_verified = tenant_admin_verified
    with override_settings(WS_LOGS_ADMIN_USER=[entry]):
        assert may_read_logs(alice, acme) is admitted


def test_allow_list_never_admits_a_verified_member_by_address(acme, make_user):
    member = make_user(acme, "mo", email="mo@acme.example")
    member.email_verified = True
    with override_settings(WS_LOGS_ADMIN_USER=["acme:mo@acme.example"]):
        assert may_read_logs(member, acme) is False


def test_allow_list_admits_a_signed_up_admin_only_by_verified_address(acme, alice):
    """Open signup never satisfies a username entry; proving the address does satisfy an
    address entry, since only the mailbox's owner can."""
    alice.signed_up = True
    alice.email_verified = True
    with override_settings(WS_LOGS_ADMIN_USER=["acme:alice"]):
        assert may_read_logs(alice, acme) is False
    with override_settings(WS_LOGS_ADMIN_USER=["acme:alice@acme.example"]):
        assert may_read_logs(alice, acme) is True


def test_allow_list_matches_platform_staff_by_username_or_verified_address(make_user):
    staff = make_user(None, "watcher", email="watcher@platform.example", is_staff=True)
    with override_settings(WS_LOGS_ADMIN_USER=["watcher@platform.example"]):
        assert may_read_logs(staff, None) is False
        staff.email_verified = True
        assert may_read_logs(staff, None) is True
    with override_settings(WS_LOGS_ADMIN_USER=["watcher"]):
        staff.email_verified = False
        assert may_read_logs(staff, None) is True


@pytest.mark.django_db(databases="__all__", transaction=True)
async def test_log_stream_admits_a_listed_address_once_verified_and_drops_it_when_it_changes(
    acme, alice, settings
):
    settings.WS_AUTH_RECHECK_SECONDS = 0.2
    token = await database_sync_to_async(access_token)(alice, acme)
    # Both addresses are listed: the stream ends because the new one is not verified.
    listed = ["acme:alice@acme.example", "acme:alice@elsewhere.example"]
    with override_settings(WS_LOGS_ADMIN_USER=listed):
        communicator, connected = await open_stream(headers=ws_bearer_header(token))
        assert not connected, "listed, but not verified"
        await database_sync_to_async(verify)(acme, alice)
        communicator, connected = await open_stream(headers=ws_bearer_header(token))
        assert connected, "listed and verified"

        def change_address():
            with use_tenant(acme):
                user = User.objects.get(pk=alice.pk)
                user.email = "alice@elsewhere.example"
                user.save(update_fields=["email"])

        await database_sync_to_async(change_address)()
        assert await close_code_within(communicator, 5) == 4401
