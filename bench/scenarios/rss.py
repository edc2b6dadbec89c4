"""One gunicorn worker after requests for every bench tenant: its resident memory, and the
tenant connections it holds against the product's default cap (through the pooler, as
shipped: its TCP connections to the pooler's port, from /proc; direct, its backends on
tenant databases)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from bench.context import DEFAULT_TENANT_CAP, LIST_PATH, PREFIX, SINGLE_PORT, Context, raw
from bench.load import wrk
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.servers import connections_held, local_ports_to, rss_kib

KEY = "rss"
TITLE = "1 gunicorn worker after requests for all {mode.tenants:,}+ tenants"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WRK}
METRICS = (
    Metric("rss_mb", "RSS", "MB", Target("<=", 300, "MB")),
    Metric("connections", "tenant connections held", "", Target("<=", DEFAULT_TENANT_CAP)),
)


def run(ctx: Context, run: int) -> dict:
    hosts = raw("hosts-all.txt")
    tenants = len(hosts.read_text().splitlines())
    with ctx.gunicorn(SINGLE_PORT, workers=1, tenant_cap=DEFAULT_TENANT_CAP) as server:
        # wrk in short slices, each continuing the rotation, until every tenant was served.
        requests = errors = 0
        deadline = time.time() + (240 if ctx.mode.name == "full" else 30)
        while requests < tenants + 50 and time.time() < deadline:
            r = wrk(
                SINGLE_PORT,
                LIST_PATH,
                seconds=3,
                connections=8,
                script="rotate.lua",
                script_args=[str(hosts), str(requests)],
                tag=f"rss-{run}",
            )
            requests += r["requests"]
            errors += r["errors"]
        time.sleep(0.5)
        worker = server.workers()[0]
        rss = rss_kib(worker) / 1024
        held, held_all = connections_held(ctx.pg, worker, PREFIX)
        if ctx.pooler:
            held = len(local_ports_to(worker, urlsplit(ctx.pooler).port))
    if requests < tenants:
        raise RuntimeError(f"only {requests} requests for {tenants} tenants")
    return {
        "rss_mb": rss,
        "connections": held,
        "connections_all": held_all,
        "requests": requests,
        "tenants": tenants,
        "errors": errors,
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "connections": f"cap TENANT_MAX_OPEN_CONNECTIONS={DEFAULT_TENANT_CAP}; "
        + ("connections to the pooler; " if ctx.pooler else "")
        + "requests per run "
        f"{[r['requests'] for r in runs]} over {runs[0]['tenants']} tenants."
    }
