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

from logstream import fanout
from logstream.auth import credentials_still_valid, handshake_query
from logstream.events import format_timestamp, parse_level
from tenants.context import slug_of

logger = logging.getLogger("logstream.consumers")
_connected = 0
MAX_BATCH_MS = 1000
MAX_OPTION_LENGTH = 16  # longer `?format=` / `?batch=` values name no option: ignored
CREDENTIALS_ENDED = 4401  # close code: the stream's credentials stopped being valid
RECHECK_FAILED = 1011  # close code: the credentials could not be checked (try again)
BATCH_FRAME_BYTES = 64 * 1024  # a batched frame holds lines up to about this size


def connected_clients() -> int:
    """Log stream clients connected to this process (for /metrics)."""
    return _connected


class LogStreamConsumer(AsyncWebsocketConsumer):
    """Streams log records to one authenticated client: the viewer `LogViewerMiddleware`
    put in the scope (none: the handshake is refused).

    This process's fanout (`logstream.fanout`) pushes the frames the client may see into
    its own bounded buffer (`WS_LOG_BUFFER_SIZE`); a sender task drains it, one record per
    frame, or with `?batch=<ms>` every record of up to that many milliseconds in one frame,
    one line each. A client that cannot keep up loses the oldest lines and is told how many
    with `[WARNING] N log messages dropped`; it never holds up the other clients.
    """

    # No channel-layer channel per client: records come from logstream.fanout. (A
    # channels_redis receive loop per client would also be torn down every 5 s by redis-py
    # 8's default socket_timeout; django/channels_redis#422.)
    channel_layer_alias = None
    viewer = None
    sender: asyncio.Task | None = None
    rechecker: asyncio.Task | None = None

    async def connect(self):
        # Origin and credentials were checked at the handshake (logstream.handshake).
        viewer = self.scope.get("log_viewer")
        if viewer is None:
            logger.warning("Log stream handshake refused: no valid credentials")
            await self.close()
            return
        query = handshake_query(self.scope)
        fmt = (query.get("format") or [settings.WS_LOG_FORMAT])[0][:MAX_OPTION_LENGTH].lower()
        self.format = fmt if fmt in ("json", "text") else settings.WS_LOG_FORMAT
        self.min_level = parse_level((query.get("level") or [""])[0])
        self.batch_delay = parse_batch((query.get("batch") or [""])[0])
        self.tenant_slug = slug_of(viewer.tenant)
        self.capacity = max(1, settings.WS_LOG_BUFFER_SIZE)
        self.lines: deque[str] = deque()
        self.dropped = 0
        self.wakeup = asyncio.Event()
        self.viewer = viewer
        await fanout.join(self)
        await self.accept()
        global _connected
        _connected += 1
        self.sender = asyncio.create_task(
            self._send_batches() if self.batch_delay else self._send_lines()
        )
        self.rechecker = asyncio.create_task(self._recheck_credentials())
        logger.info(
            "Log stream client connected: user %s, %s",
            viewer.user.pk,
            f"tenant {viewer.tenant.slug}" if viewer.tenant else "all tenants",
        )

    async def disconnect(self, code):
        await self._stop()

    async def _stop(self) -> None:
        """Stop streaming to this client (idempotent)."""
        if self.viewer is None:
            return
        self.viewer = None
        global _connected
        _connected -= 1
        await fanout.leave(self)
        for task in (self.sender, self.rechecker):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _recheck_credentials(self) -> None:
        """Every `WS_AUTH_RECHECK_SECONDS`, check the handshake's credentials again; close
        with 4401 once they have ended (expiry, revocation, logout, password or role change,
        deactivation, the tenant's suspension, the admin session's end)."""
        viewer = self.viewer
        check = database_sync_to_async(credentials_still_valid)
        while True:
            await asyncio.sleep(max(0.05, settings.WS_AUTH_RECHECK_SECONDS))
            try:
                valid = await check(viewer)
            except Exception:
                logger.warning("Log stream closed: its credentials could not be checked")
                code = RECHECK_FAILED
            else:
                if valid:
                    continue
                logger.info("Log stream closed: the credentials of user %s ended", viewer.user.pk)
                code = CREDENTIALS_ENDED
            await self._stop()
            await self.close(code=code)
            return

    async def receive(self, text_data=None, bytes_data=None):
        """The stream is one-way; anything a client sends is ignored."""

    def push(self, frames: list[str]) -> None:
        """Queue frames for this client (the fanout calls it); past the buffer's capacity
        the oldest are dropped and counted."""
        lines = self.lines
        lines.extend(frames)
        overflow = len(lines) - self.capacity
        if overflow > 0:
            for _ in range(overflow):
                lines.popleft()
            self.dropped += overflow
        self.wakeup.set()

    async def _send_lines(self):
        # base_send is what AsyncWebsocketConsumer.send ends in, minus two calls per frame.
        send, lines = self.base_send, self.lines
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while lines:
                if self.dropped:
                    await send({"type": "websocket.send", "text": self._take_dropped_notice()})
                await send({"type": "websocket.send", "text": lines.popleft()})

    async def _send_batches(self):
        send, lines = self.base_send, self.lines
        while True:
            await self.wakeup.wait()
            await asyncio.sleep(self.batch_delay)
            self.wakeup.clear()
            while lines:
                frame = [self._take_dropped_notice()] if self.dropped else []
                size = 0
                while lines and (size < BATCH_FRAME_BYTES or not frame):
                    line = lines.popleft()
                    frame.append(line)
                    size += len(line) + 1
                await send({"type": "websocket.send", "text": "\n".join(frame)})

    def _take_dropped_notice(self) -> str:
        dropped, self.dropped = self.dropped, 0
        text = f"[WARNING] {dropped} log messages dropped"
        if self.format != "json":
            return text
        return json.dumps(
            {
                "timestamp": format_timestamp(time.time()),
                "level": "WARNING",
                "target": "logstream",
                "message": text,
                "tenant": self.tenant_slug,
                "request_id": None,
            }
        )


def parse_batch(value: str) -> float:
    """A `?batch=` value (milliseconds, 1-1000) in seconds; 0 (one record per frame) for
    anything else."""
    value = value.strip()
    if len(value) > MAX_OPTION_LENGTH or not (value.isascii() and value.isdigit()):
        return 0.0
    if not 1 <= int(value) <= MAX_BATCH_MS:
        return 0.0
    return int(value) / 1000
