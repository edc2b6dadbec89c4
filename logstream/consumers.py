"""The live log stream over WebSocket (`/api/ws/logs`, alias `/logs`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from logstream.auth import authenticate_handshake, handshake_query, origin_allowed
from logstream.events import format_event, format_timestamp, parse_level
from logstream.handlers import publisher

logger = logging.getLogger("logstream.consumers")
_connected = 0


def connected_clients() -> int:
    """Log stream clients connected to this process (for /metrics)."""
    return _connected


class LogStreamConsumer(AsyncWebsocketConsumer):
    """Streams log records to one authenticated client.

    Records arrive from the channel layer in batches and go into this connection's own
    bounded deque (`WS_LOG_BUFFER_SIZE`); a sender task drains it. A client that cannot
    keep up loses the oldest lines and is told how many with `[WARNING] N log messages
    dropped`; it never holds up the channel layer or the other clients.
    """

    viewer = None
    sender: asyncio.Task | None = None

    async def connect(self):
        if not origin_allowed(self.scope):
            logger.warning("Log stream handshake refused: origin not allowed")
            await self.close()
            return
        viewer = await database_sync_to_async(authenticate_handshake)(self.scope)
        if viewer is None:
            logger.warning("Log stream handshake refused: no valid credentials")
            await self.close()
            return
        query = handshake_query(self.scope)
        fmt = (query.get("format") or [settings.WS_LOG_FORMAT])[0].lower()
        self.format = fmt if fmt in ("json", "text") else settings.WS_LOG_FORMAT
        self.min_level = parse_level((query.get("level") or [""])[0])
        self.lines: deque[str] = deque(maxlen=max(1, settings.WS_LOG_BUFFER_SIZE))
        self.dropped = 0
        self.wakeup = asyncio.Event()
        self.viewer = viewer
        self.loop = asyncio.get_running_loop()
        await self.channel_layer.group_add(viewer.group, self.channel_name)
        publisher.attach_loop(self.loop)
        await self.accept()
        global _connected
        _connected += 1
        self.sender = asyncio.create_task(self._send_lines())
        logger.info(
            "Log stream client connected: user %s, %s",
            viewer.user.pk,
            f"tenant {viewer.tenant.slug}" if viewer.tenant else "all tenants",
        )

    async def disconnect(self, code):
        if self.viewer is None:
            return
        viewer, self.viewer = self.viewer, None
        global _connected
        _connected -= 1
        publisher.detach_loop(self.loop)
        await self.channel_layer.group_discard(viewer.group, self.channel_name)
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sender

    async def receive(self, text_data=None, bytes_data=None):
        """The stream is one-way; anything a client sends is ignored."""

    async def log_batch(self, message):
        for event in message["events"]:
            if event.get("levelno", 0) < self.min_level:
                continue
            if len(self.lines) == self.lines.maxlen:
                # Let the sender drain first; a client that is really stuck loses the oldest.
                self.wakeup.set()
                await asyncio.sleep(0)
                if len(self.lines) == self.lines.maxlen:
                    self.dropped += 1
            self.lines.append(format_event(event, self.format))
        self.wakeup.set()

    async def _send_lines(self):
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.lines:
                if self.dropped:
                    dropped, self.dropped = self.dropped, 0
                    await self.send(text_data=self._dropped_notice(dropped))
                await self.send(text_data=self.lines.popleft())

    def _dropped_notice(self, dropped: int) -> str:
        text = f"[WARNING] {dropped} log messages dropped"
        if self.format != "json":
            return text
        return json.dumps(
            {
                "timestamp": format_timestamp(time.time()),
                "level": "WARNING",
                "target": "logstream",
                "message": text,
                "tenant": self.viewer.tenant.slug if self.viewer and self.viewer.tenant else None,
                "request_id": None,
            }
        )
