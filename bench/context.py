"""What every scenario of a bench run shares: the run's size (`Mode`), the names it may
touch (databases, Redis database, ports, tenants), and the `Context` handed to each
scenario's `run()` (environment, tokens, the running servers)."""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.profile import record
from bench.servers import ROOT, VENV_BIN, Server, daphne_argv, gunicorn_argv, server_env

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
RAW = RESULTS / "raw"

SYSTEM_PG = "postgres://postgres@127.0.0.1:5432"  # with --system-pg
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


def full() -> Mode:
    return Mode("full", 3, 10, 20, 1000, 100, 200, 1_000_000, 5, 100, 1000, 30, 20000)


def quick() -> Mode:
    return Mode("quick", 3, 2, 3, 20, 10, 200, 20_000, 2, 10, 200, 3, 2000)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Context:
    mode: Mode
    pg: str  # the PostgreSQL server's URL, without a database name
    env: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # slug -> access token
    bypass_token: str = ""  # `tenant: null`, for bench/settings_bypass.py
    http_server: Server | None = None  # the shared 2-worker gunicorn
    ws_server: Server | None = None  # daphne for the log stream
    profile: set[str] = field(default_factory=set)
    tenant_cap: int = DEFAULT_TENANT_CAP
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not self.env:
            self.env = server_env(
                database_url=f"{self.pg}/{MAIN_DB}", tenant_prefix=PREFIX, redis_url=REDIS_URL
            )

    def database_url(self, name: str) -> str:
        return f"{self.pg}/{name}"

    def gunicorn(
        self,
        port: int,
        workers: int = 2,
        settings: str = "config.settings",
        extra: tuple[str, ...] = (),
        tenant_cap: int | None = None,
    ) -> Server:
        """The production HTTP server on `port` (not started: use it with `with`)."""
        env = {
            **self.env,
            "DJANGO_SETTINGS_MODULE": settings,
            "TENANT_MAX_OPEN_CONNECTIONS": str(tenant_cap or self.tenant_cap),
        }
        if settings != "config.settings":
            env["BENCH_BYPASS_DATABASE_URL"] = self.database_url(f"{PREFIX}{BENCH_SLUG}")
        argv = gunicorn_argv(str(VENV_BIN / "gunicorn"), port, workers, *extra)
        return Server(f"gunicorn-{port}", argv, env, port, raw(f"server-gunicorn-{port}.log"))

    def daphne(self, port: int) -> Server:
        """daphne on `port` (not started), without persistent database connections: they
        leak under ASGI."""
        env = {**self.env, "CONN_MAX_AGE": "0"}
        return Server(
            f"daphne-{port}", daphne_argv(port), env, port, raw(f"server-daphne-{port}.log")
        )

    def profilers(
        self, key: str, run: int, pids: list[int], seconds: int
    ) -> list[subprocess.Popen]:
        """With `--profile key`, py-spy on `pids` in run 0 (`bench.profile.record`)."""
        if key not in self.profile or run != 0:
            return []
        return record(key, pids, seconds, RAW)


def raw(name: str) -> Path:
    """A file of bench/results/raw/ (load generator output, server logs, profiles)."""
    return RAW / name
