"""What a request costs the server with 1, 100 and 1,000 tenants served by the same two
gunicorn workers, as shipped (tenants through PgBouncer, TENANT_MAX_OPEN_CONNECTIONS=32):
the workers' CPU per request (/proc), which must not grow with the number of tenants a
worker has touched. One freshly started server per run: the single tenant first, then a
round-robin over 100 tenants, then over 1,000 (each rotation warmed unmeasured first)."""

from __future__ import annotations

from bench.context import BENCH_SLUG, TUNED_TENANT_CAP, Context, raw
from bench.report import Target
from bench.scale import fresh_product, measure
from bench.scenarios import Metric, Need

KEY = "cpu_tenants"
TITLE = (
    "server CPU per request, 1 vs {mode.rr_tenants} vs {mode.tenants:,} tenants round-robin "
    "on the same 2 workers (PgBouncer, cap 240)"
)
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WRK}
METRICS = (
    Metric("ratio_100", "CPU/request, 100 tenants vs 1", "", Target("<=", 1.10)),
    Metric("ratio_1000", "CPU/request, 1,000 tenants vs 1", "", Target("<=", 1.10)),
    Metric(
        "ratio_100_tuned", f"CPU/request, 100 tenants vs 1, tuned: cap {TUNED_TENANT_CAP}", "", None
    ),
    Metric(
        "ratio_1000_tuned",
        f"CPU/request, 1,000 tenants vs 1, tuned: cap {TUNED_TENANT_CAP}",
        "",
        None,
    ),
)


def run(ctx: Context, run: int) -> dict:
    with fresh_product(ctx) as server:
        one = measure(
            ctx,
            server,
            tag=f"cpu-1-{run}",
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.tokens[BENCH_SLUG],
        )
        hundred = measure(ctx, server, tag=f"cpu-100-{run}", hosts=raw("hosts-rr.txt"))
        thousand = measure(ctx, server, tag=f"cpu-1000-{run}", hosts=raw("hosts-many.txt"))
    # The tuned variant: the same rotations on a fresh server with a cap that holds a
    # connection for each of the 100 tenants (the single-tenant figure is the same).
    with fresh_product(ctx, env={"TENANT_MAX_OPEN_CONNECTIONS": str(TUNED_TENANT_CAP)}) as server:
        hundred_t = measure(ctx, server, tag=f"cpu-100-tuned-{run}", hosts=raw("hosts-rr.txt"))
        thousand_t = measure(ctx, server, tag=f"cpu-1000-tuned-{run}", hosts=raw("hosts-many.txt"))
    base = one["cpu_ms_per_req"]
    every = (one, hundred, thousand, hundred_t, thousand_t)
    return {
        "ratio_100": hundred["cpu_ms_per_req"] / base,
        "ratio_1000": thousand["cpu_ms_per_req"] / base,
        "ratio_100_tuned": hundred_t["cpu_ms_per_req"] / base,
        "ratio_1000_tuned": thousand_t["cpu_ms_per_req"] / base,
        "cpu_ms": [round(r["cpu_ms_per_req"], 2) for r in every],
        "rps": [round(r["rps"] or 0) for r in every],
        "errors": sum(r["errors"] for r in every),
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "ratio_100": "worker CPU ms/request (1, 100, 1,000 tenants; tuned 100, 1,000) per run "
        f"{[r['cpu_ms'] for r in runs]}; req/s {[r['rps'] for r in runs]}; errors "
        f"{[r['errors'] for r in runs]}."
    }
