"""The log stream's WebSocket handshake, the Channels way (`channels.security.websocket`,
`channels.auth.AuthMiddleware`): `OriginValidator` refuses a page of a foreign origin,
`LogViewerMiddleware` puts the handshake's tenant and authenticated viewer in the scope,
and `LogStreamConsumer` only streams to the viewer it finds there.

A refusal closes the socket before it is accepted, which the server answers with a plain
HTTP 403.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier

from logstream.auth import LogViewer, authenticate_handshake, handshake_tenant, origin_allowed
from tenants.models import Tenant

logger = logging.getLogger("logstream.handshake")


class HandshakeDenier(WebsocketDenier):
    """Refuses the handshake, without a channel-layer channel for a socket never opened."""

    channel_layer_alias = None


class OriginValidator(BaseMiddleware):
    """Admits a WebSocket handshake whose Origin `logstream.auth.origin_allowed` accepts
    and refuses any other, like Channels' `OriginValidator`, whose own rule does not fit
    the contract: it refuses a handshake without Origin (a non-browser client, accepted
    here), reads its list once at start-up and does not accept the handshake's own host."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("OriginValidator serves WebSocket connections only")
        if origin_allowed(scope):
            return await super().__call__(scope, receive, send)
        logger.warning("Log stream handshake refused: origin not allowed")
        return await HandshakeDenier()(scope, receive, send)


def _authenticate(scope: dict) -> tuple[Tenant | None, LogViewer | None]:
    tenant = handshake_tenant(scope)
    return tenant, authenticate_handshake(scope, tenant=tenant)


class LogViewerMiddleware(BaseMiddleware):
    """Resolves the handshake's tenant (`scope["tenant"]`, None for none, an unknown or a
    suspended one) and the viewer its credentials authenticate (`scope["log_viewer"]`,
    None when they do not), in one database thread whose connections are closed around
    it (`database_sync_to_async`)."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["tenant"], scope["log_viewer"] = await database_sync_to_async(_authenticate)(scope)
        return await self.inner(scope, receive, send)
