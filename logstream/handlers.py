"""The logging handler that publishes records to the channel layer.

`ChannelLayerHandler.emit` only builds an event and puts it in a bounded queue; it never
blocks and never raises into the code that logged. A daemon thread drains the queue in
batches and sends each batch to the groups `logs.all` and `logs.tenant.<slug>`. When the
queue is full the record is dropped and counted.

The in-memory channel layer lives in one process and its queues belong to the event loop
that waits on them, so for it the batch is sent on the loop of the connected consumers
(`attach_loop`). Other layers (channels_redis) are sent to from the thread's own loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from concurrent.futures import TimeoutError as FutureTimeout

from config.middleware import get_request_id
from logstream.events import ALL_GROUP, GROUP_MESSAGE_TYPE, build_event, tenant_group
from tenants.context import get_current_tenant

# Loggers whose records would feed back into the channel layer (or flood it).
IGNORED_LOGGERS = frozenset(
    {"channels", "channels_redis", "redis", "asyncio", "daphne", "twisted", "autobahn"}
)
SEND_TIMEOUT = 5.0

_local = threading.local()


class LogPublisher:
    """A bounded queue of events and the thread that publishes them."""

    def __init__(self, capacity: int = 10_000, batch_size: int = 200) -> None:
        self.batch_size = batch_size
        self._queue: queue.Queue[dict] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, int] = {}
        self.published = 0
        self.dropped = 0

    # --- producer side (any thread, never blocks) ---------------------------------------
    def submit(self, event: dict) -> bool:
        """Queue `event`; False (and counted as dropped) when the buffer is full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            return False
        self._ensure_thread()
        return True

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="logstream-publisher", daemon=True
                )
                self._thread.start()

    # --- consumers' event loops (in-memory layer) ---------------------------------------
    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loops[loop] = self._loops.pop(loop, 0) + 1

    def detach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            count = self._loops.pop(loop, 0) - 1
            if count > 0:
                self._loops[loop] = count

    def _consumer_loop(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            for loop in reversed(list(self._loops)):
                if loop.is_closed():
                    del self._loops[loop]
                elif loop.is_running():
                    return loop
        return None

    # --- publishing thread --------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "queued": self._queue.qsize()}

    def _next_batch(self) -> list[dict]:
        batch = [self._queue.get()]
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        _local.emitting = True  # whatever this thread logs is never published
        own_loop: asyncio.AbstractEventLoop | None = None
        while True:
            batch = self._next_batch()
            try:
                own_loop = self._publish(batch, own_loop)
            except Exception:  # the layer is down or full: these lines are lost
                self.dropped += len(batch)

    def _publish(self, batch, own_loop):
        from channels.layers import InMemoryChannelLayer, get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return own_loop
        if isinstance(layer, InMemoryChannelLayer):
            loop = self._consumer_loop()
            if loop is None:  # nobody in this process listens, and nobody else can
                return own_loop
            future = asyncio.run_coroutine_threadsafe(send_batch(layer, batch), loop)
            try:
                future.result(timeout=SEND_TIMEOUT)
            except FutureTimeout:
                future.cancel()
                raise
        else:
            if own_loop is None or own_loop.is_closed():
                own_loop = asyncio.new_event_loop()
            own_loop.run_until_complete(
                asyncio.wait_for(send_batch(layer, batch), timeout=SEND_TIMEOUT)
            )
        self.published += len(batch)
        return own_loop


async def send_batch(layer, batch: list[dict]) -> None:
    """One message per group: every event to `logs.all`, each tenant's to its own group."""
    await layer.group_send(ALL_GROUP, {"type": GROUP_MESSAGE_TYPE, "events": batch})
    by_tenant: dict[str, list[dict]] = defaultdict(list)
    for event in batch:
        if event["tenant"]:
            by_tenant[event["tenant"]].append(event)
    for slug, events in by_tenant.items():
        await layer.group_send(tenant_group(slug), {"type": GROUP_MESSAGE_TYPE, "events": events})


publisher = LogPublisher()


class ChannelLayerHandler(logging.Handler):
    """Publishes every record it gets to the live log stream (see the module docstring)."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_local, "emitting", False):
            return  # re-entry: the channel layer, or this handler, logged while publishing
        if record.name.partition(".")[0] in IGNORED_LOGGERS:
            return
        _local.emitting = True
        try:
            tenant = get_current_tenant()
            event = build_event(
                record,
                tenant=tenant.slug if tenant is not None else None,
                request_id=get_request_id(),
            )
            publisher.submit(event)
        except Exception:  # never fail the code that logged
            publisher.dropped += 1
        finally:
            _local.emitting = False
