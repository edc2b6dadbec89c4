"""The live log stream and log lines, hardened: streams end with their credentials, the
admin allow-list cannot be satisfied by a sign-up, no forged line, bounded handshake
options, no infrastructure detail in a tenant's stream, every record of a tenant's request
attributed, and platform staff only from ADMIN_ALLOWED_IPS."""

from __future__ import annotations

import json
import logging
import logging.config
import time
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.checks import run_checks
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts import services as account_services
from accounts.tokens import ISSUED_AT_US_CLAIM, TENANT_CLAIM
from config.asgi import application
from logstream import fanout
from logstream.consumers import parse_batch
from logstream.events import INFRASTRUCTURE_LOGGERS, escape_controls, make_event, parse_level
from logstream.formatters import JsonLinesFormatter
from logstream.routing import websocket_urlpatterns
from tenants.context import use_tenant
from tenants.services import tenant_suspend
from tests.factories import PASSWORD, access_token
from tests.helpers import (
    HostAsyncClient,
    client_for,
    close_code_within,
    frames_until,
    log_in,
    marker,
    open_stream,
    ws_bearer_header,
)

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

RECHECK_SECONDS = 0.2  # the tests' recheck interval (default: WS_AUTH_RECHECK_SECONDS)
CLOSE_DEADLINE = 5.0  # seconds, at that interval (the contract's 10 s at the default)
CREDENTIALS_ENDED = 4401
WS_PATHS = [f"/{pattern.pattern}" for pattern in websocket_urlpatterns]
FORGED = "\n[2026-01-01 00:00:00.000] INFO [accounts.services] User root logged in"
CONTROL_CHARACTERS = ["\n", "\r", "\x1b", "\x00", "\x7f", "\x85", "\u2028", "\u2029", "\u202e"]


@pytest.fixture
def quick_recheck(settings):
    settings.WS_AUTH_RECHECK_SECONDS = RECHECK_SECONDS


# --- 1. every long-lived connection is closed when its credentials end --------------------
@dataclass
class Stream:
    """What a stream was opened with, and what ending its credentials needs."""

    host: str
    headers: list = field(default_factory=list)
    tenant: object = None
    user: object = None
    token: str | None = None
    session_client: Client | None = None


def _revoke(stream: Stream) -> None:
    token = AccessToken(stream.token)
    with use_tenant(stream.tenant):
        account_services.token_revoke(
            jti=token["jti"],
            expires_at=timezone.now() + timedelta(minutes=15),
            user_id=stream.user.pk,
        )


def _logout(stream: Stream) -> None:
    with use_tenant(stream.tenant):
        account_services.logout(
            user=stream.user,
            access_token=AccessToken(stream.token),
            refresh_raw=None,
            tenant=stream.tenant,
        )


def _change_password(stream: Stream) -> None:
    with use_tenant(stream.tenant):
        account_services.password_change(
            user=stream.user,
            old_password=PASSWORD,
            new_password="N3w-Secret-pw-42",
            tenant=stream.tenant,
        )


def _change_role(stream: Stream) -> None:
    with use_tenant(stream.tenant):
        account_services.user_update(user=stream.user, role="admin")


def _deactivate(stream: Stream) -> None:
    with use_tenant(stream.tenant):
        account_services.user_deactivate(user=stream.user)


def _let_expire(stream: Stream) -> None:
    # Read without verifying: on a loaded machine the one-second token may have expired
    # already, which is what this step waits for anyway.
    exp = AccessToken(stream.token, verify=False)["exp"]
    time.sleep(max(0.0, exp - time.time()))


def _suspend_tenant(stream: Stream) -> None:
    with use_tenant(None):
        tenant_suspend(stream.tenant)


def _remove_staff_flag(stream: Stream) -> None:
    with use_tenant(None):
        type(stream.user).objects.filter(pk=stream.user.pk).update(is_staff=False)


def _end_session(stream: Stream) -> None:
    with use_tenant(None):
        stream.session_client.logout()


def _short_lived_token(user, tenant, seconds: float) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=seconds))
    token[TENANT_CLAIM] = tenant.slug if tenant is not None else None
    token[ISSUED_AT_US_CLAIM] = time.time_ns() // 1000
    return str(token)


# reason -> (kind of credentials, how they end)
ENDINGS = {
    "token revoked": ("tenant token", _revoke),
    "logout": ("tenant token", _logout),
    "password change": ("tenant token", _change_password),
    "role change": ("tenant token", _change_role),
    "deactivation": ("tenant token", _deactivate),
    "expiry": ("short tenant token", _let_expire),
    "tenant suspension": ("suspendable tenant token", _suspend_tenant),
    "platform token revoked": ("platform token", _revoke),
    "platform password change": ("platform token", _change_password),
    "platform staff deactivated": ("platform token", _deactivate),
    "platform token expiry": ("short platform token", _let_expire),
    "platform token staff flag removed": ("platform token", _remove_staff_flag),
    "staff session logout": ("staff session", _end_session),
    "staff session staff flag removed": ("staff session", _remove_staff_flag),
    "staff session password change": ("staff session", _change_password),
}


@pytest.fixture
def stream_for(acme, make_user, tenant_factory):
    def make(kind: str) -> Stream:
        if kind == "suspendable tenant token":
            tenant = tenant_factory("h3-suspend")
            user = make_user(tenant, "sam")
            token = access_token(user, tenant)
            return Stream("h3-suspend.test", ws_bearer_header(token), tenant, user, token)
        if kind.endswith("tenant token"):
            user = make_user(acme, "tess")
            token = _short_lived_token(user, acme, 1.5) if kind.startswith("short") else None
            token = token or access_token(user, acme)
            return Stream("acme.test", ws_bearer_header(token), acme, user, token)
        staff = make_user(None, "opsy", is_staff=True)
        if kind.endswith("platform token"):
            token = _short_lived_token(staff, None, 1.5) if kind.startswith("short") else None
            token = token or access_token(staff, None)
            return Stream("acme.test", ws_bearer_header(token), None, staff, token)
        client = Client()
        client.force_login(staff)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        return Stream("acme.test", [(b"cookie", cookie.encode())], None, staff, None, client)

    return make


@pytest.mark.parametrize("reason", list(ENDINGS))
async def test_stream_is_closed_with_4401_when_its_credentials_end(
    reason, stream_for, quick_recheck
):
    kind, end = ENDINGS[reason]
    stream = await database_sync_to_async(stream_for)(kind)
    communicator, connected = await open_stream(host=stream.host, headers=stream.headers)
    assert connected
    needle = marker()
    log_in(stream.tenant, needle)
    await frames_until(communicator, needle)  # the stream is live

    await database_sync_to_async(end)(stream)
    started = time.monotonic()
    code = await close_code_within(communicator, CLOSE_DEADLINE)

    assert code == CREDENTIALS_ENDED, f"{reason}: still open after {CLOSE_DEADLINE}s"
    assert time.monotonic() - started < CLOSE_DEADLINE
    await communicator.disconnect()


@pytest.mark.parametrize("path", WS_PATHS)
async def test_every_log_stream_route_rechecks_its_credentials(
    path, acme, make_user, quick_recheck
):
    user = await database_sync_to_async(make_user)(acme, "dora")
    token = await database_sync_to_async(access_token)(user, acme)
    communicator, connected = await open_stream(path=path, headers=ws_bearer_header(token))
    assert connected
    await database_sync_to_async(_deactivate)(Stream("acme.test", [], acme, user, token))
    assert await close_code_within(communicator, CLOSE_DEADLINE) == CREDENTIALS_ENDED
    await communicator.disconnect()


async def test_stream_with_valid_credentials_stays_open_across_rechecks(
    acme, make_user, quick_recheck
):
    user = await database_sync_to_async(make_user)(acme, "vera")
    token = await database_sync_to_async(access_token)(user, acme)
    communicator, connected = await open_stream(headers=ws_bearer_header(token))
    assert connected
    assert await close_code_within(communicator, RECHECK_SECONDS * 6) is None
    needle = marker()
    log_in(acme, needle)
    assert needle in (await frames_until(communicator, needle))[-1]
    await communicator.disconnect()


def test_default_recheck_interval_meets_the_ten_second_contract():
    assert 0 < settings.WS_AUTH_RECHECK_SECONDS <= 5


# --- isolation, on every route ------------------------------------------------------------
@pytest.mark.parametrize("path", WS_PATHS)
async def test_other_tenants_token_cannot_read_this_tenants_stream(path, acme, globex, make_user):
    gina = await database_sync_to_async(make_user)(globex, "gina", role="admin")
    token = await database_sync_to_async(access_token)(gina, globex)
    for credentials in (
        {"headers": ws_bearer_header(token)},
        {"query": f"token={token}"},
        {"headers": [(b"cookie", f"access_token={token}".encode())]},
    ):
        _communicator, connected = await open_stream(path=path, **credentials)
        assert not connected
    with override_settings(WS_LOGS_ADMIN_USER=["globex:gina", "acme:gina"]):
        _communicator, connected = await open_stream(path=path, headers=ws_bearer_header(token))
        assert not connected


# --- 2. WS_LOGS_ADMIN_USER cannot be satisfied by a sign-up -------------------------------
def _sign_up_and_log_in(host: str, username: str, email: str) -> str:
    client = client_for(host)
    response = client.post(
        "/api/auth/signup",
        {"username": username, "email": email, "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    response = client.post(
        "/api/auth/login", {"username_or_email": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()["access"]


@pytest.fixture
def strangers(acme, globex) -> dict[str, str]:
    """Tokens of strangers who signed up (on this thread: the HTTP requests note tenant
    connections per thread) on each tenant with a listed e-mail, and as `watcher`."""
    return {
        "acme.test": _sign_up_and_log_in("acme.test", "stranger-a", "boss@corp.test"),
        "globex.test": _sign_up_and_log_in("globex.test", "stranger-g", "boss@corp.test"),
        "watcher": _sign_up_and_log_in("acme.test", "watcher", "w@elsewhere.test"),
    }


async def test_listed_email_does_not_admit_a_stranger_who_signs_up_with_it(strangers):
    with override_settings(WS_LOGS_ADMIN_USER=["boss@corp.test"]):
        for host in ("acme.test", "globex.test"):
            _communicator, connected = await open_stream(
                host=host, headers=ws_bearer_header(strangers[host])
            )
            assert not connected, host


async def test_listed_username_does_not_admit_a_tenant_user_who_signs_up_with_it(
    strangers, make_user
):
    staff = await database_sync_to_async(make_user)(None, "watcher", is_staff=True)
    staff_token = await database_sync_to_async(access_token)(staff, None)
    with override_settings(WS_LOGS_ADMIN_USER=["watcher"]):
        communicator, connected = await open_stream(headers=ws_bearer_header(strangers["watcher"]))
        assert not connected, "a bare entry names platform staff only"
        communicator, connected = await open_stream(headers=ws_bearer_header(staff_token))
        assert connected, "the platform staff member of that username"
        await communicator.disconnect()


@pytest.fixture
def unclaimed_tenant_stranger(tenant_factory) -> str:
    """The token of a stranger who was the first to sign up on a tenant provisioned
    without an admin, and so became its admin."""
    tenant_factory("unclaimed")
    return _sign_up_and_log_in("unclaimed.test", "boss", "boss@unclaimed.test")


async def test_first_signup_admin_of_an_unclaimed_tenant_does_not_satisfy_a_listed_entry(
    unclaimed_tenant_stranger,
):
    with override_settings(WS_LOGS_ADMIN_USER=["unclaimed:boss"]):
        _communicator, connected = await open_stream(
            host="unclaimed.test", headers=ws_bearer_header(unclaimed_tenant_stranger)
        )
        assert not connected, "an account made by open signup, admin or not"


async def test_platform_staff_unverified_email_is_not_matched(make_user):
    staff = await database_sync_to_async(make_user)(
        None, "watcher", email="watcher@platform.test", is_staff=True
    )
    token = await database_sync_to_async(access_token)(staff, None)
    with override_settings(WS_LOGS_ADMIN_USER=["watcher@platform.test"]):
        _communicator, connected = await open_stream(headers=ws_bearer_header(token))
        assert not connected


async def test_tenant_qualified_entry_admits_only_that_tenants_admin(acme, globex, make_user):
    admin = await database_sync_to_async(make_user)(acme, "alice", role="admin")
    member = await database_sync_to_async(make_user)(acme, "bob")
    other = await database_sync_to_async(make_user)(globex, "alice", role="admin")
    tokens = {
        name: await database_sync_to_async(access_token)(user, tenant)
        for name, user, tenant in (("admin", admin, acme), ("member", member, acme))
    }
    other_token = await database_sync_to_async(access_token)(other, globex)
    with override_settings(WS_LOGS_ADMIN_USER=["ACME:alice", "acme:bob"]):
        communicator, connected = await open_stream(headers=ws_bearer_header(tokens["admin"]))
        assert connected
        await communicator.disconnect()
        communicator, connected = await open_stream(headers=ws_bearer_header(tokens["member"]))
        assert not connected, "a listed member is not a tenant admin"
        communicator, connected = await open_stream(
            host="globex.test", headers=ws_bearer_header(other_token)
        )
        assert not connected, "the same username on another tenant"


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["ops", "acme:alice"], set()),
        (["acme:"], {"logstream.W001"}),
        ([":alice"], {"logstream.W001"}),
        (["a:b:c"], {"logstream.W001"}),
        (["ops@example.com", "acme:ops@example.com"], set()),
    ],
)
def test_system_check_warns_about_allow_list_entries_that_cannot_match(settings, entries, expected):
    settings.WS_LOGS_ADMIN_USER = entries
    ids = {message.id for message in run_checks() if message.id.startswith("logstream.")}
    assert ids == expected


# --- 3. no forged log line ----------------------------------------------------------------
def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("logstream.access", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize("name", list(settings.LOGGING["formatters"]))
@pytest.mark.parametrize("char", CONTROL_CHARACTERS)
def test_every_configured_formatter_writes_a_client_value_on_one_line(name, char):
    configurator = logging.config.DictConfigurator(settings.LOGGING)
    formatter = configurator.configure_formatter(dict(settings.LOGGING["formatters"][name]))
    line = formatter.format(_record(f"GET /api/x{char}forged 404"))
    message = json.loads(line)["message"] if line.startswith("{") else line
    assert char not in line
    assert char not in message
    assert f"/api/x{escape_controls(char)}forged" in message


def test_every_console_handler_of_the_project_writes_a_forged_path_on_one_line():
    names = ["logstream.access", "django.request", "accounts", "tenants", "addressbook"]
    handlers = {h for name in names for h in logging.getLogger(name).handlers}
    streams = [h for h in handlers if type(h) is logging.StreamHandler]  # not pytest's
    assert streams
    for handler in streams:
        line = handler.format(_record(f"GET /api/address-book{FORGED} 401"))
        assert "\n" not in line
        assert "\\n[2026-01-01" in line


def test_escape_controls_leaves_printable_text_and_backslashes_alone():
    text = "GET /api/x?q=caf\u00e9\\n%0A 200"
    assert escape_controls(text) is text
    assert escape_controls("a\nb\rc\td\x1be\u2028") == "a\\nb\\rc\\td\\x1be\\u2028"


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_forged_path_reaches_the_tenants_stream_as_one_escaped_line(fmt, acme, make_user):
    user = await database_sync_to_async(make_user)(acme, "ivy")
    token = await database_sync_to_async(access_token)(user, acme)
    communicator, connected = await open_stream(
        query=f"format={fmt}", headers=ws_bearer_header(token)
    )
    assert connected
    needle = marker()
    await HostAsyncClient("acme.test").get(
        f"/api/address-book/{needle}%0A%0D%1B%7F[2026-01-01]?search=x"
    )
    frames = await frames_until(communicator, needle)
    (frame,) = [f for f in frames if needle in f and "logstream.access" in f]
    message = json.loads(frame)["message"] if fmt == "json" else frame
    assert not any(char in message for char in CONTROL_CHARACTERS)
    assert f"GET /api/address-book/{needle}\\n\\r\\x1b\\x7f[2026-01-01]?search=x " in message
    await communicator.disconnect()


# --- 4. bounded handshake options ---------------------------------------------------------
HUGE = "9" * 5000


@pytest.mark.parametrize(
    "query",
    [f"level={HUGE}", f"batch={HUGE}", f"format={'j' * 5000}", f"level=x{'A' * 5000}"],
)
async def test_huge_handshake_option_is_ignored_never_a_500(query, acme, make_user):
    user = await database_sync_to_async(make_user)(acme, "otto")
    token = await database_sync_to_async(access_token)(user, acme)
    communicator, connected = await open_stream(query=query, headers=ws_bearer_header(token))
    assert connected
    needle = marker()
    log_in(acme, needle)  # an honoured 5,000-digit level would hold it back
    frame = (await frames_until(communicator, needle))[-1]
    assert frame.startswith("["), "text frames: the format was ignored"
    await communicator.disconnect()


async def test_huge_token_is_refused_with_403_never_a_500(acme):
    _communicator, connected = await open_stream(query=f"token={'e' * 100_000}")
    assert not connected
    _communicator, connected = await open_stream(query="x=" + "y" * 100_000)
    assert not connected


def test_level_and_batch_parsers_bound_their_input():
    assert parse_level(HUGE) == logging.NOTSET
    assert parse_level("nonsense") == logging.NOTSET
    assert parse_level("warning") == logging.WARNING
    assert parse_batch(HUGE) == 0.0
    assert parse_batch("50") == 0.05


# --- 5. no infrastructure detail in a tenant's stream -------------------------------------
async def _tenant_and_staff_streams(acme, make_user, query=""):
    user = await database_sync_to_async(make_user)(acme, "tina")
    staff = await database_sync_to_async(make_user)(None, "stan", is_staff=True)
    tenant_token = await database_sync_to_async(access_token)(user, acme)
    staff_token = await database_sync_to_async(access_token)(staff, None)
    tenant_stream, ok = await open_stream(query=query, headers=ws_bearer_header(tenant_token))
    assert ok
    staff_stream, ok = await open_stream(query=query, headers=ws_bearer_header(staff_token))
    assert ok
    return tenant_stream, staff_stream


@pytest.mark.parametrize("name", ["tenants.db", "config.cache", "tenants.services"])
async def test_infrastructure_records_reach_staff_but_never_the_tenants_stream(
    name, acme, make_user
):
    tenant_stream, staff_stream = await _tenant_and_staff_streams(acme, make_user)
    secret = marker()
    log_in(
        acme,
        f'Tenant database of acme is unavailable: connection to "db.internal" user "{secret}"',
        name=name,
        level=logging.ERROR,
    )
    needle = marker()
    log_in(acme, needle)
    assert not any(secret in frame for frame in await frames_until(tenant_stream, needle))
    assert any(secret in frame for frame in await frames_until(staff_stream, needle))
    await tenant_stream.disconnect()
    await staff_stream.disconnect()


async def test_traceback_reaches_staff_but_never_the_tenants_stream(acme, make_user):
    tenant_stream, staff_stream = await _tenant_and_staff_streams(acme, make_user)
    needle, secret = marker(), marker()
    try:
        raise ConnectionError(f"password authentication failed for user {secret}")
    except ConnectionError:
        log_in(acme, f"Unhandled error {needle}", level=logging.ERROR, exc_info=True)
    (tenant_frame,) = [f for f in await frames_until(tenant_stream, needle) if needle in f]
    assert secret not in tenant_frame
    assert "Traceback" not in tenant_frame
    (staff_frame,) = [f for f in await frames_until(staff_stream, needle) if needle in f]
    assert "Traceback" in staff_frame
    assert secret in staff_frame
    await tenant_stream.disconnect()
    await staff_stream.disconnect()


@pytest.mark.parametrize("name", INFRASTRUCTURE_LOGGERS)
def test_fanout_gives_a_tenant_client_no_record_of_an_infrastructure_logger(name):
    @dataclass
    class Client:
        tenant_slug: str | None
        min_level: int = 0
        format: str = "text"

    event = make_event(0.0, "ERROR", 40, f"{name}.child", "db.internal down", "acme", None)
    assert fanout._select([event], Client("acme"), {}) == []
    assert len(fanout._select([event], Client(None), {})) == 1


# --- 6. every record of a tenant's request carries the tenant -----------------------------
async def test_django_request_record_of_a_tenants_request_reaches_it_attributed(acme, make_user):
    streams = await _tenant_and_staff_streams(acme, make_user, query="format=json")
    response = await HostAsyncClient("acme.test").get("/api/address-book")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    for stream in streams:
        frames = await frames_until(stream, "Unauthorized: /api/address-book")
        record = json.loads(frames[-1])
        assert (record["target"], record["tenant"]) == ("django.request", "acme")
        await stream.disconnect()


def test_console_json_line_of_a_request_record_names_its_tenant(acme):
    class Request:
        tenant = acme

    line = JsonLinesFormatter().format(
        _record("Unauthorized: /api/address-book", request=Request())
    )
    assert json.loads(line)["tenant"] == "acme"


# --- 7. platform staff only from ADMIN_ALLOWED_IPS ----------------------------------------
@pytest.fixture
def staff_credentials(make_user):
    staff = make_user(None, "remote", is_staff=True)
    client = Client()
    client.force_login(staff)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {
        "platform token": ws_bearer_header(access_token(staff, None)),
        "staff session": [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())],
    }


@pytest.mark.parametrize("credential", ["platform token", "staff session"])
async def test_staff_stream_from_outside_admin_allowed_ips_is_refused(
    credential, staff_credentials, settings
):
    settings.ADMIN_ALLOWED_IPS = ["10.0.0.0/8"]
    headers = staff_credentials[credential]
    communicator, connected = await open_stream(headers=headers, client="203.0.113.9")
    assert not connected
    communicator, connected = await open_stream(headers=headers, client="10.1.2.3")
    assert connected
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("forwarded_for", "allowed"),
    [("10.1.2.3, 203.0.113.77", False), ("203.0.113.77, 10.1.2.3", True)],
)
async def test_staff_stream_allow_list_reads_the_client_address_behind_trusted_proxies(
    forwarded_for, allowed, staff_credentials, settings
):
    settings.ADMIN_ALLOWED_IPS = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_IPS = ["192.0.2.1/32"]
    headers = [*staff_credentials["platform token"], (b"x-forwarded-for", forwarded_for.encode())]
    communicator, connected = await open_stream(headers=headers, client="192.0.2.1")
    assert connected is allowed
    if connected:
        await communicator.disconnect()


async def test_tenant_stream_is_not_subject_to_admin_allowed_ips(acme, make_user, settings):
    settings.ADMIN_ALLOWED_IPS = ["10.0.0.0/8"]
    user = await database_sync_to_async(make_user)(acme, "far")
    token = await database_sync_to_async(access_token)(user, acme)
    communicator, connected = await open_stream(
        headers=ws_bearer_header(token), client="203.0.113.9"
    )
    assert connected
    await communicator.disconnect()


@pytest.mark.parametrize("path", ["/other", "/logs/", "/api/ws/logs/x", "/api/address-book", "/"])
async def test_a_websocket_path_without_a_route_is_refused_without_an_error(path, caplog):

    communicator = WebsocketCommunicator(application, path, headers=[(b"host", b"acme.test")])
    with caplog.at_level(logging.ERROR):
        connected, _ = await communicator.connect(timeout=5)
    assert not connected
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
