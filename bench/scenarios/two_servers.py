"""Two PostgreSQL servers, each behind its own PgBouncer, 500 tenants on each (the second
registered with the product's `add_database_server`, its tenants placed with
`provision_tenant(..., server=...)`), against 1,000 tenants on one server: round-robin,
each on a freshly started product server, alternated from run to run. Every answer is
checked (bench/rotate_check.lua): its contacts must belong to the tenant asked for."""

from __future__ import annotations

from bench.context import Context, raw
from bench.report import Target
from bench.scale import fresh_product, measure
from bench.scenarios import Metric, Need

KEY = "two_servers"
TITLE = (
    "same across 2 PostgreSQL servers x {mode.second_tenants:,} tenants vs 1 server x "
    "{mode.tenants:,}, round-robin, each behind PgBouncer"
)
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WRK, Need.SECOND_SERVER}
METRICS = (
    Metric("ratio", "throughput ratio", "", Target(">=", 0.95)),
    Metric("routing_errors", "routing errors (answers checked)", "", Target("<=", 0)),
)


def run(ctx: Context, run: int) -> dict:
    order = ("one", "two") if run % 2 == 0 else ("two", "one")
    hosts = {"one": raw("hosts-many.txt"), "two": raw("hosts-two.txt")}
    result = {}
    for side in order:
        with fresh_product(ctx) as server:
            result[side] = measure(
                ctx, server, tag=f"two-{side}-{run}", hosts=hosts[side], script="rotate_check.lua"
            )
        if "routing_checked" not in result[side]:
            raise RuntimeError("rotate_check.lua printed no routing summary")
    return {
        "ratio": result["two"]["rps"] / result["one"]["rps"],
        "routing_errors": result["two"]["routing_errors"] + result["one"]["routing_errors"],
        "checked": result["two"]["routing_checked"] + result["one"]["routing_checked"],
        "rps_one": result["one"]["rps"],
        "rps_two": result["two"]["rps"],
        "errors": result["one"]["errors"] + result["two"]["errors"],
        "first": order[0],
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "ratio": f"1 server {[round(r['rps_one']) for r in runs]} req/s, 2 servers "
        f"{[round(r['rps_two']) for r in runs]}; first measured {[r['first'] for r in runs]}; "
        f"HTTP errors {[r['errors'] for r in runs]}.",
        "routing_errors": f"answers checked {[r['checked'] for r in runs]}.",
    }
