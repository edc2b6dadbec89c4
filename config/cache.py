"""The Redis cache with a circuit breaker: once a call fails (Redis down or partitioned),
every call fails at once for `RETRY_AFTER` seconds instead of each waiting for its own
socket timeout; then the next call tries Redis again. Callers already treat a cache error
as "no cache" (README, Failure policy), so an outage costs a request at most one timeout.
"""

from __future__ import annotations

import functools
import logging
import threading
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

logger = logging.getLogger("config.cache")

RETRY_AFTER = 2.0  # seconds
# Per process and per server list: the cache object is per thread, the outage is not.
_open_until: dict[tuple[str, ...], float] = {}
_lock = threading.Lock()


class CacheUnavailable(RedisConnectionError):
    """Raised without trying while the circuit is open."""


def _guarded(real):
    @functools.wraps(real)
    def call(self, *args, **kwargs):
        key = self._breaker_key
        if _open_until.get(key, 0.0) > time.monotonic():
            raise CacheUnavailable("cache circuit open")
        try:
            result = real(self, *args, **kwargs)
        except (RedisError, OSError):
            with _lock:
                first = key not in _open_until
                _open_until[key] = time.monotonic() + RETRY_AFTER
            if first:
                logger.warning("Cache unavailable; failing fast for %ss at a time", RETRY_AFTER)
            raise
        if key in _open_until:
            with _lock:
                if _open_until.pop(key, None) is not None:
                    logger.warning("Cache available again")
        return result

    return call


class CircuitBreakingRedisCacheClient(RedisCacheClient):
    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._breaker_key = tuple(servers)

    def count_hit(self, key, timeout: int) -> int:
        """INCR `key`, giving it `timeout` seconds to live if it has no expiry yet: one
        round trip (a pipeline), where Django's add-then-incr takes up to three."""
        pipe = self.get_client(key, write=True).pipeline()
        pipe.incr(key)
        pipe.expire(key, timeout, nx=True)
        count, _ = pipe.execute()
        return int(count)


for _name in (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
    "count_hit",
):
    setattr(
        CircuitBreakingRedisCacheClient,
        _name,
        _guarded(getattr(CircuitBreakingRedisCacheClient, _name)),
    )


class CircuitBreakingRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = CircuitBreakingRedisCacheClient

    def count_hit(self, key, timeout: int, version=None) -> int:
        """The hits counted so far on `key`, this one included (see the client's)."""
        key = self.make_and_validate_key(key, version=version)
        return self._cache.count_hit(key, timeout)
