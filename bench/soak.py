"""Soak test (not CI): `python -m bench.soak [--quick] [--duration SECONDS]`.

Mixed reads and writes across 50 tenants for 10 minutes (30 s with --quick) against
gunicorn started as production runs it (sync workers, persistent connections, Redis). Every
write the server acknowledged is recorded; afterwards each acknowledged contact must be in
its own tenant's database exactly once and in no other, each acknowledged delete must be
gone, no response may be a 5xx, and the workers' resident memory must stay flat.

Touches only the main database `tk_soak`, tenant databases `tksoak_*` and Redis database
13, all dropped / flushed at the start and at the end (`--keep` keeps them).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import (
    ROOT,
    VENV_BIN,
    Server,
    children_of,
    create_database,
    drop_databases,
    flush_redis,
    free_port,
    gunicorn_argv,
    rss_kib,
    server_env,
)

PG_SERVER = "postgres://postgres@127.0.0.1:5432"
MAIN_DB = "tk_soak"
PREFIX = "tksoak_"
REDIS_URL = "redis://127.0.0.1:6379/13"
ADMIN_USER = "soakadmin"
ADMIN_PASSWORD = "Soak-Passw0rd-" + secrets.token_hex(4)
NAME_PREFIX = "soak-"


def say(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


def soak_env() -> dict[str, str]:
    return server_env(
        database_url=f"{PG_SERVER}/{MAIN_DB}",
        tenant_prefix=PREFIX,
        redis_url=REDIS_URL,
        # 4 workers x (8 tenant + 1 main) connections stay well under PostgreSQL's 100.
        TENANT_MAX_OPEN_CONNECTIONS="8",
        LOG_LEVEL="WARNING",
    )


def setup(env: dict[str, str], slugs: list[str]) -> None:
    flush_redis(REDIS_URL)
    say(f"dropped {drop_databases(PG_SERVER, MAIN_DB, PREFIX)} leftover soak database(s)")
    create_database(PG_SERVER, MAIN_DB)
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from tenants.services import AdminSpec, provision_tenant\n"
        "import json, sys\n"
        "call_command('migrate', verbosity=0)\n"
        "spec = json.loads(sys.argv[1])\n"
        "for slug in spec['slugs']:\n"
        "    provision_tenant(slug=slug, name=slug, admin=AdminSpec(spec['user'], "
        "f\"{spec['user']}@{slug}.example\", spec['password']))\n"
    )
    spec = json.dumps({"slugs": slugs, "user": ADMIN_USER, "password": ADMIN_PASSWORD})
    started = time.time()
    subprocess.run([str(VENV_BIN / "python"), "-c", script, spec], env=env, cwd=ROOT, check=True)
    say(f"migrated and provisioned {len(slugs)} tenants in {time.time() - started:.1f}s")


# --- the load -----------------------------------------------------------------------------
def request(port, method, path, host, token=None, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Host": host}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data
    finally:
        conn.close()


@dataclass
class Ledger:
    """What the server acknowledged, and every status seen."""

    created: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (slug, id)
    deleted: set[str] = field(default_factory=set)  # names
    statuses: Counter = field(default_factory=Counter)
    by_op: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def live(self, slug: str) -> list[tuple[str, int]]:
        with self.lock:
            return [
                (name, pk)
                for name, (owner, pk) in self.created.items()
                if owner == slug and name not in self.deleted
            ]


def worker(port, tokens, ledger: Ledger, deadline: float, seed: int) -> None:
    rnd = random.Random(seed)
    slugs = list(tokens)
    while time.time() < deadline:
        slug = rnd.choice(slugs)
        host, token = f"{slug}.localhost", tokens[slug]
        roll = rnd.random()
        name = None
        try:
            started = time.perf_counter()
            if roll < 0.45:
                op = "list"
                status, _ = request(port, "GET", "/api/address-book?page_size=20", host, token)
            elif roll < 0.55:
                op = "search"
                status, _ = request(port, "GET", "/api/address-book?search=soak", host, token)
            elif roll < 0.62:
                live = ledger.live(slug)
                op = "detail"
                pk = rnd.choice(live)[1] if live else 1
                status, _ = request(port, "GET", f"/api/address-book/{pk}", host, token)
            elif roll < 0.65:
                op = "stats"
                status, _ = request(port, "GET", "/api/address-book/stats", host, token)
            elif roll < 0.92:
                op = "create"
                name = f"{NAME_PREFIX}{slug}-{uuid.uuid4().hex}"
                body = {"name": name, "email": f"{uuid.uuid4().hex[:12]}@soak.example"}
                status, data = request(port, "POST", "/api/address-book", host, token, body)
                if status == 201:
                    with ledger.lock:
                        ledger.created[name] = (slug, json.loads(data)["id"])
            else:
                live = ledger.live(slug)
                op = "delete"
                if not live:
                    continue
                name, pk = rnd.choice(live)
                status, _ = request(port, "DELETE", f"/api/address-book/{pk}", host, token)
                if status == 204:
                    with ledger.lock:
                        ledger.deleted.add(name)
            elapsed = time.perf_counter() - started
            with ledger.lock:
                ledger.statuses[status] += 1
                ledger.by_op[op] += 1
                ledger.latencies.append(elapsed)
        except Exception as exc:
            with ledger.lock:
                ledger.errors[type(exc).__name__] += 1


def sample_rss(master: int, samples: list[tuple[float, int]], stop_at: threading.Event) -> None:
    while not stop_at.wait(2.0):
        pids = children_of(master)
        samples.append((time.time(), sum(rss_kib(pid) for pid in pids)))


# --- verification -------------------------------------------------------------------------
def verify(ledger: Ledger, slugs: list[str]) -> dict:
    import psycopg

    found: dict[str, list[tuple[str, int]]] = {}
    for slug in slugs:
        with psycopg.connect(f"{PG_SERVER}/{PREFIX}{slug}") as conn:
            rows = conn.execute(
                "SELECT id, name FROM addressbook_contact WHERE name LIKE %s", [NAME_PREFIX + "%"]
            ).fetchall()
        for pk, name in rows:
            found.setdefault(name, []).append((slug, pk))
    missing, duplicated, misplaced, resurrected = [], [], [], []
    for name, (slug, pk) in ledger.created.items():
        places = found.get(name, [])
        if name in ledger.deleted:
            if places:
                resurrected.append(name)
            continue
        if not places:
            missing.append(name)
        elif len(places) > 1:
            duplicated.append(name)
        elif places[0] != (slug, pk):
            misplaced.append(name)
    foreign = [
        name
        for name, places in found.items()
        if any(not name.startswith(f"{NAME_PREFIX}{slug}-") for slug, _ in places)
    ]
    unacknowledged = [name for name in found if name not in ledger.created]
    return {
        "acknowledged_creates": len(ledger.created),
        "acknowledged_deletes": len(ledger.deleted),
        "rows_found": sum(len(v) for v in found.values()),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "in_wrong_tenant": len(misplaced) + len(foreign),
        "deleted_but_present": len(resurrected),
        "present_but_unacknowledged": len(unacknowledged),
        "ok": not (missing or duplicated or misplaced or foreign or resurrected),
    }


def rss_summary(samples: list[tuple[float, int]]) -> dict:
    if len(samples) < 4:
        return {"samples": len(samples)}
    # Skip the warm-up (imports, first connections): compare the 2nd quarter to the last.
    quarter = max(1, len(samples) // 4)
    early = statistics.mean(v for _, v in samples[quarter : 2 * quarter])
    late = statistics.mean(v for _, v in samples[-quarter:])
    growth = (late - early) / early * 100 if early else 0.0
    return {
        "samples": len(samples),
        "workers_rss_mib_start": round(samples[0][1] / 1024, 1),
        "workers_rss_mib_early": round(early / 1024, 1),
        "workers_rss_mib_late": round(late / 1024, 1),
        "workers_rss_mib_max": round(max(v for _, v in samples) / 1024, 1),
        "growth_percent": round(growth, 1),
        "flat": growth < 10.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 seconds")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    duration = 30.0 if args.quick else args.duration

    env = soak_env()
    slugs = [f"s{i:02d}" for i in range(1, args.tenants + 1)]
    log = Path(tempfile.gettempdir()) / f"soak-gunicorn-{os.getpid()}.log"
    server = None
    try:
        setup(env, slugs)
        port = free_port()
        argv = gunicorn_argv(str(VENV_BIN / "gunicorn"), port, args.workers)
        server = Server("gunicorn", argv, env, port, log).__enter__()
        tokens = {}
        for slug in slugs:
            for attempt in range(10):  # a 503 is a shared server out of connections: wait
                status, data = request(
                    port,
                    "POST",
                    "/api/auth/login",
                    f"{slug}.localhost",
                    body={"username_or_email": ADMIN_USER, "password": ADMIN_PASSWORD},
                )
                if status != 503:
                    break
                time.sleep(1 + attempt)
            assert status == 200, (slug, status, data[:200])
            tokens[slug] = json.loads(data)["access"]
        say(f"gunicorn ({args.workers} workers) on :{port}; {len(tokens)} tenants logged in")

        ledger, samples, stop_sampling = Ledger(), [], threading.Event()
        sampler = threading.Thread(
            target=sample_rss, args=(server.proc.pid, samples, stop_sampling)
        )
        sampler.start()
        deadline = time.time() + duration
        say(f"{args.clients} clients for {duration:.0f}s")
        clients = [
            threading.Thread(target=worker, args=(port, tokens, ledger, deadline, seed))
            for seed in range(args.clients)
        ]
        started = time.time()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        elapsed = time.time() - started
        stop_sampling.set()
        sampler.join()
        server.stop()

        total = sum(ledger.statuses.values())
        five_xx = sum(n for status, n in ledger.statuses.items() if status >= 500)
        latencies = sorted(ledger.latencies)
        report = {
            "duration_s": round(elapsed, 1),
            "tenants": len(slugs),
            "requests": total,
            "requests_per_s": round(total / elapsed, 1),
            "by_operation": dict(ledger.by_op),
            "statuses": {str(k): v for k, v in sorted(ledger.statuses.items())},
            "5xx": five_xx,
            "client_errors": dict(ledger.errors),
            "latency_ms_p50": round(latencies[len(latencies) // 2] * 1000, 1)
            if latencies
            else None,
            "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 1)
            if latencies
            else None,
            "memory": rss_summary(samples),
            "integrity": verify(ledger, slugs),
        }
        report["ok"] = (
            report["5xx"] == 0
            and not ledger.errors
            and report["integrity"]["ok"]
            and report["memory"].get("flat", False)
        )
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 1
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            with contextlib.suppress(Exception):
                say(f"dropped {drop_databases(PG_SERVER, MAIN_DB, PREFIX)} soak database(s)")
            with contextlib.suppress(Exception):
                flush_redis(REDIS_URL)


if __name__ == "__main__":
    sys.exit(main())
