"""Helpers the test modules share that are not fixtures: clients that send a tenant's
host, the login calls, log-stream sockets, command runs, an unreachable tenant database,
the marker of tests that drive an installed program."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import AsyncClient
from rest_framework.test import APIClient

from tenants.context import use_tenant
from tenants.db import connections as tenant_connections
from tests.factories import PASSWORD, bearer_header

BASE_DIR = Path(__file__).resolve().parent.parent
POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# A contact's fields, in the order API.md's address book shows them (and the CSV header).
CONTACT_FIELDS = [
    "id", "name", "email", "phone", "address", "gender", "age", "notes", "created_at",
    "updated_at",
]  # fmt: skip


# --- components: programs some tests drive (a browser, redis-server) ----------------------
REQUIRE_ALL_COMPONENTS = "TENANTKIT_REQUIRE_ALL"


def needs_component(name: str, *, available: bool, install: str) -> pytest.MarkDecorator:
    """Marks tests that drive an installed program. Without it they skip, saying how to
    install it; with TENANTKIT_REQUIRE_ALL=1 (set by .ci/run) they fail instead, so CI
    cannot pass with a component it did not test. A backend skip (a test of the other
    database's leg) is not a component and stays a plain skip."""
    return pytest.mark.needs_component(name=name, available=available, install=install)


def require_components(item: pytest.Item) -> None:
    """Skip `item` (fail it under TENANTKIT_REQUIRE_ALL=1) when a program it marks as
    needed is missing; conftest runs this before every test."""
    for marker in item.iter_markers("needs_component"):
        if marker.kwargs["available"]:
            continue
        missing = f"{marker.kwargs['name']} is not installed ({marker.kwargs['install']})"
        if os.environ.get(REQUIRE_ALL_COMPONENTS) == "1":
            pytest.fail(f"{missing}; {REQUIRE_ALL_COMPONENTS}=1 makes a missing component fail")
        pytest.skip(missing)


def free_port() -> int:
    """A local TCP port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- HTTP clients and calls ---------------------------------------------------------------
def client_for(host: str) -> APIClient:
    return APIClient(HTTP_HOST=host)


class HostAsyncClient(AsyncClient):
    """AsyncClient always sends `host: testserver`; this one sends the tenant's host."""

    def __init__(self, host: str, **defaults):
        super().__init__(**defaults)
        self.host = host.encode()

    def _base_scope(self, **request):
        scope = super()._base_scope(**request)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"]
        scope["headers"].append((b"host", self.host))
        return scope


def login(host: str, username: str, password: str = PASSWORD, **extra):
    """POST /api/auth/login on the tenant's host."""
    return client_for(host).post(
        "/api/auth/login",
        {"username_or_email": username, "password": password},
        format="json",
        **extra,
    )


def tokens_for(host: str, username: str, password: str = PASSWORD) -> dict:
    """The token pair of a login that must succeed."""
    response = login(host, username, password)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def me(host: str, access: str):
    """GET /api/auth/me on the tenant's host with `access`."""
    return client_for(host).get("/api/auth/me", **bearer_header(access))


def platform_login(username: str = "root", password: str = PASSWORD, host: str = "acme.test"):
    """POST /api/platform/auth/login (any host serves it)."""
    return client_for(host).post(
        "/api/platform/auth/login",
        {"username_or_email": username, "password": password},
        format="json",
    )


def use_fresh_cache(settings) -> None:
    """Point the default cache at a namespace of its own: as after a flush, and so that
    counters (rate limits, lockouts) never leak between tests or between test runs that
    share one Redis."""
    cfg = dict(settings.CACHES["default"])
    key = "LOCATION" if "locmem" in cfg["BACKEND"] else "KEY_PREFIX"
    cfg[key] = f"{cfg.get('KEY_PREFIX', '')}t-{uuid.uuid4().hex}"
    settings.CACHES = {**settings.CACHES, "default": cfg}


# --- e-mail -------------------------------------------------------------------------------
LINK_TOKEN = re.compile(r"https?://(?P<host>[^/\s]+)/\S*#token=(?P<token>\S+)")


def sent_mail() -> list:
    """The messages Django's test backend (locmem) received, once the background sender
    (accounts.mail) handed over everything queued."""
    from django.core import mail

    from accounts.mail import wait_for_outgoing_mail

    wait_for_outgoing_mail()
    return list(mail.outbox)


def link_in(body: str) -> re.Match:
    """The link of an e-mail's body: `.group("host")`, `.group("token")`."""
    match = LINK_TOKEN.search(body)
    assert match is not None, body
    return match


# --- management commands ------------------------------------------------------------------
def run_command(*args, **kwargs) -> str:
    """Run a management command; its stdout and stderr together."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out, **kwargs)
    return out.getvalue()


# --- a tenant database that went away -----------------------------------------------------
@contextmanager
def alias_points_at(tenant, **overrides):
    """Point the tenant's registered alias elsewhere (what a lost server looks like to the
    process), then restore it."""
    cfg = connections.settings[tenant.alias]
    saved = {key: cfg[key] for key in overrides}
    tenant_connections.close_connection(tenant.alias)
    cfg.update(overrides)
    try:
        yield
    finally:
        tenant_connections.close_connection(tenant.alias)
        cfg.update(saved)


def database_unreachable(tenant):
    """The tenant's alias points at a database that cannot be opened, then is restored."""
    if POSTGRES:
        return alias_points_at(tenant, PORT=str(free_port()))
    return alias_points_at(tenant, NAME="/nonexistent-tenantkit-dir/tenant.sqlite3")


def status_once_recovered(send, seconds: float = 3.0) -> int:
    """The status of `send()` once it answers 200, or its last status after `seconds`.
    Direct, a recovered tenant database is served at the next request after the retry
    interval; behind PgBouncer the pooler also refuses new clients of a database whose
    login failed until one of them makes it try again (server_login_retry), so it is
    served a request or two later."""
    deadline = time.monotonic() + seconds
    while True:
        status = send().status_code
        if status == HTTPStatus.OK or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


# --- a second tenant database server -----------------------------------------------------
SECOND_SERVER = "second"
SECOND_SERVER_URL_ENV = "TENANTKIT_TEST_SECOND_SERVER_URL"
SECOND_SERVER_ADMIN_URL_ENV = "TENANTKIT_TEST_SECOND_SERVER_ADMIN_URL"
# A small, fast cluster: a throw-away server of a test session.
SECOND_CLUSTER_SETTINGS = {
    "max_connections": "50",
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'16MB'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass
class SecondServer:
    """The session's second tenant database server: a PostgreSQL cluster of this machine's
    binaries on a port of its own (`cluster`, a bench.servers.PgServer), or on SQLite a
    second directory of tenant files (`directory`). Its URL is in `SECOND_SERVER_URL_ENV`."""

    url: str
    cluster: object | None = None
    directory: Path | None = None
    admin_url: str = ""  # its direct URL, when `url` is a pooler's
    owned: bool = True  # started by the fixture, removed at the end

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """The server is gone for the block (the cluster stopped; the directory replaced by
        a file), then back."""
        if self.cluster is not None:
            self.cluster.halt()
            try:
                yield
            finally:
                self.cluster.resume()
            return
        assert self.directory is not None
        aside = self.directory.with_name(self.directory.name + "-away")
        self.directory.rename(aside)
        self.directory.write_text("not a directory")
        try:
            yield
        finally:
            self.directory.unlink()
            aside.rename(self.directory)

    def remove(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


# --- the live log stream ------------------------------------------------------------------
FRAME_TIMEOUT = 5


def marker() -> str:
    """A string no other log line contains."""
    return f"m-{uuid.uuid4().hex}"


def log_in(
    tenant, message: str, *, level=logging.INFO, name="addressbook.tests", args=(), **kwargs
):
    """Log `message` as code running for `tenant` does."""
    with use_tenant(tenant):
        logging.getLogger(name).log(level, message, *args, **kwargs)


def ws_bearer_header(token: str) -> list[tuple[bytes, bytes]]:
    """WebSocket handshake headers carrying `token`."""
    return [(b"authorization", f"Bearer {token}".encode())]


async def open_stream(
    *, host="acme.test", path="/api/ws/logs", query="", headers=(), client=None, app=None
) -> tuple[WebsocketCommunicator, bool]:
    """Open a log-stream socket on `host`; the communicator and whether it was accepted.
    `client` sets the peer address, `app` another ASGI application than the project's."""
    if app is None:
        from config.asgi import application as app
    target = f"{path}?{query}" if query else path
    communicator = WebsocketCommunicator(app, target, headers=[(b"host", host.encode()), *headers])
    if client is not None:
        communicator.scope["client"] = (client, 50000)
    connected, _ = await communicator.connect(timeout=FRAME_TIMEOUT)
    return communicator, connected


async def frames_until(communicator, needle: str, *, timeout=FRAME_TIMEOUT) -> list[str]:
    """Every frame received up to and including the first one containing `needle`."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frames.append(await communicator.receive_from(timeout=timeout))
            if needle in frames[-1]:
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


async def close_code_within(communicator, seconds: float) -> int | None:
    """The close code the server sends within `seconds` (frames before it are skipped);
    None if the socket is still open then."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await communicator.receive_output(timeout=seconds)
                if message["type"] == "websocket.close":
                    return message.get("code")
    except TimeoutError:
        return None
