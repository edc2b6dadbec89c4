"""WebSocket log clients on daphne (`bench/wsbench.py clients`, in two processes) while a
generator process logs records at a fixed rate through the project's logging (Redis):
the share delivered to clients that keep up, and the delivery latency."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from bench.context import BENCH_SLUG, WS_PORT, Context, raw
from bench.report import Target, percentile
from bench.scenarios import Metric, Need
from bench.servers import PY, ROOT

# The clients ask for batched frames (`?batch=10`: the records of up to 10 ms in one frame,
# one line each), the log stream's mode for high-volume clients: one record per frame is
# 100,000 frames/s here, about 9 us of daphne CPU and 9 us of client CPU each, more than
# these 2 cores have.
BATCH_MS = 10

KEY = "ws"
TITLE = (
    "{mode.ws_clients} WebSocket log clients, {mode.ws_rate} records/s for "
    "{mode.ws_seconds} s, Redis, daphne, ?batch=" + str(BATCH_MS) + " frames"
)
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.WS_SERVER, Need.WEBSOCKETS}
METRICS = (
    Metric("delivered_pct", "delivered to clients keeping up", "%", Target(">=", 99.9, "%")),
    Metric("p99_ms", "p99 delivery", "ms", Target("<=", 100, "ms")),
)


def run(ctx: Context, run: int) -> dict:
    return run_clients(ctx, run, rate=ctx.mode.ws_rate, batch_ms=BATCH_MS, key=KEY)


def run_clients(ctx: Context, run: int, *, rate: int, batch_ms: int, key: str) -> dict:
    """`mode.ws_clients` clients asking for `?batch=batch_ms` frames (0: one record per
    frame, the default mode) while `rate` records/s are logged for `mode.ws_seconds`."""
    mode = ctx.mode
    expect = rate * mode.ws_seconds
    procs = 2 if mode.ws_clients >= 20 else 1
    per = mode.ws_clients // procs
    clients = []
    for p in range(procs):
        ready = raw(f"{key}-ready-{run}-{p}")
        ready.unlink(missing_ok=True)
        out = raw(f"{key}-clients-{run}-{p}.json")
        out.unlink(missing_ok=True)
        argv = [
            PY,
            "-m",
            "bench.wsbench",
            "clients",
            "--host",
            f"{BENCH_SLUG}.localhost",
            "--port",
            str(WS_PORT),
            "--token",
            ctx.tokens[BENCH_SLUG],
            "--n",
            str(per),
            "--seconds",
            str(mode.ws_seconds + 60),
            "--expect",
            str(expect),
            "--ready-file",
            str(ready),
            "--out",
            str(out),
            "--batch-ms",
            str(batch_ms),
        ]
        clients.append((subprocess.Popen(argv, cwd=ROOT, env=ctx.env), ready, out))
    deadline = time.time() + 60
    while not all(r.exists() for _, r, _ in clients):
        if time.time() > deadline or any(p.poll() is not None for p, _, _ in clients):
            for p, _, _ in clients:
                p.kill()
            raise RuntimeError("WebSocket clients did not connect")
        time.sleep(0.1)
    time.sleep(0.5)
    pids = [ctx.ws_server.proc.pid] if ctx.ws_server and ctx.ws_server.proc else []
    profilers = ctx.profilers(key, run, pids + [p.pid for p, _, _ in clients], 20)
    gen = subprocess.run(
        [
            PY,
            "-m",
            "bench.wsbench",
            "generate",
            "--tenant",
            BENCH_SLUG,
            "--rate",
            str(rate),
            "--seconds",
            str(mode.ws_seconds),
        ],
        cwd=ROOT,
        env=ctx.env,
        capture_output=True,
        text=True,
        timeout=mode.ws_seconds + 120,
        check=True,
    )
    for proc in profilers:
        proc.wait(timeout=60)
    generated = json.loads(gen.stdout.strip().splitlines()[-1])
    # Clients stop once they have everything, or 10 s after the generator finished.
    grace = time.time() + 10
    while time.time() < grace and any(p.poll() is None for p, _, _ in clients):
        time.sleep(0.2)
    for p, _, _ in clients:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    results = []
    for p, _, out in clients:
        p.wait(timeout=30)
        if out.exists():
            results.extend(json.loads(out.read_text())["clients"])
    summary = summarize(results, generated["sent"], mode.ws_clients, generated)
    return {**summary, "batch_ms": batch_ms, "rate": rate}


def summarize(clients: list[dict], sent: int, wanted: int, generated: dict) -> dict:
    """Delivery over the clients that never saw a `log messages dropped` notice."""
    keeping_up = [c for c in clients if not c["drop_notices"]]
    received_all = sum(c["received"] for c in clients)
    received_ok = sum(c["received"] for c in keeping_up)
    latencies = sorted(x for c in keeping_up for x in c["latencies"])
    return {
        "delivered_pct": 100 * received_ok / (sent * len(keeping_up)) if keeping_up else 0.0,
        "p99_ms": (percentile(latencies, 99) or 0) * 1000 if latencies else None,
        "p50_ms": (percentile(latencies, 50) or 0) * 1000 if latencies else None,
        "clients_connected": len(clients),
        "clients_wanted": wanted,
        "clients_keeping_up": len(keeping_up),
        "delivered_all_pct": 100 * received_all / (sent * max(1, len(clients))),
        "generated": generated,
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "delivered_pct": f"clients keeping up {[r['clients_keeping_up'] for r in runs]} of "
        f"{runs[0]['clients_wanted']}; delivered to all clients "
        f"{[round(r['delivered_all_pct'], 2) for r in runs]}%."
    }
