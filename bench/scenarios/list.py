"""The address book's first page on the shared HTTP server, closed loop (wrk): throughput,
errors, and what a request costs (server CPU, statements, new database sessions)."""

from __future__ import annotations

from bench.context import BENCH_SLUG, HTTP_PORT, LIST_PATH, PREFIX, Context
from bench.load import wrk
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.servers import cpu_seconds, database_counters

KEY = "list"
TITLE = "GET /api/address-book, 32 conns, closed loop (wrk)"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER, Need.WRK}
METRICS = (
    Metric("rps", "throughput", "req/s", Target(">=", 500, "req/s")),
    Metric("errors", "errors", "", Target("<=", 0)),
)


def run(ctx: Context, run: int) -> dict:
    dbname = f"{PREFIX}{BENCH_SLUG}"
    before = database_counters(ctx.pg, dbname)
    workers = ctx.http_server.workers() if ctx.http_server else []
    cpu_before = cpu_seconds(workers)
    r = wrk(
        HTTP_PORT,
        LIST_PATH,
        seconds=ctx.mode.wrk_seconds,
        connections=32,
        host=f"{BENCH_SLUG}.localhost",
        token=ctx.tokens[BENCH_SLUG],
        tag=f"list-{run}",
    )
    after = database_counters(ctx.pg, dbname)
    cpu = cpu_seconds(workers) - cpu_before
    requests = max(1, r["requests"])
    return {
        "rps": r["rps"],
        "errors": r["errors"],
        "p50_ms": (r.get("p50_s") or 0) * 1000,
        # Evidence for the profile: connections opened and statements run per request.
        "sessions_per_req": (after[0] - before[0]) / requests,
        "xacts_per_req": (after[1] - before[1]) / requests,
        # Server CPU per request: what the throughput would be on idle cores.
        "cpu_ms_per_req": 1000 * cpu / requests,
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "rps": f"server CPU {[round(r['cpu_ms_per_req'], 1) for r in runs]} ms/request; "
        f"{round(runs[0]['xacts_per_req'], 1)} statements/request; "
        f"{runs[0]['sessions_per_req']:.3f} new DB sessions/request."
    }
