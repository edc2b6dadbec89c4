"""This product against a minimal django-tenants project (bench/peer/: a schema per tenant,
the same authenticated list of 50 contacts, gunicorn with 2 sync workers, persistent
connections, straight to the same PostgreSQL), both as shipped: one tenant, and 100
tenants round-robin. Every figure on a freshly started server (bench.scale), the two
projects alternated within a run and their order swapped from one run to the next."""

from __future__ import annotations

from bench.context import BENCH_SLUG, Context, raw
from bench.report import Target
from bench.scale import fresh_peer, fresh_product, measure, peer_tenant
from bench.scenarios import Metric, Need

KEY = "peer"
TITLE = (
    "same vs django-tenants (schema per tenant, bench/peer/), 1 tenant and "
    "{mode.rr_tenants} tenants round-robin, fresh servers, alternated"
)
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WRK, Need.PEER}
METRICS = (
    Metric("ratio_100", "throughput vs django-tenants, 100 tenants", "", Target(">=", 1.0)),
    Metric("ratio_1", "throughput vs django-tenants, 1 tenant", "", Target(">=", 1.3)),
)


def run(ctx: Context, run: int) -> dict:
    sides = ("product", "peer") if run % 2 == 0 else ("peer", "product")
    one: dict[str, dict] = {}
    many: dict[str, dict] = {}
    peer_host, peer_token = peer_tenant()
    single = {
        "product": {"host": f"{BENCH_SLUG}.localhost", "token": ctx.tokens[BENCH_SLUG]},
        "peer": {"host": peer_host, "token": peer_token},
    }
    rotation = {"product": raw("hosts-rr.txt"), "peer": raw("peer-hosts-rr.txt")}
    for side in sides:
        with _fresh(ctx, side) as server:
            one[side] = measure(ctx, server, tag=f"peer-{side}-1-{run}", **single[side])
    for side in sides:
        with _fresh(ctx, side) as server:
            many[side] = measure(ctx, server, tag=f"peer-{side}-many-{run}", hosts=rotation[side])
    figures = (("1", one), ("many", many))
    errors = sum(r["errors"] for r in (*one.values(), *many.values()))
    if errors:
        raise RuntimeError(f"{errors} errors: see bench/results/raw/wrk-peer-*-{run}.txt")
    return {
        "ratio_100": many["product"]["rps"] / many["peer"]["rps"],
        "ratio_1": one["product"]["rps"] / one["peer"]["rps"],
        "first": sides[0],
        **{f"rps_{n}_{side}": r[side]["rps"] for n, r in figures for side in sides},
        **{f"cpu_{n}_{side}": r[side]["cpu_ms_per_req"] for n, r in figures for side in sides},
    }


def _fresh(ctx: Context, side: str):
    return fresh_product(ctx) if side == "product" else fresh_peer(ctx)


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    def figures(n: str) -> str:
        return (
            f"this product {[round(r[f'rps_{n}_product']) for r in runs]} req/s "
            f"({[round(r[f'cpu_{n}_product'], 1) for r in runs]} ms worker CPU/request), "
            f"django-tenants {[round(r[f'rps_{n}_peer']) for r in runs]} req/s "
            f"({[round(r[f'cpu_{n}_peer'], 1) for r in runs]} ms)"
        )

    order = f"first measured per run: {[r['first'] for r in runs]}."
    return {"ratio_100": f"{figures('many')}; {order}", "ratio_1": f"{figures('1')}."}
