"""WebSocket log stream load: `clients` connects N log stream clients and counts what they
receive; `generate` logs records at a fixed rate through the project's logging (the
LogStreamHandler, Redis channel layer) inside a tenant context.

Each generated record's message is `bench-ws seq=<n> t=<unix time>`; a client's delivery
latency is its receive time minus `t` (same machine, same clock). With `--batch-ms N` the
clients ask for batched frames (`?batch=N`: every record of up to N ms in one frame, one
line each) and count every record of a frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
from array import array

_RECORD = re.compile(r"bench-ws seq=(\d+) t=([0-9.]+)")


async def _client(
    uri: str, port: int, deadline: float, expect: int, stats: dict, stop: asyncio.Event
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    latencies = stats["latencies"]
    seen = 0
    async with connect(uri, sock=sock, max_size=2**20, open_timeout=30) as ws:
        stats["connected"] = True
        stats["ready"].set()

        async def closer():
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.time()))
            await ws.close()

        watcher = asyncio.create_task(closer())
        while seen < expect:
            try:
                frame = await ws.recv()
            except ConnectionClosed:
                break
            now = time.time()
            for match in _RECORD.finditer(frame):
                seen += 1
                latencies.append(now - float(match.group(2)))
            if "log messages dropped" in frame:
                stats["drop_notices"] += 1
        watcher.cancel()
    stats["received"] = seen


async def clients_main(args) -> None:
    uri = f"ws://{args.host}:{args.port}/api/ws/logs?format=json&token={args.token}"
    if args.batch_ms:
        uri += f"&batch={args.batch_ms}"
    deadline = time.time() + args.seconds
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    all_stats = []
    tasks = []
    for _ in range(args.n):
        stats = {
            "latencies": array("d"),
            "received": 0,
            "drop_notices": 0,
            "connected": False,
            "ready": asyncio.Event(),
        }
        all_stats.append(stats)
        tasks.append(
            asyncio.create_task(_client(uri, args.port, deadline, args.expect, stats, stop))
        )
    await asyncio.wait_for(asyncio.gather(*(s["ready"].wait() for s in all_stats)), timeout=60)
    with open(args.ready_file, "w") as fh:
        fh.write("ready\n")
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    out = {
        "clients": [
            {
                "received": s["received"],
                "drop_notices": s["drop_notices"],
                "latencies": s["latencies"].tolist(),
            }
            for s in all_stats
        ],
        "errors": errors,
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh)


def generate_main(args) -> None:
    import django

    django.setup()
    import logging

    from tenants.context import use_tenant
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=args.tenant)
    logger = logging.getLogger("addressbook.bench")
    per_tick = max(1, int(args.rate / 100))
    tick = per_tick / args.rate
    total = int(args.rate * args.seconds)
    start = time.perf_counter()
    seq = 0
    with use_tenant(tenant):
        while seq < total:
            due = start + (seq // per_tick) * tick
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for _ in range(per_tick):
                logger.info("bench-ws seq=%d t=%.6f", seq, time.time())
                seq += 1
    elapsed = time.perf_counter() - start
    time.sleep(1.0)  # let the publisher thread drain
    from logstream.handlers import publisher

    print(json.dumps({"sent": seq, "elapsed_s": elapsed, **publisher.stats()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("clients")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--token", required=True)
    c.add_argument("--n", type=int, default=50)
    c.add_argument("--seconds", type=float, default=40)
    c.add_argument("--expect", type=int, required=True)
    c.add_argument("--ready-file", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--batch-ms", type=int, default=0, help="ask for batched frames (?batch=)")
    g = sub.add_parser("generate")
    g.add_argument("--tenant", required=True)
    g.add_argument("--rate", type=float, default=1000)
    g.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    if args.cmd == "clients":
        asyncio.run(clients_main(args))
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        generate_main(args)
    sys.exit(0)


if __name__ == "__main__":
    main()
