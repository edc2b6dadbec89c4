"""Logins per second (`bench/login.lua` posts the bench admin's credentials): mostly the
Argon2id verify itself."""

from __future__ import annotations

from bench.context import BENCH_SLUG, HTTP_PORT, Context, raw
from bench.load import wrk
from bench.report import Target
from bench.scenarios import Metric, Need

KEY = "login"
TITLE = "POST /api/auth/login (Argon2id m=19MiB t=2 p=1), 8 conns"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER, Need.WRK}
METRICS = (Metric("rps", "throughput", "logins/s", Target(">=", 60, "logins/s")),)


def run(ctx: Context, run: int) -> dict:
    r = wrk(
        HTTP_PORT,
        "/api/auth/login",
        seconds=ctx.mode.wrk_seconds,
        connections=8,
        host=f"{BENCH_SLUG}.localhost",
        script="login.lua",
        script_args=[str(raw("login.json"))],
        tag=f"login-{run}",
    )
    return {"rps": r["rps"], "errors": r["errors"]}
