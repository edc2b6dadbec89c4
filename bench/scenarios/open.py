"""The list at a fixed 200 req/s (open loop, `bench/openloop.py`): latency measured from
each request's due time, so a server that falls behind shows up as latency."""

from __future__ import annotations

import json
import subprocess

from bench.context import BENCH_SLUG, HTTP_PORT, LIST_PATH, Context, raw
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.servers import PY, ROOT

KEY = "open"
TITLE = "same, open loop at 200 req/s"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER}
METRICS = (
    Metric("p50_ms", "p50", "ms", Target("<=", 10, "ms")),
    Metric("p99_ms", "p99", "ms", Target("<=", 50, "ms")),
)


def run(ctx: Context, run: int) -> dict:
    argv = [
        PY,
        "-m",
        "bench.openloop",
        "--url",
        f"http://127.0.0.1:{HTTP_PORT}{LIST_PATH}",
        "--host",
        f"{BENCH_SLUG}.localhost",
        "--header",
        f"Authorization: Bearer {ctx.tokens[BENCH_SLUG]}",
        "--rate",
        "200",
        "--duration",
        str(ctx.mode.open_seconds),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=True)
    raw(f"openloop-{run}.json").write_text(out.stdout)
    r = json.loads(out.stdout)
    return {
        "p50_ms": r["p50_s"] * 1000 if r["p50_s"] is not None else None,
        "p99_ms": r["p99_s"] * 1000 if r["p99_s"] is not None else None,
        "errors": r["errors"],
        "achieved": r["achieved_rate"],
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {"p99_ms": f"errors {[r['errors'] for r in runs]}."}
