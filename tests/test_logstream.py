"""The live log stream over WebSocket: authentication, tenant scoping, frames, slow clients."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient, Client, override_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tokens import issue_tokens
from config.asgi import application
from logstream.consumers import connected_clients
from logstream.events import format_event, parse_level
from logstream.handlers import ChannelLayerHandler, LogPublisher
from logstream.redaction import REDACTED, RedactingFilter, redact, redact_query
from tenants.context import use_tenant

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

FRAME_TIMEOUT = 5
TEXT_FRAME = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] [A-Z]+ \[[\w.]+\] ")


# --- fixtures and helpers -----------------------------------------------------------------
def token_for(user, tenant) -> str:
    with use_tenant(tenant):
        return issue_tokens(user, tenant)["access"]


@pytest.fixture
def acme_user(acme, make_user):
    return make_user(acme, "alice", email="alice@acme.test")


@pytest.fixture
def acme_token(acme, acme_user) -> str:
    return token_for(acme_user, acme)


@pytest.fixture
def globex_token(globex, make_user) -> str:
    return token_for(make_user(globex, "gina"), globex)


@pytest.fixture
def staff(make_user, acme):
    return make_user(None, "ops", email="ops@platform.test", is_staff=True)


@pytest.fixture
def platform_token(staff) -> str:
    return token_for(staff, None)


@pytest.fixture
def staff_session(staff) -> str:
    client = Client()
    client.force_login(staff)
    return client.cookies["sessionid"].value


def marker() -> str:
    return f"m-{uuid.uuid4().hex}"


def log_in(tenant, message: str, *, level=logging.INFO, name="addressbook.tests", args=()):
    with use_tenant(tenant):
        logging.getLogger(name).log(level, message, *args)


async def open_stream(
    *, host="acme.test", path="/api/ws/logs", query="", headers=(), app=application
) -> tuple[WebsocketCommunicator, bool]:
    all_headers = [(b"host", host.encode()), *headers]
    target = f"{path}?{query}" if query else path
    communicator = WebsocketCommunicator(app, target, headers=all_headers)
    connected, _ = await communicator.connect(timeout=FRAME_TIMEOUT)
    return communicator, connected


async def frames_until(communicator, needle: str, *, timeout=FRAME_TIMEOUT) -> list[str]:
    """Every frame received up to and including the first one containing `needle`."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await communicator.receive_from(timeout=timeout)
            frames.append(frame)
            if needle in frame:
                return frames


async def frames_for(communicator, seconds: float) -> list[str]:
    """Everything received within `seconds`."""
    frames = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                frames.append(await communicator.receive_from(timeout=seconds))
    except TimeoutError:
        pass
    return frames


# --- authentication -----------------------------------------------------------------------
async def test_bearer_header_is_accepted(acme_token):
    before = connected_clients()
    communicator, connected = await open_stream(
        headers=[(b"authorization", f"Bearer {acme_token}".encode())]
    )
    assert connected
    assert connected_clients() == before + 1
    await communicator.disconnect()
    assert connected_clients() == before


async def test_token_query_parameter_is_accepted_on_the_logs_alias(acme_token):
    communicator, connected = await open_stream(path="/logs", query=f"token={acme_token}")
    assert connected
    await communicator.disconnect()


async def test_access_token_cookie_is_accepted(acme_token):
    communicator, connected = await open_stream(
        headers=[(b"cookie", f"theme=dark; access_token={acme_token}".encode())]
    )
    assert connected
    await communicator.disconnect()


async def test_staff_admin_session_is_accepted_on_any_host(staff_session):
    communicator, connected = await open_stream(
        host="unknown.example", headers=[(b"cookie", f"sessionid={staff_session}".encode())]
    )
    assert connected
    await communicator.disconnect()


async def test_platform_token_is_accepted_on_a_tenant_host(platform_token):
    communicator, connected = await open_stream(query=f"token={platform_token}")
    assert connected
    await communicator.disconnect()


@pytest.fixture
def member_session(make_user, acme) -> str:
    client = Client()
    client.force_login(make_user(None, "clerk"))
    return client.cookies["sessionid"].value


async def test_session_of_a_non_staff_user_is_rejected(member_session):
    _communicator, connected = await open_stream(
        headers=[(b"cookie", f"sessionid={member_session}".encode())]
    )
    assert not connected


async def test_missing_credentials_are_rejected(acme):
    _communicator, connected = await open_stream()
    assert not connected


async def test_invalid_token_is_rejected(acme_token):
    _communicator, connected = await open_stream(query=f"token={acme_token[:-4]}abcd")
    assert not connected


async def test_expired_token_is_rejected(acme, acme_user):
    token = AccessToken.for_user(acme_user)
    token["tenant"] = acme.slug
    token.set_exp(lifetime=timedelta(seconds=-30))
    _communicator, connected = await open_stream(
        headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    assert not connected


async def test_token_from_other_tenant_is_rejected(acme, globex_token):
    _communicator, connected = await open_stream(
        host="acme.test", headers=[(b"authorization", f"Bearer {globex_token}".encode())]
    )
    assert not connected


@pytest.fixture
def non_staff_platform_token(make_user, acme) -> str:
    return token_for(make_user(None, "plain"), None)


async def test_platform_token_of_a_non_staff_user_is_rejected(non_staff_platform_token):
    _communicator, connected = await open_stream(query=f"token={non_staff_platform_token}")
    assert not connected


@override_settings(PRODUCTION=True, CORS_ALLOWED_ORIGINS=["https://app.example.com"])
async def test_bad_origin_is_rejected_in_production(acme_token):
    auth = (b"authorization", f"Bearer {acme_token}".encode())
    communicator, connected = await open_stream(headers=[auth, (b"origin", b"https://evil.test")])
    assert not connected
    communicator, connected = await open_stream(
        headers=[auth, (b"origin", b"https://app.example.com")]
    )
    assert connected
    await communicator.disconnect()
    communicator, connected = await open_stream(headers=[auth])
    assert connected, "a handshake without Origin (a non-browser client) is accepted"
    await communicator.disconnect()


async def test_any_origin_is_accepted_in_development(acme_token):
    communicator, connected = await open_stream(
        headers=[
            (b"authorization", f"Bearer {acme_token}".encode()),
            (b"origin", b"http://localhost:3000"),
        ]
    )
    assert connected
    await communicator.disconnect()


async def test_admin_user_allow_list_restricts_who_may_connect(acme_token, globex_token):
    with override_settings(WS_LOGS_ADMIN_USER=["someone@else.test", "ALICE@acme.test"]):
        communicator, connected = await open_stream(query=f"token={acme_token}")
        assert connected, "listed by e-mail, compared case-insensitively"
        await communicator.disconnect()
        communicator, connected = await open_stream(
            host="globex.test", query=f"token={globex_token}"
        )
        assert not connected
    with override_settings(WS_LOGS_ADMIN_USER=["gina"]):
        communicator, connected = await open_stream(
            host="globex.test", query=f"token={globex_token}"
        )
        assert connected, "listed by username"
        await communicator.disconnect()


# --- tenant scoping -----------------------------------------------------------------------
async def test_record_of_tenant_a_reaches_a_and_never_b(acme, globex, acme_token, globex_token):
    client_a, _ = await open_stream(query=f"token={acme_token}")
    client_b, _ = await open_stream(host="globex.test", query=f"token={globex_token}")
    secret_of_acme = marker()
    log_in(acme, f"contact created {secret_of_acme}")
    frames = await frames_until(client_a, secret_of_acme)
    assert secret_of_acme in frames[-1]
    assert not any(secret_of_acme in frame for frame in await frames_for(client_b, 1.0))
    await client_a.disconnect()
    await client_b.disconnect()


async def test_platform_staff_receive_every_tenant_and_untenanted_records(
    acme, globex, platform_token
):
    staff_client, _ = await open_stream(host="globex.test", query=f"token={platform_token}")
    of_acme, of_nobody = marker(), marker()
    log_in(acme, of_acme)
    log_in(None, of_nobody, name="tenants.tests")
    frames = await frames_until(staff_client, of_nobody)
    frames += [] if any(of_acme in f for f in frames) else await frames_until(staff_client, of_acme)
    assert any(of_acme in f for f in frames)
    assert any(of_nobody in f for f in frames)
    await staff_client.disconnect()


# --- frames and filters -------------------------------------------------------------------
async def test_text_frame_format(acme, acme_token):
    communicator, _ = await open_stream(query=f"token={acme_token}&format=text")
    needle = marker()
    log_in(acme, f"User admin logged in {needle}", name="accounts.services")
    frame = (await frames_until(communicator, needle))[-1]
    assert TEXT_FRAME.match(frame)
    assert frame.endswith(f"] INFO [accounts.services] User admin logged in {needle}")
    await communicator.disconnect()


async def test_json_frame_format(acme, acme_token):
    communicator, _ = await open_stream(query=f"token={acme_token}&format=json")
    needle = marker()
    log_in(acme, f"hello {needle}", level=logging.WARNING, name="accounts.services")
    event = json.loads((await frames_until(communicator, needle))[-1])
    assert set(event) == {"timestamp", "level", "target", "message", "tenant", "request_id"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", event["timestamp"])
    assert event["level"] == "WARNING"
    assert event["target"] == "accounts.services"
    assert event["message"] == f"hello {needle}"
    assert event["tenant"] == "acme"
    await communicator.disconnect()


@override_settings(WS_LOG_FORMAT="json")
async def test_ws_log_format_setting_is_the_default_format(acme, acme_token):
    communicator, _ = await open_stream(query=f"token={acme_token}")
    needle = marker()
    log_in(acme, needle)
    assert json.loads((await frames_until(communicator, needle))[-1])["message"] == needle
    await communicator.disconnect()


async def test_level_filter_sends_only_that_level_and_above(acme, acme_token):
    communicator, _ = await open_stream(query=f"token={acme_token}&level=warning")
    info, warning, error = marker(), marker(), marker()
    log_in(acme, info)
    log_in(acme, warning, level=logging.WARNING)
    log_in(acme, error, level=logging.ERROR)
    frames = await frames_until(communicator, error)
    assert any(warning in f for f in frames)
    assert not any(info in f for f in frames)
    await communicator.disconnect()


async def test_no_credential_reaches_a_frame(acme, acme_token, platform_token):
    communicator, _ = await open_stream(query=f"token={platform_token}")
    needle = marker()
    log_in(acme, "auth header was Authorization: Bearer %s", args=(acme_token,))
    log_in(acme, "payload %s", args=({"username": "a", "password": "Sup3r-Secret-pw"},))
    log_in(acme, "raw token %s and /x?token=%s", args=(acme_token, acme_token))
    # Through the ASGI handler on this loop: no tenant connection is left in a stray thread.
    await AsyncClient(headers={"host": "acme.test"}).get(
        f"/api/auth/me?token={acme_token}&q={needle}",
        headers={"authorization": f"Bearer {acme_token}"},
    )
    frames = await frames_until(communicator, needle)
    frames += await frames_for(communicator, 0.5)
    text = "\n".join(frames)
    assert acme_token not in text
    assert platform_token not in text
    assert "Sup3r-Secret-pw" not in text
    assert REDACTED in text
    await communicator.disconnect()


# --- slow clients -------------------------------------------------------------------------
class GatedSend:
    """An ASGI wrapper whose outgoing frames wait for `gate`: a client that reads nothing."""

    def __init__(self, app):
        self.app = app
        self.gate = asyncio.Event()

    async def __call__(self, scope, receive, send):
        async def gated_send(message):
            if message["type"] == "websocket.send":
                await self.gate.wait()
            await send(message)

        return await self.app(scope, receive, gated_send)


@override_settings(WS_LOG_BUFFER_SIZE=5)
async def test_slow_client_gets_a_drop_warning_while_a_fast_one_misses_nothing(acme, acme_token):
    stuck = GatedSend(application)
    slow, _ = await open_stream(query=f"token={acme_token}", app=stuck)
    fast, _ = await open_stream(query=f"token={acme_token}")
    run = marker()
    lines = [f"{run} line {n:03d}" for n in range(60)]
    for line in lines:
        log_in(acme, line)
    fast_frames = await frames_until(fast, lines[-1])
    assert [f.split("] ", 2)[-1] for f in fast_frames if run in f] == lines

    stuck.gate.set()
    slow_frames = await frames_until(slow, lines[-1])
    warnings = [f for f in slow_frames if "log messages dropped" in f]
    assert warnings
    dropped = sum(int(re.search(r"\[WARNING\] (\d+) log messages dropped", w)[1]) for w in warnings)
    received = [f for f in slow_frames if run in f]
    assert dropped > 0
    assert len(received) + dropped == len(lines)
    await slow.disconnect()
    await fast.disconnect()


# --- the handler and redaction, without a socket ------------------------------------------
def test_handler_drops_and_counts_when_its_buffer_is_full(monkeypatch):
    small = LogPublisher(capacity=2)
    monkeypatch.setattr(small, "_ensure_thread", lambda: None)
    monkeypatch.setattr("logstream.handlers.publisher", small)
    handler = ChannelLayerHandler()
    for n in range(5):
        handler.emit(logging.LogRecord("accounts.x", logging.INFO, __file__, 1, f"m{n}", (), None))
    assert small.stats() == {"published": 0, "dropped": 3, "queued": 2}


def test_handler_ignores_the_channel_layers_own_loggers(monkeypatch):
    small = LogPublisher(capacity=10)
    monkeypatch.setattr(small, "_ensure_thread", lambda: None)
    monkeypatch.setattr("logstream.handlers.publisher", small)
    handler = ChannelLayerHandler()
    for name in ("channels_redis.core", "asyncio", "daphne.server", "redis", "channels.layers"):
        handler.emit(logging.LogRecord(name, logging.ERROR, __file__, 1, "x", (), None))
    assert small.stats()["queued"] == 0


def test_handler_never_raises_into_the_caller(monkeypatch):
    def broken(event):
        raise RuntimeError("layer exploded")

    monkeypatch.setattr("logstream.handlers.publisher.submit", broken)
    record = logging.LogRecord("accounts.x", logging.INFO, __file__, 1, "bad %d", ("x",), None)
    ChannelLayerHandler().emit(record)


def test_redaction_covers_headers_tokens_passwords_and_query_values():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"
    text = redact(
        f"Authorization: Bearer {jwt} token={jwt} password=hunter2 "
        f'{{"password": "hunter2", "refresh": "{jwt}"}} plain {jwt}'
    )
    assert jwt not in text
    assert "hunter2" not in text
    assert redact_query("format=json&token=abc&access_token=x&q=1") == (
        f"format=json&token={REDACTED}&access_token={REDACTED}&q=1"
    )


def test_redacting_filter_cleans_every_handlers_output():
    record = logging.LogRecord(
        "accounts.x", logging.INFO, __file__, 1, "login with password=%s", ("hunter2",), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"login with password={REDACTED}"


def test_frame_formats_and_levels():
    event = {
        "timestamp": "2024-10-28 14:48:32.123",
        "level": "INFO",
        "levelno": 20,
        "target": "accounts.services",
        "message": "User admin logged in",
        "tenant": None,
        "request_id": None,
    }
    assert format_event(event, "text") == (
        "[2024-10-28 14:48:32.123] INFO [accounts.services] User admin logged in"
    )
    assert "levelno" not in json.loads(format_event(event, "json"))
    assert parse_level("warn") == logging.WARNING
    assert parse_level("ERROR") == logging.ERROR
    assert parse_level("nonsense") == logging.NOTSET
