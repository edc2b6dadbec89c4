"""This process's log stream clients, and the one feed of records they share.

Every event loop with connected clients (daphne runs one) has a `Fanout`. It receives each
batch of events once: from its single subscription to the Redis pub/sub channel that the
publishers of every process write to, or, with the in-memory channel layer, from this
process's publishing thread. It formats each event at most once per frame format and
appends the frames a client may see to that client's own buffer (`LogStreamConsumer.push`):
a tenant's client only ever gets events of its own tenant; platform staff get all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from logstream.events import format_event

logger = logging.getLogger("logstream.fanout")

SUBSCRIBE_TIMEOUT = 2.0
RETRY_AFTER = 1.0
MAX_CHUNK = 256  # events handed to the clients before their senders get a turn

_fanouts: dict[asyncio.AbstractEventLoop, Fanout] = {}
_fanouts_lock = threading.Lock()


@functools.cache
def redis_target() -> tuple[str, str] | None:
    """(Redis URL, pub/sub channel) of the default channel layer when it is channels_redis,
    else None: the in-memory layer reaches this process only."""
    config = settings.CHANNEL_LAYERS.get("default", {})
    if "channels_redis" not in config.get("BACKEND", ""):
        return None
    options = config.get("CONFIG", {})
    host = (options.get("hosts") or ["redis://localhost:6379"])[0]
    if isinstance(host, dict):
        host = host.get("address")
    if isinstance(host, (tuple, list)) and len(host) == 2:
        host = f"redis://{host[0]}:{host[1]}"
    if not isinstance(host, str):
        raise ImproperlyConfigured("The log stream needs a Redis URL as the channel layer's host")
    return host, f"{options.get('prefix', 'asgi')}.logs"


@receiver(setting_changed)
def _forget_redis_target(*, setting, **kwargs) -> None:
    if setting == "CHANNEL_LAYERS":
        redis_target.cache_clear()


class Fanout:
    """The clients on one event loop and the task that hands them each batch of events."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clients: set = set()
        self.batches: list[list[dict]] = []
        self.ready = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.pump = loop.create_task(self._pump())
        self.listener: asyncio.Task | None = None

    def enqueue(self, events: list[dict]) -> None:
        """Queue a batch for the clients (on the loop's thread)."""
        self.batches.append(events)
        self.ready.set()

    async def _pump(self) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            batches, self.batches = self.batches, []
            for events in batches:
                chunk = max(1, min(settings.WS_LOG_BUFFER_SIZE, MAX_CHUNK))
                for start in range(0, len(events), chunk):
                    try:
                        self.deliver(events[start : start + chunk])
                    except Exception:  # one bad batch must not stop the stream
                        logger.exception("Log stream delivery failed")
                    # The senders drain what they got before the next chunk arrives, so a
                    # client that keeps up never overflows its buffer on a large batch.
                    await asyncio.sleep(0)

    def deliver(self, events: list[dict]) -> None:
        """Push to each client the frames it may see, each formatted once per format."""
        frames_by_format: dict[tuple[str, bool], dict[int, str]] = {}
        selections: dict[tuple, list[str]] = {}
        for client in list(self.clients):
            key = (client.tenant_slug, client.min_level, client.format)
            frames = selections.get(key)
            if frames is None:
                audience = (client.format, client.tenant_slug is None)
                frames = selections[key] = _select(
                    events, client, frames_by_format.setdefault(audience, {})
                )
            if frames:
                client.push(frames)

    def listen(self, url: str, channel: str) -> None:
        if self.listener is None or self.listener.done():
            self.listener = self.loop.create_task(self._listen(url, channel))

    async def _listen(self, url: str, channel: str) -> None:
        import redis.asyncio as aioredis

        while True:
            # No socket_timeout (redis-py 8 defaults to 5 s): a quiet subscription is not a
            # dead one. TCP keepalive notices a peer that went away.
            client = aioredis.Redis.from_url(
                url, socket_connect_timeout=RETRY_AFTER, socket_timeout=None, socket_keepalive=True
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._receive(message["data"])
            except Exception:
                logger.warning("Log stream subscription to Redis lost; retrying")
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(RETRY_AFTER)

    def _receive(self, data: bytes) -> None:
        try:
            events = json.loads(data)
        except ValueError:
            return
        if isinstance(events, list) and all(_is_event(e) for e in events):
            self.enqueue(events)

    async def close(self) -> None:
        for task in (self.pump, self.listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _is_event(event) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("levelno"), int)
        and all(isinstance(event.get(key), str) for key in ("timestamp", "level", "target"))
        and isinstance(event.get("message"), str)
        and isinstance(event.get("tenant"), (str, type(None)))
        and isinstance(event.get("request_id"), (str, type(None)))
        and isinstance(event.get("traceback"), (str, type(None)))
        and isinstance(event.get("internal", False), bool)
    )


def _select(events: list[dict], client, cache: dict[int, str]) -> list[str]:
    """The frames of `events` that `client` may see, at its level or above, in its format
    (`cache` keeps each event's frame by index, for one format and audience). Platform
    staff see everything; a tenant's client sees its tenant's application records only:
    no infrastructure record (`internal`) and no traceback."""
    slug, min_level, fmt = client.tenant_slug, client.min_level, client.format
    staff = slug is None
    frames = []
    for index, event in enumerate(events):
        if event["levelno"] < min_level:
            continue
        if not staff and (event["tenant"] != slug or event.get("internal", True)):
            continue
        frame = cache.get(index)
        if frame is None:
            frame = cache[index] = format_event(event, fmt, staff=staff)
        frames.append(frame)
    return frames


async def join(client) -> None:
    """Start streaming to `client` (on its event loop). With Redis, returns once this
    process's subscription is in place, so nothing logged afterwards is missed."""
    loop = asyncio.get_running_loop()
    with _fanouts_lock:
        fanout = _fanouts.get(loop)
        if fanout is None:
            fanout = _fanouts[loop] = Fanout(loop)
    fanout.clients.add(client)
    target = redis_target()
    if target is not None:
        fanout.listen(*target)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fanout.subscribed.wait(), SUBSCRIBE_TIMEOUT)


async def leave(client) -> None:
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        return
    fanout.clients.discard(client)
    if not fanout.clients:
        with _fanouts_lock:
            if _fanouts.get(loop) is fanout:
                del _fanouts[loop]
        await fanout.close()


def deliver_locally(events: list[dict]) -> None:
    """Hand a batch to every fanout of this process (from the publishing thread)."""
    with _fanouts_lock:
        fanouts = list(_fanouts.items())
    for loop, fanout in fanouts:
        try:
            loop.call_soon_threadsafe(fanout.enqueue, events)
        except RuntimeError:  # the loop is closed: its clients are gone
            with _fanouts_lock:
                if _fanouts.get(loop) is fanout:
                    del _fanouts[loop]
