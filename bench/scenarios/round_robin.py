"""The list over many tenants round-robin (`bench/rotate.lua`) against one tenant in the
same run: what switching tenants costs, and whether it opens database sessions."""

from __future__ import annotations

from bench.context import HTTP_PORT, LIST_PATH, PREFIX, Context, raw
from bench.load import wrk
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.scenarios.list import run as run_list
from bench.servers import sessions_opened

KEY = "round_robin"
TITLE = "same across {mode.rr_tenants} tenants round-robin vs 1 tenant"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER, Need.WRK}
METRICS = (Metric("ratio", "throughput ratio", "", Target(">=", 0.90)),)
FANS_OUT_CONNECTIONS = True


def run(ctx: Context, run: int) -> dict:
    one = run_list(ctx, run)["rps"]
    rotation = {
        "connections": 32,
        "script": "rotate.lua",
        "script_args": [str(raw("hosts-rr.txt"))],
    }
    if run == 0:
        # Steady state, as for the single tenant (the runner's warm-up): both workers open
        # their connections to the rotation's tenants before anything is measured.
        wrk(HTTP_PORT, LIST_PATH, seconds=3, tag="rr-warm", **rotation)
    sessions = sessions_opened(ctx.pg, PREFIX)
    many = wrk(HTTP_PORT, LIST_PATH, seconds=ctx.mode.wrk_seconds, tag=f"rr-{run}", **rotation)
    opened = sessions_opened(ctx.pg, PREFIX) - sessions
    return {
        "ratio": many["rps"] / one,
        "rps_many": many["rps"],
        "rps_one": one,
        "sessions_per_req": opened / max(1, many["requests"]),
        "errors": many["errors"],
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "ratio": f"1 tenant {[round(r['rps_one']) for r in runs]} req/s, "
        f"{ctx.mode.rr_tenants} tenants {[round(r['rps_many']) for r in runs]}; new DB "
        f"sessions per request {[round(r['sessions_per_req'], 2) for r in runs]}."
    }
