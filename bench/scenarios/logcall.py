"""What one log call costs its caller with the production handlers (`bench/logcall.py`,
in a process of its own inside the bench tenant's context)."""

from __future__ import annotations

import json
import subprocess

from bench.context import BENCH_SLUG, Context
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.servers import PY, ROOT

KEY = "logcall"
TITLE = "one log call (console + channel-layer handler), caller's cost"
NEEDS = {Need.POSTGRESQL, Need.REDIS}
METRICS = (Metric("mean_us", "mean", "us", Target("<=", 50, "us")),)


def run(ctx: Context, run: int) -> dict:
    out = subprocess.run(
        [PY, "-m", "bench.logcall", "--tenant", BENCH_SLUG, "--n", str(ctx.mode.log_calls)],
        cwd=ROOT,
        env=ctx.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the console handler's output
        text=True,
        check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"mean_us": r["mean_us"], "p50_us": r["p50_us"], "p99_us": r["p99_us"]}
