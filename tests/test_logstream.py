"""The live log stream over WebSocket: authentication, tenant scoping, frames, slow clients."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import AsyncClient, Client, override_settings
from rest_framework_simplejwt.tokens import AccessToken

from config.asgi import application
from logstream import fanout
from logstream.consumers import connected_clients
from logstream.events import format_event, format_timestamp, make_event, parse_level
from logstream.handlers import LogPublisher, LogStreamHandler, to_event
from logstream.redaction import REDACTED, RedactingFilter, redact_query, redact_secrets
from tenants.context import use_tenant
from tests.factories import access_token
from tests.helpers import frames_for, frames_until, log_in, marker, open_stream

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

TEXT_FRAME = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] [A-Z]+ \[[\w.]+\] ")


# --- fixtures and helpers -----------------------------------------------------------------
@pytest.fixture
def acme_user(acme, make_user):
    return make_user(acme, "alice", email="alice@acme.test")


@pytest.fixture
def acme_token(acme, acme_user) -> str:
    return access_token(acme_user, acme)


@pytest.fixture
def globex_token(globex, make_user) -> str:
    return access_token(make_user(globex, "gina"), globex)


@pytest.fixture
def platform_token(staff, acme) -> str:
    return access_token(staff, None)


@pytest.fixture
def staff_session(staff, acme) -> str:
    client = Client()
    client.force_login(staff)
    return client.cookies["sessionid"].value


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
    return access_token(make_user(None, "plain"), None)


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


async def test_admin_user_allow_list_restricts_who_may_connect(
    acme, acme_user, acme_token, globex_token
):
    with override_settings(WS_LOGS_ADMIN_USER=["someone@else.test", "alice@acme.test"]):
        communicator, connected = await open_stream(query=f"token={acme_token}")
        assert not connected, "a bare address names platform staff, and this one is unverified"
    with override_settings(WS_LOGS_ADMIN_USER=["gina"]):
        communicator, connected = await open_stream(
            host="globex.test", query=f"token={globex_token}"
        )
        assert not connected, "a bare username names platform staff, not a tenant user"
    acme_user.role = acme_user.Role.ADMIN
    await database_sync_to_async(_save_in, thread_sensitive=True)(acme, acme_user)
    with override_settings(WS_LOGS_ADMIN_USER=["acme:alice"]):
        communicator, connected = await open_stream(query=f"token={acme_token}")
        assert connected, "a tenant admin listed as tenant:username"
        await communicator.disconnect()
        communicator, connected = await open_stream(
            host="globex.test", query=f"token={globex_token}"
        )
        assert not connected


def _save_in(tenant, user) -> None:
    with use_tenant(tenant):
        user.save(update_fields=["role"])


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


async def test_default_frames_carry_exactly_one_record_each(acme, acme_token):
    communicator, _ = await open_stream(query=f"token={acme_token}&format=json")
    run = marker()
    for n in range(20):
        log_in(acme, f"{run} line {n:02d}")
    frames = await frames_until(communicator, f"{run} line 19")
    ours = [f for f in frames if run in f]
    assert [json.loads(f)["message"] for f in ours] == [f"{run} line {n:02d}" for n in range(20)]
    await communicator.disconnect()


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_batch_parameter_sends_several_records_per_frame_one_line_each(acme, acme_token, fmt):
    communicator, _ = await open_stream(query=f"token={acme_token}&format={fmt}&batch=200")
    run = marker()
    for n in range(20):
        log_in(acme, f"{run} line {n:02d}")
    frames = await frames_until(communicator, f"{run} line 19")
    lines = [line for frame in frames for line in frame.split("\n") if run in line]
    if fmt == "json":
        messages = [json.loads(line)["message"] for line in lines]
    else:
        assert all(TEXT_FRAME.match(line) for line in lines)
        messages = [line.split("] ", 2)[-1] for line in lines]
    assert messages == [f"{run} line {n:02d}" for n in range(20)]
    assert len([f for f in frames if run in f]) < 20  # batched, not one frame per record
    await communicator.disconnect()


@pytest.mark.parametrize(
    "query", ["batch=abc", "batch=0", "batch=-5", "batch=100000", "batch=\u00b2", "level=\u00b2"]
)
async def test_bad_batch_or_level_values_fall_back_to_the_defaults(acme, acme_token, query):
    communicator, connected = await open_stream(query=f"token={acme_token}&{query}")
    assert connected
    first, second = marker(), marker()
    log_in(acme, first)
    log_in(acme, second)
    frames = await frames_until(communicator, second)
    assert any(frame.endswith(first) for frame in frames)
    assert frames[-1].endswith(second)
    await communicator.disconnect()


async def test_each_record_is_formatted_once_per_format_whatever_the_clients(
    acme, acme_token, monkeypatch
):
    calls = []
    real = fanout.format_event
    monkeypatch.setattr(
        fanout,
        "format_event",
        lambda event, fmt, **options: calls.append(fmt) or real(event, fmt, **options),
    )
    clients = [(await open_stream(query=f"token={acme_token}&format=json"))[0] for _ in range(3)]
    clients += [(await open_stream(query=f"token={acme_token}&format=text"))[0] for _ in range(2)]
    needle = marker()
    calls.clear()
    log_in(acme, needle)
    for client in clients:
        assert needle in (await frames_until(client, needle))[-1]
    assert sorted(calls) == ["json", "text"]
    for client in clients:
        await client.disconnect()


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


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis channel layer only")
async def test_a_quiet_stream_outlives_redis_py_default_read_timeout(acme, acme_token):
    """redis-py 8 times blocking reads out after 5 s by default; neither the client nor
    this process's subscription may be torn down by a quiet spell."""
    communicator, _ = await open_stream(query=f"token={acme_token}")
    await asyncio.sleep(6.5)
    needle = marker()
    log_in(acme, needle)
    assert (await frames_until(communicator, needle))[-1].endswith(needle)
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
    handler = LogStreamHandler()
    for n in range(5):
        handler.emit(logging.LogRecord("accounts.x", logging.INFO, __file__, 1, f"m{n}", (), None))
    assert small.stats() == {"published": 0, "dropped": 3, "queued": 2}


def test_handler_ignores_the_channel_layers_own_loggers(monkeypatch):
    small = LogPublisher(capacity=10)
    monkeypatch.setattr(small, "_ensure_thread", lambda: None)
    monkeypatch.setattr("logstream.handlers.publisher", small)
    handler = LogStreamHandler()
    for name in ("channels_redis.core", "asyncio", "daphne.server", "redis", "channels.layers"):
        handler.emit(logging.LogRecord(name, logging.ERROR, __file__, 1, "x", (), None))
    assert small.stats()["queued"] == 0


def test_handler_never_raises_into_the_caller(monkeypatch):
    def broken(event):
        raise RuntimeError("layer exploded")

    monkeypatch.setattr("logstream.handlers.publisher.submit", broken)
    record = logging.LogRecord("accounts.x", logging.INFO, __file__, 1, "bad %d", ("x",), None)
    LogStreamHandler().emit(record)


def test_redaction_covers_headers_tokens_passwords_and_query_values():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"
    text = redact_secrets(
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


class FakeClient:
    def __init__(self, tenant_slug, *, min_level=logging.NOTSET, fmt="json"):
        self.tenant_slug, self.min_level, self.format = tenant_slug, min_level, fmt
        self.frames: list[str] = []

    def push(self, frames):
        self.frames.extend(frames)


def event_of(tenant, message, level=logging.INFO):
    return make_event(
        1730126912.123, logging.getLevelName(level), level, "x", message, tenant, None
    )


async def test_fanout_gives_a_tenant_client_only_its_own_tenants_records():
    hub = fanout.Fanout(asyncio.get_running_loop())
    acme, globex, staff = FakeClient("acme"), FakeClient("globex"), FakeClient(None)
    warnings_only = FakeClient("acme", min_level=logging.WARNING)
    hub.clients.update({acme, globex, staff, warnings_only})
    hub.deliver(
        [
            event_of("acme", "a1"),
            event_of("globex", "g1"),
            event_of(None, "nobody"),
            event_of("acme", "a2", logging.ERROR),
            event_of("acme-corp", "lookalike"),
        ]
    )
    assert [json.loads(f)["message"] for f in acme.frames] == ["a1", "a2"]
    assert [json.loads(f)["message"] for f in globex.frames] == ["g1"]
    assert [json.loads(f)["message"] for f in warnings_only.frames] == ["a2"]
    assert len(staff.frames) == 5
    await hub.close()


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"{}", b"[1, 2]", b'[{"levelno": "x"}]', b'[{"levelno": 20, "message": 3}]'],
)
async def test_fanout_ignores_a_malformed_published_batch(payload):
    hub = fanout.Fanout(asyncio.get_running_loop())
    hub._receive(payload)
    assert hub.batches == []
    await hub.close()


def test_a_record_after_the_publisher_went_idle_wakes_it(monkeypatch):
    monkeypatch.setattr("logstream.handlers.IDLE_AFTER", 1)
    publisher = LogPublisher()
    published = []
    monkeypatch.setattr(publisher, "_publish", published.extend)
    item = (1730126912.123, "INFO", 20, "x", "first", None, None, None)
    publisher.submit(item)
    deadline = time.monotonic() + 2
    while not (published and publisher._idle) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert publisher._idle
    woken = time.monotonic()
    publisher.submit((*item[:4], "second", None, None, None))
    while len(published) < 2 and time.monotonic() < deadline + 2:
        time.sleep(0.005)
    # Without the wake-up the thread would sleep out its one-second idle timeout.
    assert time.monotonic() - woken < 0.5
    assert [e["message"] for e in published] == ["first", "second"]


def test_queued_records_are_redacted_before_they_are_published():
    item = (1730126912.123, "INFO", 20, "x", "login password=hunter2", None, "acme", "rid-1")
    event = to_event(item)
    assert event["message"] == f"login password={REDACTED}"
    assert (event["tenant"], event["request_id"]) == ("acme", "rid-1")


def test_redaction_shortcut_still_catches_every_key_and_unicode_case_folding():
    from logstream.redaction import _HINTS, SENSITIVE_KEYS

    assert all(any(hint in key for hint in _HINTS) for key in SENSITIVE_KEYS)
    assert "hunter2" not in redact_secrets("PA\u017f\u017fWORD=hunter2")  # long s folds to s
    assert "hunter2" not in redact_secrets("caf\u00e9 password=hunter2")
    assert (
        redact_secrets("GET /api/address-book?search=bob 200")
        == "GET /api/address-book?search=bob 200"
    )


@pytest.mark.parametrize("created", [0.0, 1730126912.123, 1730126912.9999996, 1730126912.0004999])
def test_timestamps_match_datetime_rounding(created):
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(created, tz=UTC)
    expected = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    assert format_timestamp(created) == expected


def test_redaction_takes_linear_time_on_an_unclosed_run_of_backslashes():
    """A path like /"token":"\\\\\\... (no closing quote) once held a worker for minutes: the
    JSON-value pattern could take each backslash two ways. Run in a child process, so a
    return of the exponential match fails the test instead of hanging the suite."""
    code = (
        "from logstream.redaction import redact_secrets;"
        'redact_secrets(\'Not Found: /"token":"\' + chr(92) * 201);'
        "print('hunter2' not in redact_secrets('{\"password\": \"hunter2\"}'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "True", done.stderr
