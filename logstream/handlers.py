"""The logging handler that publishes records to the live log stream.

`LogStreamHandler.emit` takes what only the calling thread knows (the message, the
tenant, the request id) and appends it to a bounded deque. It never blocks, never wakes
another thread (unless the publisher has gone idle) and never raises into the code that
logged; when the deque is full the record is dropped and counted.

A daemon thread drains the deque every `FLUSH_INTERVAL` seconds, turns the records into
redacted events and publishes each batch once:

- with a Redis channel layer (channels_redis), as one `PUBLISH` on the Redis pub/sub
  channel `<layer prefix>.logs`, on the layer's first host. Every process with log stream
  clients subscribes to it once (`logstream.fanout`), so each batch crosses Redis once per
  process, not once per client;
- with the in-memory layer, straight to this process's clients (`logstream.fanout`).

Nothing leaves the process before it is redacted.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time

from config.middleware import get_request_id
from logstream.events import make_event, record_line, record_tenant, record_traceback
from logstream.redaction import redact_secrets
from tenants.context import get_current_tenant

# Loggers whose records would feed back into the channel layer (or flood it).
IGNORED_LOGGERS = frozenset(
    {"channels", "channels_redis", "redis", "asyncio", "daphne", "twisted", "autobahn"}
)
FLUSH_INTERVAL = 0.01  # seconds between two drains while records keep coming
IDLE_AFTER = 50  # empty drains in a row before the thread sleeps until the next record
REDIS_TIMEOUT = 1.0

_local = threading.local()


class LogPublisher:
    """A bounded deque of records and the thread that publishes them."""

    def __init__(self, capacity: int = 10_000, batch_size: int = 500) -> None:
        self.capacity = capacity
        self.batch_size = batch_size
        self.published = 0
        self.dropped = 0
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        """A new, empty publisher state (also in a forked child, which has no thread)."""
        self._pending: collections.deque[tuple] = collections.deque()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = False
        self._wakeup = threading.Event()
        self._redis = None
        self._redis_url = None

    # --- producer side (any thread, never blocks) ---------------------------------------
    def submit(self, item: tuple) -> bool:
        """Queue a record (see `LogStreamHandler.emit`); False, and counted as dropped,
        when the buffer is full."""
        if len(self._pending) >= self.capacity:
            self.dropped += 1
            return False
        self._pending.append(item)
        if self._thread is None:
            self._ensure_thread()
        elif self._idle:
            self._wakeup.set()
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="logstream-publisher", daemon=True)
                thread.start()
                self._thread = thread

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "queued": len(self._pending)}

    # --- publishing thread --------------------------------------------------------------
    def _run(self) -> None:
        _local.emitting = True  # whatever this thread logs is never published
        empty_rounds = 0
        while True:
            if self._pending:
                empty_rounds = 0
            else:
                empty_rounds += 1
                if empty_rounds >= IDLE_AFTER:
                    self._sleep_until_next_record()
                    empty_rounds = 0
            time.sleep(FLUSH_INTERVAL)
            self.flush()

    def _sleep_until_next_record(self) -> None:
        self._idle = True
        if not self._pending:  # a record appended before `_idle` was set has no wake-up
            self._wakeup.wait(timeout=1.0)
        self._wakeup.clear()
        self._idle = False

    def flush(self) -> None:
        """Publish everything queued so far, in batches (the publishing thread's work)."""
        pending = self._pending
        while pending:
            batch = []
            while pending and len(batch) < self.batch_size:
                batch.append(pending.popleft())
            try:
                self._publish([to_event(item) for item in batch])
            except Exception:  # the layer is down or full: these lines are lost
                self.dropped += len(batch)

    def _publish(self, events: list[dict]) -> None:
        from logstream import fanout

        target = fanout.redis_target()
        if target is None:
            fanout.deliver_locally(events)
        else:
            url, channel = target
            if self._redis is None or self._redis_url != url:
                import redis

                self._redis = redis.Redis.from_url(
                    url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
                )
                self._redis_url = url
            self._redis.publish(channel, json.dumps(events, separators=(",", ":")))
        self.published += len(events)


def to_event(item: tuple) -> dict:
    """The redacted event of a queued record (see `LogStreamHandler.emit`)."""
    created, level, levelno, target, text, traceback, tenant, request_id = item
    if traceback is not None:
        traceback = redact_secrets(traceback)
    return make_event(
        created,
        level,
        levelno,
        target,
        redact_secrets(text),
        tenant,
        request_id,
        traceback=traceback,
    )


publisher = LogPublisher()
_ignored: dict[str, bool] = {}


class LogStreamHandler(logging.Handler):
    """Publishes every record it gets to the live log stream (see the module docstring)."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_local, "emitting", False):
            return  # re-entry: the publishing thread, or this handler, logged
        name = record.name
        ignored = _ignored.get(name)
        if ignored is None:
            ignored = _ignored[name] = name.partition(".")[0] in IGNORED_LOGGERS
        if ignored:
            return
        _local.emitting = True
        try:
            publisher.submit(
                (
                    record.created,
                    record.levelname,
                    record.levelno,
                    name,
                    record_line(record),
                    record_traceback(record) if record.exc_info or record.exc_text else None,
                    record_tenant(record, get_current_tenant()),
                    get_request_id(),
                )
            )
        except Exception:  # never fail the code that logged
            publisher.dropped += 1
        finally:
            _local.emitting = False
