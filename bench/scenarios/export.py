"""The CSV export of the big tenant's contacts on one gunicorn worker: rows per second and
how much the worker's resident memory grows while it streams."""

from __future__ import annotations

import http.client
import signal
import threading
import time

from bench.context import BIG_SLUG, LIST_PATH, SINGLE_PORT, Context
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.servers import rss_kib

KEY = "export"
TITLE = "CSV export of {mode.big_contacts:,} contacts"
NEEDS = {Need.POSTGRESQL, Need.REDIS}
METRICS = (
    Metric("rows_per_s", "throughput", "rows/s", Target(">=", 50_000, "rows/s")),
    Metric("rss_growth_mb", "worker RSS growth", "MB", Target("<=", 50, "MB")),
)


def run(ctx: Context, run: int) -> dict:
    with ctx.gunicorn(SINGLE_PORT, workers=1) as server:
        worker = server.workers()[0]
        profilers = ctx.profilers(KEY, run, [worker], 30)
        # Warm the worker (imports, connections) before the baseline.
        conn = http.client.HTTPConnection("127.0.0.1", SINGLE_PORT, timeout=300)
        headers = {
            "Host": f"{BIG_SLUG}.localhost",
            "Authorization": f"Bearer {ctx.tokens[BIG_SLUG]}",
        }
        conn.request("GET", LIST_PATH, headers=headers)
        conn.getresponse().read()
        conn.close()
        base = rss_kib(worker)
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(worker))
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        conn = http.client.HTTPConnection("127.0.0.1", SINGLE_PORT, timeout=300)
        t0 = time.perf_counter()
        conn.request("GET", "/api/address-book/export?format=csv", headers=headers)
        resp = conn.getresponse()
        lines = 0
        size = 0
        while chunk := resp.read(1 << 16):
            lines += chunk.count(b"\n")  # CRLF line ends; no field holds a newline
            size += len(chunk)
        elapsed = time.perf_counter() - t0
        stop.set()
        sampler.join()
        conn.close()
        status = resp.status
        for proc in profilers:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            proc.wait(timeout=30)
    rows = lines - 1
    if status != 200 or rows < ctx.mode.big_contacts:
        raise RuntimeError(f"export answered {status} with {rows} rows in {elapsed:.1f}s")
    return {
        "rows_per_s": rows / elapsed,
        "rss_growth_mb": (peak[0] - base) / 1024,
        "rows": rows,
        "seconds": elapsed,
        "mbytes": size / 1e6,
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "rows_per_s": f"seconds {[round(r['seconds'], 1) for r in runs]} (the production "
        "worker timeout is 300 s)."
    }
