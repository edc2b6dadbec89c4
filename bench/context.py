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
# The TENANT_MAX_OPEN_CONNECTIONS the compose file ships (tenants behind the pooler: each
# kept connection is a pooler client, not a backend): every server of the harness runs with
# it.
DEFAULT_TENANT_CAP = 240
# The tuned variant beside some scale-out rows (never instead of them): a cap that holds a
# pooler connection for most tenants a worker serves, within the shipped pooler's
# max_client_conn (2 workers x 480 = 960 < 1000).
TUNED_TENANT_CAP = 480
MAIN_DB = "tk_bench"
PREFIX = "tkbench_"
PEER_DB = "tk_bench_peer"  # the django-tenants peer's database (bench/peer/)
SECOND_SERVER = "second"  # the second PostgreSQL server's name in the product's registry
SECOND_PREFIX = "s"  # its tenants: s0001...
# The environment variables its pooled and direct URLs are read from (add_database_server).
SECOND_URL_ENV = "BENCH_SECOND_SERVER_URL"
SECOND_ADMIN_URL_ENV = "BENCH_SECOND_SERVER_ADMIN_URL"
REDIS_URL = "redis://127.0.0.1:6379/14"
HTTP_PORT = 18100
BYPASS_PORT = 18101
SINGLE_PORT = 18102
DAPHNE_PORT = 18103
WS_PORT = 18104
SCALE_PORT = 18105  # a fresh product server per measurement (bench.scale)
PEER_PORT = 18106  # the peer project's gunicorn
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
    rr_tenants: int  # tenants of the 100-tenant rows (product and peer)
    second_tenants: int  # tenants on each of the two servers (two_servers)
    warm_seconds: int  # an unmeasured wrk pass over a rotation before it is measured
    small_contacts: int  # contacts in every small tenant
    big_contacts: int
    provisions: int  # provision_tenant calls per run
    ws_clients: int
    ws_rate: int
    ws_seconds: int
    log_calls: int
    ws_frame_rate: int  # records/s of the one-record-per-frame WebSocket row


def full() -> Mode:
    return Mode("full", 3, 10, 20, 1000, 100, 500, 4, 200, 1_000_000, 5, 100, 1000, 30, 20000, 100)


def quick() -> Mode:
    return Mode("quick", 3, 2, 3, 40, 10, 20, 1, 200, 20_000, 2, 10, 200, 3, 2000, 20)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Context:
    mode: Mode
    pg: str  # the PostgreSQL server's URL, without a database name (direct)
    pooler: str = ""  # PgBouncer in front of it: TENANT_DATABASE_URL
    pooler_limit: int = 0  # the pooler's max_user_connections
    second_pg: str = ""  # the second PostgreSQL server (direct), with the two_servers row
    env: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # slug -> access token
    bypass_token: str = ""  # `tenant: null`, for bench/settings_bypass.py
    http_server: Server | None = None  # the shared 2-worker gunicorn
    ws_server: Server | None = None  # daphne for the log stream
    profile: set[str] = field(default_factory=set)
    tenant_cap: int = DEFAULT_TENANT_CAP
    peer_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        """The servers' environment: the main database direct, tenants through the pooler,
        their DDL direct (docker-compose.yml's TENANT_DATABASE_URL and _ADMIN_URL)."""
        if not self.env:
            tenants = (
                {"TENANT_DATABASE_URL": self.pooler, "TENANT_DATABASE_ADMIN_URL": self.pg}
                if self.pooler
                else {}
            )
            self.env = server_env(
                database_url=f"{self.pg}/{MAIN_DB}",
                tenant_prefix=PREFIX,
                redis_url=REDIS_URL,
                **tenants,
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
        env: dict[str, str] | None = None,
    ) -> Server:
        """The production HTTP server on `port` (not started: use it with `with`); `env`
        overrides variables of the run's environment."""
        env = {
            **self.env,
            "DJANGO_SETTINGS_MODULE": settings,
            "TENANT_MAX_OPEN_CONNECTIONS": str(tenant_cap or self.tenant_cap),
            **(env or {}),
        }
        if settings != "config.settings":
            # The bench tenant's database the way tenant requests reach it (the pooler).
            env["BENCH_BYPASS_DATABASE_URL"] = f"{self.pooler or self.pg}/{PREFIX}{BENCH_SLUG}"
        argv = gunicorn_argv(str(VENV_BIN / "gunicorn"), port, workers, *extra)
        return Server(f"gunicorn-{port}", argv, env, port, raw(f"server-gunicorn-{port}.log"))

    @property
    def peer_env(self) -> dict[str, str]:
        """The peer project's environment (bench/peer/settings.py): its own database on the
        same PostgreSQL server, direct, persistent connections."""
        env = {k: v for k, v in self.env.items() if not k.startswith(("DJANGO_", "TENANT_"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "bench.peer.settings",
                "PEER_DATABASE_URL": self.database_url(PEER_DB),
                "PEER_SECRET_KEY": self.peer_secret,
                "CONN_MAX_AGE": "60",
            }
        )
        return env

    def peer(self, port: int = PEER_PORT, workers: int = 2) -> Server:
        """The peer project (bench/peer/) on gunicorn, 2 sync workers (not started)."""
        argv = gunicorn_argv(str(VENV_BIN / "gunicorn"), port, workers)
        argv[1] = "bench.peer.wsgi:application"
        return Server(f"peer-{port}", argv, self.peer_env, port, raw(f"server-peer-{port}.log"))

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
