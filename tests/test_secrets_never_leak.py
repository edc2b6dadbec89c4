"""No password, token or signing key ever appears in a log line, a WebSocket frame, an
error body or an audit event. The collector (tests/leak_collector.py) watches the whole
session; this module runs last (tests/conftest.py orders it) and reads what every other
test produced."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from accounts.tokens import issue_tokens
from tenants.context import use_tenant
from tests.factories import PASSWORD
from tests.helpers import client_for
from tests.leak_collector import LeakCollector, collector

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def test_the_collector_finds_a_secret_and_a_token_in_output():
    probe = LeakCollector()
    probe.secret("Hunter2-Password")
    probe.show("log", "x", "login failed for password Hunter2-Password")
    probe.show(
        "frame",
        "x",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnopqrstu",
    )
    probe.show("error body", "x", '{"message": "Invalid token"}')
    assert [exposure.kind for exposure, _ in probe.leaks()] == ["log", "frame"]


def test_the_collector_sees_handlers_hashers_tokens_frames_and_error_bodies(acme, make_user):
    seen = len(collector.output)
    make_user(acme, "leaky", password="Leak-Probe-pw-1")
    logging.getLogger("accounts.tests").warning("probe %s", "line")
    response = client_for("acme.test").post(
        "/api/auth/login",
        {"username_or_email": "leaky", "password": "Wrong-Probe-pw-2"},
        format="json",
    )
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    kinds = {exposure.kind for exposure in collector.output[seen:]}
    assert {"log", "error body", "audit event"} <= kinds
    assert {"Leak-Probe-pw-1", "Wrong-Probe-pw-2"} <= collector.secrets


async def _stream_with(token: str, tenant) -> None:
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application,
        f"/api/ws/logs?token={token}",
        headers=[(b"host", b"acme.test"), (b"authorization", f"Bearer {token}".encode())],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    with use_tenant(tenant):
        logging.getLogger("accounts.tests").warning("stream probe with token=%s", token)
    await communicator.receive_from(timeout=5)
    await communicator.disconnect()


async def test_no_secret_reached_a_log_line_frame_or_error_body(acme, make_user):
    """Last: one more auth flow of its own (login, refresh, bad token, logout, log stream),
    then every secret of the session against everything the session produced."""
    from asgiref.sync import sync_to_async

    user = await sync_to_async(make_user)(acme, "lastone")

    def flow() -> str:
        client = client_for("acme.test")
        login = client.post(
            "/api/auth/login", {"username_or_email": "lastone", "password": PASSWORD}, format="json"
        ).json()
        client.post("/api/auth/refresh", {"refresh": login["refresh"]}, format="json")
        client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {login['access']}x")
        client.get(f"/api/address-book?token={login['access']}")
        with use_tenant(acme):
            return issue_tokens(user, acme)["access"]

    token = await sync_to_async(flow)()
    await _stream_with(token, acme)

    assert collector.installed_
    collector.secret(PASSWORD)
    collector.secret(settings.SIMPLE_JWT["SIGNING_KEY"])
    collector.secret(settings.SECRET_KEY)
    leaks = collector.leaks()
    report = "\n".join(
        f"{exposure.kind} ({exposure.where}) shows {what}: {exposure.text[:200]!r}"
        for exposure, what in leaks[:20]
    )
    assert not leaks, f"{len(leaks)} secret(s) exposed:\n{report}"
