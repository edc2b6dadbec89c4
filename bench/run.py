"""The benchmark harness: `make bench` (or `python -m bench.run [--quick]`).

Starts its own PostgreSQL cluster (bench/pgserver.py; `--system-pg` uses the server on
127.0.0.1:5432 instead), provisions bench tenants on it (database names `tk_bench` and
`tkbench_*` only, dropped at the start of each run and at its end), seeds them, starts the
servers the way production runs them (gunicorn sync workers for HTTP, daphne for the
WebSocket stream), drives each scenario with a load generator on loopback, and writes
bench/results/latest.md and latest.json. Raw output goes to bench/results/raw/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.environment import gunicorn_argv, server_env
from bench.pgserver import MAX_CONNECTIONS, PgServer
from bench.report import Row, Target, parse_wrk, percentile, render_json, render_markdown
from bench.report import summarize as summarize_runs

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
RAW = RESULTS / "raw"
VENV_BIN = ROOT / ".venv" / "bin"
PY = str(VENV_BIN / "python")

PG_SERVER = "postgres://postgres@127.0.0.1:5432"  # replaced by the bench's own cluster
# Tenant connections each HTTP worker keeps on the bench's own cluster: enough for the 100
# tenants of the round-robin scenario (2 workers x 129 < its max_connections); 32 (the
# product's default) on a 100-connection server. The RSS scenario always runs with 32.
OWN_CLUSTER_TENANT_CAP = 128
DEFAULT_TENANT_CAP = 32
MAIN_DB = "tk_bench"
PREFIX = "tkbench_"
REDIS_URL = "redis://127.0.0.1:6379/14"
HTTP_PORT = 18100
BYPASS_PORT = 18101
SINGLE_PORT = 18102
DAPHNE_PORT = 18103
WS_PORT = 18104
BENCH_SLUG = "bench"
BIG_SLUG = "big"
ADMIN_USER = "benchadmin"
ADMIN_PASSWORD = "Bench-Passw0rd-" + secrets.token_hex(4)
LIST_PATH = "/api/address-book"


@dataclass
class Mode:
    name: str
    runs: int
    wrk_seconds: int
    open_seconds: int
    tenants: int  # tenants for migrate_tenants / RSS (1,000 in full mode)
    rr_tenants: int  # tenants for the round-robin scenario
    small_contacts: int  # contacts in every small tenant
    big_contacts: int
    provisions: int  # provision_tenant calls per run
    ws_clients: int
    ws_rate: int
    ws_seconds: int
    log_calls: int


FULL = Mode("full", 3, 10, 20, 1000, 100, 200, 1_000_000, 5, 100, 1000, 30, 20000)
QUICK = Mode("quick", 3, 2, 3, 20, 10, 200, 20_000, 2, 10, 200, 3, 2000)


@dataclass
class Context:
    mode: Mode
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    bypass_token: str = ""
    http_server: Server | None = None
    ws_server: Server | None = None
    profile: set[str] = field(default_factory=set)
    tenant_cap: int = DEFAULT_TENANT_CAP
    started: float = field(default_factory=time.time)
    log: list[str] = field(default_factory=list)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- environment --------------------------------------------------------------------------
def bench_env() -> dict[str, str]:
    return server_env(
        database_url=f"{PG_SERVER}/{MAIN_DB}", tenant_prefix=PREFIX, redis_url=REDIS_URL
    )


def machine_info() -> dict:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu_model": model or platform.processor(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def foreign_load() -> dict:
    """The load average and other test/bench processes running on the machine."""
    me = os.getpid()
    busy = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"pytest" in cmd:
                busy += 1
    return {"load1": os.getloadavg()[0], "pytest_procs": busy}


# --- processes ----------------------------------------------------------------------------
def children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                kids.append(int(entry))
    return kids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by `pids` (all their threads)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    """A server process started with the bench environment; stopped with SIGTERM."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        log = open(RAW / f"server-{self.name}.log", "ab")
        self._log = log
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        wait_for_http(self.port, self.proc)
        return self

    def workers(self) -> list[int]:
        assert self.proc is not None
        return children_of(self.proc.pid) or [self.proc.pid]

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def wait_for_http(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health", headers={"Host": "localhost"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer /health")


def gunicorn(
    ctx: Context,
    port: int,
    workers: int = 2,
    settings: str = "config.settings",
    extra: tuple[str, ...] = (),
    tenant_cap: int | None = None,
):
    env = {
        **ctx.env,
        "DJANGO_SETTINGS_MODULE": settings,
        "TENANT_MAX_OPEN_CONNECTIONS": str(tenant_cap or ctx.tenant_cap),
    }
    if settings != "config.settings":
        env["BENCH_BYPASS_DATABASE_URL"] = f"{PG_SERVER}/{PREFIX}{BENCH_SLUG}"
    argv = gunicorn_argv(str(VENV_BIN / "gunicorn"), port, workers, *extra)
    return Server(f"gunicorn-{port}", argv, env, port)


def daphne(ctx: Context, port: int) -> Server:
    env = {**ctx.env, "CONN_MAX_AGE": "0"}  # persistent connections leak under ASGI
    argv = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
    return Server(f"daphne-{port}", [*argv, "config.asgi:application"], env, port)


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    say("installing wrk (Debian package)")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    path = shutil.which("wrk")
    if not path:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed and could not be installed")
    return path


def wrk(
    port: int,
    path: str,
    *,
    seconds: int,
    connections: int,
    host: str = "",
    token: str = "",
    script: str = "",
    script_args: list[str] | None = None,
    tag: str,
) -> dict:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    if host:
        argv += ["-H", f"Host: {host}"]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    if script:
        argv += ["-s", str(BENCH / script)]
    argv.append(f"http://127.0.0.1:{port}{path}")
    if script_args:
        argv += ["--", *script_args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    (RAW / f"wrk-{tag}.txt").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr.strip()}")
    return parse_wrk(out.stdout)


# --- database set-up ----------------------------------------------------------------------
def admin_conn():
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)


def bench_databases() -> list[str]:
    with admin_conn() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
            [MAIN_DB, PREFIX.replace("_", r"\_") + "%"],
        ).fetchall()
    return [r[0] for r in rows]


def drop_bench_databases() -> int:
    """Drop `tk_bench` and every `tkbench_*` database (and nothing else)."""
    names = bench_databases()
    with admin_conn() as conn:
        for name in names:
            assert name == MAIN_DB or name.startswith(PREFIX)
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return len(names)


def local_ports_to(pid: int, remote_port: int) -> set[int]:
    """Local ports of `pid`'s TCP connections to `remote_port` (from /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                local, remote, inode = parts[1], parts[2], parts[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def pg_tenant_connections(pid: int) -> tuple[int, int]:
    """(tenant database connections, all PostgreSQL connections) held by process `pid`."""
    ports = sorted(local_ports_to(pid, int(PG_SERVER.rsplit(":", 1)[1])))
    if not ports:
        return 0, 0
    with admin_conn() as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE datname LIKE %s), count(*) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s)",
            [PREFIX.replace("_", r"\_") + "%", ports],
        ).fetchone()
    return int(row[0]), int(row[1])


def manage(ctx: Context, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "manage.py", *args],
        env=ctx.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def seed_contacts(dbname: str, count: int) -> None:
    """`count` synthetic contacts straight into a tenant database (generate_series)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/{dbname}", autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO addressbook_contact
                (name, email, phone, address, gender, age, notes, created_at, updated_at)
            SELECT
                'Contact ' || lpad(to_hex((g * 2654435761) %% 4294967296), 8, '0'),
                'user' || g || '@example' || (g %% 50) || '.com',
                '+1 555 ' || lpad((g %% 10000000)::text, 7, '0'),
                g || ' Bench Street, Springfield',
                (ARRAY['male','female','other','unspecified'])[1 + g %% 4],
                CASE WHEN g %% 10 = 0 THEN NULL ELSE g %% 100 END,
                '',
                now() - (g %% 1000) * interval '1 hour',
                now()
            FROM generate_series(1, %s) AS g
            """,
            [count],
        )
        conn.execute("ANALYZE addressbook_contact")


def setup(ctx: Context) -> None:
    mode = ctx.mode
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    dropped = drop_bench_databases()
    say(f"dropped {dropped} leftover bench database(s)")
    with admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{MAIN_DB}"')
    out = manage(ctx, "migrate", "--verbosity", "0")
    if out.returncode:
        raise RuntimeError(f"migrate failed: {out.stderr[-2000:]}")

    os.environ.update(ctx.env)
    import django

    django.setup()
    from django.db import connections
    from django.utils import timezone

    from tenants.models import Tenant
    from tenants.services import AdminSpec, provision_tenant

    t0 = time.time()
    provision_tenant(
        slug=BENCH_SLUG,
        name="Bench",
        admin=AdminSpec(ADMIN_USER, "bench@example.com", ADMIN_PASSWORD),
    )
    say(f"provisioned '{BENCH_SLUG}' (template migrated) in {time.time() - t0:.1f}s")
    connections.close_all()
    seed_contacts(f"{PREFIX}{BENCH_SLUG}", mode.small_contacts)

    # Every other tenant is a clone of the seeded bench tenant (same user, same contacts).
    slugs = [f"t{i:04d}" for i in range(1, mode.tenants + 1)]
    t0 = time.time()
    with admin_conn() as conn:
        for slug in [*slugs, BIG_SLUG]:
            conn.execute(f'CREATE DATABASE "{PREFIX}{slug}" TEMPLATE "{PREFIX}{BENCH_SLUG}"')
    now = timezone.now()
    Tenant.objects.bulk_create(
        [
            Tenant(
                slug=slug,
                name=slug,
                status=Tenant.Status.ACTIVE,
                database_name=f"{PREFIX}{slug}",
                provisioned_at=now,
            )
            for slug in [*slugs, BIG_SLUG]
        ]
    )
    say(f"cloned {len(slugs) + 1} tenant databases in {time.time() - t0:.1f}s")
    t0 = time.time()
    seed_contacts(f"{PREFIX}{BIG_SLUG}", mode.big_contacts - mode.small_contacts)
    say(f"seeded {mode.big_contacts:,} contacts in '{BIG_SLUG}' in {time.time() - t0:.1f}s")

    mint_tokens(ctx, [BENCH_SLUG, BIG_SLUG, *slugs])
    rr = [BENCH_SLUG, *slugs[: ctx.mode.rr_tenants - 1]]
    write_hosts(RAW / "hosts-rr.txt", ctx, rr)
    write_hosts(RAW / "hosts-all.txt", ctx, [BENCH_SLUG, BIG_SLUG, *slugs])
    (RAW / "login.json").write_text(
        json.dumps({"username_or_email": ADMIN_USER, "password": ADMIN_PASSWORD})
    )
    connections.close_all()


def mint_tokens(ctx: Context, slugs: list[str]) -> None:
    """Access tokens as the login issues them (tenant claim, iat_us), for the bench user,
    who has the same id in every cloned tenant database."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from accounts.tokens import ISSUED_AT_US_CLAIM, TENANT_CLAIM
    from tenants.context import use_tenant
    from tenants.models import Tenant

    with use_tenant(Tenant.objects.get(slug=BENCH_SLUG)):
        user = User.objects.get(username=ADMIN_USER)

    def token(slug: str | None) -> str:
        access = AccessToken.for_user(user)
        access[TENANT_CLAIM] = slug
        access[ISSUED_AT_US_CLAIM] = time.time_ns() // 1000
        return str(access)

    ctx.tokens = {slug: token(slug) for slug in slugs}
    ctx.bypass_token = token(None)


def write_hosts(path: Path, ctx: Context, slugs: list[str]) -> None:
    path.write_text("".join(f"{s}.localhost {ctx.tokens[s]}\n" for s in slugs))


# --- scenarios ----------------------------------------------------------------------------
@dataclass
class Scenario:
    key: str
    title: str
    func: Callable[[Context, int], dict]  # one run -> {metric key: value, ...}
    metrics: list[tuple[str, str, str, Target | None]]  # (result key, metric, unit, target)
    note: str = ""


def db_counters(dbname: str) -> tuple[int, int]:
    """(sessions opened, transactions committed) so far on database `dbname`."""
    with admin_conn() as conn:
        row = conn.execute(
            "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = %s", [dbname]
        ).fetchone()
    return int(row[0]), int(row[1])


def sc_list(ctx: Context, run: int) -> dict:
    dbname = f"{PREFIX}{BENCH_SLUG}"
    before = db_counters(dbname)
    workers = ctx.http_server.workers() if ctx.http_server else []
    cpu_before = cpu_seconds(workers)
    r = wrk(
        HTTP_PORT,
        LIST_PATH,
        seconds=ctx.mode.wrk_seconds,
        connections=32,
        host=f"{BENCH_SLUG}.localhost",
        token=ctx.tokens[BENCH_SLUG],
        tag=f"list-{run}",
    )
    after = db_counters(dbname)
    cpu = cpu_seconds(workers) - cpu_before
    requests = max(1, r["requests"])
    return {
        "rps": r["rps"],
        "errors": r["errors"],
        "p50_ms": (r.get("p50_s") or 0) * 1000,
        # Evidence for the profile: connections opened and statements run per request.
        "sessions_per_req": (after[0] - before[0]) / requests,
        "xacts_per_req": (after[1] - before[1]) / requests,
        # Server CPU per request: what the throughput would be on idle cores.
        "cpu_ms_per_req": 1000 * cpu / requests,
    }


def sc_open(ctx: Context, run: int) -> dict:
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
    (RAW / f"openloop-{run}.json").write_text(out.stdout)
    r = json.loads(out.stdout)
    return {
        "p50_ms": r["p50_s"] * 1000 if r["p50_s"] is not None else None,
        "p99_ms": r["p99_s"] * 1000 if r["p99_s"] is not None else None,
        "errors": r["errors"],
        "achieved": r["achieved_rate"],
    }


def tenant_sessions() -> int:
    """New sessions so far on all bench tenant databases."""
    with admin_conn() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(sessions), 0) FROM pg_stat_database WHERE datname LIKE %s",
            [PREFIX.replace("_", r"\_") + "%"],
        ).fetchone()
    return int(row[0])


def sc_round_robin(ctx: Context, run: int) -> dict:
    one = sc_list(ctx, run)["rps"]
    if run == 0:
        # Steady state, as for the single tenant (warm()): both workers open their
        # connections to the rotation's tenants before anything is measured.
        wrk(
            HTTP_PORT,
            LIST_PATH,
            seconds=3,
            connections=32,
            script="rotate.lua",
            script_args=[str(RAW / "hosts-rr.txt")],
            tag="rr-warm",
        )
    sessions = tenant_sessions()
    many = wrk(
        HTTP_PORT,
        LIST_PATH,
        seconds=ctx.mode.wrk_seconds,
        connections=32,
        script="rotate.lua",
        script_args=[str(RAW / "hosts-rr.txt")],
        tag=f"rr-{run}",
    )
    opened = tenant_sessions() - sessions
    return {
        "ratio": many["rps"] / one,
        "rps_many": many["rps"],
        "rps_one": one,
        "sessions_per_req": opened / max(1, many["requests"]),
        **_err(many),
    }


def _err(r: dict) -> dict:
    return {"errors": r["errors"]}


def sc_bypass(ctx: Context, run: int) -> dict:
    with_tenancy = sc_list(ctx, run)["rps"]
    with gunicorn(ctx, BYPASS_PORT, settings="bench.settings_bypass"):
        bypass = wrk(
            BYPASS_PORT,
            LIST_PATH,
            seconds=ctx.mode.wrk_seconds,
            connections=32,
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.bypass_token,
            tag=f"bypass-{run}",
        )
    if bypass["errors"]:
        raise RuntimeError(f"bypass server answered {bypass['errors']} errors")
    return {"ratio": with_tenancy / bypass["rps"], "rps_bypass": bypass["rps"]}


def sc_login(ctx: Context, run: int) -> dict:
    r = wrk(
        HTTP_PORT,
        "/api/auth/login",
        seconds=ctx.mode.wrk_seconds,
        connections=8,
        host=f"{BENCH_SLUG}.localhost",
        script="login.lua",
        script_args=[str(RAW / "login.json")],
        tag=f"login-{run}",
    )
    return {"rps": r["rps"], "errors": r["errors"]}


def sc_provision(ctx: Context, run: int) -> dict:
    from django.db import connections

    from tenants.services import AdminSpec, provision_tenant

    times = []
    for i in range(ctx.mode.provisions):
        slug = f"prov-{run}-{i}"
        t0 = time.perf_counter()
        provision_tenant(
            slug=slug,
            name=slug,
            admin=AdminSpec("owner", f"owner@{slug}.example.com", ADMIN_PASSWORD),
        )
        times.append(time.perf_counter() - t0)
    connections.close_all()
    times.sort()
    return {"median_s": percentile(times, 50), "max_s": times[-1]}


def sc_migrate(ctx: Context, run: int) -> dict:
    t0 = time.perf_counter()
    if run == 0 and "migrate" in ctx.profile:
        spy = [str(VENV_BIN / "py-spy"), "record", "-r", "200", "-f", "raw", "--nonblocking"]
        spy += ["-o", str(RAW / "profile-migrate.txt"), "--", PY, "manage.py", "migrate_tenants"]
        out = subprocess.run(spy, env=ctx.env, cwd=ROOT, capture_output=True, text=True)
    else:
        out = manage(ctx, "migrate_tenants")
    elapsed = time.perf_counter() - t0
    (RAW / f"migrate-{run}.txt").write_text(out.stdout[-5000:] + out.stderr[-5000:])
    if out.returncode:
        raise RuntimeError(f"migrate_tenants failed: {out.stderr[-500:]}")
    count = out.stdout.count(": up to date") + out.stdout.count(": applied")
    return {"seconds": elapsed, "tenants": count - 1}  # minus the template line


def sc_rss(ctx: Context, run: int) -> dict:
    hosts = RAW / "hosts-all.txt"
    tenants = len(hosts.read_text().splitlines())
    with gunicorn(ctx, SINGLE_PORT, workers=1, tenant_cap=DEFAULT_TENANT_CAP) as server:
        # wrk in short slices, each continuing the rotation, until every tenant was served.
        requests = errors = 0
        deadline = time.time() + (240 if ctx.mode.name == "full" else 30)
        while requests < tenants + 50 and time.time() < deadline:
            r = wrk(
                SINGLE_PORT,
                LIST_PATH,
                seconds=3,
                connections=8,
                script="rotate.lua",
                script_args=[str(hosts), str(requests)],
                tag=f"rss-{run}",
            )
            requests += r["requests"]
            errors += r["errors"]
        time.sleep(0.5)
        worker = server.workers()[0]
        rss = rss_kib(worker) / 1024
        held, held_all = pg_tenant_connections(worker)
    if requests < tenants:
        raise RuntimeError(f"only {requests} requests for {tenants} tenants")
    return {
        "rss_mb": rss,
        "connections": held,
        "connections_all": held_all,
        "requests": requests,
        "tenants": tenants,
        "errors": errors,
    }


def _deep_cursor() -> str:
    import psycopg

    from addressbook.pagination import FORWARD, encode_cursor

    with psycopg.connect(f"{PG_SERVER}/{PREFIX}{BIG_SLUG}") as conn:
        total = conn.execute("SELECT count(*) FROM addressbook_contact").fetchone()[0]
        name, pk = conn.execute(
            "SELECT name, id FROM addressbook_contact ORDER BY name, id OFFSET %s LIMIT 1",
            [int(total * 0.9)],
        ).fetchone()
    return encode_cursor(("name", "id"), FORWARD, (name, pk))


def sc_deep(ctx: Context, run: int) -> dict:
    cursor = _deep_cursor()
    common = {
        "seconds": ctx.mode.wrk_seconds,
        "connections": 1,
        "host": f"{BIG_SLUG}.localhost",
        "token": ctx.tokens[BIG_SLUG],
    }
    first = wrk(HTTP_PORT, LIST_PATH, tag=f"first-{run}", **common)
    deep = wrk(HTTP_PORT, f"{LIST_PATH}?cursor={cursor}", tag=f"deep-{run}", **common)
    if first["errors"] or deep["errors"]:
        raise RuntimeError("errors on the first or the deep page")
    return {
        "ratio": deep["p50_s"] / first["p50_s"],
        "first_ms": first["p50_s"] * 1000,
        "deep_ms": deep["p50_s"] * 1000,
    }


def sc_export(ctx: Context, run: int) -> dict:
    with gunicorn(ctx, SINGLE_PORT, workers=1) as server:
        worker = server.workers()[0]
        profilers = profile_pids(ctx, "export", run, [worker], 30)
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


# The clients ask for batched frames (`?batch=10`: the records of up to 10 ms in one frame,
# one line each), the log stream's mode for high-volume clients: one record per frame is
# 100,000 frames/s here, about 9 us of daphne CPU and 9 us of client CPU each, more than
# these 2 cores have.
WS_BATCH_MS = 10


def sc_ws(ctx: Context, run: int) -> dict:
    mode = ctx.mode
    expect = mode.ws_rate * mode.ws_seconds
    procs = 2 if mode.ws_clients >= 20 else 1
    per = mode.ws_clients // procs
    clients = []
    for p in range(procs):
        ready = RAW / f"ws-ready-{run}-{p}"
        ready.unlink(missing_ok=True)
        out = RAW / f"ws-clients-{run}-{p}.json"
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
            str(WS_BATCH_MS),
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
    profilers = profile_pids(ctx, "ws", run, pids + [p.pid for p, _, _ in clients], 20)
    gen = subprocess.run(
        [
            PY,
            "-m",
            "bench.wsbench",
            "generate",
            "--tenant",
            BENCH_SLUG,
            "--rate",
            str(mode.ws_rate),
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
    summary = summarize_ws(results, generated["sent"], mode.ws_clients, generated)
    return {**summary, "batch_ms": WS_BATCH_MS}


def summarize_ws(clients: list[dict], sent: int, wanted: int, generated: dict) -> dict:
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


def sc_logcall(ctx: Context, run: int) -> dict:
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


def sc_daphne(ctx: Context, run: int) -> dict:
    g = sc_list(ctx, run)["rps"]
    with daphne(ctx, DAPHNE_PORT):
        d = wrk(
            DAPHNE_PORT,
            LIST_PATH,
            seconds=ctx.mode.wrk_seconds,
            connections=32,
            host=f"{BENCH_SLUG}.localhost",
            token=ctx.tokens[BENCH_SLUG],
            tag=f"daphne-{run}",
        )
    return {"daphne_rps": d["rps"], "ratio": g / d["rps"] if d["rps"] else None}


HOSTILE_SLUG = "hostile"


@dataclass
class HostileTargets:
    """What the hostile-input probes run against: a tenant of their own (a value the
    server wrongly accepts changes only it), tokens minted per probe (a probe that logs
    out or changes a password cannot disarm the next one), the served schema."""

    spec: dict
    tenant_token: Callable[[], str]
    platform_token: Callable[[], str]
    path_ids: dict[str, str]


def hostile_targets(ctx: Context) -> HostileTargets:
    from accounts.models import User
    from accounts.tokens import issue_tokens
    from addressbook.models import Contact
    from tenants.context import use_tenant
    from tenants.models import Tenant
    from tenants.services import AdminSpec, provision_tenant

    tenant = Tenant.objects.filter(slug=HOSTILE_SLUG).first()
    if tenant is None:
        provision_tenant(
            slug=HOSTILE_SLUG,
            name="Hostile inputs",
            admin=AdminSpec("hostileadmin", "hostile@example.com", ADMIN_PASSWORD),
        )
        tenant = Tenant.objects.get(slug=HOSTILE_SLUG)
    with use_tenant(tenant):
        admin = User.objects.get(username="hostileadmin")
        victim = User.objects.filter(username="victim").first() or User.objects.create_user(
            "victim", "victim@example.com", ADMIN_PASSWORD
        )
        contact = Contact.objects.first() or Contact.objects.create(name="Target")
    staff = User.objects.filter(username="hostilestaff").first() or User.objects.create_user(
        "hostilestaff", "hostilestaff@example.com", ADMIN_PASSWORD, is_staff=True
    )

    def tenant_token() -> str:
        with use_tenant(tenant):
            return issue_tokens(admin, tenant)["access"]

    status, body = http_exchange(HTTP_PORT, "GET", "/api/schema/?format=json", None, "")
    if status != 200:
        raise RuntimeError(f"/api/schema/?format=json answered {status}")
    return HostileTargets(
        spec=json.loads(body),
        tenant_token=tenant_token,
        platform_token=lambda: issue_tokens(staff, None)["access"],
        path_ids={
            "/api/address-book/{id}": str(contact.pk),
            "/api/users/{id}": str(victim.pk),
            "/api/platform/tenants/{slug}": HOSTILE_SLUG,
        },
    )


def http_exchange(
    port: int, method: str, path: str, body: bytes | None, token: str, timeout: float = 120
) -> tuple[int, bytes]:
    """One request on a connection of its own, read to the end: (status, body). A server
    that answers before reading the whole body (413) and closes is not an error here;
    status 0 means no status line came back."""
    import socket

    head = [f"{method} {path} HTTP/1.1", f"Host: {HOSTILE_SLUG}.localhost", "Connection: close"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, rest.partition(b"\r\n\r\n")[2]


def sc_hostile_inputs(ctx: Context, run: int) -> dict:
    from bench.hostile import probes

    targets = hostile_targets(ctx)
    health: list[float] = []
    stop = threading.Event()

    def watch_health() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            status, _ = http_exchange(HTTP_PORT, "GET", "/health", None, "", timeout=30)
            health.append((time.perf_counter() - t0) * 1000 if status == 200 else float("inf"))
            stop.wait(0.02)

    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()
    latencies: list[tuple[float, str, int]] = []
    statuses: dict[str, int] = {}
    try:
        for probe in probes(targets.spec, lambda t, name: targets.path_ids.get(t, "1")):
            token = ""
            if probe.auth:
                platform = probe.path.startswith("/api/platform/")
                token = targets.platform_token() if platform else targets.tenant_token()
            t0 = time.perf_counter()
            status, _ = http_exchange(HTTP_PORT, probe.method, probe.path, probe.body, token)
            latencies.append(((time.perf_counter() - t0) * 1000, probe.describe(), status))
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    finally:
        stop.set()
        watcher.join(timeout=60)
    slowest = max(latencies)
    failures = sorted({d for _, d, s in latencies if s >= 500 or s == 0})
    (RAW / f"hostile-{run}.json").write_text(
        json.dumps(
            {"probes": [{"ms": ms, "probe": d, "status": s} for ms, d, s in latencies]},
            indent=0,
        )
    )
    return {
        "requests": len(latencies),
        "slowest_ms": slowest[0],
        "slowest": f"{slowest[1]} -> {slowest[2]}",
        "p99_ms": percentile(sorted(ms for ms, _, _ in latencies), 99),
        "server_errors": len([s for _, _, s in latencies if s >= 500 or s == 0]),
        "server_error_probes": failures[:20],
        "statuses": statuses,
        "health_max_ms": max(health, default=0.0),
        "health_p99_ms": percentile(sorted(health), 99) if health else 0.0,
        "health_samples": len(health),
    }


def scenarios(mode: Mode) -> list[Scenario]:
    n = f"{mode.tenants:,}"
    return [
        Scenario(
            "list",
            "GET /api/address-book, 32 conns, closed loop (wrk)",
            sc_list,
            [
                ("rps", "throughput", "req/s", Target(">=", 500, "req/s")),
                ("errors", "errors", "", Target("<=", 0)),
            ],
        ),
        Scenario(
            "open",
            "same, open loop at 200 req/s",
            sc_open,
            [
                ("p50_ms", "p50", "ms", Target("<=", 10, "ms")),
                ("p99_ms", "p99", "ms", Target("<=", 50, "ms")),
            ],
        ),
        Scenario(
            "round_robin",
            f"same across {mode.rr_tenants} tenants round-robin vs 1 tenant",
            sc_round_robin,
            [("ratio", "throughput ratio", "", Target(">=", 0.90))],
        ),
        Scenario(
            "bypass",
            "same with tenancy vs tenancy bypassed (bench/settings_bypass.py)",
            sc_bypass,
            [("ratio", "throughput ratio", "", Target(">=", 0.95))],
        ),
        Scenario(
            "login",
            "POST /api/auth/login (Argon2id m=19MiB t=2 p=1), 8 conns",
            sc_login,
            [("rps", "throughput", "logins/s", Target(">=", 60, "logins/s"))],
        ),
        Scenario(
            "provision",
            "provision_tenant on PostgreSQL (template clone, first admin)",
            sc_provision,
            [("median_s", "median", "s", Target("<=", 0.5, "s"))],
        ),
        Scenario(
            "migrate",
            f"manage.py migrate_tenants, nothing pending, {n}+ tenants",
            sc_migrate,
            [("seconds", "wall time", "s", Target("<=", 15, "s"))],
        ),
        Scenario(
            "rss",
            f"1 gunicorn worker after requests for all {n}+ tenants",
            sc_rss,
            [
                ("rss_mb", "RSS", "MB", Target("<=", 300, "MB")),
                ("connections", "PostgreSQL tenant connections held", "", Target("<=", 32)),
            ],
        ),
        Scenario(
            "deep",
            f"page deep (90%) in {mode.big_contacts:,} contacts vs first page",
            sc_deep,
            [("ratio", "p50 latency ratio", "", Target("<=", 2))],
        ),
        Scenario(
            "export",
            f"CSV export of {mode.big_contacts:,} contacts",
            sc_export,
            [
                ("rows_per_s", "throughput", "rows/s", Target(">=", 50_000, "rows/s")),
                ("rss_growth_mb", "worker RSS growth", "MB", Target("<=", 50, "MB")),
            ],
        ),
        Scenario(
            "ws",
            f"{mode.ws_clients} WebSocket log clients, {mode.ws_rate} records/s for "
            f"{mode.ws_seconds} s, Redis, daphne, ?batch={WS_BATCH_MS} frames",
            sc_ws,
            [
                ("delivered_pct", "delivered to clients keeping up", "%", Target(">=", 99.9, "%")),
                ("p99_ms", "p99 delivery", "ms", Target("<=", 100, "ms")),
            ],
        ),
        Scenario(
            "logcall",
            "one log call (console + channel-layer handler), caller's cost",
            sc_logcall,
            [("mean_us", "mean", "us", Target("<=", 50, "us"))],
        ),
        Scenario(
            "hostile_inputs",
            "hostile inputs: every writable field (served OpenAPI schema), max length + 1 "
            "and pathological values",
            sc_hostile_inputs,
            [
                ("slowest_ms", "slowest request", "ms", Target("<=", 50, "ms")),
                ("health_max_ms", "/health meanwhile (max)", "ms", Target("<=", 50, "ms")),
                ("server_errors", "answers 5xx or none", "", Target("<=", 0)),
            ],
        ),
        Scenario(
            "daphne",
            "list on daphne (1 process, CONN_MAX_AGE=0) vs gunicorn (2 sync workers)",
            sc_daphne,
            [
                ("daphne_rps", "daphne throughput", "req/s", None),
                ("ratio", "gunicorn / daphne", "", None),
            ],
        ),
    ]


HTTP_SCENARIOS = {
    "list",
    "open",
    "round_robin",
    "bypass",
    "login",
    "deep",
    "daphne",
    "hostile_inputs",
}
# HTTP scenarios first (round-robin last of them: it fans out tenant connections), then
# the ones that start their own processes.
ORDER = [
    "list",
    "open",
    "bypass",
    "login",
    "deep",
    "daphne",
    "hostile_inputs",
    "round_robin",
    "provision",
    "migrate",
    "rss",
    "export",
    "ws",
    "logcall",
]


def run_scenario(ctx: Context, sc: Scenario) -> list[Row]:
    runs: list[dict] = []
    loads: list[float] = []
    contention: list[int] = []
    error = ""
    for run in range(ctx.mode.runs):
        state = foreign_load()
        loads.append(state["load1"])
        contention.append(state["pytest_procs"])
        profilers = start_profilers(ctx, sc.key) if run == 0 and sc.key in ctx.profile else []
        try:
            result = sc.func(ctx, run)
        except Exception as exc:  # a harness or server error: recorded, the rest goes on
            error = f"{type(exc).__name__}: {exc}"[:300]
            say(f"{sc.key} run {run}: ERROR {error}")
            break
        finally:
            for proc in profilers:
                proc.wait(timeout=120)
        runs.append(result)
        say(f"{sc.key} run {run}: {json.dumps(result, default=str)[:300]}")
    rows = []
    for key, metric, unit, target in sc.metrics:
        values = [r.get(key) for r in runs]
        note = sc.note
        if any(contention):
            note = (note + f" other test processes seen: {max(contention)}").strip()
        rows.append(
            Row(
                key=f"{sc.key}.{key}",
                scenario=sc.title,
                metric=metric,
                unit=unit,
                summary=summarize_runs(values),
                target=target,
                note=note,
                load_before=loads,
                extra={"runs": runs},
                error=error,
            )
        )
    return rows


def start_profilers(ctx: Context, key: str) -> list[subprocess.Popen]:
    """py-spy on every worker of the HTTP server for the first run of scenario `key`."""
    if ctx.http_server is None or key not in HTTP_SCENARIOS:
        return []
    return profile_pids(ctx, key, 0, ctx.http_server.workers(), ctx.mode.wrk_seconds)


def profile_pids(
    ctx: Context, key: str, run: int, pids: list[int], seconds: int
) -> list[subprocess.Popen]:
    """With `--profile key`, py-spy records `pids` in run 0; collapsed stacks go to
    raw/profile-<key>-<pid>.txt (summarise with `python -m bench.profile`)."""
    if key not in ctx.profile or run != 0:
        return []
    procs = []
    for pid in pids:
        out = RAW / f"profile-{key}-{pid}.txt"
        argv = [str(VENV_BIN / "py-spy"), "record", "-p", str(pid), "-r", "200", "-f", "raw"]
        argv += ["-d", str(seconds), "--nonblocking", "-o", str(out)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def annotate(rows: list[Row], mode: Mode) -> None:
    """Context that belongs beside a figure."""
    for row in rows:
        runs = row.extra.get("runs", [])
        if row.key == "rss.connections" and runs:
            row.note = (
                f"cap TENANT_MAX_OPEN_CONNECTIONS={DEFAULT_TENANT_CAP}; requests per run "
                f"{[r['requests'] for r in runs]} over {runs[0]['tenants']} tenants. {row.note}"
            ).strip()
        if row.key == "round_robin.ratio" and runs:
            row.note = (
                f"1 tenant {[round(r['rps_one']) for r in runs]} req/s, "
                f"{mode.rr_tenants} tenants {[round(r['rps_many']) for r in runs]}; new DB "
                f"sessions per request {[round(r['sessions_per_req'], 2) for r in runs]}. "
                f"{row.note}"
            ).strip()
        if row.key == "bypass.ratio" and runs:
            row.note = f"bypass {[round(r['rps_bypass']) for r in runs]} req/s. {row.note}".strip()
        if row.key == "deep.ratio" and runs:
            row.note = (
                f"first {[round(r['first_ms'], 2) for r in runs]} ms, "
                f"deep {[round(r['deep_ms'], 2) for r in runs]} ms (p50, 1 conn). {row.note}"
            ).strip()
        if row.key == "open.p99_ms" and runs:
            row.note = f"errors {[r['errors'] for r in runs]}. {row.note}".strip()
        if row.key == "ws.delivered_pct" and runs:
            row.note = (
                f"clients keeping up {[r['clients_keeping_up'] for r in runs]} of "
                f"{runs[0]['clients_wanted']}; delivered to all clients "
                f"{[round(r['delivered_all_pct'], 2) for r in runs]}%. {row.note}"
            ).strip()
        if row.key == "daphne.ratio" and runs:
            row.note = "figures of bench/README.md 'server model'. " + row.note
        if row.key == "export.rows_per_s" and runs:
            row.note = (
                f"seconds {[round(r['seconds'], 1) for r in runs]} (the production worker "
                f"timeout is 300 s). {row.note}"
            ).strip()
        if row.key == "list.rps" and runs:
            row.note = (
                f"server CPU {[round(r['cpu_ms_per_req'], 1) for r in runs]} ms/request; "
                f"{round(runs[0]['xacts_per_req'], 1)} statements/request; "
                f"{runs[0]['sessions_per_req']:.3f} new DB sessions/request. {row.note}"
            ).strip()
        if row.key == "hostile_inputs.slowest_ms" and runs:
            row.note = (
                f"requests per run {[r['requests'] for r in runs]}; slowest: "
                f"{'; '.join(sorted({r['slowest'] for r in runs}))}. {row.note}"
            ).strip()
        if row.key == "hostile_inputs.health_max_ms" and runs:
            row.note = (
                f"p99 {[round(r['health_p99_ms'], 1) for r in runs]} ms over "
                f"{[r['health_samples'] for r in runs]} samples. {row.note}"
            ).strip()
        if row.key == "hostile_inputs.server_errors" and runs:
            failing = sorted({p for r in runs for p in r["server_error_probes"]})
            row.note = (
                f"statuses {runs[0]['statuses']}"
                + (f"; 5xx: {'; '.join(failing[:8])}" if failing else "")
                + f". {row.note}"
            ).strip()
        if row.key == "migrate.seconds" and runs:
            row.note = f"tenants {[r['tenants'] for r in runs]}. {row.note}".strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario small (seconds)")
    parser.add_argument("--only", action="append", default=[], help="scenario key (repeatable)")
    parser.add_argument("--runs", type=int, default=0, help="runs per scenario (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--big-contacts", type=int, default=0, help="contacts in the big tenant")
    parser.add_argument(
        "--profile", action="append", default=[], help="py-spy the HTTP workers in KEY's run 0"
    )
    parser.add_argument(
        "--system-pg",
        action="store_true",
        help="use the PostgreSQL server on 127.0.0.1:5432 instead of a cluster of its own",
    )
    parser.add_argument(
        "--output",
        default="",
        help="result file stem in bench/results/ (default: latest, or quick with --quick)",
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    args.output = args.output or ("quick" if args.quick else "latest")
    if args.runs:
        mode.runs = args.runs
    if args.big_contacts:
        mode.big_contacts = args.big_contacts
    RAW.mkdir(parents=True, exist_ok=True)
    ensure_wrk()
    global PG_SERVER
    own_pg = None if args.system_pg else PgServer()
    if own_pg is not None:
        own_pg.__enter__()  # removed again if it fails to start
        PG_SERVER = own_pg.url
        say(f"own PostgreSQL cluster on {own_pg.url} (max_connections {MAX_CONNECTIONS})")
    ctx = Context(mode=mode, env=bench_env(), profile=set(args.profile))
    if own_pg is not None:
        ctx.tenant_cap = OWN_CLUSTER_TENANT_CAP
    started = datetime.now(UTC)
    idle_before = foreign_load()
    say(f"{mode.name} mode; load {idle_before}")
    chosen = [s for s in scenarios(mode) if not args.only or s.key in args.only]
    chosen.sort(key=lambda s: ORDER.index(s.key))
    rows: list[Row] = []
    try:
        setup(ctx)
        with contextlib.ExitStack() as stack:
            if any(s.key == "ws" for s in chosen):
                ctx.ws_server = stack.enter_context(daphne(ctx, WS_PORT))
            for sc in chosen:
                # The 2-worker HTTP server runs only for the scenarios that use it, and is
                # restarted after the round-robin one: its workers keep up to
                # TENANT_MAX_OPEN_CONNECTIONS tenant connections each, and PostgreSQL's
                # max_connections (100 here) is shared with everything else.
                if sc.key in HTTP_SCENARIOS and ctx.http_server is None:
                    ctx.http_server = gunicorn(ctx, HTTP_PORT).__enter__()
                    warm(ctx)
                elif sc.key not in HTTP_SCENARIOS:
                    stop_http(ctx)
                say(f"scenario {sc.key}: {sc.title}")
                try:
                    rows.extend(run_scenario(ctx, sc))
                finally:
                    if sc.key == "round_robin":
                        stop_http(ctx)
            stop_http(ctx)
    finally:
        if not args.keep:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            with contextlib.suppress(Exception):
                say(f"dropped {drop_bench_databases()} bench database(s)")
        if own_pg is not None:
            own_pg.stop()
    annotate(rows, mode)
    loads = [v for row in rows for v in row.load_before]
    contention = max((foreign_load()["pytest_procs"], idle_before["pytest_procs"]))
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode.name,
        "runs": mode.runs,
        "duration_s": round(time.time() - ctx.started),
        "load_before_max": max(loads, default=0.0),
        "idle_note": (
            f"1-minute load average before the runs between {min(loads, default=0):.2f} and "
            f"{max(loads, default=0):.2f} on {os.cpu_count()} cores; "
            + (
                "other test processes were running during the run (figures skewed by CPU "
                "contention)"
                if contention or any("other test" in r.note for r in rows)
                else "no other test processes seen"
            )
        ),
        "server": "gunicorn config.wsgi:application, 2 sync workers, CONN_MAX_AGE=60, "
        f"TENANT_MAX_OPEN_CONNECTIONS={ctx.tenant_cap}; daphne for WebSocket; "
        + (
            f"the bench's own PostgreSQL cluster (max_connections {MAX_CONNECTIONS})"
            if own_pg is not None
            else "the PostgreSQL server on 127.0.0.1:5432"
        ),
    }
    machine = machine_info()
    (RESULTS / f"{args.output}.md").write_text(render_markdown(rows, machine, meta))
    (RESULTS / f"{args.output}.json").write_text(render_json(rows, machine, meta) + "\n")
    say(f"wrote bench/results/{args.output}.md and .json in {meta['duration_s']} s")
    print(render_markdown(rows, machine, meta))
    return 1 if any(row.error for row in rows) else 0


def stop_http(ctx: Context) -> None:
    if ctx.http_server is not None:
        ctx.http_server.__exit__(None, None, None)
        ctx.http_server = None


def warm(ctx: Context) -> None:
    """A few requests so both workers have imported everything and connected."""
    for _ in range(20):
        conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
        conn.request(
            "GET",
            LIST_PATH,
            headers={
                "Host": f"{BENCH_SLUG}.localhost",
                "Authorization": f"Bearer {ctx.tokens[BENCH_SLUG]}",
            },
        )
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"warm-up request answered {resp.status}")
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
