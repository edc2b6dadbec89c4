"""The list with the per-IP rate limiter active as shipped (RateLimitMiddleware: one Redis
round trip, INCR + EXPIRE in a pipeline, on every request), on a freshly started server.
The limit is raised (LIMIT a minute, the shipped default is 1,200) so that it counts every
request without refusing any: all the load comes from 127.0.0.1. The counters are read
back from Redis after the run: they must have counted every request."""

from __future__ import annotations

from bench.context import BENCH_SLUG, REDIS_URL, Context
from bench.report import Target
from bench.scale import fresh_product, measure
from bench.scenarios import Metric, Need

LIMIT = 10_000_000

KEY = "rate_limit"
TITLE = "GET /api/address-book with the per-IP rate limiter counting (Redis), 32 conns"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WRK}
METRICS = (
    Metric("rps", "throughput", "req/s", Target(">=", 500, "req/s")),
    Metric("errors", "errors", "", Target("<=", 0)),
)


def run(ctx: Context, run: int) -> dict:
    with fresh_product(ctx, env={"RATE_LIMIT_PER_MINUTE": str(LIMIT)}) as server:
        _counters(delete=True)
        r = measure(
            ctx,
            server,
            tag=f"ratelimit-{run}",
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.tokens[BENCH_SLUG],
        )
        counted = _counters()
    if counted < r["requests"]:
        raise RuntimeError(f"the limiter counted {counted} of {r['requests']} requests")
    return {
        "rps": r["rps"],
        "errors": r["errors"],
        "counted": counted,
        "requests": r["requests"],
        "cpu_ms_per_req": r["cpu_ms_per_req"],
    }


def _counters(*, delete: bool = False) -> int:
    """The sum of the per-IP counters in the run's Redis database (deleted with `delete`)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match="*ratelimit:ip:*"))
    if delete:
        if keys:
            client.delete(*keys)
        return 0
    return sum(int(client.get(key) or 0) for key in keys)


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "rps": f"RATE_LIMIT_PER_MINUTE={LIMIT:,} (counting, never refusing); counted "
        f"{[r['counted'] for r in runs]} for {[r['requests'] for r in runs]} requests "
        "(wrk stops with a few in flight); worker CPU "
        f"{[round(r['cpu_ms_per_req'], 2) for r in runs]} ms/request."
    }
