"""`logstream.handshake`: the origin validator and the middleware that authenticates the
log stream's handshake before `LogStreamConsumer` runs."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from accounts.tokens import issue_tokens
from config.asgi import application
from logstream.consumers import LogStreamConsumer
from logstream.handshake import LogViewerMiddleware, OriginValidator
from tenants.context import use_tenant

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

TIMEOUT = 5
ALLOWED_ORIGIN = b"https://app.example.com"


class ScopeRecorder:
    """An inner application that accepts the socket and remembers the scope it was given."""

    def __init__(self):
        self.scope = None

    async def __call__(self, scope, receive, send):
        self.scope = scope
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await receive()  # websocket.disconnect


@pytest.fixture
def production_origins(settings):
    settings.PRODUCTION = True
    settings.CORS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN.decode()]


@pytest.fixture
def acme_token(acme, make_user) -> str:
    user = make_user(acme, "lena")
    with use_tenant(acme):
        return issue_tokens(user, acme)["access"]


async def handshake(app, *, path="/api/ws/logs", host=b"acme.test", headers=()):
    communicator = WebsocketCommunicator(app, path, headers=[(b"host", host), *headers])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    if connected:
        await communicator.disconnect()
    return connected


async def test_origin_validator_accepts_a_handshake_without_origin(production_origins):
    inner = ScopeRecorder()
    assert await handshake(OriginValidator(inner))
    assert inner.scope is not None


async def test_origin_validator_refuses_a_foreign_origin_before_the_application_runs(
    production_origins,
):
    inner = ScopeRecorder()
    assert not await handshake(OriginValidator(inner), headers=[(b"origin", b"https://evil.test")])
    assert inner.scope is None


async def test_origin_validator_accepts_a_listed_origin_and_the_hosts_own(production_origins):
    assert await handshake(OriginValidator(ScopeRecorder()), headers=[(b"origin", ALLOWED_ORIGIN)])
    own = [(b"origin", b"https://acme.test")]
    assert await handshake(OriginValidator(ScopeRecorder()), headers=own)


async def test_origin_validator_accepts_any_origin_outside_production():
    foreign = [(b"origin", b"https://evil.test")]
    assert await handshake(OriginValidator(ScopeRecorder()), headers=foreign)


async def test_foreign_origin_is_refused_on_a_path_without_a_route_too(production_origins):
    assert not await handshake(application, path="/other", headers=[(b"origin", b"https://x.t")])


async def test_viewer_middleware_puts_the_tenant_and_the_authenticated_viewer_in_the_scope(
    acme, acme_token
):
    inner = ScopeRecorder()
    bearer = [(b"authorization", f"Bearer {acme_token}".encode())]
    assert await handshake(LogViewerMiddleware(inner), headers=bearer)
    viewer = inner.scope["log_viewer"]
    assert inner.scope["tenant"] == acme
    assert (viewer.tenant, viewer.user.username, viewer.token) == (acme, "lena", acme_token)


async def test_viewer_middleware_leaves_no_viewer_without_valid_credentials(acme):
    inner = ScopeRecorder()
    assert await handshake(LogViewerMiddleware(inner), headers=[(b"authorization", b"Bearer x")])
    assert inner.scope["log_viewer"] is None
    assert inner.scope["tenant"] == acme


async def test_viewer_middleware_names_no_tenant_for_an_unknown_host(acme):
    inner = ScopeRecorder()
    assert await handshake(LogViewerMiddleware(inner), host=b"nobody.example.org")
    assert (inner.scope["tenant"], inner.scope["log_viewer"]) == (None, None)


async def test_viewer_middleware_does_not_change_the_callers_scope(acme):
    inner = ScopeRecorder()
    communicator = WebsocketCommunicator(
        LogViewerMiddleware(inner), "/api/ws/logs", headers=[(b"host", b"acme.test")]
    )
    await communicator.connect(timeout=TIMEOUT)
    await communicator.disconnect()
    assert "log_viewer" in inner.scope
    assert "log_viewer" not in communicator.scope


async def test_consumer_without_a_viewer_in_its_scope_refuses_the_handshake(acme, acme_token):
    # Valid credentials on the socket are not enough: only the middleware's verdict counts.
    bearer = [(b"authorization", f"Bearer {acme_token}".encode())]
    assert not await handshake(LogStreamConsumer.as_asgi(), headers=bearer)


async def test_log_stream_route_streams_to_the_viewer_the_middleware_admitted(acme_token):
    bearer = [(b"authorization", f"Bearer {acme_token}".encode())]
    assert await handshake(application, headers=bearer)
