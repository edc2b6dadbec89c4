"""The WebSocket log stream in its default mode, one record per frame (no `?batch=`), at a
rate it can hold on these cores: `mode.ws_clients` clients x `mode.ws_frame_rate`
records/s (100 x 100 in a full run: 10,000 frames/s out of daphne). The batched mode stays
beside it at 1,000 records/s (bench/scenarios/ws.py)."""

from __future__ import annotations

from bench.context import Context
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.scenarios.ws import notes as ws_notes
from bench.scenarios.ws import run_clients

KEY = "ws_frames"
TITLE = (
    "{mode.ws_clients} WebSocket log clients, {mode.ws_frame_rate} records/s for "
    "{mode.ws_seconds} s, Redis, daphne, one record per frame (the default)"
)
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WS_SERVER, Need.WEBSOCKETS}
METRICS = (
    Metric("delivered_pct", "delivered to clients keeping up", "%", Target(">=", 99.9, "%")),
    Metric("p99_ms", "p99 delivery", "ms", Target("<=", 100, "ms")),
)


def run(ctx: Context, run: int) -> dict:
    return run_clients(ctx, run, rate=ctx.mode.ws_frame_rate, batch_ms=0, key=KEY)


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return ws_notes(runs, ctx)
