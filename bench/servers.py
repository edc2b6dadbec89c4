"""Processes and servers the harnesses run on this machine (`bench.run`, `bench.soak`).

- the environment the servers run with: production settings, random strong keys, their own
  databases and Redis database so nothing else is touched;
- gunicorn and daphne as production starts them, waited for on their port, stopped again;
- a throw-away PostgreSQL cluster (`PgServer`) with PostgreSQL's defaults, Debian's
  pgbouncer in front of it as the compose file runs it (`Pooler`), and the few server-level
  operations the harness needs before the product exists (create and drop its own
  databases, read `pg_stat_*`), plus flushing its Redis database;
- what `/proc` tells about a process (children, CPU time, RSS, its sockets) and about the
  machine (cores, memory, load, other test runs).

Why a PostgreSQL cluster of its own: a run creates and drops a thousand databases and
reads server-wide statistics (`pg_stat_activity`, `pg_stat_database`); a cluster of its own
keeps that away from the machine's server and anything stored in it, and it has exactly
the shipped server's settings: PostgreSQL's defaults (`max_connections = 100`), nothing
raised.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import platform
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PY = str(VENV_BIN / "python")


# --- the environment ----------------------------------------------------------------------
def server_env(
    *, database_url: str, tenant_prefix: str, redis_url: str, **overrides: str
) -> dict[str, str]:
    """This process's environment minus test and tenant-routing variables, plus production
    settings; limits that would throttle the load generator are lifted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TESTING"))}
    for key in ("TENANT_DEFAULT", "TENANT_DATABASE_URL", "TEST_RUN_TAG"):
        env.pop(key, None)
    env.update(
        {
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_SECRET": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DEBUG": "false",
            "DATABASE_URL": database_url,
            "TENANT_DB_PREFIX": tenant_prefix,
            "CONN_MAX_AGE": "60",
            "REDIS_URL": redis_url,
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOGIN_RATE_LIMIT_PER_MINUTE": "1000000",
            "LOGIN_LOCKOUT_THRESHOLD": "1000000",
            "ACCESS_TOKEN_TTL": "86400",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
    )
    return env


def manage(
    env: dict[str, str], *args: str, timeout: float = 1800, module: str = ""
) -> subprocess.CompletedProcess:
    """`manage.py <args>` with `env` (or `python -m <module> <args>`: the peer project's),
    output captured; never raises on its exit code."""
    return subprocess.run(
        [PY, *(("-m", module) if module else ("manage.py",)), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- HTTP servers -------------------------------------------------------------------------
def gunicorn_argv(gunicorn: str, port: int, workers: int, *extra: str) -> list[str]:
    """The production HTTP command (Dockerfile, docker-compose.yml) on a loopback port."""
    return [
        gunicorn,
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "300",
        *extra,
    ]


def daphne_argv(port: int) -> list[str]:
    """The production WebSocket command on a loopback port."""
    return [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]


class Server:
    """`with Server(...) as server:` a server process started with `env`, its output
    appended to `log`, ready once it answers `/health` on `port`; stopped with SIGTERM."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name, self.argv, self.env, self.port, self.log = name, argv, env, port, log
        self.proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> Server:
        self._log = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(self.port, self.proc)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def workers(self) -> list[int]:
        """The worker processes (gunicorn's children), or the server itself (daphne)."""
        assert self.proc is not None
        return children_of(self.proc.pid) or [self.proc.pid]

    def stop(self) -> None:
        self.__exit__(None, None, None)

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None and not self._log.closed:
            self._log.close()


def wait_for_http(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Return once `GET /health` on `port` answers 200; raise if `proc` exits first or
    `timeout` seconds pass."""
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PostgreSQL ---------------------------------------------------------------------------
# PostgreSQL's default, which the compose file's server keeps; the harness's clusters do
# not set it (SETTINGS), the test suite checks that a cluster has it.
MAX_CONNECTIONS = 100
# Only what differs from a fresh cluster's defaults: loopback only.
SETTINGS = {"listen_addresses": "'127.0.0.1'"}


def binaries() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout), or PATH's."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL's initdb was not found (Debian package postgresql)")
    return Path(initdb).parent


def _version(path: Path) -> tuple[int, ...]:
    name = path.parent.parent.name
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as `owner` then."""
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


class PgServer:
    """`with PgServer() as pg:` a running cluster on `pg.url`; removed on exit.

    `parent` is the directory its files go in (default: the system's temporary directory),
    `settings` what differs from a fresh cluster's defaults (default: `SETTINGS`). The test
    suite runs one as a second tenant database server (tests/conftest.py), stopping and
    starting it again (`halt`, `resume`) to take the server away."""

    def __init__(
        self, port: int = 0, settings: dict[str, str] | None = None, *, parent: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.settings = SETTINGS if settings is None else settings
        self.bin = binaries()
        self.owner = "postgres" if os.geteuid() == 0 else None
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="tk-bench-pg-", dir=parent))
        self.data = self.root / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}"
        self.settings = SETTINGS if settings is None else settings

    def _run(self, *argv: str, timeout: float = 120) -> None:
        subprocess.run(
            _as_owner([str(self.bin / argv[0]), *argv[1:]], self.owner),
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> PgServer:
        if self.owner:
            uid = pwd.getpwnam(self.owner)
            os.chown(self.root, uid.pw_uid, uid.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            for key, value in self.settings.items():
                conf.write(f"{key} = {value}\n")
            conf.write(f"port = {self.port}\n")
            conf.write(f"unix_socket_directories = '{self.root}'\n")
        self.resume()
        return self

    def halt(self) -> None:
        """Stop the server, keeping its data (`resume` starts it again)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)

    def resume(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "start"
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


PGBOUNCER_DIR = ROOT / "config" / "pgbouncer"


def pgbouncer_binary() -> str:
    """Debian's pgbouncer (in /usr/sbin, outside a user's PATH), or PATH's."""
    if os.access("/usr/sbin/pgbouncer", os.X_OK):
        return "/usr/sbin/pgbouncer"
    found = shutil.which("pgbouncer")
    if found is None:
        raise RuntimeError("pgbouncer was not found (Debian package pgbouncer)")
    return found


def pgbouncer_defaults() -> dict[str, str]:
    """config/pgbouncer/defaults.env: the shipped limits (docker-compose.yml sets the same)."""
    values = {}
    for line in (PGBOUNCER_DIR / "defaults.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def auth_line(user: str, password: str) -> str:
    """One line of PgBouncer's auth file: both fields in double quotes, a quote doubled."""
    return " ".join('"' + field.replace('"', '""') + '"' for field in (user, password)) + "\n"


class Pooler:
    """`with Pooler(port) as pooler:` Debian's pgbouncer in front of the PostgreSQL server on
    `server_host`:`port`, rendered from config/pgbouncer/pgbouncer.ini.template with the
    shipped values (config/pgbouncer/defaults.env, as docker-compose.yml sets them:
    transaction pooling, default_pool_size 5, max_db_connections 5, max_user_connections
    60, max_client_conn 1000, md5 from an auth file), only its address, its server and the
    `overrides` changed. `pooler.url` is what TENANT_DATABASE_URL names. The test run's
    pooler (tests/pgbouncer.py) is this one with the tests' limits."""

    def __init__(
        self,
        server_port: int,
        *,
        server_host: str = "127.0.0.1",
        user: str = "postgres",
        password: str = "",
        **overrides: str,
    ) -> None:
        self.port = free_port()
        self.user = user
        # A cluster that trusts local connections still gets a password at the pooler.
        self.password = password or secrets.token_urlsafe(18)
        self.root = Path(tempfile.mkdtemp(prefix="tk-pgbouncer-"))
        self.log = self.root / "pgbouncer.log"
        self.values = {
            **pgbouncer_defaults(),
            "PGBOUNCER_LISTEN_ADDR": "127.0.0.1",
            "PGBOUNCER_PORT": str(self.port),
            "PGBOUNCER_SERVER_HOST": server_host,
            "PGBOUNCER_SERVER_PORT": str(server_port),
            "PGBOUNCER_AUTH_FILE": str(self.root / "userlist.txt"),
            "PGBOUNCER_STATS_USERS": self.user,
            **overrides,
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The pooled server, as TENANT_DATABASE_URL names it (no database)."""
        return f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}"

    @property
    def console(self) -> dict:
        """psycopg.connect() arguments of the admin console (the `pgbouncer` database)."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": "pgbouncer",
            "autocommit": True,
        }

    @property
    def max_user_connections(self) -> int:
        """The most PostgreSQL backends this pooler opens for the app's user."""
        return int(self.values["PGBOUNCER_MAX_USER_CONNECTIONS"])

    def show(self, what: str) -> list[dict]:
        """`SHOW <what>` on the admin console, as dicts."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(**self.console, row_factory=dict_row) as conn:
            return conn.execute(f"SHOW {what}").fetchall()

    def start(self) -> Pooler:
        auth = Path(self.values["PGBOUNCER_AUTH_FILE"])
        auth.write_text(auth_line(self.user, self.password))
        auth.chmod(0o600)
        ini = self.root / "pgbouncer.ini"
        template = Template((PGBOUNCER_DIR / "pgbouncer.ini.template").read_text())
        ini.write_text(template.substitute(self.values))
        owner = "postgres" if os.geteuid() == 0 else None  # pgbouncer refuses root
        if owner:
            uid = pwd.getpwnam(owner)
            for path in (self.root, auth, ini):
                os.chown(path, uid.pw_uid, uid.pw_gid)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                _as_owner([pgbouncer_binary(), str(ini)], owner),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Pooler:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def admin_connection(server: str):
    """An autocommit connection to the `postgres` database of `server` (a URL without a
    database name)."""
    import psycopg

    return psycopg.connect(f"{server}/postgres", autocommit=True)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("_", r"\_") + "%"


def create_database(server: str, name: str) -> None:
    with admin_connection(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_databases(server: str, main: str, prefix: str) -> int:
    """Drop the database `main` and every database named `<prefix>*` (and nothing else);
    returns how many there were."""
    with admin_connection(server) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                [main, _like_prefix(prefix)],
            )
        ]
        for name in names:
            assert name == main or name.startswith(prefix)
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return len(names)


def database_counters(server: str, name: str) -> tuple[int, int]:
    """(sessions opened, transactions committed) so far on database `name`."""
    with admin_connection(server) as conn:
        row = conn.execute(
            "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()
    return int(row[0]), int(row[1])


def backends_in_use(server: str, prefix: str) -> tuple[int, int]:
    """(backends connected to `<prefix>*` databases, of them not idle) on `server` now."""
    with admin_connection(server) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
            "WHERE datname LIKE %s",
            [_like_prefix(prefix)],
        ).fetchone()
    return int(row[0]), int(row[1])


def sessions_opened(server: str, prefix: str) -> int:
    """Sessions opened so far on all databases named `<prefix>*`."""
    with admin_connection(server) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(sessions), 0) FROM pg_stat_database WHERE datname LIKE %s",
            [_like_prefix(prefix)],
        ).fetchone()
    return int(row[0])


def connections_held(server: str, pid: int, prefix: str) -> tuple[int, int]:
    """(connections to `<prefix>*` databases, all connections) process `pid` holds on
    `server`: its sockets in /proc matched to `pg_stat_activity.client_port`."""
    ports = sorted(local_ports_to(pid, int(server.rsplit(":", 1)[1])))
    if not ports:
        return 0, 0
    with admin_connection(server) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE datname LIKE %s), count(*) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s)",
            [_like_prefix(prefix), ports],
        ).fetchone()
    return int(row[0]), int(row[1])


# --- Redis --------------------------------------------------------------------------------
def flush_redis(url: str) -> None:
    """Empty the one Redis database `url` names."""
    import redis

    redis.Redis.from_url(url).flushdb()


# --- processes (/proc) --------------------------------------------------------------------
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


# --- the machine --------------------------------------------------------------------------
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


if __name__ == "__main__":  # a quick look: start a cluster, print the URL, stop
    with PgServer() as pg:
        print(pg.url)
        time.sleep(1)
