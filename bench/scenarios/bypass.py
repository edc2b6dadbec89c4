"""The list with tenancy against the same view with tenancy bypassed
(`bench/settings_bypass.py`: no TenantMiddleware, no router, `default` on the bench
tenant's database): what resolution, routing and the token's tenant check cost."""

from __future__ import annotations

from bench.context import BENCH_SLUG, BYPASS_PORT, LIST_PATH, Context
from bench.load import wrk
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.scenarios.list import run as run_list

KEY = "bypass"
TITLE = "same with tenancy vs tenancy bypassed (bench/settings_bypass.py)"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER, Need.WRK}
METRICS = (Metric("ratio", "throughput ratio", "", Target(">=", 0.95)),)


def run(ctx: Context, run: int) -> dict:
    with_tenancy = run_list(ctx, run)["rps"]
    with ctx.gunicorn(BYPASS_PORT, settings="bench.settings_bypass"):
        bypass = wrk(
            BYPASS_PORT,
            LIST_PATH,
            seconds=ctx.mode.wrk_seconds,
            connections=32,
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.bypass_token,
            tag=f"bypass-{run}",
        )
    if bypass["errors"]:
        raise RuntimeError(f"bypass server answered {bypass['errors']} errors")
    return {"ratio": with_tenancy / bypass["rps"], "rps_bypass": bypass["rps"]}


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {"ratio": f"bypass {[round(r['rps_bypass']) for r in runs]} req/s."}
