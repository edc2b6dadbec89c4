"""`move_tenant` of a tenant with the big tenant's number of contacts to a second
PostgreSQL server, with a writer creating contacts through the API throughout.

Per run: a second cluster (`bench.servers.PgServer`) registered as a database server (its
URL in an environment variable, as `add_database_server` wants); a tenant `move<run>`
provisioned on the bench's server and seeded like `big`; a 2-worker gunicorn; two writer
threads that POST contacts to it without pause (a 503 is retried 50 ms later), keeping the
id of every 201. `tenants.lifecycle.move.move_tenant` runs in this process (total time:
until the tenant is served from the target), the writers go on for a few seconds after
it, then `move_finish` drops the source. Then every acknowledged contact is
looked up in the target database: it must be there exactly once, with its id.

Write-unavailability is the longest time between two acknowledged creates while the move
runs (the cut-over is in it, with the time processes take to see its start and end).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import threading
import time

from bench.context import ADMIN_PASSWORD, ADMIN_USER, SINGLE_PORT, Context, say
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.seed import seed_contacts
from bench.servers import PgServer

KEY = "move_tenant"
TITLE = "move_tenant of {mode.big_contacts:,} contacts to a second server, writer running"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.DJANGO}
METRICS = (
    Metric("unavailable_s", "write-unavailability", "s", Target("<=", 5, "s")),
    Metric("total_s", "total move time", "s", None),
    Metric("lost", "acknowledged writes lost or duplicated", "writes", Target("<=", 0, "writes")),
)
TARGET_URL_ENV = "TKBENCH_MOVE_TARGET_URL"
# The second server: throw-away, like the bench's own.
TARGET_SETTINGS = {
    "max_connections": "100",
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'128MB'",
}
WRITERS = 2
RETRY_PAUSE = 0.05
AFTER_MOVE = 3.0  # seconds the writers go on once the move returned


class Writer:
    """Threads creating contacts through the API; every acknowledged id is kept."""

    def __init__(self, host: str, token: str, tag: str) -> None:
        self.headers = {
            "Host": host,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        }
        self.tag = tag
        self.acked: dict[str, int] = {}  # name -> id
        self.acked_at: list[float] = []
        self.refused: dict[int, int] = {}  # status -> count
        self.messages: set[str] = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._write, args=(n,)) for n in range(WRITERS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _write(self, number: int) -> None:
        sequence = 0
        while not self.stop.is_set():
            name = f"{self.tag}-w{number}-{sequence}"
            status, body = self._post(name)
            if status == 201:
                with self.lock:
                    self.acked[name] = json.loads(body)["id"]
                    self.acked_at.append(time.monotonic())
                sequence += 1
                continue
            with self.lock:
                self.refused[status] = self.refused.get(status, 0) + 1
                if status != 0:
                    self.messages.add(json.loads(body).get("message", "")[:80])
            time.sleep(RETRY_PAUSE)
            sequence += 1  # a refused name is never reused: each create is counted once

    def _post(self, name: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", SINGLE_PORT, timeout=30)
        try:
            conn.request(
                "POST", "/api/address-book", json.dumps({"name": name}), headers=self.headers
            )
            response = conn.getresponse()
            return response.status, response.read()
        except OSError:
            return 0, b"{}"
        finally:
            conn.close()

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without an acknowledged create between `start` and `end`."""
        times = sorted(t for t in self.acked_at if start <= t <= end)
        edges = [start, *times, end]
        return max(b - a for a, b in itertools.pairwise(edges))


def run(ctx: Context, run: int) -> dict:
    from django.db import connections

    from accounts.models import User
    from accounts.tokens import issue_tokens
    from tenants.context import use_tenant
    from tenants.lifecycle.move import move_finish, move_tenant
    from tenants.services import (
        AdminSpec,
        database_server_add,
        database_server_set_status,
        provision_tenant,
    )

    slug = f"move{run}"
    with PgServer(settings=TARGET_SETTINGS) as target_pg:
        os.environ[TARGET_URL_ENV] = target_pg.url
        ctx.env[TARGET_URL_ENV] = target_pg.url
        server = database_server_add(name=f"target{run}", url_env=TARGET_URL_ENV)
        admin = AdminSpec(ADMIN_USER, "bench@example.com", ADMIN_PASSWORD)
        tenant = provision_tenant(slug=slug, name=slug, admin=admin, server="default")
        t0 = time.monotonic()
        seed_contacts(ctx.database_url(tenant.database_name), slug, ctx.mode.big_contacts)
        say(f"{KEY}: seeded {ctx.mode.big_contacts:,} contacts in {time.monotonic() - t0:.1f}s")
        with use_tenant(tenant):
            token = issue_tokens(User.objects.get(username=ADMIN_USER), tenant)["access"]
        connections[tenant.alias].close()

        writer = Writer(f"{slug}.localhost", token, f"r{run}")
        with ctx.gunicorn(SINGLE_PORT, workers=2):
            writer.start()
            time.sleep(2.0)  # writes acknowledged before the move starts, too
            started = time.monotonic()
            try:
                move = move_tenant(tenant, to=server)
            finally:
                ended = time.monotonic()
                time.sleep(AFTER_MOVE)
                writer.finish()
        finish_started = time.monotonic()
        move_finish(tenant)
        finish_s = time.monotonic() - finish_started
        lost, duplicated = _check_target(target_pg.url, move.target_database, writer.acked)
        connections.close_all()
        database_server_set_status(server, "offline")  # its cluster goes with this run
    os.environ.pop(TARGET_URL_ENV, None)
    ctx.env.pop(TARGET_URL_ENV, None)
    return {
        "unavailable_s": writer.longest_gap(started, ended),
        "total_s": ended - started,
        "lost": lost + duplicated,
        "missing": lost,
        "duplicated": duplicated,
        "acknowledged": len(writer.acked),
        "refused": writer.refused,
        "messages": sorted(writer.messages),
        "server_write_block_s": move.details.get("write_block_seconds"),
        "copy_s": move.details.get("copy_seconds"),
        "catch_up_s": move.details.get("catch_up_seconds"),
        "catch_up_chunks": move.details.get("catch_up_chunks"),
        "sync_s": move.details.get("sync_seconds"),
        "cutover_rows": move.details.get("cutover_rows"),
        "finish_s": finish_s,
        "dump_mb": round(move.details.get("dump_bytes", 0) / 1e6, 1),
    }


def _check_target(server_url: str, database: str, acked: dict[str, int]) -> tuple[int, int]:
    """(acknowledged creates missing from the target or with another id, names found more
    than once) in database `database` of `server_url`."""
    import psycopg

    with psycopg.connect(f"{server_url}/{database}") as conn:
        rows = conn.execute(
            "SELECT name, array_agg(id) FROM addressbook_contact WHERE name = ANY(%s) "
            "GROUP BY name",
            [list(acked)],
        ).fetchall()
    found = {name: ids for name, ids in rows}
    missing = sum(1 for name, id_ in acked.items() if id_ not in found.get(name, []))
    duplicated = sum(1 for ids in found.values() if len(ids) > 1)
    return missing, duplicated


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "unavailable_s": "longest gap between acknowledged creates during the move (2 "
        "writers, 503s retried after 50 ms); writes refused by the server for "
        f"{[r['server_write_block_s'] for r in runs]} s (block to flip); refused "
        f"{[r['refused'] for r in runs]}",
        "total_s": f"pg_dump | pg_restore {[r['copy_s'] for r in runs]} s "
        f"({[r['dump_mb'] for r in runs]} MB custom format), catch-up "
        f"{[r['catch_up_s'] for r in runs]} s (chunks per round "
        f"{[r['catch_up_chunks'] for r in runs]}), cut-over sync + verify "
        f"{[r['sync_s'] for r in runs]} s copying {[r['cutover_rows'] for r in runs]} rows; "
        f"then --finish (DROP DATABASE of the source) {[round(r['finish_s'], 1) for r in runs]} s",
        "lost": f"acknowledged creates {[r['acknowledged'] for r in runs]}, each looked up in "
        "the target by name and id",
    }
