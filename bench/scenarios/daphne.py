"""The list on one daphne process (`CONN_MAX_AGE=0`) against gunicorn's 2 sync workers in
the same run: the evidence for serving HTTP on gunicorn and only WebSockets on daphne."""

from __future__ import annotations

from bench.context import BENCH_SLUG, DAPHNE_PORT, LIST_PATH, Context
from bench.load import wrk
from bench.scenarios import Metric, Need
from bench.scenarios.list import run as run_list

KEY = "daphne"
TITLE = "list on daphne (1 process, CONN_MAX_AGE=0) vs gunicorn (2 sync workers)"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER, Need.WRK}
METRICS = (
    Metric("daphne_rps", "daphne throughput", "req/s", None),
    Metric("ratio", "gunicorn / daphne", "", None),
)


def run(ctx: Context, run: int) -> dict:
    g = run_list(ctx, run)["rps"]
    with ctx.daphne(DAPHNE_PORT):
        d = wrk(
            DAPHNE_PORT,
            LIST_PATH,
            seconds=ctx.mode.wrk_seconds,
            connections=32,
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.tokens[BENCH_SLUG],
            tag=f"daphne-{run}",
        )
    return {"daphne_rps": d["rps"], "ratio": g / d["rps"] if d["rps"] else None}


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {"ratio": "figures of bench/README.md 'server model'."}
