"""Open-loop (fixed offered rate) HTTP load, wrk2-style: request i is due at start + i/rate
whether or not earlier ones have answered, and its latency is measured from that due time,
so a stalled server shows up as latency (no coordinated omission).

One connection per request: gunicorn's sync workers answer `Connection: close` anyway.
Prints one JSON object: sent, ok, errors, achieved rate, latency percentiles in seconds.

    python -m bench.openloop --url http://127.0.0.1:8100/api/address-book \
        --host bench.localhost --header "Authorization: Bearer ..." --rate 200 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

from bench.report import percentile


async def one_request(host: str, port: int, payload: bytes, timeout: float) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(payload)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)  # until the server closes
    finally:
        writer.close()
    status_line = data.split(b"\r\n", 1)[0].split()
    return int(status_line[1]) if len(status_line) > 1 else 0


async def run(args) -> dict:
    url = urlsplit(args.url)
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = [f"Host: {args.host or url.netloc}", "Connection: close", "Accept: */*"]
    headers += args.header
    payload = (f"GET {path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n").encode()
    total = int(args.rate * args.duration)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    outstanding = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def fire(due: float) -> None:
        nonlocal errors, outstanding
        outstanding += 1
        try:
            status = await one_request(url.hostname, url.port or 80, payload, args.timeout)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if 200 <= status < 300:
                latencies.append(loop.time() - due)
            else:
                errors += 1
        except (OSError, TimeoutError, IndexError, ValueError):
            errors += 1
        finally:
            outstanding -= 1

    tasks = []
    for i in range(total):
        due = start + i / args.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if outstanding >= args.max_outstanding:
            errors += 1  # the client gave up on this one: the server is far behind
            continue
        tasks.append(asyncio.create_task(fire(due)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    latencies.sort()
    return {
        "offered_rate": args.rate,
        "sent": total,
        "ok": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "achieved_rate": len(latencies) / elapsed if elapsed > 0 else 0,
        "p50_s": percentile(latencies, 50),
        "p90_s": percentile(latencies, 90),
        "p99_s": percentile(latencies, 99),
        "max_s": latencies[-1] if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", default="")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--max-outstanding", type=int, default=500)
    args = parser.parse_args()
    t0 = time.time()
    result = asyncio.run(run(args))
    result["wall_s"] = time.time() - t0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
