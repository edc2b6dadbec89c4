"""What the scale-out rows share (bench/scenarios/cpu_tenants.py, peer.py, zipf.py,
uniform.py, two_servers.py, rate_limit.py): a freshly started server for every measurement
that a ratio's baseline depends on, and one wrk measurement with the workers' CPU.

A fresh server: the product's gunicorn (or the peer's) started anew on its port, as
shipped, then warmed with a few requests for one tenant so both workers have imported
everything and connected; a ratio's single-tenant baseline is always measured on such a
server, before the other side of the ratio and never after it."""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

from bench.context import BENCH_SLUG, LIST_PATH, PEER_PORT, PREFIX, SCALE_PORT, Context, raw
from bench.load import wrk
from bench.servers import Server, backends_in_use, cpu_seconds


@contextlib.contextmanager
def fresh_product(ctx: Context, env: dict[str, str] | None = None) -> Iterator[Server]:
    """The product's 2-worker gunicorn, started anew on SCALE_PORT and warmed."""
    with ctx.gunicorn(SCALE_PORT, env=env) as server:
        warm(SCALE_PORT, f"{BENCH_SLUG}.localhost", ctx.tokens[BENCH_SLUG])
        yield server


@contextlib.contextmanager
def fresh_peer(ctx: Context) -> Iterator[Server]:
    """The django-tenants peer's 2-worker gunicorn, started anew on PEER_PORT and warmed."""
    host, token = peer_tenant()
    with ctx.peer(PEER_PORT) as server:
        warm(PEER_PORT, host, token)
        yield server


def peer_tenant() -> tuple[str, str]:
    """(host, token) of the peer's bench tenant: the first line of raw/peer-hosts-rr.txt."""
    host, token = raw("peer-hosts-rr.txt").read_text().splitlines()[0].split()
    return host, token


def warm(port: int, host: str, token: str, requests: int = 20) -> None:
    """`requests` list requests for one tenant; any answer but 200 is an error."""
    for _ in range(requests):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", LIST_PATH, headers={"Host": host, "Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"warm-up request to {host} on {port} answered {resp.status}")


def measure(
    ctx: Context,
    server: Server,
    *,
    tag: str,
    host: str = "",
    token: str = "",
    hosts: Path | None = None,
    script: str = "rotate.lua",
    script_args: tuple[str, ...] = (),
    warm_first: bool = True,
    sample_backends: bool = False,
    profile: tuple[str, int] | None = None,
) -> dict:
    """One closed-loop wrk run (32 connections, `mode.wrk_seconds`) on `server`: one tenant
    (`host`, `token`) or the tenants of the file `hosts` through `script`. A rotation is
    first run unmeasured for `mode.warm_seconds` (steady state: connections, caches).
    Returns wrk's figures plus the workers' CPU per request (ms, from /proc) and, with
    `sample_backends`, the most PostgreSQL backends on tenant databases seen (sampled every
    0.2 s from pg_stat_activity). `profile` (scenario key, run): py-spy on the workers
    during the measured run with `--profile KEY` (run 0 only)."""
    port = server.port
    common: dict = {"seconds": ctx.mode.wrk_seconds, "connections": 32}
    if hosts is not None:
        common |= {"script": script, "script_args": [str(hosts), *script_args]}
        if warm_first:
            wrk(port, LIST_PATH, **{**common, "seconds": ctx.mode.warm_seconds}, tag=f"{tag}-warm")
    else:
        common |= {"host": host, "token": token}
    workers = server.workers()
    sampler = BackendSampler(ctx.pg) if sample_backends else None
    profilers = ctx.profilers(*profile, workers, ctx.mode.wrk_seconds) if profile else []
    cpu_before = cpu_seconds(workers)
    with sampler or contextlib.nullcontext():
        result = wrk(port, LIST_PATH, **common, tag=tag)
    cpu = cpu_seconds(workers) - cpu_before
    for proc in profilers:
        proc.wait(timeout=120)
    result["cpu_ms_per_req"] = 1000 * cpu / max(1, result["requests"])
    if sampler is not None:
        result["backends_max"] = sampler.most
        result["backends_active_max"] = sampler.most_active
    return result


class BackendSampler:
    """`with BackendSampler(server):` a thread reading how many PostgreSQL backends serve
    tenant databases (`tkbench_*`) every 0.2 s; `most` and `most_active` (not idle)."""

    def __init__(self, server: str, interval: float = 0.2) -> None:
        self.server, self.interval = server, interval
        self.most = self.most_active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            total, active = backends_in_use(self.server, PREFIX)
            self.most = max(self.most, total)
            self.most_active = max(self.most_active, active)
            self._stop.wait(self.interval)

    def __enter__(self) -> BackendSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
