"""Fixed-window counters in the shared cache (Redis when configured, so replicas share
them). Used by the global per-IP limit and the login throttles."""

from __future__ import annotations

import math
import time

from django.core.cache import cache


def _now() -> float:
    return time.time()


def count_hit(key: str, *, window: int = 60) -> tuple[int, int]:
    """Count one hit for `key` in the current `window`-second window.

    Returns `(hits so far in this window, seconds until the window ends)`. Raises whatever
    the cache raises when it is down; callers choose to fail open or closed.
    """
    now = _now()
    current = int(now // window)
    bucket = f"{key}:{current}"
    if hasattr(cache, "count_hit"):  # Redis: one round trip
        count = cache.count_hit(bucket, window + 1)
    else:
        try:
            count = 1 if cache.add(bucket, 1, window + 1) else cache.incr(bucket)
        except ValueError:  # the bucket expired between add and incr
            cache.set(bucket, 1, window + 1)
            count = 1
    return count, max(1, math.ceil((current + 1) * window - now))
