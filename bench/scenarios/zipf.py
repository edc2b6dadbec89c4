"""1,000 tenants, requests spread Zipf-like (the tenant of rank k drawn with probability
proportional to 1/k^1.1: a few hot tenants, a long tail; bench/rotate.lua), as shipped
(PgBouncer with the compose file's limits, cap 240), against one tenant measured first on
the same freshly started server. PostgreSQL backends on tenant databases are sampled from
pg_stat_activity during the run: they must stay within the pooler's max_user_connections."""

from __future__ import annotations

from bench.context import BENCH_SLUG, TUNED_TENANT_CAP, Context, raw
from bench.report import Target
from bench.scale import fresh_product, measure
from bench.scenarios import Metric, Need
from bench.servers import pgbouncer_defaults

EXPONENT = 1.1
POOLER_LIMIT = int(pgbouncer_defaults()["PGBOUNCER_MAX_USER_CONNECTIONS"])

KEY = "zipf"
TITLE = (
    "same across {mode.tenants:,} tenants, Zipf-like (s=" + str(EXPONENT) + "), through "
    "PgBouncer, vs 1 tenant"
)
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WRK}
METRICS = (
    Metric("ratio", "throughput ratio", "", Target(">=", 0.90)),
    Metric(
        "backends_max",
        "PostgreSQL backends on tenant databases (max sampled)",
        "",
        Target("<=", POOLER_LIMIT),
    ),
    Metric("errors", "errors", "", Target("<=", 0)),
    Metric("ratio_tuned", f"throughput ratio, tuned: cap {TUNED_TENANT_CAP}", "", None),
)


def run(ctx: Context, run: int) -> dict:
    with fresh_product(ctx) as server:
        one = measure(
            ctx,
            server,
            tag=f"zipf-1-{run}",
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.tokens[BENCH_SLUG],
        )
        many = measure(
            ctx,
            server,
            tag=f"zipf-{run}",
            hosts=raw("hosts-zipf.txt"),
            script_args=(str(run), f"zipf={EXPONENT}"),
            sample_backends=True,
            profile=(KEY, run),
        )
    # The tuned variant, on a fresh server of its own; its baseline is the one above (one
    # tenant holds one connection whatever the cap).
    with fresh_product(ctx, env={"TENANT_MAX_OPEN_CONNECTIONS": str(TUNED_TENANT_CAP)}) as server:
        tuned = measure(
            ctx,
            server,
            tag=f"zipf-tuned-{run}",
            hosts=raw("hosts-zipf.txt"),
            script_args=(str(run), f"zipf={EXPONENT}"),
            sample_backends=True,
        )
    return {
        "ratio": many["rps"] / one["rps"],
        "ratio_tuned": tuned["rps"] / one["rps"],
        "backends_max_tuned": tuned["backends_max"],
        "errors_tuned": tuned["errors"],
        "backends_max": many["backends_max"],
        "backends_active_max": many["backends_active_max"],
        "errors": many["errors"] + one["errors"],
        "rps_one": one["rps"],
        "rps_many": many["rps"],
        "cpu": [round(one["cpu_ms_per_req"], 2), round(many["cpu_ms_per_req"], 2)],
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "ratio": f"1 tenant {[round(r['rps_one']) for r in runs]} req/s, Zipf "
        f"{[round(r['rps_many']) for r in runs]}; worker CPU ms/request (1, Zipf) "
        f"{[r['cpu'] for r in runs]}.",
        "backends_max": f"pooler max_user_connections {POOLER_LIMIT}; of them active at most "
        f"{[r['backends_active_max'] for r in runs]}.",
        "ratio_tuned": f"TENANT_MAX_OPEN_CONNECTIONS={TUNED_TENANT_CAP} (not shipped), the same "
        f"pooler; backends at most {[r['backends_max_tuned'] for r in runs]}; errors "
        f"{[r['errors_tuned'] for r in runs]}.",
    }
