"""The benchmark's own PostgreSQL server: a throw-away cluster made with the machine's
PostgreSQL binaries (`initdb`, `pg_ctl`), sized like a production server for the scenarios.

Why its own: the round-robin scenario keeps a connection per tenant in each HTTP worker
(2 workers x 100 tenants), which needs more than the 100 `max_connections` a default
server has; a cluster of its own can be sized for that without touching the machine's
server or anything stored in it. Everything else is PostgreSQL's defaults.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MAX_CONNECTIONS = 300
# Only what differs from a fresh cluster's defaults.
SETTINGS = {
    "max_connections": str(MAX_CONNECTIONS),
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'256MB'",
}


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as `owner` then."""
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


class PgServer:
    """`with PgServer() as pg:` a running cluster on `pg.url`; removed on exit."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self.bin = binaries()
        self.owner = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="tk-bench-pg-"))
        self.data = self.root / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}"

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
            for key, value in SETTINGS.items():
                conf.write(f"{key} = {value}\n")
            conf.write(f"port = {self.port}\n")
            conf.write(f"unix_socket_directories = '{self.root}'\n")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "start"
        )
        return self

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


if __name__ == "__main__":  # a quick look: start, print the URL, stop
    with PgServer() as pg:
        print(pg.url)
        time.sleep(1)
