"""1,000 tenants round-robin (uniform: every request for another tenant than the last 999),
as shipped (PgBouncer, cap 240), against one tenant measured first on the same freshly
started server: the throughput ratio and what a tenant switch costs.

The cost of a switch: with 1,000 tenants in rotation and 32 connections kept per worker,
every request is for a tenant whose connection the worker no longer holds, so the
difference in the workers' CPU per request (/proc) between the rotation and one tenant is
the CPU a switch costs the worker (pooler connect, tenant resolution, first statements on
a new session). The note also gives the wall-clock difference per request seen from the
throughput: 2 workers x (1/rps_many - 1/rps_one)."""

from __future__ import annotations

from bench.context import BENCH_SLUG, TUNED_TENANT_CAP, Context, raw
from bench.report import Target
from bench.scale import fresh_product, measure
from bench.scenarios import Metric, Need

KEY = "uniform"
TITLE = "same across {mode.tenants:,} tenants uniform round-robin, through PgBouncer, vs 1 tenant"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WRK}
METRICS = (
    Metric("ratio", "throughput ratio", "", Target(">=", 0.75)),
    Metric("switch_ms", "tenant switch, worker CPU per request", "ms", None),
    Metric("ratio_tuned", f"throughput ratio, tuned: cap {TUNED_TENANT_CAP}", "", None),
)
WORKERS = 2


def run(ctx: Context, run: int) -> dict:
    with fresh_product(ctx) as server:
        one = measure(
            ctx,
            server,
            tag=f"uniform-1-{run}",
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.tokens[BENCH_SLUG],
        )
        many = measure(
            ctx,
            server,
            tag=f"uniform-{run}",
            hosts=raw("hosts-many.txt"),
            sample_backends=True,
            profile=(KEY, run),
        )
    with fresh_product(ctx, env={"TENANT_MAX_OPEN_CONNECTIONS": str(TUNED_TENANT_CAP)}) as server:
        tuned = measure(ctx, server, tag=f"uniform-tuned-{run}", hosts=raw("hosts-many.txt"))
    return {
        "ratio": many["rps"] / one["rps"],
        "ratio_tuned": tuned["rps"] / one["rps"],
        "switch_ms": many["cpu_ms_per_req"] - one["cpu_ms_per_req"],
        "switch_wall_ms": WORKERS * 1000 * (1 / many["rps"] - 1 / one["rps"]),
        "rps_one": one["rps"],
        "rps_many": many["rps"],
        "cpu": [round(one["cpu_ms_per_req"], 2), round(many["cpu_ms_per_req"], 2)],
        "backends_max": many["backends_max"],
        "errors": one["errors"] + many["errors"],
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "ratio": f"1 tenant {[round(r['rps_one']) for r in runs]} req/s, 1,000 round-robin "
        f"{[round(r['rps_many']) for r in runs]}; errors {[r['errors'] for r in runs]}; "
        f"tenant backends at most {[r['backends_max'] for r in runs]}.",
        "switch_ms": "worker CPU ms/request (1 tenant, rotation) "
        f"{[r['cpu'] for r in runs]}: the difference; from the throughput, "
        f"{[round(r['switch_wall_ms'], 2) for r in runs]} ms of a worker's wall time.",
        "ratio_tuned": f"TENANT_MAX_OPEN_CONNECTIONS={TUNED_TENANT_CAP} (not shipped): a worker "
        "still meets each of 1,000 tenants after more than 480 others, so it still reconnects.",
    }
